/* One relayed request, start to settlement. Every reservation that was
 * claimed is settled on every path, refunds included, so nothing stays
 * reserved; what is charged comes from the stream itself. */
#include <config.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "body.h"
#include "buf.h"
#include "cors.h"
#include "db.h"
#include "endpoint.h"
#include "gate.h"
#include "health.h"
#include "intake.h"
#include "jsonerr.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "relay.h"
#include "spool.h"
#include "trust.h"
#include "request.h"
#include "ticket.h"
#include "upstream.h"
#include "upstreams.h"

#define HEADER_MAX 8192

struct relay_worker {
    CURL *curl;
};

struct req {
    struct tg_request q;
    struct relay *app;
    struct relay_worker *w;
    struct tg_ticket ticket;
    int64_t reserved; /* tokens held by the claimed reservation */
    bool claimed;
    bool capture;    /* the key keeps its request bodies */
    bool body_keyed; /* the key came in the body (accept_body_key) */
    bool body_done;  /* read_body() read the whole body already */
    bool body_slow;  /* ... or gave up on it: stop reading (intake.h) */
    char model[128];
    struct relay_policy policy; /* from the claim */
    int64_t max_output;         /* the key's output cap, -1 for none */
    int64_t resv_default;       /* reservation_tokens: key, settings, file */
    char cors[TG_CORS_MAX];     /* Access-Control-* lines for every answer */
    char key_name[128];         /* for /metrics */
    char upstream[TG_UPSPEC_URL_MAX]; /* the one that answered, "" if none */
};

/* What settles a reservation. */
struct outcome {
    const char *status; /* ok, client_gone, upstream_error ... */
    int http;
    int64_t prompt, completion;
    int64_t ttfb_ms;
};

void *
relay_worker_new(void *app)
{
    struct relay *r = app;
    struct relay_worker *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    (void)r;
    w->curl = curl_easy_init();
    if (w->curl == NULL) {
        relay_worker_free(w);
        return NULL;
    }
    return w;
}

void
relay_worker_free(void *worker)
{
    struct relay_worker *w = worker;

    if (w == NULL)
        return;
    curl_easy_cleanup(w->curl);
    free(w);
}

/* One statement on a pooled connection, held only for that statement. */
static PGresult *
db_call(struct req *r, const char *sql, int n, const char *const *params,
        struct tg_err *err)
{
    return tg_db_pool_query(r->app->pool, (int)r->app->conf.db_pool_wait, sql,
                            n, params, err);
}

/* An error of our own, before anything else went to the client, with
 * header lines of its own in `head` (each ending CRLF; "" for none). */
static void
fail_with(struct req *r, int status, const char *type, const char *head,
          const char *code, const char *msg)
{
    char *body = tg_jsonerr_body(r->q.ep.family, status, type, code, msg);

    FCGX_FPrintF(r->q.fcgi->out,
                 "Status: %d\r\nContent-Type: application/json\r\n%s%s\r\n%s",
                 status, head, r->cors,
                 body != NULL ? body : "{\"error\":\"error\"}");
    free(body);
}

static void
fail(struct req *r, int status, const char *code, const char *msg)
{
    /* fail()'s 429 is a prompt that does not fit the token quota. */
    fail_with(r, status, status == 429 ? "tokens" : NULL, "", code, msg);
}

/* A denial of the key check the relay made itself (key in the body), as
 * the authorizer words it. */
static void
deny_key(struct req *r, const struct tg_verdict *v)
{
    char *body =
        tg_jsonerr_body(r->q.ep.family, v->status, v->type, v->code, v->msg);

    FCGX_FPrintF(r->q.fcgi->out,
                 "Status: %d\r\nContent-Type: application/json\r\n%s%s\r\n%s",
                 v->status, v->headers, r->cors,
                 body != NULL ? body : "{\"error\":\"error\"}");
    free(body);
    tg_log(TG_LOG_INFO, r->q.rid, "body key: %s %s status=%d code=%s ms=%ld",
           r->q.method, r->q.path, v->status, v->code, tg_request_ms(&r->q));
}

/* After a settle went through: the database is back, so replay what an
 * outage left in the spool. */
static void
replay_spool(struct req *r)
{
    const char *dir = r->app->conf.spool_dir;
    struct tg_err err = {0};
    struct tg_db *db;
    int done = 0, left = 0;

    if (!tg_spool_pending(dir))
        return;
    db = tg_db_pool_get(r->app->pool, (int)r->app->conf.db_pool_wait, &err);
    if (db != NULL && tg_spool_replay(dir, db, &done, &left, &err) != TG_OK)
        tg_log(TG_LOG_WARN, r->q.rid, "spool replay stopped: %s", err.msg);
    tg_db_pool_put(r->app->pool, db);
    if (done > 0)
        tg_log(TG_LOG_INFO, r->q.rid, "spool: replayed %d, %d left", done,
               left);
}

