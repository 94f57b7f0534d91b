/* The authorizer: one FastCGI request in, allow (200 + ticket) or deny
 * (401/403/429/503 + a JSON body in the caller's API family) out. */
#ifndef AUTHZ_H
#define AUTHZ_H

#include <fcgiapp.h>

#include "conf.h"
#include "db.h"
#include "secret.h"

struct authz {
    struct tg_conf conf;
    struct tg_secret secret;
    struct tg_db_pool *pool; /* shared by the threads */
};

/* The tg_server_ops handler; authz keeps no per-thread state. */
void authz_handle(void *app, void *worker, FCGX_Request *req);

#endif
