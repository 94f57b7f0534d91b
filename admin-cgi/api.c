/* The admin JSON API under /admin/api/: what the pages do, for scripts.
 * Authenticated by the session (plus X-CSRF-Token on changes) or by
 * `Authorization: Bearer <master key>`. Also Ollaguard's POST
 * /key/generate, answering {"key": "..."}. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "codec.h"
#include "keyops.h"
#include "pages.h"

/* A JSON value as a keyops text value: NULL for null, "a,b" for arrays. */
static bool
json_text(json_t *v, char *out, size_t outlen, const char **val)
{
    size_t i, off = 0;

    if (json_is_null(v)) {
        *val = NULL;
        return true;
    }
    if (json_is_integer(v))
        snprintf(out, outlen, "%lld", (long long)json_integer_value(v));
    else if (json_is_boolean(v))
        snprintf(out, outlen, "%s", json_is_true(v) ? "yes" : "no");
    else if (json_is_string(v))
        snprintf(out, outlen, "%s", json_string_value(v));
    else if (json_is_array(v)) {
        out[0] = '\0';
        for (i = 0; i < json_array_size(v); i++) {
            const char *s = json_string_value(json_array_get(v, i));

            if (s == NULL || strchr(s, ',') != NULL || off >= outlen)
                return false;
            off += (size_t)snprintf(out + off, outlen - off, "%s%s",
                                    i ? "," : "", s);
        }
        if (json_array_size(v) == 0)
            return false;
    } else
        return false;
    *val = out;
    return true;
}

static char vals[TG_KEYOPS_NFIELDS][1024];

/* Fills ch from a JSON object whose members are api_keys columns
 * ("tokens_day_limit": 1000, "allowed_models": ["a"], "expires_at": null). */
static enum tg_code
change_from_json(json_t *doc, struct tg_keyops_change *ch, struct tg_err *err)
{
    const char *k;
    json_t *v; /* borrowed */
    size_t i;

    json_object_foreach(doc, k, v)
    {
        if (strcmp(k, "name") == 0)
            continue;
        for (i = 0; i < TG_KEYOPS_NFIELDS; i++)
            if (strcmp(k, tg_keyops_fields[i].column) == 0)
                break;
        if (i == TG_KEYOPS_NFIELDS)
            return tg_err_set(err, TG_E_USAGE, "unknown field '%.64s'", k);
        if (!json_text(v, vals[i], sizeof(vals[i]), &ch->val[i]))
            return tg_err_set(err, TG_E_USAGE, "%s: wrong type", k);
        if (ch->val[i] != NULL &&
            tg_keyops_check(i, ch->val[i], "", err) != TG_OK)
            return err->code;
        if (ch->val[i] != NULL && tg_keyops_fields[i].kind != TG_KF_SCOPE &&
            tg_keyops_is_none(ch->val[i]))
            ch->val[i] = NULL;
        ch->set[i] = true;
    }
    return TG_OK;
}

static json_t *
body_json(struct admin *a)
{
    if (a->body_len == 0)
        return json_object();
    return json_loadb(a->body, a->body_len, 0, NULL);
}

static void
fail(struct admin *a, enum tg_code rc, const struct tg_err *err)
{
    int status = rc == TG_E_USAGE ? 400 : tg_code_http_status(rc);
    struct tg_err e = *err;
    char buf[128];

    e.code = rc;
    admin_json_error(a, status >= 500 && rc != TG_E_DB_DOWN ? 500 : status,
                     admin_err_client(&e, buf, sizeof(buf)));
}

static void
make_ctx(struct admin *a, struct tg_keyops_ctx *ctx)
{
    ctx->db = a->db;
    ctx->actor = a->actor;
    ctx->secret_file = a->conf.secret_file;
    ctx->key_prefix = a->conf.key_prefix;
}