/* Settles once; if the database cannot take it now, the spool keeps it. */
static void
settle(struct req *r, const struct outcome *o)
{
    char resv[24], key[24], prompt[24], completion[24], http[16], lat[16],
        ttfb[16];
    const char *params[TG_SPOOL_FIELDS] = {resv,
                                           key,
                                           prompt,
                                           completion,
                                           r->model[0] ? r->model : NULL,
                                           r->q.ep.name,
                                           o->status,
                                           http,
                                           lat,
                                           o->ttfb_ms >= 0 ? ttfb : NULL,
                                           r->upstream[0] ? r->upstream : NULL};
    struct tg_err err = {0}, serr = {0};
    PGresult *res;

    if (!r->claimed)
        return;
    snprintf(resv, sizeof(resv), "%" PRId64, r->ticket.reservation_id);
    snprintf(key, sizeof(key), "%" PRId64, r->ticket.key_id);
    snprintf(prompt, sizeof(prompt), "%" PRId64, o->prompt);
    snprintf(completion, sizeof(completion), "%" PRId64, o->completion);
    snprintf(http, sizeof(http), "%d", o->http);
    snprintf(lat, sizeof(lat), "%ld", tg_request_ms(&r->q));
    snprintf(ttfb, sizeof(ttfb), "%" PRId64, o->ttfb_ms);
    res = db_call(r, TG_SETTLE_SQL, TG_SPOOL_FIELDS, params, &err);
    if (res != NULL)
        replay_spool(r);
    else if (tg_spool_append(r->app->conf.spool_dir, params, &serr) == TG_OK)
        tg_log(TG_LOG_WARN, r->q.rid, "settle of reservation %s spooled (%s)",
               resv, err.msg);
    else
        tg_log(TG_LOG_ERROR, r->q.rid,
               "settle of reservation %s LOST: key %s, %s+%s tokens, %s; "
               "spool: %s",
               resv, key, prompt, completion, err.msg, serr.msg);
    PQclear(res);
    tg_log(TG_LOG_INFO, r->q.rid,
           "key=%" PRId64 " %s %s status=%d outcome=%s model=%s in=%" PRId64
           " out=%" PRId64 " ms=%ld ttfb=%" PRId64,
           r->ticket.key_id, r->q.method, r->q.path, o->http, o->status,
           r->model[0] ? r->model : "-", o->prompt, o->completion,
           tg_request_ms(&r->q), o->ttfb_ms);
    relay_metrics_request(r->q.ep.name, o->http, r->ticket.key_id, r->key_name,
                          r->model, o->prompt, o->completion,
                          tg_request_ms(&r->q), o->ttfb_ms);
}

/* The refund of a refused request, which never reached the upstream. */
static void
refund(struct req *r, int status, const char *why)
{
    struct outcome o = {why, status, 0, 0, -1};

    if (r->claimed)
        settle(r, &o);
    else
        tg_log(TG_LOG_WARN, r->q.rid, "%s %s status=%d %s", r->q.method,
               r->q.path, status, why);
    if (!r->claimed)
        relay_metrics_request(r->q.ep.name, status, 0, NULL, NULL, 0, 0,
                              tg_request_ms(&r->q), -1);
}

/* Refuse and refund. */
static void
refuse(struct req *r, int status, const char *code, const char *msg,
       const char *why)
{
    fail(r, status, code, msg);
    refund(r, status, why);
}

/* The web server's authorizer refused such a path already (400); this is
 * for a request that reached the relay some other way. */
static bool
path_ok(struct req *r)
{
    if (r->q.path_error == NULL)
        return true;
    refuse(r, 400, "invalid_path", r->q.path_error, "path refused");
    return false;
}

/* The ticket is good only for the method and path it was signed for. */
static bool
verify(struct req *r)
{
    const char *t = tg_request_param(&r->q, "TOLLGATE_TICKET");
    struct tg_err err = {0};

    if (tg_ticket_verify(&r->app->secret, t, r->q.method, r->q.path,
                         (int64_t)time(NULL), &r->ticket, &err) != TG_OK) {
        refuse(r, 403, "invalid_ticket",
               "Forbidden: this request did not pass the authorizer.", err.msg);
        return false;
    }
    return true;
}

/* A number column, or `otherwise` when it is NULL. */
static int64_t
num(PGresult *res, int col, int64_t otherwise)
{
    return PQgetisnull(res, 0, col)
               ? otherwise
               : strtoll(PQgetvalue(res, 0, col), NULL, 10);
}

