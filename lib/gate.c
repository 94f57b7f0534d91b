/* The shared key check. tg_reserve()'s answer becomes a verdict here, so the
 * authorizer and the relay deny with the same status, code, message and
 * headers. */
#include <config.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gate.h"
#include "keys.h"
#include "log.h"

/* tg_reserve()'s row; strings borrowed from its PGresult. */
struct row {
    const char *outcome, *limit_name;
    const char *key_id, *resv_id, *tokens, *expires, *retry_after;
    const char *req_limit, *req_left, *tok_limit, *tok_left;
};

static void deny(struct tg_verdict *v, int status, const char *type,
                 const char *code, const char *fmt, ...) TG_PRINTF(5, 6);

static void
deny(struct tg_verdict *v, int status, const char *type, const char *code,
     const char *fmt, ...)
{
    va_list ap;

    v->status = status;
    v->type = type;
    v->code = code;
    va_start(ap, fmt);
    vsnprintf(v->msg, sizeof(v->msg), fmt, ap);
    va_end(ap);
    if (status == 401)
        snprintf(v->headers, sizeof(v->headers),
                 "WWW-Authenticate: Bearer\r\n");
    else if (status == 503)
        snprintf(v->headers, sizeof(v->headers), "Retry-After: 5\r\n");
}

void
tg_gate_no_key(struct tg_verdict *v)
{
    memset(v, 0, sizeof(*v));
    deny(v, 401, NULL, "missing_api_key", "%s",
         "No API key provided. Send it as 'Authorization: Bearer <key>'.");
}

/* Retry-After and the x-ratelimit-* figures tg_reserve() gave. */
static void
limit_headers(struct tg_verdict *v, const struct row *w)
{
    size_t n = strlen(v->headers);

    if (w->retry_after != NULL)
        n += (size_t)snprintf(v->headers + n, sizeof(v->headers) - n,
                              "Retry-After: %s\r\n", w->retry_after);
    if (w->req_limit != NULL && n < sizeof(v->headers))
        n += (size_t)snprintf(v->headers + n, sizeof(v->headers) - n,
                              "x-ratelimit-limit-requests: %s\r\n"
                              "x-ratelimit-remaining-requests: %s\r\n",
                              w->req_limit, w->req_left);
    if (w->tok_limit != NULL && n < sizeof(v->headers))
        snprintf(v->headers + n, sizeof(v->headers) - n,
                 "x-ratelimit-limit-tokens: %s\r\n"
                 "x-ratelimit-remaining-tokens: %s\r\n",
                 w->tok_limit, w->tok_left);
}