static void
create(struct admin *a, const char *name_default)
{
    char key[TG_KEY_MAX_LEN + 1], name[128];
    struct tg_keyops_change ch = {0};
    struct tg_keyops_ctx ctx;
    struct tg_err err = {0};
    json_t *doc = body_json(a);
    long long id = 0;
    enum tg_code rc;

    make_ctx(a, &ctx);
    if (!json_is_object(doc)) {
        admin_json_error(a, 400, "the body must be a JSON object");
        goto out;
    }
    snprintf(name, sizeof(name), "%s",
             jstr(doc, "name") != NULL ? jstr(doc, "name")
             : name_default != NULL    ? name_default
                                       : "");
    if (name[0] == '\0') {
        admin_json_error(a, 400, "give the key a name");
        goto out;
    }
    ch.name = name;
    rc = change_from_json(doc, &ch, &err);
    if (rc == TG_OK)
        rc = tg_keyops_create(&ctx, &ch, key, sizeof(key), &id, &err);
    if (rc != TG_OK) {
        fail(a, rc, &err);
        goto out;
    }
    admin_json(a, 201,
               json_pack("{s:s,s:I,s:s}", "key", key, "id", (json_int_t)id,
                         "name", name));
    explicit_bzero(key, sizeof(key));
out:
    json_decref(doc);
}

void
admin_key_generate(struct admin *a)
{
    unsigned char r[6];
    char name[64], hex[13];

    if (strcmp(a->method, "POST") != 0) {
        admin_json_error(a, 405, "use POST");
        return;
    }
    if (RAND_bytes(r, sizeof(r)) != 1) {
        admin_json_error(a, 500, "no random numbers");
        return;
    }
    tg_hex_encode(r, sizeof(r), hex);
    snprintf(name, sizeof(name), "generated-%s", hex);
    create(a, name);
}

static void
rows_json(struct admin *a, const char *sql, int n, const char *const *params)
{
    struct tg_err err = {0};
    PGresult *res = tg_db_exec(a->db, PGRES_TUPLES_OK, sql, n, params, &err);

    if (res == NULL) {
        fail(a, err.code, &err);
        return;
    }
    admin_json(a, 200, json_loads(PQgetvalue(res, 0, 0), 0, NULL));
    PQclear(res);
}

static void
key_route(struct admin *a, const char *id, const char *rest)
{
    char key[TG_KEY_MAX_LEN + 1], name[128];
    struct tg_keyops_change ch = {0};
    struct tg_keyops_ctx ctx;
    struct tg_err err = {0};
    json_t *rep = admin_key_report(a, id, &err), *doc = NULL;
    enum tg_code rc = TG_OK;
    const char *force = admin_param(&a->query, "force");

    make_ctx(a, &ctx);
    if (rep == NULL) {
        fail(a, err.code, &err);
        return;
    }
    snprintf(name, sizeof(name), "%s", jstr(rep, "name"));
    if (rest[0] == '\0' && strcmp(a->method, "GET") == 0) {
        admin_json(a, 200, rep);
        return;
    }
    if (rest[0] == '\0' &&
        (strcmp(a->method, "PATCH") == 0 || strcmp(a->method, "POST") == 0)) {
        doc = body_json(a);
        ch.name = name;
        rc = json_is_object(doc) ? change_from_json(doc, &ch, &err)
                                 : tg_err_set(&err, TG_E_USAGE,
                                              "the body must be a JSON "
                                              "object");
        if (rc == TG_OK)
            rc = tg_keyops_update(&ctx, &ch, &err);
    } else if (rest[0] == '\0' && strcmp(a->method, "DELETE") == 0) {
        rc = tg_keyops_simple(&ctx, TG_KEYOPS_DELETE, name,
                              force != NULL && strcmp(force, "1") == 0, &err);
        if (rc == TG_OK) {
            admin_json(a, 200, json_pack("{s:b}", "deleted", 1));
            goto out;
        }
    } else if (strcmp(a->method, "POST") == 0 &&
               (strcmp(rest, "/disable") == 0 ||
                strcmp(rest, "/enable") == 0)) {
        rc = tg_keyops_simple(
            &ctx, rest[1] == 'd' ? TG_KEYOPS_DISABLE : TG_KEYOPS_ENABLE, name,
            false, &err);
    } else if (strcmp(a->method, "POST") == 0 && strcmp(rest, "/rotate") == 0) {
        rc = tg_keyops_rotate(&ctx, name, key, sizeof(key), &err);
        if (rc == TG_OK) {
            admin_json(a, 200,
                       json_pack("{s:s,s:s}", "key", key, "name", name));
            explicit_bzero(key, sizeof(key));
            goto out;
        }
    } else {
        admin_json_error(a, 404, "no such route");
        goto out;
    }
    if (rc != TG_OK) {
        fail(a, rc, &err);
        goto out;
    }
    json_decref(rep);
    rep = admin_key_report(a, id, &err);
    if (rep == NULL)
        fail(a, err.code, &err);
    else
        admin_json(a, 200, json_incref(rep));
out:
    json_decref(rep);
    json_decref(doc);
}