/* Claims the ticket's reservation; with it come the key's policy and the
 * settings staff may change at run time (sql/006_settings.sql): a
 * non-empty settings value wins over tollgate.conf, the key's own over
 * both. */
static bool
claim(struct req *r)
{
    char resv[24], key[24], ttl[24];
    const char *params[3] = {resv, key, ttl};
    struct tg_err err = {0};
    PGresult *res;

    snprintf(resv, sizeof(resv), "%" PRId64, r->ticket.reservation_id);
    snprintf(key, sizeof(key), "%" PRId64, r->ticket.key_id);
    snprintf(ttl, sizeof(ttl), "%" PRId64, r->app->conf.reservation_ttl);
    res = db_call(r, "SELECT * FROM tg_claim($1, $2, $3)", 3, params, &err);
    if (res == NULL) {
        refuse(r, 503, "service_unavailable",
               "Service temporarily unavailable: the quota database cannot "
               "be reached.",
               err.msg);
        return false;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        refuse(r, 403, "invalid_ticket",
               "Forbidden: this ticket was already used or has expired.",
               "ticket replayed or reservation gone");
        return false;
    }
    r->reserved = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    r->claimed = true;
    r->capture = strcmp(PQgetvalue(res, 0, 7), "t") == 0;
    r->max_output =
        num(res, 4,
            num(res, 5,
                r->app->conf.output_cap > 0 ? r->app->conf.output_cap : -1));
    r->resv_default = num(res, 6, r->app->conf.reservation_tokens);
    relay_policy_load(&r->policy,
                      PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1),
                      PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2),
                      PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3));
    snprintf(r->key_name, sizeof(r->key_name), "%s", PQgetvalue(res, 0, 8));
    relay_upstreams_refresh(
        r->app->ups, PQgetisnull(res, 0, 9) ? NULL : PQgetvalue(res, 0, 9));
    PQclear(res);
    return true;
}

/* Reads the whole body, chunked or not (lib/intake.c): 413 past max_body_bytes,
 * 408 when it comes too slowly, and 429 at once, before any waiting, when
 * the key (or every key in a body, together) has its body_reads_* under
 * way already: a slow client holds a thread for body_timeout at most, and
 * one key only a few. */
static struct tg_intake_limits
limits(const struct tg_conf *c)
{
    return (struct tg_intake_limits){c->body_timeout * 1000, c->body_min_rate};
}

static bool
read_body(struct req *r, struct tg_buf *body)
{
    const struct tg_conf *c = &r->app->conf;
    const struct tg_intake_limits lim = limits(c);
    int64_t who = r->ticket.reservation_id != 0 ? r->ticket.key_id : 0;
    enum tg_intake_end end;

    if (r->body_done)
        return true;
    if (!tg_intake_enter(who, who != 0 ? c->body_reads_per_key
                                       : c->body_reads_keyless)) {
        fail_with(r, 429, "requests", "Retry-After: 1\r\n",
                  "rate_limit_exceeded",
                  who != 0 ? "Too many requests with this key are sending "
                             "their bodies at once: try again in a moment."
                           : "Too many requests are sending their bodies at "
                             "once: try again in a moment.");
        refund(r, 429, "body_busy");
        r->body_slow = true;
        return false;
    }
    end = tg_intake_read(r->q.fcgi, body, &lim);
    tg_intake_leave(who);
    r->body_done = true;
    r->body_slow = end == TG_INTAKE_SLOW;
    if (end == TG_INTAKE_TOO_LARGE)
        refuse(r, 413, "request_too_large", "Request body too large.",
               "too_large");
    else if (end == TG_INTAKE_SLOW)
        refuse(r, 408, "request_timeout",
               "The request body did not arrive in time.", "body_timeout");
    else if (end == TG_INTAKE_BROKEN)
        refuse(r, 400, "invalid_request", "The request body was cut off.",
               "body_broken");
    return end == TG_INTAKE_OK;
}

static int64_t
topup(struct req *r, int64_t want)
{
    char resv[24], key[24], w[24];
    const char *params[3] = {resv, key, w};
    struct tg_err err = {0};
    PGresult *res;
    int64_t got = r->reserved;

    snprintf(resv, sizeof(resv), "%" PRId64, r->ticket.reservation_id);
    snprintf(key, sizeof(key), "%" PRId64, r->ticket.key_id);
    snprintf(w, sizeof(w), "%" PRId64, want);
    res = db_call(r, "SELECT tg_topup($1, $2, $3)", 3, params, &err);
    if (res != NULL && PQntuples(res) == 1)
        got = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    else
        tg_log(TG_LOG_WARN, r->q.rid, "top-up failed: %s", err.msg);
    PQclear(res);
    return got;
}

