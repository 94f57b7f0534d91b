/* tollgate-authz: the FastCGI authorizer. Thin: configuration, secret,
 * log, then the shared server loop. */
#include <config.h>

#include <getopt.h>
#include <stdio.h>

#include "authz.h"
#include "log.h"
#include "server.h"

int
main(int argc, char **argv)
{
    static const struct tg_server_ops ops = {authz_worker_new,
                                             authz_worker_free, authz_handle};
    static struct authz az; /* shared by every thread, read-only */
    const char *path = NULL;
    struct tg_err err = {0};
    int ch;

    while ((ch = getopt(argc, argv, "c:")) != -1) {
        if (ch != 'c') {
            fprintf(stderr, "usage: tollgate-authz [-c FILE]\n");
            return 1;
        }
        path = optarg;
    }
    if (tg_conf_load(&az.conf, tg_conf_path(path), &err) != TG_OK ||
        tg_log_open("tollgate-authz", az.conf.log_level, az.conf.log_target,
                    &err) != TG_OK ||
        tg_secret_load(az.conf.secret_file, &az.secret, &err) != TG_OK ||
        tg_server_run(az.conf.authz_listen, (int)az.conf.threads, &ops, &az,
                      &err) != TG_OK) {
        fprintf(stderr, "tollgate-authz: %s\n", err.msg);
        return 2;
    }
    tg_secret_wipe(&az.secret);
    return 0;
}
