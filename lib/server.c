/* Threaded FastCGI accept loop, per web-servers.md §5.3-5.4: signals are
 * blocked in every worker and taken by sigwait() in the main thread, which
 * then shuts the listening socket so blocked accept()s return. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

struct worker_arg {
    const struct tg_server_ops *ops;
    void *app;
    void *state;
    int fd;
};

static void *
worker_main(void *p)
{
    struct worker_arg *w = p;
    FCGX_Request req;

    if (FCGX_InitRequest(&req, w->fd, 0) != 0)
        return NULL;
    while (FCGX_Accept_r(&req) >= 0) {
        w->ops->handle(w->app, w->state, &req);
        FCGX_Finish_r(&req); /* frees every FCGX_GetParam() string */
    }
    FCGX_Free(&req, 1);
    return NULL;
}

static enum tg_code
open_listener(const char *listen, int *fd, struct tg_err *err)
{
    if (listen[0] == ':')
        return tg_err_set(err, TG_E_CONFIG,
                          "listen '%s' would bind every interface; give "
                          "127.0.0.1:PORT or a socket path",
                          listen);
    *fd = FCGX_OpenSocket(listen, 1024); /* bursts queue, not fail */
    if (*fd < 0)
        return tg_err_set(err, TG_E_CONFIG, "cannot listen on %s: %s", listen,
                          strerror(errno));
    /* The web server runs as another user; tickets, not socket modes,
     * keep unauthorised requests out of the relay. */
    if (listen[0] == '/' && chmod(listen, 0666) != 0)
        return tg_err_set(err, TG_E_CONFIG, "chmod %s: %s", listen,
                          strerror(errno));
    return TG_OK;
}

enum tg_code
tg_server_run(const char *listen, int threads, const struct tg_server_ops *ops,
              void *app, struct tg_err *err)
{
    struct worker_arg *w = NULL;
    pthread_t *tids = NULL;
    sigset_t stop;
    enum tg_code rc;
    int fd = -1, started = 0, i, sig = 0;

    if (FCGX_Init() != 0)
        return tg_err_set(err, TG_E_INTERNAL, "FCGX_Init failed");
    rc = open_listener(listen, &fd, err);
    if (rc != TG_OK)
        goto out;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN); /* a vanished peer is an error, not a death */
    w = calloc((size_t)threads, sizeof(*w));
    tids = calloc((size_t)threads, sizeof(*tids));
    if (w == NULL || tids == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto out;
    }
    for (i = 0; i < threads; i++) {
        w[i] = (struct worker_arg){ops, app, NULL, fd};
        if (ops->worker_new != NULL)
            w[i].state = ops->worker_new(app);
        if ((ops->worker_new != NULL && w[i].state == NULL) ||
            pthread_create(&tids[i], NULL, worker_main, &w[i]) != 0) {
            rc = tg_err_set(err, TG_E_INTERNAL, "cannot start worker %d", i);
            if (w[i].state != NULL && ops->worker_free != NULL)
                ops->worker_free(w[i].state);
            break;
        }
        started++;
    }
    tg_log(TG_LOG_INFO, NULL, "listening on %s with %d threads", listen,
           started);
    if (rc == TG_OK)
        sigwait(&stop, &sig);
    tg_log(TG_LOG_INFO, NULL, "stopping (signal %d)", sig);
    FCGX_ShutdownPending();
    shutdown(fd, SHUT_RDWR);
    for (i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
        if (ops->worker_free != NULL)
            ops->worker_free(w[i].state);
    }
    if (listen[0] == '/')
        unlink(listen);
out:
    free(w);
    free(tids);
    return rc;
}
