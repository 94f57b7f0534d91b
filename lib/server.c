/* Threaded FastCGI accept loop, per web-servers.md §5.3-5.4: signals are
 * blocked in every worker and taken by sigwait() in the main thread, which
 * then shuts the listening socket so blocked accept()s return. */
#include <config.h>

#include <errno.h>
#include <grp.h>
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

/* Only the web server may connect: tickets keep forged requests out, but
 * a local user with the socket could still spend a ticket the web server
 * was handed (issue 19). The group is `group`, or, when that is empty, the
 * one the socket was made with (the process's, or the directory's if it is
 * set-group-ID). */
static enum tg_code
restrict_socket(const char *path, const char *group, struct tg_err *err)
{
    struct group gr, *found = NULL;
    char buf[4096];
    int e;

    if (group[0] != '\0') {
        e = getgrnam_r(group, &gr, buf, sizeof(buf), &found);
        if (found == NULL)
            return tg_err_set(err, TG_E_CONFIG, "socket_group '%s': %s", group,
                              e != 0 ? strerror(e) : "no such group");
        if (chown(path, (uid_t)-1, gr.gr_gid) != 0)
            return tg_err_set(err, TG_E_CONFIG,
                              "socket_group: chown %s to group %s: %s (run as "
                              "root or as a member of that group)",
                              path, group, strerror(errno));
    }
    if (chmod(path, 0660) != 0)
        return tg_err_set(err, TG_E_CONFIG, "chmod %s: %s", path,
                          strerror(errno));
    return TG_OK;
}

static enum tg_code
open_listener(const char *listen, const char *group, int *fd,
              struct tg_err *err)
{
    enum tg_code rc = TG_OK;
    mode_t old;

    if (listen[0] == ':')
        return tg_err_set(err, TG_E_CONFIG,
                          "listen '%s' would bind every interface; give "
                          "127.0.0.1:PORT or a socket path",
                          listen);
    /* Born 0600 (still one thread here), so no one connects before the
     * group and mode are set. */
    old = umask(0177);
    *fd = FCGX_OpenSocket(listen, 1024); /* bursts queue, not fail */
    umask(old);
    if (*fd < 0)
        return tg_err_set(err, TG_E_CONFIG, "cannot listen on %s: %s", listen,
                          strerror(errno));
    if (listen[0] == '/')
        rc = restrict_socket(listen, group, err);
    if (rc != TG_OK) {
        close(*fd);
        *fd = -1;
        unlink(listen);
    }
    return rc;
}

enum tg_code
tg_server_run(const char *listen, const char *group, int threads,
              const struct tg_server_ops *ops, void *app, struct tg_err *err)
{
    struct worker_arg *w = NULL;
    pthread_t *tids = NULL;
    sigset_t stop;
    enum tg_code rc;
    int fd = -1, started = 0, i, sig = 0;

    if (FCGX_Init() != 0)
        return tg_err_set(err, TG_E_INTERNAL, "FCGX_Init failed");
    rc = open_listener(listen, group, &fd, err);
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