static void
settings_route(struct admin *a)
{
    json_t *doc;
    const char *k;
    json_t *v; /* borrowed */
    struct tg_err err = {0};

    if (strcmp(a->method, "GET") != 0) {
        doc = body_json(a);
        if (!json_is_object(doc)) {
            json_decref(doc);
            admin_json_error(a, 400, "the body must be a JSON object");
            return;
        }
        json_object_foreach(doc, k, v)
        {
            const char *params[3] = {k, json_string_value(v), a->actor};
            PGresult *res;

            if (params[1] == NULL || !admin_setting_valid(k, params[1])) {
                json_decref(doc);
                admin_json_error(a, 400,
                                 "unknown setting or invalid value (settings "
                                 "are strings)");
                return;
            }
            res = tg_db_exec(
                a->db, PGRES_TUPLES_OK,
                "WITH b AS (SELECT value FROM settings WHERE name = $1), u AS "
                "(UPDATE settings SET value = $2, updated_at = now() WHERE "
                "name = $1 AND value IS DISTINCT FROM $2 RETURNING name), a "
                "AS (INSERT INTO admin_audit (actor, action, target, detail) "
                "SELECT $3, 'setting.update', u.name, jsonb_build_object("
                "'before', (SELECT value FROM b), 'after', $2::text) FROM u) "
                "SELECT count(*) FROM u",
                3, params, &err);
            if (res == NULL) {
                json_decref(doc);
                fail(a, err.code, &err);
                return;
            }
            PQclear(res);
        }
        json_decref(doc);
    }
    rows_json(a,
              "SELECT coalesce(json_object_agg(name, value), '{}') FROM "
              "settings",
              0, NULL);
}

/* Usage per time bucket (hour or minute, in the configured zone), model
 * and key, for dashboards: $1 zone, $2 bucket, $3 minutes back. */
#define STATS_SQL                                                              \
    "SELECT json_build_object('bucket', $2::text, 'minutes', $3::int, "        \
    "'time_zone', $1::text, 'buckets', coalesce(json_agg(b ORDER BY b.ts, "    \
    "b.model, b.key), '[]')) FROM (SELECT extract(epoch FROM "                 \
    "tg_period_start($2, $1, e.at))::bigint AS ts, to_char(tg_period_start("   \
    "$2, $1, e.at) AT TIME ZONE $1, 'YYYY-MM-DD\"T\"HH24:MI') AS start, "      \
    "coalesce(e.model, '') AS model, coalesce(k.name, '(deleted)') AS key, "   \
    "count(*) AS requests, count(*) FILTER (WHERE e.status <> 'ok') AS "       \
    "errors, sum(e.prompt_tokens) AS prompt_tokens, sum(e.completion_tokens) " \
    "AS completion_tokens, sum(e.prompt_tokens + e.completion_tokens) AS "     \
    "tokens FROM usage_events e LEFT JOIN api_keys k ON k.id = e.key_id "      \
    "WHERE e.at >= tg_period_start($2, $1, now() - make_interval(mins => "     \
    "$3::int - 1)) GROUP BY 1, 2, 3, 4) b"

/* Totals of the last 24 hours, overall and per model. */
#define STATS_24H_SQL                                                          \
    "WITH e AS (SELECT * FROM usage_events WHERE at >= now() - interval "      \
    "'24 hours' AND $1 <> ''), m AS (SELECT coalesce(model, '') AS model, "    \
    "count(*) AS requests, sum(prompt_tokens + completion_tokens) AS tokens "  \
    "FROM e GROUP BY 1) SELECT json_build_object('requests', (SELECT "         \
    "count(*) FROM e), 'errors', (SELECT count(*) FROM e WHERE status <> "     \
    "'ok'), 'prompt_tokens', (SELECT coalesce(sum(prompt_tokens), 0) FROM "    \
    "e), 'completion_tokens', (SELECT coalesce(sum(completion_tokens), 0) "    \
    "FROM e), 'tokens', (SELECT coalesce(sum(prompt_tokens + "                 \
    "completion_tokens), 0) FROM e), 'keys', (SELECT count(DISTINCT key_id) "  \
    "FROM e), 'by_model', (SELECT coalesce(json_object_agg(model, "            \
    "json_build_object('requests', requests, 'tokens', tokens)), '{}') FROM "  \
    "m))"

