/* `tollgate import --from FORMAT FILE`: keys from another proxy, hashed on
 * the way in and marked legacy so they keep working unchanged. The file is
 * read through once to check every entry, then imported: a typo on line 40
 * leaves the database as it was. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "import.h"
#include "keyops.h"

#define IMPORT_FILE_MAX (16 * 1024 * 1024)

struct import_run {
    struct tg_keyops_ctx ctx;
    const char *prefix;
    bool write; /* false: the checking pass */
    int imported, skipped;
};

static enum tg_code
read_all(const char *path, char **out, struct tg_err *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0;

    *out = NULL;
    if (f == NULL)
        return tg_err_set(err, TG_E_USAGE, "%s: %s", path, strerror(errno));
    buf = malloc(IMPORT_FILE_MAX + 1);
    if (buf != NULL)
        n = fread(buf, 1, IMPORT_FILE_MAX + 1, f);
    fclose(f);
    if (buf == NULL)
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (n > IMPORT_FILE_MAX || memchr(buf, '\0', n) != NULL) {
        free(buf);
        return tg_err_set(err, TG_E_USAGE, "%s: over %d MiB or not text", path,
                          IMPORT_FILE_MAX >> 20);
    }
    buf[n] = '\0';
    *out = buf;
    return TG_OK;
}

/* Names the entry in err's message: which line, which user. */
static void
where(struct tg_err *err, const struct tg_import_entry *e)
{
    char msg[sizeof(err->msg)];
    enum tg_code rc = err->code;

    snprintf(msg, sizeof(msg), "%s", err->msg);
    tg_err_clear(err);
    tg_err_set(err, rc, "line %d (%s): %s", e->line, e->ch.name, msg);
}

static enum tg_code
one(void *arg, const struct tg_import_entry *e, struct tg_err *err)
{
    struct import_run *run = arg;
    char name[128];
    enum tg_code rc;

    rc = run->write ? tg_keyops_import(&run->ctx, &e->ch, e->key, name,
                                       sizeof(name), err)
                    : tg_keyops_importable(run->prefix, e->key, err);
    if (!run->write || rc == TG_E_BAD_REQUEST) {
        if (rc != TG_OK)
            where(err, e);
        return rc;
    }
    if (rc == TG_E_CONFLICT && strcmp(err->msg, "already imported") == 0) {
        printf("import: skipped '%s' (line %d): key already imported\n",
               e->ch.name, e->line);
        run->skipped++;
        tg_err_clear(err);
        return TG_OK;
    }
    if (rc != TG_OK)
        return rc;
    printf("import: imported '%s' (line %d)\n", name, e->line);
    run->imported++;
    return TG_OK;
}

int
cli_import(struct cli *c, int argc, char **argv)
{
    struct import_run run = {.prefix = c->conf.key_prefix};
    struct tg_err err = {0};
    char who[128], *text = NULL;
    enum tg_code rc;
    int fmt = -1;

    if (argc == 4 && strcmp(argv[1], "--from") == 0)
        fmt = tg_import_format(argv[2]);
    if (fmt < 0) {
        fprintf(stderr, "tollgate: usage: tollgate import --from "
                        "fastapi|ollaguard|csv FILE\n");
        return CLI_EXIT_USAGE;
    }
    cli_key_ctx(c, &run.ctx, who, sizeof(who));
    rc = read_all(argv[3], &text, &err);
    if (rc == TG_OK)
        rc = tg_import_parse((enum tg_import_format)fmt, text, one, &run, &err);
    if (rc != TG_OK) {
        free(text);
        if (rc == TG_E_BAD_REQUEST)
            strncat(err.msg, " (nothing was imported)",
                    sizeof(err.msg) - strlen(err.msg) - 1);
        return cli_fail(rc, &err);
    }
    run.write = true;
    rc = tg_import_parse((enum tg_import_format)fmt, text, one, &run, &err);
    free(text);
    printf("import: %d imported, %d skipped\n", run.imported, run.skipped);
    fflush(stdout);
    return rc == TG_OK ? CLI_EXIT_OK : cli_fail(rc, &err);
}