/* Sizes the output cap to the reservation, topping it up when the prompt
 * plus what the client asked for does not fit. false: refused already. */
static bool
fit(struct req *r, struct relay_body *b)
{
    int64_t floor = r->resv_default / 4, want, cap;
    struct tg_err err = {0};
    char msg[200];

    if (floor > 256)
        floor = 256;
    /* The key's cap acts as the client's own: the lower one counts. */
    if (r->max_output >= 0 &&
        (b->client_max < 0 || r->max_output < b->client_max))
        b->client_max = r->max_output;
    want = b->estimate + (b->client_max >= 0 ? b->client_max : floor);
    if (r->q.ep.kind == TG_EP_EMBED)
        want = b->estimate;
    if (want > r->reserved)
        r->reserved = topup(r, want);
    cap = r->reserved - b->estimate;
    if (cap < (r->q.ep.kind == TG_EP_EMBED ? 0 : 1)) {
        snprintf(msg, sizeof(msg),
                 "Rate limit reached for this key: the prompt (about %" PRId64
                 " tokens) does not fit in what remains of its token quota.",
                 b->estimate);
        refuse(r, 429, "rate_limit_exceeded", msg, "prompt_too_large");
        return false;
    }
    if (r->q.ep.kind == TG_EP_GENERATE &&
        relay_body_cap(&r->q.ep, b, cap, &err) != TG_OK) {
        refuse(r, 500, "internal_error", "Internal error.", err.msg);
        return false;
    }
    return true;
}

/* The upstream URL: base + path + the query without api_key. */
static bool
build_url(struct req *r, const char *base, struct tg_buf *url)
{
    const char *p = r->q.query, *next;
    bool first = true;

    tg_buf_puts(url, base);
    tg_buf_puts(url, r->q.path);
    for (; p != NULL && *p != '\0'; p = next) {
        size_t n = strcspn(p, "&");

        next = p[n] == '&' ? p + n + 1 : NULL;
        if (n == 0 || (n >= 8 && strncmp(p, "api_key=", 8) == 0) ||
            (n == 7 && strncmp(p, "api_key", 7) == 0))
            continue;
        tg_buf_puts(url, first ? "?" : "&");
        tg_buf_append(url, p, n);
        first = false;
    }
    return !tg_buf_failed(url);
}

/* Headers the upstream must not see: hop-by-hop ones, the client's
 * credentials, Host (Ollama refuses foreign ones), and ours. */
