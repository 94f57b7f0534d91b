/* tollgate: the operator's command line. Thin: options, configuration,
 * then one subcommand. */
#include <config.h>

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"

int
main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct cli c = {0};
    struct tg_err err = {0};
    int ch, status;

    while ((ch = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            c.conf_path = optarg;
            break;
        case 'h':
            cli_usage(stdout, NULL);
            return CLI_EXIT_OK;
        default:
            cli_usage(stderr, NULL);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        cli_usage(stderr, NULL);
        return CLI_EXIT_USAGE;
    }
    c.conf_path = tg_conf_path(c.conf_path);
    if (tg_conf_load(&c.conf, c.conf_path, &err) != TG_OK ||
        tg_log_open("tollgate", c.conf.log_level, "stderr", &err) != TG_OK) {
        if (strcmp(argv[optind], "check") == 0)
            cli_check_conf_failed(c.conf_path, &err);
        else
            cli_fail(err.code, &err);
        return CLI_EXIT_RUNTIME; /* the command was fine; the setup is not */
    }
    c.db = tg_db_new(c.conf.db, (int)c.conf.db_connect_timeout,
                     (int)c.conf.statement_timeout, "tollgate-cli");
    if (c.db == NULL)
        return cli_fail(tg_err_set(&err, TG_E_INTERNAL, "out of memory"), &err);
    argc -= optind;
    argv += optind;
    optind = 0; /* subcommands parse their own options with getopt again */
    if (strcmp(argv[0], "migrate") == 0)
        status = cli_migrate(&c, argc, argv);
    else if (strcmp(argv[0], "key") == 0)
        status = cli_key(&c, argc, argv);
    else if (strcmp(argv[0], "sweep") == 0)
        status = cli_sweep(&c, argc, argv);
    else if (strcmp(argv[0], "check") == 0)
        status = cli_check(&c, argc, argv);
    else if (strcmp(argv[0], "usage") == 0)
        status = cli_usage_report(&c, argc, argv);
    else if (strcmp(argv[0], "events") == 0)
        status = cli_events(&c, argc, argv);
    else if (strcmp(argv[0], "import") == 0)
        status = cli_import(&c, argc, argv);
    else if (strcmp(argv[0], "admin") == 0)
        status = cli_admin(&c, argc, argv);
    else {
        fprintf(stderr, "tollgate: unknown command '%s'\n", argv[0]);
        cli_usage(stderr, NULL);
        status = CLI_EXIT_USAGE;
    }
    tg_db_free(c.db);
    return status;
}
