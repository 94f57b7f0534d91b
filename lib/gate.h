/* The key check both FastCGI programs make: the authorizer for a key in a
 * header or the query, the relay for one in the JSON body. Format, hash,
 * then one tg_reserve() call (lookup, state, scope, limits and the
 * reservation in one transaction). Fails closed: anything but a
 * reservation is a denial, worded the same whichever program made it. */
#ifndef TG_GATE_H
#define TG_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "db.h"
#include "endpoint.h"
#include "secret.h"
#include "ticket.h"

struct tg_gate {
    const struct tg_conf *conf;
    const struct tg_secret *secret;
    struct tg_db_pool *pool;
};

struct tg_verdict {
    int status;       /* 200: reserved; else the denial's HTTP status */
    const char *type; /* the OpenAI error type; NULL: from the status */
    const char *code; /* the error code, e.g. invalid_api_key */
    char msg[256];
    /* Header lines (each ending CRLF) the denial carries: WWW-Authenticate,
     * Retry-After, x-ratelimit-*. */
    char headers[512];
    struct tg_ticket ticket; /* on 200: what to sign or claim */
};

/* The denial for a request that carries no key. */
void tg_gate_no_key(struct tg_verdict *v);

/* Checks `key` (len bytes, not NUL-terminated) for a request to `ep`
 * (`path` for messages); `rid` names the request in the log. */
void tg_gate_check(const struct tg_gate *g, const char *key, size_t len,
                   const char *rid, const char *path,
                   const struct tg_endpoint *ep, struct tg_verdict *v);

/* A request with no key from `addr` (REMOTE_ADDR), under ip_trust_ttl:
 * reserved for the key POST /auth trusted the address for, if that trust
 * has not run out; else the no-key denial. */
void tg_gate_check_trusted(const struct tg_gate *g, const char *addr,
                           const char *rid, const char *path,
                           const struct tg_endpoint *ep, struct tg_verdict *v);

/* POST /auth: checks `key` as tg_gate_check does but reserves nothing and,
 * when the key is active, trusts `addr` for ip_trust_ttl seconds. 200 sets
 * *until (unix seconds); any other status is the denial. */
void tg_gate_trust(const struct tg_gate *g, const char *key, size_t len,
                   const char *addr, const char *rid, struct tg_verdict *v,
                   int64_t *until);

#endif
