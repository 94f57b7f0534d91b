/* `tollgate key ...`: create, list, show, update, disable, enable, rotate,
 * delete. Every change is one SQL statement that also writes admin_audit,
 * so the audit log cannot miss a change that happened. */
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
#include "keys.h"
#include "secret.h"

#define SQL_MAX 8192

enum fkind { F_COUNT, F_TIME, F_LIST, F_TEXT, F_SCOPE };

/* The settable columns. `expr` turns the text parameter `?` into the
 * column's type; a NULL parameter yields SQL NULL through every one. */
static const struct field {
    const char *flag, *column;
    enum fkind kind;
} fields[] = {
    {"tokens-day", "tokens_day_limit", F_COUNT},
    {"tokens-month", "tokens_month_limit", F_COUNT},
    {"requests-day", "requests_day_limit", F_COUNT},
    {"requests-month", "requests_month_limit", F_COUNT},
    {"rpm", "rpm_limit", F_COUNT},
    {"reservation", "reservation_tokens", F_COUNT},
    {"expires", "expires_at", F_TIME},
    {"not-before", "not_before", F_TIME},
    {"models", "allowed_models", F_LIST},
    {"force-model", "force_model", F_TEXT},
    {"scope", "scope", F_SCOPE},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))
#define NLIMITS                                                                \
    5 /* the first five fields are the limits --unlimited clears               \
       */

static const char *const exprs[] = {
    [F_COUNT] = "?::bigint",
    [F_TIME] = "(CASE WHEN left(?::text, 1) = '+' THEN now() + "
               "substr(?::text, 2)::interval ELSE ?::timestamptz END)",
    [F_LIST] = "string_to_array(?::text, ',')",
    [F_TEXT] = "?::text",
    [F_SCOPE] = "?::text",
};

enum {
    OPT_NAME = 1000,
    OPT_UNLIMITED,
    OPT_NO_EXPIRY,
    OPT_FORCE,
    OPT_JSON,
    OPT_FIELD = 2000
};

struct key_args {
    const char *name;
    bool set[NFIELDS];
    const char *val[NFIELDS]; /* NULL: set the column to NULL */
    bool unlimited, no_expiry, force, json;
};

static bool
is_none(const char *v)
{
    return strcmp(v, "none") == 0 || strcmp(v, "unlimited") == 0 ||
           strcmp(v, "never") == 0;
}

static enum tg_code
check_value(const struct field *f, const char *v, struct tg_err *err)
{
    int64_t n;

    if (f->kind == F_SCOPE && strcmp(v, "infer") != 0 &&
        strcmp(v, "admin") != 0)
        return tg_err_set(err, TG_E_USAGE, "--scope: use infer or admin");
    if (f->kind != F_SCOPE && is_none(v))
        return TG_OK;
    if (f->kind == F_COUNT && tg_conf_parse_int(v, 0, INT64_MAX, &n) != TG_OK)
        return tg_err_set(err, TG_E_USAGE,
                          "--%s: want a whole number >= 0 or 'none', got "
                          "'%.32s'",
                          f->flag, v);
    if ((f->kind == F_LIST || f->kind == F_TEXT) &&
        (v[0] == '\0' || strstr(v, ",,") != NULL || v[0] == ','))
        return tg_err_set(err, TG_E_USAGE, "--%s: empty model name", f->flag);
    return TG_OK;
}

static enum tg_code
parse_args(int argc, char **argv, bool want_name_flag, struct key_args *a,
           struct tg_err *err)
{
    struct option opts[NFIELDS + 6];
    size_t i;
    int ch;

