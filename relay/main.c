/* tollgate-relay: the FastCGI responder that streams approved requests to
 * Ollama and settles what they used. Thin: configuration, then the loop. */
#include <config.h>

#include <getopt.h>
#include <stdio.h>

#include <curl/curl.h>

#include "log.h"
#include "relay.h"
#include "server.h"

static enum tg_code
start(struct relay *app, const char *path, struct tg_err *err)
{
    static const struct tg_server_ops ops = {relay_worker_new,
                                             relay_worker_free, relay_handle};
    enum tg_code rc;

    rc = tg_conf_load(&app->conf, tg_conf_path(path), err);
    if (rc == TG_OK)
        rc = tg_log_open("tollgate-relay", app->conf.log_level,
                         app->conf.log_target, err);
    if (rc == TG_OK)
        rc = tg_secret_load(app->conf.secret_file, &app->secret, err);
    if (rc != TG_OK)
        return rc;
    app->pool =
        tg_db_pool_new((int)app->conf.db_pool_size, app->conf.db,
                       (int)app->conf.db_connect_timeout,
                       (int)app->conf.statement_timeout, "tollgate-relay");
    if (app->pool == NULL)
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    app->ups = relay_upstreams_new(app->conf.upstream, err);
    if (app->ups == NULL)
        return err->code;
    return tg_server_run(app->conf.relay_listen, app->conf.socket_group,
                         (int)app->conf.threads, &ops, app, err);
}

int
main(int argc, char **argv)
{
    static struct relay app; /* shared by every thread, read-only */
    const char *path = NULL;
    struct tg_err err = {0};
    int ch, status = 0;

    while ((ch = getopt(argc, argv, "c:")) != -1) {
        if (ch != 'c') {
            fprintf(stderr, "usage: tollgate-relay [-c FILE]\n");
            return 1;
        }
        path = optarg;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "tollgate-relay: curl_global_init failed\n");
        return 2;
    }
    if (start(&app, path, &err) != TG_OK) {
        fprintf(stderr, "tollgate-relay: %s\n", err.msg);
        status = 2;
    }
    tg_db_pool_free(app.pool);
    relay_upstreams_free(app.ups);
    tg_secret_wipe(&app.secret);
    curl_global_cleanup();
    return status;
}
