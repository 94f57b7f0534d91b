/* Signing and verifying tickets. Parsing is strict (digits only, no signs,
 * no leading zeros) so that one ticket has exactly one spelling: a replay
 * cannot dodge a "used" check by re-spelling a number. */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "codec.h"
#include "ticket.h"

#define MAC_LEN 32
#define MAC_B64_LEN 43
#define FIELD_MAX INT64_C(999999999999999999) /* 18 digits: number() reads */

static int
fields(const struct tg_ticket *t, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%lld.%lld.%lld.%lld",
                     (long long)t->reservation_id, (long long)t->key_id,
                     (long long)t->tokens, (long long)t->expires);

    return n < 0 || (size_t)n >= outlen ? -1 : n;
}

/* SHA-256 of method, NUL, path: the request a ticket is for, in a fixed
 * size whatever their length. Neither string can hold a NUL, so no two
 * requests share the input. */
static int
request_digest(const char *method, const char *path, unsigned char out[MAC_LEN])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(c, method, strlen(method) + 1) == 1 &&
             EVP_DigestUpdate(c, path, strlen(path)) == 1 &&
             EVP_DigestFinal_ex(c, out, &len) == 1 && len == MAC_LEN;

    EVP_MD_CTX_free(c);
    return ok ? 0 : -1;
}

/* HMAC over "tg2.", the fields and the request's digest. The tag versions
 * the format: a tg1 ticket (no request in it) never verifies. */
static int
mac(const struct tg_secret *secret, const char *f, size_t n, const char *method,
    const char *path, unsigned char out[MAC_LEN])
{
    unsigned char msg[4 + TG_TICKET_MAX + MAC_LEN];
    unsigned int len = 0;

    if (n + 4 + MAC_LEN > sizeof(msg) || method == NULL || path == NULL)
        return -1;
    memcpy(msg, "tg2.", 4);
    memcpy(msg + 4, f, n);
    if (request_digest(method, path, msg + 4 + n) != 0 ||
        HMAC(EVP_sha256(), secret->bytes, (int)secret->len, msg,
             4 + n + MAC_LEN, out, &len) == NULL ||
        len != MAC_LEN)
        return -1;
    return 0;
}

enum tg_code
tg_ticket_sign(const struct tg_secret *secret, const struct tg_ticket *t,
               const char *method, const char *path, char *out, size_t outlen,
               struct tg_err *err)
{
    unsigned char m[MAC_LEN];
    int n;

    if (t->reservation_id < 0 || t->key_id < 0 || t->tokens < 0 ||
        t->expires < 0)
        return tg_err_set(err, TG_E_INTERNAL, "ticket: negative field");
    /* A ticket verify() would refuse must not be handed out as good. */
    if (t->reservation_id > FIELD_MAX || t->key_id > FIELD_MAX ||
        t->tokens > FIELD_MAX || t->expires > FIELD_MAX)
        return tg_err_set(err, TG_E_INTERNAL, "ticket: field over 18 digits");
    n = fields(t, out, outlen);
    if (n < 0 || (size_t)n + 1 + MAC_B64_LEN + 1 > outlen ||
        mac(secret, out, (size_t)n, method, path, m) != 0)
        return tg_err_set(err, TG_E_INTERNAL, "ticket: cannot sign");
    out[n] = '.';
    tg_b64url_encode(m, MAC_LEN, out + n + 1, outlen - (size_t)n - 1);
    return TG_OK;
}

/* One decimal field up to `end`: 1-18 digits, no leading zero. */
static const char *
number(const char *p, char end, int64_t *v)
{
    const char *start = p;

    *v = 0;
    if (*p == '0' && p[1] == end)
        return p + 2;
    if (*p < '1' || *p > '9')
        return NULL;
    while (*p >= '0' && *p <= '9') {
        if (p - start >= 18)
            return NULL;
        *v = *v * 10 + (*p++ - '0');
    }
    return *p == end ? p + 1 : NULL;
}

enum tg_code
tg_ticket_verify(const struct tg_secret *secret, const char *s,
                 const char *method, const char *path, int64_t now,
                 struct tg_ticket *t, struct tg_err *err)
{
    unsigned char want[MAC_LEN], got[MAC_LEN + 2];
    struct tg_ticket tmp;
    const char *p = s;
    size_t n;

    if (s == NULL || strlen(s) >= TG_TICKET_MAX)
        return tg_err_set(err, TG_E_FORBIDDEN, "ticket missing or too long");
    if ((p = number(p, '.', &tmp.reservation_id)) == NULL ||
        (p = number(p, '.', &tmp.key_id)) == NULL ||
        (p = number(p, '.', &tmp.tokens)) == NULL ||
        (p = number(p, '.', &tmp.expires)) == NULL)
        return tg_err_set(err, TG_E_FORBIDDEN, "ticket malformed");
    n = (size_t)(p - 1 - s);
    if (strlen(p) != MAC_B64_LEN ||
        tg_b64url_decode(p, MAC_B64_LEN, got, sizeof(got)) != MAC_LEN ||
        mac(secret, s, n, method, path, want) != 0 ||
        CRYPTO_memcmp(want, got, MAC_LEN) != 0)
        return tg_err_set(err, TG_E_FORBIDDEN,
                          "ticket signature invalid (forged, or signed for "
                          "another method or path)");
    if (tmp.expires <= now)
        return tg_err_set(err, TG_E_FORBIDDEN, "ticket expired");
    *t = tmp;
    return TG_OK;
}
