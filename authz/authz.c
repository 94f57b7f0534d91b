/* Authorizing one request: find the key, then the shared check (lib/gate.c)
 * reserves or denies. Fails closed: anything but a reservation is a denial,
 * except the two kinds of request the relay decides itself (see
 * relay_decides). */
#include <config.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz.h"
#include "cors.h"
#include "db.h"
#include "gate.h"
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
    char cors[TG_CORS_MAX]; /* Access-Control-* lines for every answer */
};

static const char *
reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
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
 * (fastcgi_buffer_size, 4 KiB by default); ours stay under 2 KiB, as our
 * messages are bounded (msg[256] at most, the path cut at 100 bytes) and so
 * are the CORS lines. */
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
deny(struct req *r, const struct tg_verdict *v)
{
    FCGX_Stream *out = r->q.fcgi->out;
    char *body =
        tg_jsonerr_body(r->q.ep.family, v->status, v->type, v->code, v->msg);

    if (r->nginx)
        nginx_denial(r, v->status,
                     body != NULL ? body : "{\"error\":\"error\"}");
    else
        FCGX_FPrintF(out, "Status: %d %s\r\n", v->status, reason(v->status));
    FCGX_PutS("Content-Type: application/json\r\n", out);
    FCGX_PutS(v->headers, out);
    FCGX_PutS(r->cors, out);
    FCGX_FPrintF(out, "\r\n%s", body != NULL ? body : "{\"error\":\"error\"}");
    free(body);
    tg_log(TG_LOG_INFO, r->q.rid, "key=%s %s %s status=%d code=%s ms=%ld",
           r->mask, r->q.method, r->q.path, v->status, v->code,
           tg_request_ms(&r->q));
}

static void
deny_internal(struct req *r)
{
    struct tg_verdict v = {.status = 500, .code = "internal_error"};

    snprintf(v.msg, sizeof(v.msg), "Internal error.");
    deny(r, &v);
}

/* A path that does not normalise cleanly (lib/path.h). */
static void
deny_path(struct req *r)
{
    struct tg_verdict v = {.status = 400, .code = "invalid_path"};

    snprintf(v.msg, sizeof(v.msg), "%s", r->q.path_error);
    deny(r, &v);
}

/* Lets the request through to the relay with ticket `t` signed. */
static void
allow(struct authz *az, struct req *r, const struct tg_ticket *t,
      const char *why)
{
    char ticket[TG_TICKET_MAX];
    struct tg_err err = {0};

    if (tg_ticket_sign(&az->secret, t, r->q.method, r->q.path, ticket,
                       sizeof(ticket), &err) != TG_OK) {
        tg_log(TG_LOG_ERROR, r->q.rid, "%s", err.msg);
        deny_internal(r);
        return;
    }
    /* Apache passes every non-Variable- header of a 200 on to the client:
     * the ticket header is only for servers that run us as a responder. */
    FCGX_FPrintF(r->q.fcgi->out,
                 "Status: 200 OK\r\nVariable-TOLLGATE_TICKET: %s\r\n"
                 "Variable-TOLLGATE_KEY_ID: %" PRId64 "\r\n",
                 ticket, t->key_id);
    if (!r->authorizer)
        FCGX_FPrintF(r->q.fcgi->out,
                     "X-Tollgate-Ticket: %s\r\nContent-Type: text/plain\r\n",
                     ticket);
    FCGX_PutS("\r\n", r->q.fcgi->out);
    tg_log(TG_LOG_INFO, r->q.rid,
           "key=%s key_id=%" PRId64 " %s %s status=200 resv=%" PRId64
           " tokens=%" PRId64 "%s ms=%ld",
           r->mask, t->key_id, r->q.method, r->q.path, t->reservation_id,
           t->tokens, why, tg_request_ms(&r->q));
}

/* Requests the relay finishes itself, with no key checked here and no
 * database call: a browser's preflight (the relay answers it), and a POST
 * whose key is in its JSON body (the relay reads the body, checks the key
 * and reserves). Their ticket names no reservation or key (all fields 0),
 * which tells the relay so; it is signed like any other, so no client can
 * make one. */
static bool
relay_decides(const struct authz *az, const struct req *r, bool have_key)
{
    const char *origin = tg_request_param(&r->q, "HTTP_ORIGIN");

    if (tg_cors_preflight(
            r->q.method, origin,
            tg_request_param(&r->q, "HTTP_ACCESS_CONTROL_REQUEST_METHOD")))
        return tg_cors_allowed(az->conf.cors_origins, origin);
    return !have_key && strcmp(az->conf.accept_body_key, "yes") == 0 &&
           strcmp(r->q.method, "POST") == 0 && tg_endpoint_metered(&r->q.ep);
}

/* Caddy and nginx call us as a responder on a sub-request. Both give the
 * original URI as REQUEST_URI, which is what we trust: the X-Forwarded-Uri
 * and X-Original-URI headers are read only when it is missing, since a
 * client can send them too (nginx passes them on; Caddy's FastCGI transport
 * lets a client's X_Forwarded_Uri collide with its own). Caddy rewrites the
 * method to GET and passes the original in X-Forwarded-Method, which it
 * sets itself (a client's is replaced); the ticket is signed for that
 * method, which the relay then sees as REQUEST_METHOD. TOLLGATE_NGINX is a
 * parameter only the nginx example sets (a client header always becomes
 * HTTP_*). */
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
    struct tg_gate g = {&az->conf, &az->secret, az->pool};
    struct tg_ticket open = {0, 0, 0, 0};
    struct tg_verdict v;
    struct tg_key_found key;
    struct req r;

    read_request(&r, fcgi);
    tg_cors_headers(az->conf.cors_origins,
                    tg_request_param(&r.q, "HTTP_ORIGIN"), false, NULL, r.cors,
                    sizeof(r.cors));
    tg_keysrc_find(tg_request_param(&r.q, "HTTP_AUTHORIZATION"),
                   tg_request_param(&r.q, "HTTP_X_API_KEY"), r.q.query, &key);
    tg_keys_mask(az->conf.key_prefix, key.key, key.len, r.mask, sizeof(r.mask));
    if (r.q.path_error != NULL) {
        deny_path(&r); /* before any key check or reservation */
    } else if (relay_decides(az, &r, key.src != TG_KEY_FROM_NONE)) {
        open.expires = (int64_t)time(NULL) + az->conf.claim_ttl;
        allow(az, &r, &open, " relay-decides");
    } else if (key.src == TG_KEY_FROM_NONE && az->conf.ip_trust_ttl > 0) {
        /* REMOTE_ADDR is the web server's peer; X-Forwarded-For is never
         * read, as any client can send it. */
        tg_gate_check_trusted(&g, tg_request_param(&r.q, "REMOTE_ADDR"),
                              r.q.rid, r.q.path, &r.q.ep, &v);
        if (v.status == 200)
            allow(az, &r, &v.ticket, " ip-trust");
        else
            deny(&r, &v);
    } else if (key.src == TG_KEY_FROM_NONE) {
        tg_gate_no_key(&v);
        deny(&r, &v);
    } else {
        tg_gate_check(&g, key.key, key.len, r.q.rid, r.q.path, &r.q.ep, &v);
        if (v.status == 200)
            allow(az, &r, &v.ticket, "");
        else
            deny(&r, &v);
    }
    explicit_bzero(&key, sizeof(key));
}
