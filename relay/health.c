/* Health and metrics, answered by the relay itself. An upstream's state is
 * what requests saw of it; one nothing was heard from for PROBE_MS gets a
 * GET /api/version here first, so /health also notices an idle upstream
 * that went away. Probes are paced by that age, so anonymous callers cannot
 * turn /health into a flood. */
#include <config.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "buf.h"
#include "health.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "probe.h"
#include "spool.h"
#include "upstreams.h"

#define PROBE_MS 5000

static PGresult *
query(struct relay *app, const char *sql, int n, const char *const *params,
      struct tg_err *err)
{
    return tg_db_pool_query(app->pool, (int)app->conf.db_pool_wait, sql, n,
                            params, err);
}

void
relay_health_answer(const struct tg_request *q, int status, const char *type,
                    const char *headers, const char *body)
{
    FCGX_FPrintF(q->fcgi->out,
                 "Status: %d\r\nContent-Type: %s\r\nCache-Control: "
                 "no-store\r\n%s\r\n%s",
                 status, type, headers, body);
}

static void
answer(const struct tg_request *q, int status, const char *type,
       const char *body)
{
    relay_health_answer(q, status, type, "", body);
}

static void
answer_json(const struct tg_request *q, int status, json_t *doc)
{
    char *s = json_dumps(doc, JSON_COMPACT);

    answer(q, status, "application/json", s != NULL ? s : "{}");
    free(s);
}

static void
deny(const struct tg_request *q, int status, const char *code, const char *msg)
{
    char *body = tg_jsonerr_body(TG_FAMILY_NATIVE, status, NULL, code, msg);

    answer(q, status, "application/json",
           body != NULL ? body : "{\"error\":\"denied\"}");
    free(body);
}

/* The settings table's list (and a sign of life from PostgreSQL). */
static bool
database_up(struct relay *app, struct tg_err *err)
{
    PGresult *res =
        query(app, "SELECT value FROM settings WHERE name = 'upstream_url'", 0,
              NULL, err);

    if (res == NULL)
        return false;
    relay_upstreams_refresh(app->ups,
                            PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)
                                ? PQgetvalue(res, 0, 0)
                                : NULL);
    PQclear(res);
    return true;
}

static void
probe(struct relay *app, CURL *curl, const char *url)
{
    struct tg_probe p;
    char why[300];

    tg_probe_version(curl, url, (long)app->conf.connect_timeout * 1000L, &p);
    snprintf(why, sizeof(why), "probe: %s", p.why);
    relay_upstreams_observe(app->ups, url, p.up, why);
}

/* The state of every upstream, probing the ones not heard from lately.
 * The caller free()s it; *n says how many. */
static struct relay_up_state *
upstream_states(struct relay *app, CURL *curl, int *n)
{
    struct relay_up_state *s = calloc(TG_UPSPEC_MAX, sizeof(*s));
    int i;

    *n = 0;
    if (s == NULL)
        return NULL;
    *n = relay_upstreams_state(app->ups, s, TG_UPSPEC_MAX);
    for (i = 0; i < *n; i++)
        if (relay_upstreams_stale(app->ups, s[i].spec.url, PROBE_MS))
            probe(app, curl, s[i].spec.url);
    *n = relay_upstreams_state(app->ups, s, TG_UPSPEC_MAX);
    return s;
}

/* 200 when PostgreSQL answers and an upstream is healthy, else 503. The
 * upstreams go by number: their addresses are for admins. */
static void
health(struct relay *app, CURL *curl, const struct tg_request *q)
{
    struct tg_err err = {0};
    bool db = database_up(app, &err);
    json_t *doc = json_object(), *ups = json_array();
    struct relay_up_state *s;
    int n = 0, i, healthy = 0;

    s = upstream_states(app, curl, &n);
    for (i = 0; i < n; i++) {
        healthy += s[i].healthy;
        json_array_append_new(ups,
                              json_pack("{s:i,s:s}", "upstream", i + 1, "state",
                                        s[i].healthy ? "up" : "down"));
    }
    json_object_set_new(doc, "status",
                        json_string(db && healthy > 0 ? "ok" : "unavailable"));
    json_object_set_new(doc, "database", json_string(db ? "up" : "down"));
    json_object_set_new(doc, "upstreams", ups);
    answer_json(q, db && healthy > 0 ? 200 : 503, doc);
    if (!db)
        tg_log(TG_LOG_WARN, q->rid, "health: %s", err.msg);
    json_decref(doc);
    free(s);
}

