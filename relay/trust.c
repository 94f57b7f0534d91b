/* POST /auth: the key from Authorization: Bearer or X-API-Key, else from
 * the JSON body's "api_key" (never the query: URLs end up in logs). Errors
 * are in the OpenAI shape, as the clients that need this speak it. */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gate.h"
#include "health.h"
#include "jsonerr.h"
#include "keys.h"
#include "keysrc.h"
#include "log.h"
#include "body.h"
#include "trust.h"

/* {"api_key": "..."} needs little: a longer body is refused, not parsed. */
#define AUTH_BODY_MAX 4096

static void
answer(const struct tg_request *q, int status, const char *headers,
       const char *body)
{
    relay_health_answer(q, status, "application/json", headers, body);
}

static void
deny(const struct tg_request *q, const struct tg_verdict *v)
{
    char *body =
        tg_jsonerr_body(TG_FAMILY_OPENAI, v->status, v->type, v->code, v->msg);

    answer(q, v->status, v->headers,
           body != NULL ? body : "{\"error\":\"error\"}");
    free(body);
    tg_log(TG_LOG_INFO, q->rid, "%s %s status=%d code=%s ms=%ld", q->method,
           q->path, v->status, v->code, tg_request_ms(q));
}

static void
refuse(const struct tg_request *q, int status, const char *code,
       const char *msg)
{
    struct tg_verdict v = {.status = status, .code = code};

    snprintf(v.msg, sizeof(v.msg), "%s", msg);
    deny(q, &v);
}

/* The body, read whole into buf; false when it is longer than that (the
 * rest is read and dropped so the connection stays in step). */
static bool
read_small_body(const struct tg_request *q, char *buf, size_t max, size_t *len)
{
    char sink[1024];
    int n;

    *len = 0;
    while (*len < max &&
           (n = FCGX_GetStr(buf + *len, (int)(max - *len), q->fcgi->in)) > 0)
        *len += (size_t)n;
    if (*len < max)
        return true;
    if ((n = FCGX_GetStr(sink, sizeof(sink), q->fcgi->in)) <= 0)
        return true;
    while (FCGX_GetStr(sink, sizeof(sink), q->fcgi->in) > 0)
        ;
    return false;
}

/* A header key first, else the body's; false (answered) on a body too big. */
static bool
find_key(const struct tg_request *q, struct tg_key_found *k)
{
    char body[AUTH_BODY_MAX];
    size_t len;

    tg_keysrc_find(tg_request_param(q, "HTTP_AUTHORIZATION"),
                   tg_request_param(q, "HTTP_X_API_KEY"), NULL, k);
    if (!read_small_body(q, body, sizeof(body), &len)) {
        refuse(q, 413, "request_too_large", "Request body too large.");
        return false;
    }
    if (k->src == TG_KEY_FROM_NONE &&
        relay_body_key(body, len, k->key, sizeof(k->key), &k->len))
        k->src = TG_KEY_FROM_HEADER;
    explicit_bzero(body, sizeof(body));
    return true;
}

static void
trusted(const struct tg_request *q, const char *addr, int64_t until,
        const char *mask)
{
    json_t *doc = json_pack("{s:I,s:s}", "trusted_until", (json_int_t)until,
                            "address", addr);
    char *s = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;

    answer(q, 200, "", s != NULL ? s : "{}");
    free(s);
    json_decref(doc);
    tg_log(TG_LOG_INFO, q->rid,
           "key=%s %s %s status=200 ip-trust addr=%s until=%" PRId64 " ms=%ld",
           mask, q->method, q->path, addr, until, tg_request_ms(q));
}

static void
auth(struct relay *app, const struct tg_request *q)
{
    struct tg_gate g = {&app->conf, &app->secret, app->pool};
    const char *addr = tg_request_param(q, "REMOTE_ADDR");
    char mask[TG_KEY_MASK_MAX];
    struct tg_verdict v;
    struct tg_key_found k = {0};
    int64_t until;

    if (!find_key(q, &k))
        goto out;
    tg_keys_mask(app->conf.key_prefix, k.key, k.len, mask, sizeof(mask));
    if (k.src == TG_KEY_FROM_NONE) {
        tg_gate_no_key(&v);
        deny(q, &v);
    } else {
        tg_gate_trust(&g, k.key, k.len, addr, q->rid, &v, &until);
        if (v.status == 200)
            trusted(q, addr, until, mask);
        else
            deny(q, &v);
    }
out:
    explicit_bzero(&k, sizeof(k));
}

bool
relay_trust_handle(struct relay *app, const struct tg_request *q)
{
    if (strcmp(q->path, "/auth") != 0)
        return false;
    if (app->conf.ip_trust_ttl == 0)
        refuse(q, 404, "not_found",
               "Not found: IP trust is off (ip_trust_ttl = 0).");
    else if (strcmp(q->method, "POST") != 0)
        refuse(q, 405, "method_not_allowed", "Use POST.");
    else
        auth(app, q);
    return true;
}
