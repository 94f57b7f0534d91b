/* The relay: verify the ticket, claim its reservation, apply the body
 * policy, stream the request to the upstream and back, settle once. */
#ifndef RELAY_H
#define RELAY_H

#include <fcgiapp.h>

#include "conf.h"
#include "db.h"
#include "secret.h"
#include "upstreams.h"

struct relay {
    struct tg_conf conf;
    struct tg_secret secret;
    struct tg_db_pool *pool; /* shared by the threads */
    struct relay_upstreams *ups;
};

/* The tg_server_ops callbacks; worker state is the thread's curl handle,
 * kept so connections to the upstream are reused. */
void *relay_worker_new(void *app);
void relay_worker_free(void *worker);
void relay_handle(void *app, void *worker, FCGX_Request *req);

#endif
