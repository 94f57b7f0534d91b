/* Authorizing one request: find the key, check its format, then one
 * tg_reserve() call does lookup, state, scope, limits and the reservation in
 * one transaction. Fails closed: anything but a reservation is a denial. */
#include <config.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz.h"
#include "db.h"
#include "endpoint.h"
#include "jsonerr.h"
#include "keysrc.h"
#include "log.h"
#include "request.h"
#include "ticket.h"

struct req {
    struct tg_request q;
    bool authorizer; /* FastCGI AUTHORIZER role (Apache, lighttpd) */
    bool nginx;      /* behind nginx auth_request: see deny() */
    char mask[TG_KEY_MASK_MAX];
};

/* What tg_reserve() answered; strings borrowed from its PGresult. */
struct verdict {
    const char *outcome, *limit_name;
    const char *key_id, *resv_id, *tokens, *expires, *retry_after;
    const char *req_limit, *req_left, *tok_limit, *tok_left;
};

static const char *
reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

/* nginx's auth_request passes only 401 and 403 on (anything else becomes
 * its own 500) and drops the body, so behind nginx we answer 401 or 403 and
 * carry the real status and the body (one JSON line: json_dumps compact has
 * no newline) in headers, which the error_page location of
 * examples/nginx/tollgate.conf turns back into the answer the other servers
 * pass through as it is. nginx reads all headers into one buffer
 * (fastcgi_buffer_size, 4 KiB by default); ours stay under 1 KiB, as our
 * messages are bounded (msg[256] at most, the path cut at 100 bytes). */
static void
nginx_denial(struct req *r, int status, const char *body)
{
    FCGX_FPrintF(r->q.fcgi->out,
                 "Status: %d %s\r\nX-Tollgate-Status: %d\r\n"
                 "X-Tollgate-Body: %s\r\n",
                 status == 401 ? 401 : 403, reason(status == 401 ? 401 : 403),
                 status, body);
}

/* `Status:` comes first: lighttpd drops headers printed before it. */
static void
deny(struct req *r, int status, const char *type, const char *code,
     const char *msg, const struct verdict *v)
{
    FCGX_Stream *out = r->q.fcgi->out;
    char *body = tg_jsonerr_body(r->q.ep.family, status, type, code, msg);

    if (r->nginx)
        nginx_denial(r, status, body != NULL ? body : "{\"error\":\"error\"}");
    else
        FCGX_FPrintF(out, "Status: %d %s\r\n", status, reason(status));
    FCGX_PutS("Content-Type: application/json\r\n", out);
    if (status == 401)
        FCGX_PutS("WWW-Authenticate: Bearer\r\n", out);
    if (v != NULL && v->retry_after != NULL)
        FCGX_FPrintF(out, "Retry-After: %s\r\n", v->retry_after);
    if (v != NULL && v->req_limit != NULL)
        FCGX_FPrintF(out,
                     "x-ratelimit-limit-requests: %s\r\n"
                     "x-ratelimit-remaining-requests: %s\r\n",
                     v->req_limit, v->req_left);
    if (v != NULL && v->tok_limit != NULL)
        FCGX_FPrintF(out,
                     "x-ratelimit-limit-tokens: %s\r\n"
                     "x-ratelimit-remaining-tokens: %s\r\n",
                     v->tok_limit, v->tok_left);
    if (status == 503)
        FCGX_PutS("Retry-After: 5\r\n", out);
    FCGX_FPrintF(out, "\r\n%s", body != NULL ? body : "{\"error\":\"error\"}");
    free(body);
    tg_log(TG_LOG_INFO, r->q.rid, "key=%s %s %s status=%d code=%s ms=%ld",
           r->mask, r->q.method, r->q.path, status, code, tg_request_ms(&r->q));
}

