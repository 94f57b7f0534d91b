/* tollgate-authz: the FastCGI authorizer. Thin: configuration, secret,
 * log, the connection pool, then the shared server loop. */
#include <config.h>

#include <getopt.h>
#include <stdio.h>

#include "authz.h"
#include "log.h"
#include "server.h"

static enum tg_code
start(struct authz *az, const char *path, struct tg_err *err)
{
    static const struct tg_server_ops ops = {NULL, NULL, authz_handle};
    enum tg_code rc;

    rc = tg_conf_load(&az->conf, tg_conf_path(path), err);
    if (rc == TG_OK)
        rc = tg_log_open("tollgate-authz", az->conf.log_level,
                         az->conf.log_target, err);
    if (rc == TG_OK)
        rc = tg_secret_load(az->conf.secret_file, &az->secret, err);
    if (rc != TG_OK)
        return rc;
    az->pool =
        tg_db_pool_new((int)az->conf.db_pool_size, az->conf.db,
                       (int)az->conf.db_connect_timeout,
                       (int)az->conf.statement_timeout, "tollgate-authz");
    if (az->pool == NULL)
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    return tg_server_run(az->conf.authz_listen, az->conf.socket_group,
                         (int)az->conf.threads, &ops, az, err);
}

int
main(int argc, char **argv)
{
    static struct authz az; /* shared by every thread, read-only */
    const char *path = NULL;
    struct tg_err err = {0};
    int ch, status = 0;

    while ((ch = getopt(argc, argv, "c:")) != -1) {
        if (ch != 'c') {
            fprintf(stderr, "usage: tollgate-authz [-c FILE]\n");
            return 1;
        }
        path = optarg;
    }
    if (start(&az, path, &err) != TG_OK) {
        fprintf(stderr, "tollgate-authz: %s\n", err.msg);
        status = 2;
    }
    tg_db_pool_free(az.pool);
    tg_secret_wipe(&az.secret);
    return status;
}