static void
limit_denial(struct tg_verdict *v, const struct row *w)
{
    bool tokens = strncmp(w->limit_name, "tokens", 6) == 0;
    long long secs = strtoll(w->retry_after, NULL, 10);
    time_t at = time(NULL) + (time_t)secs;
    struct tm tm;
    char when[32];

    gmtime_r(&at, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    deny(v, 429, tokens ? "tokens" : "requests", "rate_limit_exceeded",
         "Rate limit reached for this key: %s (limit %s). It resets in "
         "%lld s, at %s.",
         w->limit_name,
         tokens ? (w->tok_limit ? w->tok_limit : "?")
                : (w->req_limit ? w->req_limit : "?"),
         secs, when);
    limit_headers(v, w);
}

static void
decide(struct tg_verdict *v, const struct row *w, const char *path)
{
    if (strcmp(w->outcome, "ok") == 0) {
        v->status = 200;
        v->ticket.reservation_id = strtoll(w->resv_id, NULL, 10);
        v->ticket.key_id = strtoll(w->key_id, NULL, 10);
        v->ticket.tokens = strtoll(w->tokens, NULL, 10);
        v->ticket.expires = strtoll(w->expires, NULL, 10);
    } else if (strcmp(w->outcome, "unknown") == 0)
        deny(v, 401, NULL, "invalid_api_key", "%s", "Invalid API key.");
    else if (strcmp(w->outcome, "disabled") == 0)
        deny(v, 403, NULL, "key_disabled", "%s", "This API key is disabled.");
    else if (strcmp(w->outcome, "expired") == 0)
        deny(v, 403, NULL, "key_expired", "%s", "This API key has expired.");
    else if (strcmp(w->outcome, "not_yet_valid") == 0)
        deny(v, 403, NULL, "key_not_yet_valid", "%s",
             "This API key is not valid yet.");
    else if (strcmp(w->outcome, "scope") == 0)
        deny(v, 403, NULL, "insufficient_scope",
             "This API key may not call %.100s: it needs the admin scope.",
             path);
    else if (strcmp(w->outcome, "limit") == 0)
        limit_denial(v, w);
    else
        deny(v, 500, NULL, "internal_error", "%s", "Internal error.");
}

/* Model management is for admin keys; so are paths tollgate does not know
 * (they could run inference unmetered) unless passthrough_unknown says. */
static bool
need_admin(const struct tg_conf *c, const struct tg_endpoint *ep)
{
    return ep->kind == TG_EP_ADMIN ||
           (ep->kind == TG_EP_UNKNOWN &&
            strcmp(c->passthrough_unknown, "yes") != 0);
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

/* The fail-closed answer to a database call that gave no row. */
static void
db_failed(struct tg_verdict *v, const struct tg_err *err, const char *rid,
          const char *what)
{
    tg_log(TG_LOG_ERROR, rid, "%s failed: %s (%s)", what, err->msg,
           err->sqlstate);
    if (err->code == TG_E_DB_DOWN || err->code == TG_E_TIMEOUT)
        deny(v, 503, NULL, "service_unavailable", "%s",
             "Service temporarily unavailable: the quota database "
             "cannot be reached. Try again shortly.");
    else
        deny(v, 500, NULL, "internal_error", "%s", "Internal error.");
}

/* One statement on a pooled connection; NULL (err says why) or one row. */
static PGresult *
call(const struct tg_gate *g, const char *sql, int n, const char *const *params,
     struct tg_err *err)
{
    PGresult *res = tg_db_pool_query(g->pool, (int)g->conf->db_pool_wait, sql,
                                     n, params, err);

    if (res != NULL && PQntuples(res) != 1) {
        snprintf(err->msg, sizeof(err->msg), "%d rows, want 1", PQntuples(res));
        PQclear(res);
        res = NULL;
    }
    return res;
}

/* `sql` is RESERVE_SQL of tg_reserve, tg_reserve_legacy (matches only keys
 * marked legacy) or tg_reserve_trusted (`first` is then the address). */
static void
reserve(const struct tg_gate *g, const char *sql, const char *first,
        const char *rid, const char *path, const struct tg_endpoint *ep,
        struct tg_verdict *v)
{
    char want[24], ttl[24];
    const char *params[7] = {first,
                             g->conf->time_zone,
                             want,
                             ttl,
                             ep->name,
                             tg_endpoint_metered(ep) ? "t" : "f",
                             need_admin(g->conf, ep) ? "t" : "f"};
    struct tg_err err = {0};
    struct row w;
    PGresult *res;

    snprintf(want, sizeof(want), "%" PRId64, g->conf->reservation_tokens);
    /* The ticket, and the reservation until the relay claims it, live only
     * claim_ttl: past it the relay refuses the ticket, so tg_reserve can
     * reclaim the reservation as never run at once. */
    snprintf(ttl, sizeof(ttl), "%" PRId64, g->conf->claim_ttl);
    res = call(g, sql, 7, params, &err);
    if (res == NULL) {
        db_failed(v, &err, rid, "reserve");
        return;
    }
    w = (struct row){col(res, 0), col(res, 5), col(res, 1), col(res, 2),
                     col(res, 3), col(res, 4), col(res, 6), col(res, 7),
                     col(res, 8), col(res, 9), col(res, 10)};
    decide(v, &w, path);
    PQclear(res);
}

/* Format and hash: false (v says why) for a key that is neither ours nor a
 * legacy one; *legacy says which it is. */
static bool
hash_key(const struct tg_gate *g, const char *key, size_t len, char *hash,
         bool *legacy, struct tg_verdict *v)
{
    struct tg_err err = {0};

    memset(v, 0, sizeof(*v));
    *legacy = !tg_keys_parse(g->conf->key_prefix, key, len);
    if (*legacy && !tg_keys_legacy_ok(g->conf->key_prefix, key, len)) {
        deny(v, 401, NULL, "invalid_api_key", "%s",
             "Malformed API key: check it for a typo.");
        return false;
    }
    if (tg_keys_hash(g->secret, key, len, hash, &err) != TG_OK) {
        deny(v, 500, NULL, "internal_error", "%s", "Internal error.");
        return false;
    }
    return true;
}

void
tg_gate_check(const struct tg_gate *g, const char *key, size_t len,
              const char *rid, const char *path, const struct tg_endpoint *ep,
              struct tg_verdict *v)
{
    char hash[TG_KEY_HASH_LEN + 1];
    bool legacy;

    if (hash_key(g, key, len, hash, &legacy, v))
        reserve(g,
                legacy ? RESERVE_SQL("tg_reserve_legacy")
                       : RESERVE_SQL("tg_reserve"),
                hash, rid, path, ep, v);
    explicit_bzero(hash, sizeof(hash));
}

/* REMOTE_ADDR as PostgreSQL's inet takes it; a web server listening on a
 * Unix socket may give none, or a path. */
static bool
is_ip(const char *addr)
{
    unsigned char bin[sizeof(struct in6_addr)];

    return addr != NULL && (inet_pton(AF_INET, addr, bin) == 1 ||
                            inet_pton(AF_INET6, addr, bin) == 1);
}

void
tg_gate_check_trusted(const struct tg_gate *g, const char *addr,
                      const char *rid, const char *path,
                      const struct tg_endpoint *ep, struct tg_verdict *v)
{
    memset(v, 0, sizeof(*v));
    if (!is_ip(addr)) {
        tg_gate_no_key(v);
        return;
    }
    reserve(g, RESERVE_SQL("tg_reserve_trusted"), addr, rid, path, ep, v);
    /* No trust for the address is no key, and is worded so. */
    if (v->status == 401)
        tg_gate_no_key(v);
}

void
tg_gate_trust(const struct tg_gate *g, const char *key, size_t len,
              const char *addr, const char *rid, struct tg_verdict *v,
              int64_t *until)
{
    char hash[TG_KEY_HASH_LEN + 1], ttl[24];
    const char *params[4] = {hash, NULL, addr, ttl};
    struct tg_err err = {0};
    bool legacy;
    PGresult *res;

    *until = 0;
    if (!hash_key(g, key, len, hash, &legacy, v))
        goto out;
    if (!is_ip(addr)) {
        deny(v, 403, NULL, "ip_trust_unavailable", "%s",
             "IP trust needs the client's IP address, and the web server "
             "gave none.");
        goto out;
    }
    params[1] = legacy ? "t" : "f";
    snprintf(ttl, sizeof(ttl), "%" PRId64, g->conf->ip_trust_ttl);
    res = call(g,
               "SELECT outcome, trusted_until FROM tg_ip_trust($1, "
               "$2::bool, $3::inet, $4::int)",
               4, params, &err);
    if (res == NULL)
        db_failed(v, &err, rid, "ip trust");
    else if (strcmp(PQgetvalue(res, 0, 0), "ok") == 0) {
        v->status = 200;
        *until = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    } else {
        struct row w = {.outcome = PQgetvalue(res, 0, 0)};

        decide(v, &w, "/auth");
    }
    PQclear(res);
out:
    explicit_bzero(hash, sizeof(hash));
}