/* /stats (hourly, ?hours=1..720, default 24), /stats/minute (the last 60
 * minutes), /stats/24h (totals). */
static void
stats_route(struct admin *a, const char *r)
{
    const char *hours = admin_param(&a->query, "hours");
    const char *params[3] = {a->conf.time_zone, "hour", NULL};
    char minutes[24];
    int64_t h = 24;

    if (strcmp(r, "/stats/24h") == 0) {
        rows_json(a, STATS_24H_SQL, 1, params);
        return;
    }
    if (strcmp(r, "/stats/minute") == 0) {
        params[1] = "minute";
        h = 1;
    } else if (strcmp(r, "/stats") != 0) {
        admin_json_error(a, 404, "no such route");
        return;
    } else if (hours != NULL && tg_conf_parse_int(hours, 1, 720, &h) != TG_OK) {
        admin_json_error(a, 400, "hours: want a whole number from 1 to 720");
        return;
    }
    snprintf(minutes, sizeof(minutes), "%lld", (long long)h * 60);
    params[2] = minutes;
    rows_json(a, STATS_SQL, 3, params);
}

void
admin_api(struct admin *a, const char *r)
{
    const char *params[3] = {a->conf.time_zone, NULL, NULL};
    const char *win = admin_param(&a->query, "window");
    char id[24], since[24];
    size_t n;

    if (strcmp(r, "/keys") == 0) {
        if (strcmp(a->method, "POST") == 0)
            create(a, NULL);
        else
            rows_json(a,
                      "SELECT coalesce(json_agg(report ORDER BY name), "
                      "'[]') FROM tg_key_report($1)",
                      1, params);
    } else if (strncmp(r, "/keys/", 6) == 0) {
        n = strspn(r + 6, "0123456789");
        if (n == 0 || n >= sizeof(id)) {
            admin_json_error(a, 404, "no such key");
            return;
        }
        memcpy(id, r + 6, n);
        id[n] = '\0';
        key_route(a, id, r + 6 + n);
    } else if (strcmp(r, "/usage") == 0) {
        snprintf(since, sizeof(since), "%lld",
                 (long long)(time(NULL) -
                             (win != NULL && !strcmp(win, "30d")  ? 30 * 86400
                              : win != NULL && !strcmp(win, "7d") ? 7 * 86400
                                                                  : 86400)));
        params[1] = since;
        rows_json(a,
                  "SELECT coalesce(json_agg(u ORDER BY u.total_tokens "
                  "DESC), '[]') FROM (SELECT e.key_id, k.name, count(*) AS "
                  "requests, sum(e.prompt_tokens) AS prompt_tokens, "
                  "sum(e.completion_tokens) AS completion_tokens, "
                  "sum(e.prompt_tokens + e.completion_tokens) AS "
                  "total_tokens FROM usage_events e LEFT JOIN api_keys k ON "
                  "k.id = e.key_id WHERE e.at >= to_timestamp($2::bigint) "
                  "AND $1 <> '' GROUP BY 1, 2) u",
                  2, params);
    } else if (strcmp(r, "/requests") == 0) {
        rows_json(a,
                  "SELECT coalesce(json_agg(e ORDER BY e.id DESC), '[]') "
                  "FROM (SELECT e.*, k.name AS key_name FROM usage_events e "
                  "LEFT JOIN api_keys k ON k.id = e.key_id WHERE $1 <> '' "
                  "ORDER BY e.id DESC LIMIT " ADMIN_STR(ADMIN_PAGE_SIZE) ") e",
                  1, params);
    } else if (strncmp(r, "/stats", 6) == 0) {
        stats_route(a, r);
    } else if (strcmp(r, "/settings") == 0) {
        settings_route(a);
    } else if (strcmp(r, "/audit") == 0) {
        rows_json(a,
                  "SELECT coalesce(json_agg(x ORDER BY x.id DESC), '[]') "
                  "FROM (SELECT * FROM admin_audit WHERE $1 <> '' ORDER BY "
                  "id DESC LIMIT " ADMIN_STR(ADMIN_PAGE_SIZE) ") x",
                  1, params);
    } else {
        admin_json_error(a, 404, "no such route");
    }
}