static void
allow(struct authz *az, struct req *r, const struct verdict *v)
{
    struct tg_ticket t = {0};
    char ticket[TG_TICKET_MAX];
    struct tg_err err = {0};

    t.reservation_id = strtoll(v->resv_id, NULL, 10);
    t.key_id = strtoll(v->key_id, NULL, 10);
    t.tokens = strtoll(v->tokens, NULL, 10);
    t.expires = strtoll(v->expires, NULL, 10);
    if (tg_ticket_sign(&az->secret, &t, ticket, sizeof(ticket), &err) !=
        TG_OK) {
        tg_log(TG_LOG_ERROR, r->q.rid, "%s", err.msg);
        deny(r, 500, NULL, "internal_error", "Internal error.", NULL);
        return;
    }
    /* Apache passes every non-Variable- header of a 200 on to the client:
     * the ticket header is only for servers that run us as a responder. */
    FCGX_FPrintF(r->q.fcgi->out,
                 "Status: 200 OK\r\nVariable-TOLLGATE_TICKET: %s\r\n"
                 "Variable-TOLLGATE_KEY_ID: %s\r\n",
                 ticket, v->key_id);
    if (!r->authorizer)
        FCGX_FPrintF(r->q.fcgi->out,
                     "X-Tollgate-Ticket: %s\r\nContent-Type: text/plain\r\n",
                     ticket);
    FCGX_PutS("\r\n", r->q.fcgi->out);
    tg_log(TG_LOG_INFO, r->q.rid,
           "key=%s key_id=%s %s %s status=200 resv=%s tokens=%s ms=%ld",
           r->mask, v->key_id, r->q.method, r->q.path, v->resv_id, v->tokens,
           tg_request_ms(&r->q));
}

