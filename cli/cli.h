/* The operator's command line: shared state and the subcommands. */
#ifndef CLI_H
#define CLI_H

#include <stdio.h>

#include "buf.h"
#include "conf.h"
#include "db.h"
#include "err.h"
#include "keyops.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_USAGE = 1, CLI_EXIT_RUNTIME = 2 };

struct cli {
    struct tg_conf conf;
    const char *conf_path;
    struct tg_db *db;
};

/* Prints "tollgate: <message>" on stderr and returns the exit status for
 * the code: 1 for what the user can fix in the command, 2 otherwise. */
int cli_fail(enum tg_code rc, const struct tg_err *err);

/* Prints the usage text for `topic` ("key" or NULL for all) to stream. */
void cli_usage(FILE *stream, const char *topic);

/* The context key changes run in: this CLI's user as the audit actor. */
void cli_key_ctx(struct cli *c, struct tg_keyops_ctx *ctx, char *who,
                 size_t wholen);

int cli_migrate(struct cli *c, int argc, char **argv);
int cli_key(struct cli *c, int argc, char **argv);
int cli_sweep(struct cli *c, int argc, char **argv);
int cli_check(struct cli *c, int argc, char **argv);
/* `tollgate check` when the configuration itself did not load. */
void cli_check_conf_failed(const char *path, const struct tg_err *err);
int cli_usage_report(struct cli *c, int argc, char **argv);
int cli_events(struct cli *c, int argc, char **argv);
int cli_import(struct cli *c, int argc, char **argv);
int cli_admin(struct cli *c, int argc, char **argv);

#endif
