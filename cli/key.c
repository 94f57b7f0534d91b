/* `tollgate key ...`: create, list, show, update, disable, enable, rotate,
 * delete. The changes themselves live in lib/keyops.c, shared with the
 * admin pages; this file parses options and prints. */
#include <config.h>

#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "cli.h"
#include "keyops.h"
#include "keys.h"

#define NFIELDS TG_KEYOPS_NFIELDS

enum {
    OPT_NAME = 1000,
    OPT_UNLIMITED,
    OPT_NO_EXPIRY,
    OPT_FORCE,
    OPT_JSON,
    OPT_FIELD = 2000
};

struct key_args {
    struct tg_keyops_change ch; /* ch.name: the key */
    bool unlimited, no_expiry, force, json;
};

static enum tg_code
parse_args(int argc, char **argv, bool want_name_flag, struct key_args *a,
           struct tg_err *err)
{
    struct option opts[NFIELDS + 6];
    size_t i;
    int ch;

    memset(a, 0, sizeof(*a));
    for (i = 0; i < NFIELDS; i++)
        opts[i] = (struct option){tg_keyops_fields[i].flag, required_argument,
                                  0, OPT_FIELD + (int)i};
    opts[i++] = (struct option){"name", required_argument, 0, OPT_NAME};
    opts[i++] = (struct option){"unlimited", no_argument, 0, OPT_UNLIMITED};
    opts[i++] = (struct option){"no-expiry", no_argument, 0, OPT_NO_EXPIRY};
    opts[i++] = (struct option){"force", no_argument, 0, OPT_FORCE};
    opts[i++] = (struct option){"json", no_argument, 0, OPT_JSON};
    opts[i] = (struct option){0, 0, 0, 0};
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (ch >= OPT_FIELD && ch < OPT_FIELD + (int)NFIELDS) {
            size_t f = (size_t)(ch - OPT_FIELD);

            if (tg_keyops_check(f, optarg, "--", err) != TG_OK)
                return err->code;
            a->ch.set[f] = true;
            a->ch.val[f] = tg_keyops_fields[f].kind != TG_KF_SCOPE &&
                                   tg_keyops_is_none(optarg)
                               ? NULL
                               : optarg;
        } else if (ch == OPT_NAME && want_name_flag) {
            a->ch.name = optarg;
        } else if (ch == OPT_UNLIMITED) {
            a->unlimited = true;
        } else if (ch == OPT_NO_EXPIRY) {
            a->no_expiry = true;
        } else if (ch == OPT_FORCE) {
            a->force = true;
        } else if (ch == OPT_JSON) {
            a->json = true;
        } else {
            return tg_err_set(err, TG_E_USAGE,
                              "%s: unknown or incomplete "
                              "option '%s' (see tollgate --help)",
                              argv[0], argv[optind - 1]);
        }
    }
    if (!want_name_flag && optind == argc - 1)
        a->ch.name = argv[optind];
    else if (optind != argc)
        return tg_err_set(err, TG_E_USAGE, "%s: unexpected argument '%s'",
                          argv[0], argv[optind]);
    if (a->ch.name == NULL)
        return tg_err_set(err, TG_E_USAGE, "%s: which key? give %s", argv[0],
                          want_name_flag ? "--name NAME" : "NAME");
    for (i = 0; i < TG_KEYOPS_NLIMITS && a->unlimited; i++) {
        a->ch.set[i] = true;
        a->ch.val[i] = NULL;
    }
    if (a->no_expiry) {
        a->ch.set[TG_KEYOPS_EXPIRES] = true;
        a->ch.val[TG_KEYOPS_EXPIRES] = NULL;
    }
    return TG_OK;
}

static const char *
actor(char *buf, size_t len)
{
    const char *who = getenv("SUDO_USER");
    struct passwd *pw;

    if (who == NULL || who[0] == '\0') {
        pw = getpwuid(getuid());
        who = pw != NULL ? pw->pw_name : "unknown";
    }
    snprintf(buf, len, "cli:%s", who);
    return buf;
}