    memset(a, 0, sizeof(*a));
    for (i = 0; i < NFIELDS; i++)
        opts[i] = (struct option){fields[i].flag, required_argument, 0,
                                  OPT_FIELD + (int)i};
    opts[i++] = (struct option){"name", required_argument, 0, OPT_NAME};
    opts[i++] = (struct option){"unlimited", no_argument, 0, OPT_UNLIMITED};
    opts[i++] = (struct option){"no-expiry", no_argument, 0, OPT_NO_EXPIRY};
    opts[i++] = (struct option){"force", no_argument, 0, OPT_FORCE};
    opts[i++] = (struct option){"json", no_argument, 0, OPT_JSON};
    opts[i] = (struct option){0, 0, 0, 0};
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (ch >= OPT_FIELD && ch < OPT_FIELD + (int)NFIELDS) {
            const struct field *f = &fields[ch - OPT_FIELD];

            if (check_value(f, optarg, err) != TG_OK)
                return err->code;
            a->set[ch - OPT_FIELD] = true;
            a->val[ch - OPT_FIELD] =
                f->kind != F_SCOPE && is_none(optarg) ? NULL : optarg;
        } else if (ch == OPT_NAME && want_name_flag) {
            a->name = optarg;
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
        a->name = argv[optind];
    else if (optind != argc)
        return tg_err_set(err, TG_E_USAGE, "%s: unexpected argument '%s'",
                          argv[0], argv[optind]);
    if (a->name == NULL)
        return tg_err_set(err, TG_E_USAGE, "%s: which key? give %s", argv[0],
                          want_name_flag ? "--name NAME" : "NAME");
    for (i = 0; i < NLIMITS && a->unlimited; i++) {
        a->set[i] = true;
        a->val[i] = NULL;
    }
    if (a->no_expiry) {
        a->set[6] = true;
        a->val[6] = NULL;
    }
    return TG_OK;
}

/* Appends expr with every `?` replaced by `$n`. */
static void
add_expr(struct tg_buf *sql, const char *expr, int n)
{
    for (; *expr != '\0'; expr++)
        if (*expr == '?')
            tg_buf_appendf(sql, "$%d", n);
        else
            tg_buf_append(sql, expr, 1);
}

static char *
audit_detail(const struct key_args *a)
{
    json_t *o = json_object(); /* new */
    char *s = NULL;
    size_t i;

    if (o == NULL)
        return NULL;
    for (i = 0; i < NFIELDS; i++)
        if (a->set[i])
            json_object_set_new(o, fields[i].column,
                                a->val[i] ? json_string(a->val[i])
                                          : json_null());
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
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

/* Runs `stmt` (which must end so that `RETURNING id, name` can follow) with
 * an audit row in the same statement. TG_E_NOT_FOUND when no row matched. */
static enum tg_code
change(struct cli *c, const char *stmt, const char **params, int n,
       const char *action, const char *detail, const char *name,
       struct tg_err *err)
{
    char who[128];
    struct tg_buf sql;
    PGresult *res = NULL;
    enum tg_code rc = TG_E_INTERNAL;

    tg_buf_init(&sql, SQL_MAX);
    tg_buf_appendf(&sql,
                   "WITH k AS (%s RETURNING id, name), a AS (INSERT INTO "
                   "admin_audit (actor, action, target, detail) SELECT $%d, "
                   "$%d, k.name, $%d::jsonb FROM k) SELECT id FROM k",
                   stmt, n + 1, n + 2, n + 3);
    params[n] = actor(who, sizeof(who));
    params[n + 1] = action;
    params[n + 2] = detail;
    if (tg_buf_failed(&sql)) {
        rc = tg_err_set(err, TG_E_INTERNAL, "statement too long");
        goto out;
    }
    res = tg_db_exec(c->db, PGRES_TUPLES_OK, tg_buf_cstr(&sql), n + 3, params,
                     err);
    if (res == NULL) {
        rc = err->code;
        if (rc == TG_E_CONFLICT && strstr(err->msg, "api_keys_name_key"))
            tg_err_clear(err),
                tg_err_set(err, rc, "a key named '%s' already exists", name);
        goto out;
    }
    rc = PQntuples(res) == 1
             ? TG_OK
             : tg_err_set(err, TG_E_NOT_FOUND, "no key named '%s'", name);
out:
    PQclear(res);
    tg_buf_free(&sql);
    return rc;
}

static enum tg_code
new_key(struct cli *c, char *key, size_t keylen, char hash[TG_KEY_HASH_LEN + 1],
        char display[TG_KEY_DISPLAY_LEN + 1], struct tg_err *err)
{
    struct tg_secret secret;
    enum tg_code rc;

    rc = tg_secret_load(c->conf.secret_file, &secret, err);
    if (rc != TG_OK)
        return rc;
    rc = tg_keys_generate(c->conf.key_prefix, key, keylen, err);
    if (rc == TG_OK)
        rc = tg_keys_hash(&secret, key, strlen(key), hash, err);
    tg_keys_display(c->conf.key_prefix, key, display);
    tg_secret_wipe(&secret);
    return rc;
}

/* Builds the SET list or the column/value lists of the fields given. */
static int
add_fields(const struct key_args *a, struct tg_buf *cols, struct tg_buf *vals,
           const char **params, int n)
{
    size_t i;

    for (i = 0; i < NFIELDS; i++) {
        if (!a->set[i])
            continue;
        params[n++] = a->val[i];
        tg_buf_appendf(cols, ", %s", fields[i].column);
        tg_buf_puts(vals != NULL ? vals : cols, vals != NULL ? ", " : " = ");
        add_expr(vals != NULL ? vals : cols, exprs[fields[i].kind], n);
    }
    return n;
}

static int
key_create(struct cli *c, int argc, char **argv)
{
    const char *params[NFIELDS + 8];
    char key[TG_KEY_MAX_LEN + 1], hash[TG_KEY_HASH_LEN + 1];
    char display[TG_KEY_DISPLAY_LEN + 1];
    struct tg_buf cols, vals, stmt;
    struct tg_err err = {0};
    struct key_args a;
    char *detail = NULL;
    enum tg_code rc;
    int n;

    tg_buf_init(&cols, SQL_MAX);
    tg_buf_init(&vals, SQL_MAX);
    tg_buf_init(&stmt, SQL_MAX);
    rc = parse_args(argc, argv, true, &a, &err);
    if (rc == TG_OK)
        rc = new_key(c, key, sizeof(key), hash, display, &err);
    if (rc != TG_OK)
        goto out;
    params[0] = a.name;
    params[1] = hash;
    params[2] = display;
    n = add_fields(&a, &cols, &vals, params, 3);
    tg_buf_appendf(&stmt,
                   "INSERT INTO api_keys (name, key_hash, display_prefix%s) "
                   "VALUES ($1, $2, $3%s)",
                   tg_buf_cstr(&cols), tg_buf_cstr(&vals));
    detail = audit_detail(&a);
    rc = change(c, tg_buf_cstr(&stmt), params, n, "key.create", detail, a.name,
                &err);
    if (rc == TG_OK) {
        printf("created key '%s'. It is shown this once: store it now.\n",
               a.name);
        printf("%s\n", key);
        fflush(stdout);
    }
out:
    explicit_bzero(key, sizeof(key));
    free(detail);
    tg_buf_free(&cols);
    tg_buf_free(&vals);
    tg_buf_free(&stmt);
    return rc == TG_OK ? CLI_EXIT_OK : cli_fail(rc, &err);
}

static int
key_update(struct cli *c, int argc, char **argv)
{
    const char *params[NFIELDS + 8];
    struct tg_buf set, stmt;
    struct tg_err err = {0};
    struct key_args a;
    char *detail = NULL;
    enum tg_code rc;
    int n;

    tg_buf_init(&set, SQL_MAX);
    tg_buf_init(&stmt, SQL_MAX);
    rc = parse_args(argc, argv, false, &a, &err);
    if (rc != TG_OK)
        goto out;
    params[0] = a.name;
    n = add_fields(&a, &set, NULL, params, 1);
    if (n == 1) {
        rc = tg_err_set(&err, TG_E_USAGE,
                        "update: nothing to change (see tollgate --help)");
        goto out;
    }
    tg_buf_appendf(&stmt,
                   "UPDATE api_keys SET updated_at = now()%s WHERE name = $1",
                   tg_buf_cstr(&set));
    detail = audit_detail(&a);
    rc = change(c, tg_buf_cstr(&stmt), params, n, "key.update", detail, a.name,
                &err);
    if (rc == TG_OK)
        printf("updated key '%s'\n", a.name);
out:
    free(detail);
    tg_buf_free(&set);
    tg_buf_free(&stmt);
    return rc == TG_OK ? CLI_EXIT_OK : cli_fail(rc, &err);
}

/* The commands that are one fixed statement on a named key. */
static const struct simple {
    const char *sub, *sql, *action, *done;
    bool force; /* $2 is --force */
} simples[] = {
    {"disable",
     "UPDATE api_keys SET disabled_at = COALESCE(disabled_at, now()), "
     "updated_at = now() WHERE name = $1",
     "key.disable", "disabled", false},
    {"enable",
     "UPDATE api_keys SET disabled_at = NULL, updated_at = now() WHERE name = "
     "$1",
     "key.enable", "enabled", false},
    {"delete",
     "DELETE FROM api_keys WHERE name = $1 AND ($2::bool OR NOT EXISTS "
     "(SELECT 1 FROM reservations r WHERE r.key_id = api_keys.id AND "
     "r.settled_at IS NULL))",
     "key.delete", "deleted", true},
};

/* Why a delete matched nothing: no such key, or requests in flight. */
static void
explain_delete(struct cli *c, const char **params, struct tg_err *err)
{
    PGresult *res = tg_db_exec(
        c->db, PGRES_TUPLES_OK,
        "SELECT count(r.id) FROM api_keys k LEFT JOIN reservations r ON "
        "r.key_id = k.id AND r.settled_at IS NULL WHERE k.name = $1",
        1, params, err);

    if (res != NULL && PQntuples(res) == 1) {
        tg_err_clear(err);
        tg_err_set(err, TG_E_CONFLICT,
                   "key '%s' has %s unsettled reservation(s) (requests in "
                   "flight); retry later or use --force",
                   params[0], PQgetvalue(res, 0, 0));
    }
    PQclear(res);
}

static int
key_simple(struct cli *c, int argc, char **argv, const struct simple *s)
{
    const char *params[5];
    struct tg_err err = {0};
    struct key_args a;
    enum tg_code rc;

    rc = parse_args(argc, argv, false, &a, &err);
    if (rc != TG_OK)
        return cli_fail(rc, &err);
    params[0] = a.name;
    params[1] = a.force ? "true" : "false";
    rc = change(c, s->sql, params, s->force ? 2 : 1, s->action, NULL, a.name,
                &err);
    if (rc == TG_E_NOT_FOUND && s->force)
        explain_delete(c, params, &err);
    if (rc != TG_OK)
        return cli_fail(err.code, &err);
    printf("%s key '%s'\n", s->done, a.name);
    return CLI_EXIT_OK;
}

static int
key_rotate(struct cli *c, int argc, char **argv)
{
    const char *params[6];
    char key[TG_KEY_MAX_LEN + 1], hash[TG_KEY_HASH_LEN + 1];
    char display[TG_KEY_DISPLAY_LEN + 1];
    struct tg_err err = {0};
    struct key_args a;
    enum tg_code rc;

    rc = parse_args(argc, argv, false, &a, &err);
    if (rc == TG_OK)
        rc = new_key(c, key, sizeof(key), hash, display, &err);
    if (rc != TG_OK)
        return cli_fail(rc, &err);
    params[0] = a.name;
    params[1] = hash;
    params[2] = display;
    rc = change(c,
                "UPDATE api_keys SET key_hash = $2, display_prefix = $3, "
                "rotated_at = now(), updated_at = now() WHERE name = $1",
                params, 3, "key.rotate", NULL, a.name, &err);
    if (rc == TG_OK) {
        printf("rotated key '%s': the old key no longer works. The new one "
               "is shown this once:\n%s\n",
               a.name, key);
        fflush(stdout);
    }
    explicit_bzero(key, sizeof(key));
    return rc == TG_OK ? CLI_EXIT_OK : cli_fail(rc, &err);
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
    params[1] = a.name;
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
        rc = tg_err_set(&err, TG_E_NOT_FOUND, "no key named '%s'", a.name);
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
    if (strcmp(sub, "create") == 0)
        return key_create(c, argc, argv);
    if (strcmp(sub, "list") == 0)
        return key_report(c, argc, argv, false);
    if (strcmp(sub, "show") == 0)
        return key_report(c, argc, argv, true);
    if (strcmp(sub, "update") == 0)
        return key_update(c, argc, argv);
    if (strcmp(sub, "rotate") == 0)
        return key_rotate(c, argc, argv);
    for (i = 0; i < sizeof(simples) / sizeof(simples[0]); i++)
        if (strcmp(sub, simples[i].sub) == 0)
            return key_simple(c, argc, argv, &simples[i]);
    fprintf(stderr, "tollgate: key: unknown subcommand '%s'\n", sub);
    cli_usage(stderr, "key");
    return CLI_EXIT_USAGE;
}
