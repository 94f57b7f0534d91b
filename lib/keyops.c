/* Key changes, one statement each with its audit row (see keyops.h). The
 * CLI and the admin CGI both call these, so a key made in one is exactly
 * like a key made in the other. */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "conf.h"
#include "keyops.h"
#include "secret.h"

#define SQL_MAX 8192

const struct tg_keyops_field tg_keyops_fields[TG_KEYOPS_NFIELDS] = {
    {"tokens-day", "tokens_day_limit", TG_KF_COUNT},
    {"tokens-month", "tokens_month_limit", TG_KF_COUNT},
    {"requests-day", "requests_day_limit", TG_KF_COUNT},
    {"requests-month", "requests_month_limit", TG_KF_COUNT},
    {"rpm", "rpm_limit", TG_KF_COUNT},
    {"reservation", "reservation_tokens", TG_KF_COUNT},
    {"expires", "expires_at", TG_KF_TIME},
    {"not-before", "not_before", TG_KF_TIME},
    {"models", "allowed_models", TG_KF_LIST},
    {"force-model", "force_model", TG_KF_TEXT},
    {"scope", "scope", TG_KF_SCOPE},
    {"max-output", "max_output_tokens", TG_KF_COUNT},
    {"capture-bodies", "capture_bodies", TG_KF_BOOL},
};

/* `?` is the text parameter, cast to the column's type; a NULL parameter
 * yields SQL NULL through every one. */
static const char *const exprs[] = {
    [TG_KF_COUNT] = "?::bigint",
    [TG_KF_TIME] = "(CASE WHEN left(?::text, 1) = '+' THEN now() + "
                   "substr(?::text, 2)::interval ELSE ?::timestamptz END)",
    [TG_KF_LIST] = "string_to_array(?::text, ',')",
    [TG_KF_TEXT] = "?::text",
    [TG_KF_SCOPE] = "?::text",
    [TG_KF_BOOL] = "?::boolean",
};

static const struct simple {
    const char *sql, *action, *done;
} simples[] = {
    [TG_KEYOPS_DISABLE] = {"UPDATE api_keys SET disabled_at = "
                           "COALESCE(disabled_at, now()), updated_at = now() "
                           "WHERE name = $1",
                           "key.disable", "disabled"},
    [TG_KEYOPS_ENABLE] = {"UPDATE api_keys SET disabled_at = NULL, "
                          "updated_at = now() WHERE name = $1",
                          "key.enable", "enabled"},
    [TG_KEYOPS_DELETE] = {"DELETE FROM api_keys WHERE name = $1 AND ($2::bool "
                          "OR NOT EXISTS (SELECT 1 FROM reservations r WHERE "
                          "r.key_id = api_keys.id AND r.settled_at IS NULL))",
                          "key.delete", "deleted"},
};

bool
tg_keyops_is_none(const char *v)
{
    return strcmp(v, "none") == 0 || strcmp(v, "unlimited") == 0 ||
           strcmp(v, "never") == 0;
}