void
cli_key_ctx(struct cli *c, struct tg_keyops_ctx *ctx, char *who, size_t wholen)
{
    ctx->db = c->db;
    ctx->actor = actor(who, wholen);
    ctx->secret_file = c->conf.secret_file;
    ctx->key_prefix = c->conf.key_prefix;
}

/* The commands that change a key: one tg_keyops call each. */
static const struct change {
    const char *sub;
    enum tg_keyops_verb verb; /* for the simple ones */
} changes[] = {
    {"create", 0},
    {"update", 0},
    {"rotate", 0},
    {"disable", TG_KEYOPS_DISABLE},
    {"enable", TG_KEYOPS_ENABLE},
    {"delete", TG_KEYOPS_DELETE},
};

static enum tg_code
apply(struct tg_keyops_ctx *ctx, const struct change *ch, struct key_args *a,
      char *key, size_t keylen, struct tg_err *err)
{
    if (strcmp(ch->sub, "create") == 0)
        return tg_keyops_create(ctx, &a->ch, key, keylen, NULL, err);
    if (strcmp(ch->sub, "rotate") == 0)
        return tg_keyops_rotate(ctx, a->ch.name, key, keylen, err);
    if (strcmp(ch->sub, "update") == 0)
        return tg_keyops_update(ctx, &a->ch, err);
    return tg_keyops_simple(ctx, ch->verb, a->ch.name, a->force, err);
}

static int
key_change(struct cli *c, int argc, char **argv, const struct change *ch)
{
    char key[TG_KEY_MAX_LEN + 1] = "", who[128];
    struct tg_keyops_ctx ctx;
    struct tg_err err = {0};
    struct key_args a;
    enum tg_code rc;

    cli_key_ctx(c, &ctx, who, sizeof(who));
    rc = parse_args(argc, argv, strcmp(ch->sub, "create") == 0, &a, &err);
    if (rc == TG_OK)
        rc = apply(&ctx, ch, &a, key, sizeof(key), &err);
    if (rc == TG_E_USAGE && strstr(err.msg, "nothing to change"))
        strncat(err.msg, " (see tollgate --help)",
                sizeof(err.msg) - strlen(err.msg) - 1);
    if (rc != TG_OK) {
        explicit_bzero(key, sizeof(key));
        return cli_fail(rc, &err);
    }
    if (strcmp(ch->sub, "create") == 0)
        printf("created key '%s'. It is shown this once: store it now.\n"
               "%s\n",
               a.ch.name, key);
    else if (strcmp(ch->sub, "rotate") == 0)
        printf("rotated key '%s': the old key no longer works. The new one "
               "is shown this once:\n%s\n",
               a.ch.name, key);
    else
        printf("%s key '%s'\n",
               strcmp(ch->sub, "update") == 0 ? "updated"
                                              : tg_keyops_done(ch->verb),
               a.ch.name);
    fflush(stdout);
    explicit_bzero(key, sizeof(key));
    return CLI_EXIT_OK;
}

/* Prints a report value in a column: "-" for unlimited; the last column
 * ends the line. */
static void
print_cell(json_t *v, bool last)
{
    char tmp[64];

    if (json_is_integer(v))
        snprintf(tmp, sizeof(tmp), "%lld", (long long)json_integer_value(v));
    else if (json_is_string(v))
        snprintf(tmp, sizeof(tmp), "%.19s", json_string_value(v));
    else
        snprintf(tmp, sizeof(tmp), "-");
    printf(last ? "%s\n" : "%-12s", tmp);
}