static json_t *
upstream_detail(const struct relay_up_state *s)
{
    json_t *keys = json_array();
    int k;

    for (k = 0; k < s->nkeys; k++)
        json_array_append_new(
            keys,
            json_pack("{s:s,s:s,s:f,s:I}", "key", s->keys[k].hint, "state",
                      s->keys[k].penalty_ms > 0 ? "penalty" : "ok",
                      "penalty_seconds", (double)s->keys[k].penalty_ms / 1000.0,
                      "rejections", (json_int_t)s->keys[k].rejected));
    return json_pack(
        "{s:s,s:I,s:s,s:s,s:i,s:I,s:I,s:I,s:f,s:s,s:o}", "url", s->spec.url,
        "weight", (json_int_t)s->spec.weight, "models", s->spec.models, "state",
        s->healthy ? "up" : "down", "in_flight", s->in_flight, "tokens_2h",
        (json_int_t)s->tokens_2h, "requests", (json_int_t)s->requests,
        "failures", (json_int_t)s->failures, "down_seconds",
        (double)s->down_ms / 1000.0, "last_error", s->why, "keys", keys);
}

static void
health_upstreams(struct relay *app, CURL *curl, const struct tg_request *q)
{
    struct tg_err err = {0};
    bool db = database_up(app, &err);
    json_t *doc = json_object(), *ups = json_array();
    struct relay_up_state *s;
    int n = 0, i;

    s = upstream_states(app, curl, &n);
    for (i = 0; i < n; i++)
        json_array_append_new(ups, upstream_detail(&s[i]));
    json_object_set_new(doc, "database", json_string(db ? "up" : "down"));
    json_object_set_new(doc, "upstreams", ups);
    answer_json(q, 200, doc);
    json_decref(doc);
    free(s);
}

/* 0 for an admin key in "Authorization: Bearer", else the status to deny
 * with: 401 (no or unknown key), 403 (not admin), 503 (no database). */
static int
admin_key(struct relay *app, const struct tg_request *q)
{
    const char *h = tg_request_param(q, "HTTP_AUTHORIZATION");
    char hash[TG_KEY_HASH_LEN + 1];
    const char *params[1] = {hash};
    struct tg_err err = {0};
    PGresult *res;
    int status;

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return 401;
    for (h += 7; *h == ' '; h++)
        ;
    if (!tg_keys_parse(app->conf.key_prefix, h, strlen(h)) ||
        tg_keys_hash(&app->secret, h, strlen(h), hash, &err) != TG_OK)
        return 401;
    res = query(app,
                "SELECT scope FROM api_keys WHERE key_hash = $1 AND "
                "disabled_at IS NULL AND (expires_at IS NULL OR expires_at > "
                "now()) AND (not_before IS NULL OR not_before <= now())",
                1, params, &err);
    if (res == NULL)
        return 503;
    status = PQntuples(res) != 1                           ? 401
             : strcmp(PQgetvalue(res, 0, 0), "admin") != 0 ? 403
                                                           : 0;
    PQclear(res);
    return status;
}

/* Denies with admin_key's status; true when there is none to deny. */
static bool
deny_unless_admin(const struct tg_request *q, int status)
{
    if (status == 401)
        deny(q, 401, "invalid_api_key",
             "Unauthorized: this path needs an admin key "
             "(Authorization: Bearer).");
    else if (status == 403)
        deny(q, 403, "insufficient_scope",
             "This API key may not call this path: it needs the admin scope.");
    else if (status == 503)
        deny(q, 503, "service_unavailable",
             "Service temporarily unavailable: the quota database cannot be "
             "reached.");
    return status == 0;
}

static bool
admin_or_deny(struct relay *app, const struct tg_request *q)
{
    return deny_unless_admin(q, admin_key(app, q));
}

/* REMOTE_ADDR is one of metrics_allow's comma-separated addresses. */
static bool
allowed_addr(struct relay *app, const struct tg_request *q)
{
    const char *addr = tg_request_param(q, "REMOTE_ADDR"),
               *p = app->conf.metrics_allow;
    size_t n = addr != NULL ? strlen(addr) : 0;

    while (n > 0 && *p != '\0') {
        size_t len;

        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        len = strcspn(p, ", \t");
        if (len == n && strncmp(p, addr, n) == 0)
            return true;
        p += len;
    }
    return false;
}

/* One gauge or counter per upstream, read from the state copies. */
static void
per_upstream(struct tg_buf *out, const char *name, const char *type,
             const char *help, const struct relay_up_state *s, int n,
             int64_t (*value)(const struct relay_up_state *))
{
    int i;

    relay_metrics_family(out, name, type, help);
    for (i = 0; i < n; i++)
        relay_metrics_sample(out, name, "upstream", s[i].spec.url,
                             value(&s[i]));
}

