/* What every subcommand shares: failing with the right exit status, usage
 * text, and `migrate`, which is too small for a file of its own. */
#include <config.h>

#include <stdio.h>

#include "cli.h"
#include "migrate.h"

static const char usage_text[] =
    "usage: tollgate [-c FILE] COMMAND ...\n"
    "\n"
    "  migrate                      apply the schema migrations in sql_dir\n"
    "  key create --name NAME [LIMITS]\n"
    "                               create a key; it is printed once, alone\n"
    "                               on the last line of stdout\n"
    "  key list [--json]            every key with its limits and state\n"
    "  key show NAME [--json]       one key: limits and current usage\n"
    "  key update NAME [LIMITS] [--no-expiry] [--unlimited]\n"
    "  key disable NAME | key enable NAME\n"
    "  key rotate NAME              new key, same limits and usage\n"
    "  key delete NAME [--force]    refused while requests are in flight\n"
    "  sweep [--retain 90d|24h]     reclaim expired reservations, replay the\n"
    "                               settlement spool, drop what is older than\n"
    "                               the retention (cron: every minute)\n"
    "  check                        configuration, secret, database, "
    "upstream,\n"
    "                               web server, spool: one line each with a "
    "fix\n"
    "  usage [--key NAME] [--since T] [--until T] [--by day|month|model]\n"
    "        [--csv|--json]         requests and tokens per key\n"
    "  events [--key NAME] [--since T] [--until T] [--csv|--json]\n"
    "                               every usage event\n"
    "  import --from fastapi|ollaguard|csv FILE\n"
    "                               keys from another proxy, kept working\n"
    "  admin unlock [--address ADDR]\n"
    "                               end the admin sign-in lock-out of ADDR\n"
    "                               (or of every address) at once\n"
    "\n"
    "LIMITS (a number, or 'none' for unlimited):\n"
    "  --tokens-day N --tokens-month N --requests-day N --requests-month N\n"
    "  --rpm N --reservation N\n"
    "  --expires TIME --not-before TIME  (TIME: 2027-01-31, '2027-01-31 "
    "12:00+01',\n"
    "                                     +30d, +12h; 'none' to clear)\n"
    "  --models a,b  --force-model M  --scope infer|admin  --max-output N\n"
    "  --capture-bodies yes|no\n"
    "\n"
    "T: 2027-01-31, '2027-01-31 12:00', 2027-01-31T12:00+01, 7d, 24h\n"
    "\n"
    "The configuration is -c FILE, else $TOLLGATE_CONFIG, else "
    "/etc/tollgate/tollgate.conf.\n"
    "Exit status: 0 done, 1 bad command or input, 2 runtime failure.\n";

void
cli_usage(FILE *stream, const char *topic)
{
    (void)topic;
    fputs(usage_text, stream);
}

int
cli_fail(enum tg_code rc, const struct tg_err *err)
{
    /* err->msg is cleaned (control bytes escaped, hashes masked) where it
     * is set; an operator may see what PostgreSQL said, with its code. */
    if (err != NULL && err->msg[0] != '\0' && err->sqlstate[0] != '\0')
        fprintf(stderr, "tollgate: %s (SQLSTATE %s)\n", err->msg,
                err->sqlstate);
    else
        fprintf(stderr, "tollgate: %s\n",
                err != NULL && err->msg[0] != '\0' ? err->msg
                                                   : tg_code_name(rc));
    switch (rc) {
    case TG_OK:
        return CLI_EXIT_OK;
    case TG_E_USAGE:
    case TG_E_CONFLICT:
    case TG_E_NOT_FOUND:
    case TG_E_BAD_REQUEST:
        return CLI_EXIT_USAGE;
    default:
        return CLI_EXIT_RUNTIME;
    }
}

int
cli_migrate(struct cli *c, int argc, char **argv)
{
    struct tg_err err = {0};
    int applied = 0;

    (void)argv;
    if (argc != 1) {
        cli_usage(stderr, NULL);
        return CLI_EXIT_USAGE;
    }
    if (tg_migrate(c->db, c->conf.sql_dir, &applied, &err) != TG_OK)
        return cli_fail(err.code, &err);
    printf("migrate: %d migration%s applied\n", applied,
           applied == 1 ? "" : "s");
    return CLI_EXIT_OK;
}