static void
print_table(json_t *rows)
{
    static const char *const cols[] = {"name",
                                       "display_prefix",
                                       "scope",
                                       "state",
                                       "tokens_day_limit",
                                       "tokens_month_limit",
                                       "requests_day_limit",
                                       "requests_month_limit",
                                       "rpm_limit",
                                       "expires_at"};
    static const char *const heads[] = {
        "NAME",      "PREFIX",  "SCOPE",     "STATE", "TOK/DAY",
        "TOK/MONTH", "REQ/DAY", "REQ/MONTH", "RPM",   "EXPIRES"};
    size_t i, r;
    int w = 4;

    for (r = 0; r < json_array_size(rows); r++) {
        int len = (int)strlen(json_string_value(
            json_object_get(json_array_get(rows, r), "name")));
        if (len > w)
            w = len > 40 ? 40 : len;
    }
    printf("%-*s", w + 2, heads[0]);
    for (i = 1; i < 10; i++)
        printf(i == 9 ? "%s\n" : "%-12s", heads[i]);
    for (r = 0; r < json_array_size(rows); r++) {
        json_t *row = json_array_get(rows, r); /* borrowed */

        printf("%-*.*s", w + 2, w,
               json_string_value(json_object_get(row, "name")));
        for (i = 1; i < 10; i++)
            print_cell(json_object_get(row, cols[i]), i == 9);
    }
}

static void
print_report(json_t *o)
{
    const char *k;
    json_t *v; /* borrowed */

    json_object_foreach(o, k, v)
    {
        char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY);

        printf("%-22s %s\n", k, s != NULL ? s : json_string_value(v));
        free(s);
    }
}

static int
key_report(struct cli *c, int argc, char **argv, bool one)
{
    const char *params[2] = {c->conf.time_zone, NULL};
    struct tg_err err = {0};
    struct key_args a = {0};
    PGresult *res = NULL;
    json_t *doc = NULL; /* new */
    enum tg_code rc;
    json_error_t jerr;

    if (one)
        rc = parse_args(argc, argv, false, &a, &err);
    else if (argc == 1 || (argc == 2 && strcmp(argv[1], "--json") == 0))
        rc = TG_OK, a.json = argc == 2;
    else
        rc = tg_err_set(&err, TG_E_USAGE, "usage: tollgate key list [--json]");
    if (rc != TG_OK)
        goto out;
    params[1] = a.ch.name;
    res = tg_db_exec(c->db, PGRES_TUPLES_OK,
                     one ? "SELECT report FROM tg_key_report($1) WHERE name "
                           "= $2"
                         : "SELECT COALESCE(json_agg(report ORDER BY name), "
                           "'[]') FROM tg_key_report($1)",
                     one ? 2 : 1, params, &err);
    if (res == NULL) {
        rc = err.code;
        goto out;
    }
    if (PQntuples(res) != 1) {
        rc = tg_err_set(&err, TG_E_NOT_FOUND, "no key named '%s'", a.ch.name);
        goto out;
    }
    if (a.json) {
        printf("%s\n", PQgetvalue(res, 0, 0));
        goto out;
    }
    doc = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
    if (doc == NULL) {
        rc = tg_err_set(&err, TG_E_INTERNAL, "report: %s", jerr.text);
        goto out;
    }
    if (one)
        print_report(doc);
    else
        print_table(doc);
out:
    json_decref(doc);
    PQclear(res);
    return rc == TG_OK ? CLI_EXIT_OK : cli_fail(rc, &err);
}

int
cli_key(struct cli *c, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    size_t i;

    argc--;
    argv++;
    if (strcmp(sub, "list") == 0)
        return key_report(c, argc, argv, false);
    if (strcmp(sub, "show") == 0)
        return key_report(c, argc, argv, true);
    for (i = 0; i < sizeof(changes) / sizeof(changes[0]); i++)
        if (strcmp(sub, changes[i].sub) == 0)
            return key_change(c, argc, argv, &changes[i]);
    fprintf(stderr, "tollgate: key: unknown subcommand '%s'\n", sub);
    cli_usage(stderr, "key");
    return CLI_EXIT_USAGE;
}
