/* The FastCGI server loop both programs run: N threads, each with its own
 * FCGX_Request and per-thread state, accepting without a mutex (a mutex
 * around accept deadlocks once a web server keeps connections open), and a
 * clean stop on SIGTERM or SIGINT (libfcgi alone would ignore them). */
#ifndef TG_SERVER_H
#define TG_SERVER_H

#include <fcgiapp.h>

#include "err.h"

struct tg_server_ops {
    /* Per-thread state (a curl handle...); NULL fails the start. Both
     * callbacks may be NULL for programs without per-thread state. */
    void *(*worker_new)(void *app);
    void (*worker_free)(void *worker);
    /* Answers one request; the loop calls FCGX_Finish_r afterwards. */
    void (*handle)(void *app, void *worker, FCGX_Request *req);
};

/* Listens on `listen` ("host:port" for TCP, or a socket path; ":port" would
 * bind every interface, so a bare port is refused), runs `threads` workers
 * until SIGTERM or SIGINT, lets them finish their current request, and
 * returns. A unix socket is mode 0660, its group `group` (socket_group; ""
 * keeps the group it was created with), so only the web server, a member
 * of that group, connects. */
enum tg_code tg_server_run(const char *listen, const char *group, int threads,
                           const struct tg_server_ops *ops, void *app,
                           struct tg_err *err) TG_MUSTCHECK;

#endif