static void
limit_denial(struct req *r, const struct verdict *v)
{
    char msg[256];
    bool tokens = strncmp(v->limit_name, "tokens", 6) == 0;
    long long secs = strtoll(v->retry_after, NULL, 10);
    time_t at = time(NULL) + (time_t)secs;
    struct tm tm;
    char when[32];

    gmtime_r(&at, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(msg, sizeof(msg),
             "Rate limit reached for this key: %s (limit %s). It resets in "
             "%lld s, at %s.",
             v->limit_name,
             tokens ? (v->tok_limit ? v->tok_limit : "?")
                    : (v->req_limit ? v->req_limit : "?"),
             secs, when);
    deny(r, 429, tokens ? "tokens" : "requests", "rate_limit_exceeded", msg, v);
}

static void
decide(struct authz *az, struct req *r, const struct verdict *v)
{
    char msg[200];

    if (strcmp(v->outcome, "ok") == 0)
        allow(az, r, v);
    else if (strcmp(v->outcome, "unknown") == 0)
        deny(r, 401, NULL, "invalid_api_key", "Invalid API key.", NULL);
    else if (strcmp(v->outcome, "disabled") == 0)
        deny(r, 403, NULL, "key_disabled", "This API key is disabled.", NULL);
    else if (strcmp(v->outcome, "expired") == 0)
        deny(r, 403, NULL, "key_expired", "This API key has expired.", NULL);
    else if (strcmp(v->outcome, "not_yet_valid") == 0)
        deny(r, 403, NULL, "key_not_yet_valid",
             "This API key is not valid yet.", NULL);
    else if (strcmp(v->outcome, "scope") == 0) {
        snprintf(msg, sizeof(msg),
                 "This API key may not call %.100s: it needs the admin "
                 "scope.",
                 r->q.path);
        deny(r, 403, NULL, "insufficient_scope", msg, NULL);
    } else if (strcmp(v->outcome, "limit") == 0)
        limit_denial(r, v);
    else
        deny(r, 500, NULL, "internal_error", "Internal error.", NULL);
}

/* Model management is for admin keys; so are paths tollgate does not know
 * (they could run inference unmetered) unless passthrough_unknown says. */
static bool
need_admin(const struct authz *az, const struct tg_endpoint *ep)
{
    return ep->kind == TG_EP_ADMIN ||
           (ep->kind == TG_EP_UNKNOWN &&
            strcmp(az->conf.passthrough_unknown, "yes") != 0);
}

#define RESERVE_SQL(fn)                                                        \
    "SELECT outcome, key_id, reservation_id, tokens, expires_at, "             \
    "limit_name, retry_after, req_limit, req_remaining, tok_limit, "           \
    "tok_remaining FROM " fn "($1, $2, $3::bigint, $4::int, $5, $6::bool, "    \
    "$7::bool)"

static const char *
col(PGresult *res, int i)
{
    return PQgetisnull(res, 0, i) ? NULL : PQgetvalue(res, 0, i);
}

/* A legacy key (imported, no checksum) goes through tg_reserve_legacy,
 * which matches only keys marked legacy. */
static void
reserve(struct authz *az, struct req *r, const char *hash, bool legacy)
{
    char want[24], ttl[24];
    const char *params[7] = {hash,
                             az->conf.time_zone,
                             want,
                             ttl,
                             r->q.ep.name,
                             tg_endpoint_metered(&r->q.ep) ? "t" : "f",
                             need_admin(az, &r->q.ep) ? "t" : "f"};
    struct tg_err err = {0};
    struct tg_db *db;
    struct verdict v;
    PGresult *res;

    snprintf(want, sizeof(want), "%" PRId64, az->conf.reservation_tokens);
    snprintf(ttl, sizeof(ttl), "%" PRId64, az->conf.reservation_ttl);
    db = tg_db_pool_get(az->pool, (int)az->conf.db_pool_wait, &err);
    res = db != NULL ? tg_db_exec(db, PGRES_TUPLES_OK,
                                  legacy ? RESERVE_SQL("tg_reserve_legacy")
                                         : RESERVE_SQL("tg_reserve"),
                                  7, params, &err)
                     : NULL;
    tg_db_pool_put(az->pool, db);
    if (res == NULL || PQntuples(res) != 1) {
        tg_log(TG_LOG_ERROR, r->q.rid, "reserve failed: %s (%s)", err.msg,
               err.sqlstate);
        if (err.code == TG_E_DB_DOWN || err.code == TG_E_TIMEOUT)
            deny(r, 503, NULL, "service_unavailable",
                 "Service temporarily unavailable: the quota database "
                 "cannot be reached. Try again shortly.",
                 NULL);
        else
            deny(r, 500, NULL, "internal_error", "Internal error.", NULL);
        PQclear(res);
        return;
    }
    v = (struct verdict){col(res, 0), col(res, 5), col(res, 1), col(res, 2),
                         col(res, 3), col(res, 4), col(res, 6), col(res, 7),
                         col(res, 8), col(res, 9), col(res, 10)};
    decide(az, r, &v);
    PQclear(res);
}

/* Caddy and nginx call us as a responder on a sub-request. Both give the
 * original URI as REQUEST_URI, which is what we trust: the X-Forwarded-Uri
 * and X-Original-URI headers are read only when it is missing, since a
 * client can send them too (nginx passes them on; Caddy's FastCGI transport
 * lets a client's X_Forwarded_Uri collide with its own). Caddy rewrites the
 * method to GET and passes the original in X-Forwarded-Method; the method
 * is only logged, never decides anything. TOLLGATE_NGINX is a parameter
 * only the nginx example sets (a client header always becomes HTTP_*). */
static void
read_request(struct req *r, FCGX_Request *fcgi)
{
    const char *role = FCGX_GetParam("FCGI_ROLE", fcgi->envp);
    const char *ngx = FCGX_GetParam("TOLLGATE_NGINX", fcgi->envp);
    const char *method = NULL, *uri = NULL;

    r->authorizer = role != NULL && strcmp(role, "AUTHORIZER") == 0;
    r->nginx = !r->authorizer && ngx != NULL && strcmp(ngx, "1") == 0;
    if (!r->authorizer && !r->nginx) {
        method = FCGX_GetParam("HTTP_X_FORWARDED_METHOD", fcgi->envp);
        if (FCGX_GetParam("REQUEST_URI", fcgi->envp) == NULL) {
            uri = FCGX_GetParam("HTTP_X_FORWARDED_URI", fcgi->envp);
            if (uri == NULL)
                uri = FCGX_GetParam("HTTP_X_ORIGINAL_URI", fcgi->envp);
        }
    }
    tg_request_begin(&r->q, fcgi, method, uri);
}

void
authz_handle(void *app, void *worker, FCGX_Request *fcgi)
{
    (void)worker;
    struct authz *az = app;
    char hash[TG_KEY_HASH_LEN + 1];
    struct tg_err err = {0};
    struct authz_key key;
    struct req r;
    bool ours;

    read_request(&r, fcgi);
    authz_key_find(tg_request_param(&r.q, "HTTP_AUTHORIZATION"),
                   tg_request_param(&r.q, "HTTP_X_API_KEY"), r.q.query, &key);
    tg_keys_mask(az->conf.key_prefix, key.key, key.len, r.mask, sizeof(r.mask));
    if (key.src == AUTHZ_KEY_NONE) {
        deny(&r, 401, NULL, "missing_api_key",
             "No API key provided. Send it as 'Authorization: Bearer <key>'.",
             NULL);
    } else if (!(ours = tg_keys_parse(az->conf.key_prefix, key.key, key.len)) &&
               !tg_keys_legacy_ok(az->conf.key_prefix, key.key, key.len)) {
        deny(&r, 401, NULL, "invalid_api_key",
             "Malformed API key: check it for a typo.", NULL);
    } else if (tg_keys_hash(&az->secret, key.key, key.len, hash, &err) !=
               TG_OK) {
        deny(&r, 500, NULL, "internal_error", "Internal error.", NULL);
    } else {
        reserve(az, &r, hash, !ours);
    }
    explicit_bzero(&key, sizeof(key));
}
