/* Tickets: what the authorizer hands the relay through the web server.
 * `<reservation>.<key>.<tokens>.<expiry>.<mac>`: four decimal fields, then
 * base64url(HMAC-SHA-256(secret, "tg2." + the fields +
 * SHA-256(method + NUL + normalised path))). The fields are not secret;
 * the MAC makes them unforgeable and binds the ticket to the one request
 * it was issued for (it does not carry the request: the relay has it), so
 * a ticket for GET /api/tags buys nothing on DELETE /api/delete. */
#ifndef TG_TICKET_H
#define TG_TICKET_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "secret.h"

#define TG_TICKET_MAX 160 /* 4 x 20 digits, 4 dots, 43 MAC chars, NUL */

struct tg_ticket {
    int64_t reservation_id;
    int64_t key_id;
    int64_t tokens;
    int64_t expires; /* Unix seconds */
};

/* Writes the ticket for a `method` request to `path` (lib/path.h's
 * normalised form), signed, into out (TG_TICKET_MAX bytes). */
enum tg_code tg_ticket_sign(const struct tg_secret *secret,
                            const struct tg_ticket *t, const char *method,
                            const char *path, char *out, size_t outlen,
                            struct tg_err *err) TG_MUSTCHECK;

/* TG_OK and *t filled only if `s` is a well-formed ticket whose MAC matches
 * (compared in constant time) for this `method` and `path`, and whose
 * expiry is after `now`. Any other input, whatever its length or bytes, is
 * TG_E_FORBIDDEN. */
enum tg_code tg_ticket_verify(const struct tg_secret *secret, const char *s,
                              const char *method, const char *path, int64_t now,
                              struct tg_ticket *t,
                              struct tg_err *err) TG_MUSTCHECK;

#endif