static bool
drop_header(const char *name)
{
    static const char *const drop[] = {"AUTHORIZATION",
                                       "X_API_KEY",
                                       "HOST",
                                       "CONNECTION",
                                       "KEEP_ALIVE",
                                       "PROXY_AUTHORIZATION",
                                       "PROXY_CONNECTION",
                                       "TE",
                                       "TRAILER",
                                       "TRANSFER_ENCODING",
                                       "UPGRADE",
                                       "CONTENT_LENGTH",
                                       "EXPECT",
                                       "COOKIE"};
    size_t i;

    /* VARIABLE_: what an authorizer's Variable- headers would look like,
     * sent by a client. */
    if (strncmp(name, "X_TOLLGATE", 10) == 0 ||
        strncmp(name, "TOLLGATE", 8) == 0 ||
        strncmp(name, "VARIABLE_", 9) == 0 ||
        strncmp(name, "X_FORWARDED", 11) == 0)
        return true;
    for (i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (strcmp(name, drop[i]) == 0)
            return true;
    return false;
}

static struct curl_slist *
append(struct curl_slist *h, const char *line, bool *ok)
{
    struct curl_slist *l = curl_slist_append(h, line);

    if (l == NULL)
        *ok = false;
    return l != NULL ? l : h;
}

/* HTTP_X_FOO_BAR=v -> "X-Foo-Bar: v". */
static struct curl_slist *
add_header(struct curl_slist *list, const char *env, bool *ok)
{
    char line[HEADER_MAX];
    const char *eq = strchr(env, '=');
    size_t i, n;

    if (eq == NULL || (size_t)(eq - env) >= sizeof(line) - 4 ||
        strlen(eq + 1) >= sizeof(line) - (size_t)(eq - env) - 3)
        return list;
    n = (size_t)(eq - env);
    for (i = 0; i < n; i++)
        line[i] = env[i] == '_' ? '-'
                  : (i == 0 || env[i - 1] == '_')
                      ? env[i]
                      : (char)tolower((unsigned char)env[i]);
    snprintf(line + n, sizeof(line) - n, ": %s", eq + 1);
    return append(list, line, ok);
}

/* The client's headers less the dropped ones. An empty "Name:" makes curl
 * send none: no Expect: 100-continue round trip, and no form content type
 * made up for a body that had none. */
static struct curl_slist *
build_headers(struct req *r, bool json_body, bool *ok)
{
    const char *ct = json_body ? "application/json"
                               : tg_request_param(&r->q, "CONTENT_TYPE");
    struct curl_slist *h = NULL;
    char line[HEADER_MAX];
    char **e;

    *ok = true;
    for (e = r->q.fcgi->envp; *e != NULL; e++) {
        char name[64];
        size_t n = strcspn(*e, "=");

        if (strncmp(*e, "HTTP_", 5) != 0 || n - 5 >= sizeof(name))
            continue;
        memcpy(name, *e + 5, n - 5);
        name[n - 5] = '\0';
        if (!drop_header(name) && strcmp(name, "CONTENT_TYPE") != 0)
            h = add_header(h, *e + 5, ok);
    }
    h = append(h, "Expect:", ok);
    if (ct != NULL && ct[0] != '\0' &&
        snprintf(line, sizeof(line), "Content-Type: %s", ct) <
            (int)sizeof(line))
        h = append(h, line, ok);
    else
        h = append(h, "Content-Type:", ok);
    return h;
}

/* What to charge, from the stream: the upstream's counts when they came;
 * without them (client gone, stream cut) the estimate plus one token per
 * content chunk relayed; nothing for the upstream's own errors. */
static void
charge(struct req *r, const struct relay_xfer *x, int64_t estimate,
       struct outcome *o)
{
    struct relay_usage u;

    relay_count_result(&x->count, &u);
    if (u.model[0] != '\0' && r->model[0] == '\0')
        snprintf(r->model, sizeof(r->model), "%s", u.model);
    o->http = (int)x->status;
    o->ttfb_ms = x->ttfb_ms;
    o->status = x->client_gone ? "client_gone" : "ok";
    if (x->status >= 400) {
        o->status = "upstream_error";
        return;
    }
    if (!tg_endpoint_metered(&r->q.ep))
        return;
    if (u.counts_seen && !x->client_gone) {
        o->prompt = u.prompt_tokens;
        o->completion = u.completion_tokens;
    } else {
        o->prompt = estimate;
        o->completion = u.content_chunks;
        if (!x->client_gone)
            o->status = u.error_seen ? "stream_error" : "truncated";
    }
    if (u.counts_seen && x->client_gone) {
        o->prompt = u.prompt_tokens;
        o->completion = u.completion_tokens;
    }
}

/* Keeps the reservation from expiring under a stream that still flows. */
static void
extend(void *arg)
{
    struct req *r = arg;
    char resv[24], key[24], ttl[24];
    const char *params[3] = {resv, key, ttl};
    struct tg_err err = {0};

    snprintf(resv, sizeof(resv), "%" PRId64, r->ticket.reservation_id);
    snprintf(key, sizeof(key), "%" PRId64, r->ticket.key_id);
    snprintf(ttl, sizeof(ttl), "%" PRId64, r->app->conf.reservation_ttl);
    PQclear(db_call(r, "SELECT tg_extend($1, $2, $3)", 3, params, &err));
}

#define LISTING_MAX (8 * 1024 * 1024)

/* A model list collected for the allow-list: filtered, then sent. false:
 * refused already. */
static bool
send_filtered(struct req *r, struct relay_xfer *x)
{
    size_t len = 0;
    char *body = NULL;

    if (tg_buf_failed(x->collect)) {
        refuse(r, 502, "bad_gateway", "The model list is too large to filter.",
               "upstream_error");
        return false;
    }
    if (x->status == 200)
        body = relay_policy_filter_list(&r->policy, r->q.path,
                                        tg_buf_cstr(x->collect),
                                        tg_buf_len(x->collect), &len);
    if (relay_upstream_reply(x, body != NULL ? body : tg_buf_cstr(x->collect),
                             body != NULL ? len : tg_buf_len(x->collect)) != 0)
        x->client_gone = true;
    free(body);
    return true;
}

#define HELD_MAX 65536

/* Settings of one attempt; what an earlier attempt left is cleared. */
static void
xfer_init(struct req *r, struct relay_xfer *x, bool strip_usage,
          struct tg_buf *collect, struct tg_buf *hold)
{
    relay_count_free(&x->count);
    memset(x, 0, sizeof(*x));
    x->fcgi = r->q.fcgi;
    x->strip_usage = strip_usage;
    x->connect_timeout = (long)r->app->conf.connect_timeout;
    x->idle_timeout = (long)r->app->conf.upstream_timeout;
    x->tick = extend;
    x->tick_arg = r;
    x->tick_every = (long)r->app->conf.reservation_ttl / 3;
    x->extra_headers = r->cors;
    x->collect = collect;
    x->hold = hold;
    if (collect != NULL)
        tg_buf_free(collect);
    if (hold != NULL)
        tg_buf_free(hold);
}

/* One attempt on the picked upstream, with its key. TG_E_TOO_LARGE when
 * the URL or headers do not fit. */
static enum tg_code
attempt(struct req *r, const struct relay_pick *pick, const char *body,
        size_t len, bool json_body, struct relay_xfer *x, struct tg_err *err)
{
    struct curl_slist *headers;
    struct tg_buf url;
    enum tg_code rc = TG_E_TOO_LARGE;
    bool ok;

    tg_buf_init(&url, 8192);
    headers = build_headers(r, json_body, &ok);
    if (pick->auth[0] != '\0')
        headers = append(headers, pick->auth, &ok);
    if (build_url(r, pick->url, &url) && ok)
        rc = relay_upstream_run(r->w->curl, r->q.method, tg_buf_cstr(&url),
                                headers, body, len, x, err);
    else
        tg_err_set(err, rc, "request URI or headers too large");
    curl_slist_free_all(headers);
    tg_buf_free(&url);
    return rc;
}

/* A stream the upstream broke after its first byte ends with an error in
 * the family's shape, so the client does not take it for a whole answer. */
static void
stream_error(struct req *r, struct relay_xfer *x)
{
    char *e = tg_jsonerr_body(r->q.ep.family, 502, NULL, "upstream_error",
                              "The model server broke off the answer.");
    struct tg_buf line;

    tg_buf_init(&line, 4096);
    if (r->q.ep.family == TG_FAMILY_OPENAI)
        tg_buf_appendf(&line, "data: %s\n\n", e != NULL ? e : "{}");
    else
        tg_buf_appendf(&line, "%s\n", e != NULL ? e : "{}");
    if (relay_emit(x->fcgi->out, tg_buf_cstr(&line), tg_buf_len(&line)) != 0)
        x->client_gone = true;
    tg_buf_free(&line);
    free(e);
}

enum tried { ANSWERED, FAILED, NONE };

/* Before a byte reached the client, an upstream that could not be reached,
 * went silent, or said 502/503 gives way to the next one; a 401/429 to one
 * of our upstream keys boxes the key and the same upstream is tried with
 * the next key. (A 401/429 to a client's own request to a keyless upstream
 * is the client's answer.) */
static enum tried
try_upstreams(struct req *r, struct relay_pick *pick, const char *body,
              size_t len, bool json_body, struct relay_xfer *x,
              struct tg_buf *held, struct tg_err *err)
{
    int64_t max = r->app->conf.upstream_tries, tries = 0;
    uint32_t skip = 0;
    enum tg_code rc;

    while (tries < max &&
           relay_upstreams_pick(r->app->ups, r->model, skip, pick)) {
        bool key_fault;

        tries++;
        xfer_init(r, x, x->strip_usage, x->collect, tries < max ? held : NULL);
        x->hold_auth = pick->key >= 0;
        tg_err_clear(err);
        rc = attempt(r, pick, body, len, json_body, x, err);
        if (rc == TG_E_TOO_LARGE || x->client_gone ||
            (!x->held && (rc == TG_OK || x->headers_sent)))
            return ANSWERED;
        key_fault = x->held && (x->status == 401 || x->status == 429);
        if (x->held)
            tg_err_set(err, TG_E_UPSTREAM, "upstream %s: HTTP %ld", pick->url,
                       x->status);
        tg_log(TG_LOG_WARN, r->q.rid, "%s%s%s; trying another", err->msg,
               pick->key_hint[0] ? " with key " : "", pick->key_hint);
        relay_upstreams_done(r->app->ups, pick,
                             key_fault ? RELAY_UP_REJECTED : RELAY_UP_FAILED,
                             x->retry_after, 0, err->msg);
        if (!key_fault || pick->key < 0)
            skip |= 1u << pick->idx;
    }
    return tries > 0 ? FAILED : NONE;
}

/* Every try failed: the last upstream's own answer when it gave one, else
 * ours. */
static void
all_failed(struct req *r, struct relay_xfer *x, struct tg_buf *held,
           const struct tg_err *err, int64_t estimate)
{
    struct outcome o = {"upstream_error", 0, 0, 0, -1};
    bool slow = err->code == TG_E_TIMEOUT;

    if (x->held) {
        if (relay_upstream_reply(x, tg_buf_cstr(held), tg_buf_len(held)) != 0)
            x->client_gone = true;
        charge(r, x, estimate, &o);
        settle(r, &o);
        return;
    }
    refuse(r, slow ? 504 : 502, slow ? "upstream_timeout" : "bad_gateway",
           slow ? "The model server did not answer in time."
                : "The model server cannot be reached.",
           slow ? "upstream_timeout" : "upstream_unreachable");
}

static void
forward(struct req *r, const char *body, size_t len, bool json_body,
        bool strip_usage, int64_t estimate)
{
    struct relay_xfer x;
    struct outcome o = {"ok", 200, 0, 0, -1};
    struct relay_pick pick;
    struct tg_err err = {0};
    struct tg_buf listing, held;
    enum tried t;

    memset(&x, 0, sizeof(x));
    tg_buf_init(&listing, LISTING_MAX);
    tg_buf_init(&held, HELD_MAX);
    x.strip_usage = strip_usage;
    if (relay_policy_filters(&r->policy, r->q.path))
        x.collect = &listing;
    t = try_upstreams(r, &pick, body, len, json_body, &x, &held, &err);
    if (t == NONE) {
        refuse(r, 503, "service_unavailable",
               "No model server is available for this request.", "no_upstream");
        goto out;
    }
    if (t == FAILED) {
        all_failed(r, &x, &held, &err, estimate);
        goto out;
    }
    if (err.code == TG_E_TOO_LARGE) {
        refuse(r, 414, "request_too_large", "Request URI or headers too large.",
               "too_large");
    } else {
        /* Only a request an upstream saw names one: tg_settle refunds the
         * request slot of one that names none. */
        snprintf(r->upstream, sizeof(r->upstream), "%s", pick.url);
        if (err.code != TG_OK)
            tg_log(TG_LOG_WARN, r->q.rid, "%s", err.msg);
        if (err.code != TG_OK && x.headers_sent && !x.client_gone &&
            x.collect == NULL)
            stream_error(r, &x);
        if (x.collect == NULL || send_filtered(r, &x)) {
            charge(r, &x, estimate, &o);
            settle(r, &o);
        }
    }
    relay_upstreams_done(r->app->ups, &pick, RELAY_UP_OK, 0,
                         o.prompt + o.completion, NULL);
out:
    tg_buf_free(&held);
    tg_buf_free(&listing);
    relay_count_free(&x.count);
}

/* A model the key may not use does not exist for it: /v1/models/{id} and
 * /api/show answer 404 as Ollama would for an unknown model. */
static bool
hidden_model(struct req *r, const char *body, size_t len)
{
    char msg[200], name[128] = "";
    json_t *doc = NULL; /* new */
    json_t *v;          /* borrowed */
    const char *m, *k;

    if (r->policy.allowed == NULL)
        return false;
    if (strncmp(r->q.path, "/v1/models/", 11) == 0) {
        snprintf(name, sizeof(name), "%s", r->q.path + 11);
    } else if (strcmp(r->q.path, "/api/show") == 0) {
        /* Ollama reads "MODEL" or "Name" too: any spelling it reads may
         * hide the answer. */
        doc = json_loadb(body, len, 0, NULL);
        json_object_foreach(doc, k, v)
        {
            m = json_string_value(v);
            if (m != NULL && name[0] == '\0' &&
                (relay_body_field_is(k, "model") ||
                 relay_body_field_is(k, "name")) &&
                !relay_policy_model_ok(&r->policy, m))
                snprintf(name, sizeof(name), "%s", m);
        }
        json_decref(doc);
    }
    if (name[0] == '\0' || relay_policy_model_ok(&r->policy, name))
        return false;
    snprintf(msg, sizeof(msg), "model '%s' not found", name);
    refuse(r, 404, "model_not_found", msg, "policy");
    return true;
}

/* Keeps the request body for the admin pages (capture_bodies); best
 * effort: a body the database refuses (not UTF-8) is only logged. */
static void
capture_body(struct req *r, const char *body)
{
    char resv[24], key[24];
    const char *params[3] = {resv, key, body};
    struct tg_err err = {0};
    PGresult *res;

    snprintf(resv, sizeof(resv), "%" PRId64, r->ticket.reservation_id);
    snprintf(key, sizeof(key), "%" PRId64, r->ticket.key_id);
    res = db_call(r,
                  "INSERT INTO request_bodies (reservation_id, key_id, body) "
                  "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1",
                  3, params, &err);
    if (res == NULL)
        tg_log(TG_LOG_WARN, r->q.rid, "body not captured: %s", err.msg);
    PQclear(res);
}

/* A browser's preflight from an allowed origin: answered here, with no
 * ticket (the authorizer let it through without a key) and no database. */
static bool
preflight(struct req *r)
{
    const char *origin = tg_request_param(&r->q, "HTTP_ORIGIN");
    char cors[TG_CORS_MAX];

    if (!tg_cors_preflight(
            r->q.method, origin,
            tg_request_param(&r->q, "HTTP_ACCESS_CONTROL_REQUEST_METHOD")) ||
        !tg_cors_allowed(r->app->conf.cors_origins, origin))
        return false;
    tg_cors_headers(
        r->app->conf.cors_origins, origin, true,
        tg_request_param(&r->q, "HTTP_ACCESS_CONTROL_REQUEST_HEADERS"), cors,
        sizeof(cors));
    FCGX_FPrintF(r->q.fcgi->out, "Status: 204\r\n%s\r\n", cors);
    tg_log(TG_LOG_INFO, r->q.rid, "preflight %s status=204", r->q.path);
    return true;
}

/* accept_body_key: the key is the body's "api_key" (the body is parsed
 * once more for it), checked and reserved as the authorizer would have. */
static bool
body_key(struct req *r, const struct tg_buf *body)
{
    struct tg_gate g = {&r->app->conf, &r->app->secret, r->app->pool};
    char key[TG_KEY_MAX_LEN + 2];
    struct tg_verdict v;
    size_t len;

    if (strcmp(r->app->conf.accept_body_key, "yes") != 0 ||
        !tg_endpoint_metered(&r->q.ep)) {
        refuse(r, 403, "invalid_ticket",
               "Forbidden: this request did not pass the authorizer.",
               "ticket without a reservation, and no body key expected");
        return false;
    }
    if (relay_body_key(tg_buf_cstr(body), tg_buf_len(body), key, sizeof(key),
                       &len))
        tg_gate_check(&g, key, len, r->q.rid, r->q.path, &r->q.ep, &v);
    else
        tg_gate_no_key(&v);
    explicit_bzero(key, sizeof(key));
    if (v.status != 200) {
        deny_key(r, &v);
        return false;
    }
    r->ticket = v.ticket;
    r->body_keyed = true;
    return true;
}

void
relay_handle(void *app, void *worker, FCGX_Request *fcgi)
{
    struct req r = {.app = app, .w = worker};
    struct relay_body b = {0};
    struct tg_err err = {0};
    struct tg_buf body;
    char *json = NULL;
    size_t len = 0;
    bool api = false; /* past /health and /auth, which read no body */

    tg_request_begin(&r.q, fcgi, NULL, NULL);
    tg_buf_init(&body, (size_t)r.app->conf.max_body_bytes);
    if (relay_health_handle(r.app, r.w->curl, &r.q) ||
        relay_trust_handle(r.app, &r.q))
        goto out;
    api = true;
    tg_cors_headers(r.app->conf.cors_origins,
                    tg_request_param(&r.q, "HTTP_ORIGIN"), false, NULL, r.cors,
                    sizeof(r.cors));
    if (!path_ok(&r) || preflight(&r) || !verify(&r))
        goto out;
    /* A ticket without a reservation: the key is in the body. */
    if (r.ticket.reservation_id == 0 &&
        (!read_body(&r, &body) || !body_key(&r, &body)))
        goto out;
    if (!claim(&r) || !read_body(&r, &body))
        goto out;
    /* A body that carried its key is kept only as forwarded, key removed. */
    if (r.capture && tg_buf_len(&body) > 0 && !r.body_keyed)
        capture_body(&r, tg_buf_cstr(&body));
    if (!tg_endpoint_metered(&r.q.ep)) {
        if (!hidden_model(&r, tg_buf_cstr(&body), tg_buf_len(&body)))
            forward(&r, tg_buf_cstr(&body), tg_buf_len(&body), false, false, 0);
        goto out;
    }
    if (relay_body_parse(&r.q.ep, tg_buf_cstr(&body), tg_buf_len(&body), &b,
                         &err) != TG_OK) {
        refuse(&r, 400, "invalid_request", err.msg, "bad_request");
        goto out;
    }
    if (relay_policy_apply(&r.policy, &b, &err) != TG_OK) {
        snprintf(r.model, sizeof(r.model), "%s", b.model);
        refuse(&r, 403, "model_not_allowed", err.msg, "policy");
        goto out;
    }
    snprintf(r.model, sizeof(r.model), "%s", b.model);
    if (!fit(&r, &b))
        goto out;
    json = relay_body_dump(&b, &len);
    if (json == NULL) {
        refuse(&r, 500, "internal_error", "Internal error.", "out of memory");
        goto out;
    }
    if (r.capture && r.body_keyed)
        capture_body(&r, json);
    forward(&r, json, len, true, b.strip_usage, b.estimate);
out:
    if (api) {
        struct tg_intake_limits lim = limits(&r.app->conf);

        tg_intake_finish(fcgi, &lim, r.body_slow);
    }
    free(json);
    relay_policy_free(&r.policy);
    relay_body_free(&b);
    tg_buf_free(&body);
}