static int64_t
up_value(const struct relay_up_state *s)
{
    return s->healthy;
}

static int64_t
in_flight_value(const struct relay_up_state *s)
{
    return s->in_flight;
}

static int64_t
attempts_value(const struct relay_up_state *s)
{
    return (int64_t)s->requests;
}

static int64_t
failures_value(const struct relay_up_state *s)
{
    return (int64_t)s->failures;
}

static int64_t
boxed_value(const struct relay_up_state *s)
{
    int k, boxed = 0;

    for (k = 0; k < s->nkeys; k++)
        boxed += s->keys[k].penalty_ms > 0;
    return boxed;
}

static void
upstream_gauges(struct relay *app, CURL *curl, struct tg_buf *out)
{
    int n = 0;
    struct relay_up_state *s = upstream_states(app, curl, &n);

    per_upstream(out, "tollgate_upstream_up", "gauge",
                 "1 when the upstream is taking requests.", s, n, up_value);
    per_upstream(out, "tollgate_upstream_in_flight", "gauge",
                 "Requests this relay has running on the upstream.", s, n,
                 in_flight_value);
    per_upstream(out, "tollgate_upstream_attempts_total", "counter",
                 "Attempts on the upstream, failovers included.", s, n,
                 attempts_value);
    per_upstream(out, "tollgate_upstream_failures_total", "counter",
                 "Attempts that failed before the first byte (unreachable, "
                 "silent, 502, 503).",
                 s, n, failures_value);
    per_upstream(out, "tollgate_upstream_keys_penalized", "gauge",
                 "Upstream keys in the penalty box.", s, n, boxed_value);
    free(s);
}

static void
gauges(struct relay *app, CURL *curl, struct tg_buf *out)
{
    struct tg_err err = {0};
    PGresult *res =
        query(app, "SELECT count(*) FROM reservations WHERE settled_at IS NULL",
              0, NULL, &err);

    relay_metrics_family(out, "tollgate_database_up", "gauge",
                         "1 when PostgreSQL answered this scrape.");
    relay_metrics_sample(out, "tollgate_database_up", NULL, NULL, res != NULL);
    if (res != NULL) {
        relay_metrics_family(out, "tollgate_reservations_open", "gauge",
                             "Reservations not settled yet (in flight, or "
                             "expired and not yet reclaimed).");
        relay_metrics_sample(out, "tollgate_reservations_open", NULL, NULL,
                             strtoll(PQgetvalue(res, 0, 0), NULL, 10));
    }
    PQclear(res);
    relay_metrics_family(out, "tollgate_spool_backlog", "gauge",
                         "Settlements waiting in the spool for the database "
                         "(-1: unreadable).");
    relay_metrics_sample(out, "tollgate_spool_backlog", NULL, NULL,
                         tg_spool_backlog(app->conf.spool_dir));
    upstream_gauges(app, curl, out);
}

static void
metrics(struct relay *app, CURL *curl, const struct tg_request *q)
{
    /* An address on metrics_allow reads without a key; key names take an
     * admin key (see relay_metrics_render). */
    int status = admin_key(app, q);
    struct tg_buf out;

    if (status != 0 && !allowed_addr(app, q)) {
        deny_unless_admin(q, status);
        return;
    }
    tg_buf_init(&out, 4 * 1024 * 1024);
    relay_metrics_render(&out, status == 0);
    gauges(app, curl, &out);
    answer(q, 200, "text/plain; version=0.0.4; charset=utf-8",
           tg_buf_cstr(&out));
    tg_buf_free(&out);
}

bool
relay_health_handle(struct relay *app, CURL *curl, const struct tg_request *q)
{
    bool get = strcmp(q->method, "GET") == 0 || strcmp(q->method, "HEAD") == 0;

    if (strcmp(q->path, "/health") == 0 && get)
        health(app, curl, q);
    else if (strcmp(q->path, "/health/upstreams") == 0 && get) {
        if (admin_or_deny(app, q))
            health_upstreams(app, curl, q);
    } else if (strcmp(q->path, "/metrics") == 0 && get)
        metrics(app, curl, q);
    else if (strcmp(q->path, "/health") == 0 ||
             strcmp(q->path, "/health/upstreams") == 0 ||
             strcmp(q->path, "/metrics") == 0)
        deny(q, 405, "method_not_allowed", "Use GET.");
    else
        return false;
    return true;
}
