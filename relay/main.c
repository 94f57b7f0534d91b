/* tollgate-relay: the FastCGI responder that streams approved requests to
 * Ollama and settles what they used. Thin: configuration, then the loop. */
#include <config.h>

#include <getopt.h>
#include <stdio.h>

#include <curl/curl.h>

#include "log.h"
#include "relay.h"
#include "server.h"

int
main(int argc, char **argv)
{
    static const struct tg_server_ops ops = {relay_worker_new,
                                             relay_worker_free, relay_handle};
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
    if (tg_conf_load(&app.conf, tg_conf_path(path), &err) != TG_OK ||
        tg_log_open("tollgate-relay", app.conf.log_level, app.conf.log_target,
                    &err) != TG_OK ||
        tg_secret_load(app.conf.secret_file, &app.secret, &err) != TG_OK ||
        tg_server_run(app.conf.relay_listen, (int)app.conf.threads, &ops, &app,
                      &err) != TG_OK) {
        fprintf(stderr, "tollgate-relay: %s\n", err.msg);
        status = 2;
    }
    tg_secret_wipe(&app.secret);
    curl_global_cleanup();
    return status;
}