enum tg_code
tg_keyops_check(size_t i, const char *v, const char *label, struct tg_err *err)
{
    const struct tg_keyops_field *f = &tg_keyops_fields[i];
    int64_t n;

    if (f->kind == TG_KF_SCOPE && strcmp(v, "infer") != 0 &&
        strcmp(v, "admin") != 0)
        return tg_err_set(err, TG_E_USAGE, "%sscope: use infer or admin",
                          label);
    if (f->kind == TG_KF_BOOL && strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
        return tg_err_set(err, TG_E_USAGE, "%s%s: use yes or no", label,
                          f->flag);
    if (f->kind != TG_KF_SCOPE && tg_keyops_is_none(v))
        return TG_OK;
    if (f->kind == TG_KF_COUNT &&
        tg_conf_parse_int(v, 0, INT64_MAX, &n) != TG_OK)
        return tg_err_set(err, TG_E_USAGE,
                          "%s%s: want a whole number >= 0 or 'none', got "
                          "'%.32s'",
                          label, f->flag, v);
    if ((f->kind == TG_KF_LIST || f->kind == TG_KF_TEXT) &&
        (v[0] == '\0' || strstr(v, ",,") != NULL || v[0] == ','))
        return tg_err_set(err, TG_E_USAGE, "%s%s: empty model name", label,
                          f->flag);
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
audit_detail(const struct tg_keyops_change *ch)
{
    json_t *o = json_object(); /* new */
    char *s = NULL;
    size_t i;

    if (o == NULL)
        return NULL;
    for (i = 0; i < TG_KEYOPS_NFIELDS; i++)
        if (ch->set[i])
            json_object_set_new(o, tg_keyops_fields[i].column,
                                ch->val[i] ? json_string(ch->val[i])
                                           : json_null());
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

/* Runs `stmt` (which must end so that `RETURNING id, name` can follow) with
 * an audit row in the same statement. The audit row keeps the key's state
 * before the change (`before`) and what changed (`detail`). TG_E_NOT_FOUND
 * when no row matched; *id (may be NULL) gets the key's id. */
static enum tg_code
change(const struct tg_keyops_ctx *ctx, const char *stmt, const char **params,
       int n, const char *action, const char *detail, const char *name,
       long long *id, struct tg_err *err)
{
    struct tg_buf sql;
    PGresult *res = NULL;
    enum tg_code rc = TG_E_INTERNAL;

    tg_buf_init(&sql, SQL_MAX);
    tg_buf_appendf(&sql,
                   "WITH b AS (SELECT to_jsonb(x) - 'key_hash' AS j FROM "
                   "api_keys x WHERE x.name = $%d), k AS (%s RETURNING id, "
                   "name), a AS (INSERT INTO admin_audit (actor, action, "
                   "target, detail) SELECT $%d, $%d, k.name, "
                   "jsonb_build_object('change', $%d::jsonb, 'before', "
                   "(SELECT j FROM b)) FROM k) SELECT id FROM k",
                   n + 4, stmt, n + 1, n + 2, n + 3);
    params[n] = ctx->actor;
    params[n + 1] = action;
    params[n + 2] = detail;
    params[n + 3] = name;
    if (tg_buf_failed(&sql)) {
        rc = tg_err_set(err, TG_E_INTERNAL, "statement too long");
        goto out;
    }
    res = tg_db_exec(ctx->db, PGRES_TUPLES_OK, tg_buf_cstr(&sql), n + 4, params,
                     err);
    if (res == NULL) {
        rc = err->code;
        if (rc == TG_E_CONFLICT && strstr(err->msg, "api_keys_name_key")) {
            tg_err_clear(err);
            tg_err_set(err, rc, "a key named '%s' already exists", name);
        } else if (rc == TG_E_BAD_REQUEST &&
                   strstr(err->msg, "api_keys_name_check")) {
            tg_err_clear(err); /* the name itself is what is wrong */
            tg_err_set(err, rc,
                       "a key name is 1 to 100 characters, none of them "
                       "control characters");
        }
        goto out;
    }
    if (PQntuples(res) != 1) {
        rc = tg_err_set(err, TG_E_NOT_FOUND, "no key named '%s'", name);
        goto out;
    }
    if (id != NULL)
        *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    rc = TG_OK;
out:
    PQclear(res);
    tg_buf_free(&sql);
    return rc;
}

static enum tg_code
new_key(const struct tg_keyops_ctx *ctx, char *key, size_t keylen,
        char hash[TG_KEY_HASH_LEN + 1], char display[TG_KEY_DISPLAY_LEN + 1],
        struct tg_err *err)
{
    struct tg_secret secret;
    enum tg_code rc;

    rc = tg_secret_load(ctx->secret_file, &secret, err);
    if (rc != TG_OK)
        return rc;
    rc = tg_keys_generate(ctx->key_prefix, key, keylen, err);
    if (rc == TG_OK)
        rc = tg_keys_hash(&secret, key, strlen(key), hash, err);
    tg_keys_display(ctx->key_prefix, key, display);
    tg_secret_wipe(&secret);
    return rc;
}

/* Builds the SET list or the column/value lists of the fields given. */
static int
add_fields(const struct tg_keyops_change *ch, struct tg_buf *cols,
           struct tg_buf *vals, const char **params, int n)
{
    size_t i;

    for (i = 0; i < TG_KEYOPS_NFIELDS; i++) {
        if (!ch->set[i])
            continue;
        params[n++] = ch->val[i];
        tg_buf_appendf(cols, ", %s", tg_keyops_fields[i].column);
        tg_buf_puts(vals != NULL ? vals : cols, vals != NULL ? ", " : " = ");
        add_expr(vals != NULL ? vals : cols, exprs[tg_keyops_fields[i].kind],
                 n);
    }
    return n;
}

/* The INSERT behind create and import. An import picks the first free
 * name of NAME, NAME-2, NAME-3 ... and does nothing when the key is here
 * already (same hash), which change() reports as TG_E_NOT_FOUND. */
static enum tg_code
insert_key(const struct tg_keyops_ctx *ctx, const struct tg_keyops_change *ch,
           const char *hash, const char *display, bool import, long long *id,
           struct tg_err *err)
{
    const char *params[TG_KEYOPS_NFIELDS + 8];
    struct tg_buf cols, vals, stmt;
    char *detail = NULL;
    enum tg_code rc;
    int n;

    tg_buf_init(&cols, SQL_MAX);
    tg_buf_init(&vals, SQL_MAX);
    tg_buf_init(&stmt, SQL_MAX);
    params[0] = ch->name;
    params[1] = hash;
    params[2] = display;
    params[3] = import ? "true" : "false";
    n = add_fields(ch, &cols, &vals, params, 4);
    if (import)
        tg_buf_appendf(&stmt,
                       "INSERT INTO api_keys (name, key_hash, display_prefix, "
                       "legacy%s) SELECT c.n, $2, $3, $4::bool%s FROM (SELECT "
                       "$1::text AS n, 1 AS i UNION ALL SELECT $1 || '-' || "
                       "g, g FROM generate_series(2, 999) g) c WHERE NOT "
                       "EXISTS (SELECT 1 FROM api_keys x WHERE x.name = c.n) "
                       "ORDER BY c.i LIMIT 1 ON CONFLICT (key_hash) DO NOTHING",
                       tg_buf_cstr(&cols), tg_buf_cstr(&vals));
    else
        tg_buf_appendf(&stmt,
                       "INSERT INTO api_keys (name, key_hash, display_prefix, "
                       "legacy%s) VALUES ($1, $2, $3, $4::bool%s)",
                       tg_buf_cstr(&cols), tg_buf_cstr(&vals));
    detail = audit_detail(ch);
    rc =
        change(ctx, tg_buf_cstr(&stmt), params, n,
               import ? "key.import" : "key.create", detail, ch->name, id, err);
    free(detail);
    tg_buf_free(&cols);
    tg_buf_free(&vals);
    tg_buf_free(&stmt);
    return rc;
}

enum tg_code
tg_keyops_create(const struct tg_keyops_ctx *ctx,
                 const struct tg_keyops_change *ch, char *key, size_t keylen,
                 long long *id, struct tg_err *err)
{
    char hash[TG_KEY_HASH_LEN + 1], display[TG_KEY_DISPLAY_LEN + 1];
    enum tg_code rc;

    rc = new_key(ctx, key, keylen, hash, display, err);
    if (rc == TG_OK)
        rc = insert_key(ctx, ch, hash, display, false, id, err);
    if (rc != TG_OK)
        explicit_bzero(key, keylen);
    return rc;
}

enum tg_code
tg_keyops_importable(const char *prefix, const char *key, struct tg_err *err)
{
    if (tg_keys_legacy_ok(prefix, key, strlen(key)))
        return TG_OK;
    return tg_err_set(err, TG_E_BAD_REQUEST,
                      "not importable: a key must be %d to %d characters of "
                      "A-Z a-z 0-9 . _ ~ + / = - and not look like a tollgate "
                      "key",
                      TG_KEY_LEGACY_MIN, TG_KEY_LEGACY_MAX);
}

enum tg_code
tg_keyops_import(const struct tg_keyops_ctx *ctx,
                 const struct tg_keyops_change *ch, const char *key, char *name,
                 size_t namelen, struct tg_err *err)
{
    char hash[TG_KEY_HASH_LEN + 1], display[TG_KEY_DISPLAY_LEN + 1] = "";
    size_t len = strlen(key), shown = len / 4 < 4 ? len / 4 : 4;
    const char *params[1];
    struct tg_secret secret;
    PGresult *res;
    long long id = 0;
    char idtext[24];
    enum tg_code rc;

    if (tg_keyops_importable(ctx->key_prefix, key, err) != TG_OK)
        return err->code;
    memcpy(display, key, shown);
    display[shown] = '\0';
    rc = tg_secret_load(ctx->secret_file, &secret, err);
    if (rc != TG_OK)
        return rc;
    rc = tg_keys_hash(&secret, key, len, hash, err);
    tg_secret_wipe(&secret);
    if (rc == TG_OK)
        rc = insert_key(ctx, ch, hash, display, true, &id, err);
    if (rc == TG_E_NOT_FOUND) {
        tg_err_clear(err);
        return tg_err_set(err, TG_E_CONFLICT, "already imported");
    }
    if (rc != TG_OK)
        return rc;
    snprintf(idtext, sizeof(idtext), "%lld", id);
    params[0] = idtext;
    res = tg_db_exec(ctx->db, PGRES_TUPLES_OK,
                     "SELECT name FROM api_keys WHERE id = $1", 1, params, err);
    if (res == NULL)
        return err->code;
    snprintf(name, namelen, "%s",
             PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : ch->name);
    PQclear(res);
    return TG_OK;
}

enum tg_code
tg_keyops_update(const struct tg_keyops_ctx *ctx,
                 const struct tg_keyops_change *ch, struct tg_err *err)
{
    const char *params[TG_KEYOPS_NFIELDS + 8];
    struct tg_buf set, stmt;
    char *detail = NULL;
    enum tg_code rc;
    int n;

    tg_buf_init(&set, SQL_MAX);
    tg_buf_init(&stmt, SQL_MAX);
    params[0] = ch->name;
    n = add_fields(ch, &set, NULL, params, 1);
    if (n == 1) {
        rc = tg_err_set(err, TG_E_USAGE, "update: nothing to change");
        goto out;
    }
    tg_buf_appendf(&stmt,
                   "UPDATE api_keys SET updated_at = now()%s WHERE name = $1",
                   tg_buf_cstr(&set));
    detail = audit_detail(ch);
    rc = change(ctx, tg_buf_cstr(&stmt), params, n, "key.update", detail,
                ch->name, NULL, err);
out:
    free(detail);
    tg_buf_free(&set);
    tg_buf_free(&stmt);
    return rc;
}

/* Why a delete matched nothing: no such key, or requests in flight. */
static void
explain_delete(const struct tg_keyops_ctx *ctx, const char *name,
               struct tg_err *err)
{
    const char *params[1] = {name};
    PGresult *res = tg_db_exec(
        ctx->db, PGRES_TUPLES_OK,
        "SELECT count(r.id) FROM api_keys k LEFT JOIN reservations r ON "
        "r.key_id = k.id AND r.settled_at IS NULL WHERE k.name = $1",
        1, params, err);

    if (res != NULL && PQntuples(res) == 1) {
        tg_err_clear(err);
        tg_err_set(err, TG_E_CONFLICT,
                   "key '%s' has %s unsettled reservation(s) (requests in "
                   "flight); retry later or use --force",
                   name, PQgetvalue(res, 0, 0));
    }
    PQclear(res);
}

const char *
tg_keyops_done(enum tg_keyops_verb verb)
{
    return simples[verb].done;
}

enum tg_code
tg_keyops_simple(const struct tg_keyops_ctx *ctx, enum tg_keyops_verb verb,
                 const char *name, bool force, struct tg_err *err)
{
    const char *params[6];
    const struct simple *s = &simples[verb];
    bool takes_force = verb == TG_KEYOPS_DELETE;
    enum tg_code rc;

    params[0] = name;
    params[1] = force ? "true" : "false";
    rc = change(ctx, s->sql, params, takes_force ? 2 : 1, s->action, NULL, name,
                NULL, err);
    if (rc == TG_E_NOT_FOUND && takes_force)
        explain_delete(ctx, name, err);
    return rc == TG_OK ? TG_OK : err->code;
}

enum tg_code
tg_keyops_rotate(const struct tg_keyops_ctx *ctx, const char *name, char *key,
                 size_t keylen, struct tg_err *err)
{
    const char *params[8];
    char hash[TG_KEY_HASH_LEN + 1], display[TG_KEY_DISPLAY_LEN + 1];
    enum tg_code rc;

    rc = new_key(ctx, key, keylen, hash, display, err);
    if (rc != TG_OK)
        return rc;
    params[0] = name;
    params[1] = hash;
    params[2] = display;
    rc = change(ctx,
                "UPDATE api_keys SET key_hash = $2, display_prefix = $3, "
                "rotated_at = now(), updated_at = now() WHERE name = $1",
                params, 3, "key.rotate", NULL, name, NULL, err);
    if (rc != TG_OK)
        explicit_bzero(key, keylen);
    return rc;
}
