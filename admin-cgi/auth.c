/* Session cookies, CSRF tokens and password hashes: HMAC-SHA-256 under a
 * key derived from the server secret, PBKDF2-SHA-256 from OpenSSL. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth.h"
#include "codec.h"
#include "conf.h"

#define MAC_B64_LEN 43
#define SALT_LEN 16
#define DK_LEN 32

/* HMAC-SHA-256(key, label NUL msg): the label keeps a cookie from ever
 * passing for a CSRF token. msg is bounded by its callers. */
static void
mac(const unsigned char key[ADMIN_MAC_KEY_LEN], const char *label,
    const char *msg, unsigned char out[32])
{
    unsigned char buf[512];
    size_t ln = strlen(label), mn = strlen(msg);
    unsigned int n = 32;

    if (ln + 1 + mn > sizeof(buf))
        mn = sizeof(buf) - ln - 1; /* callers bound msg; never overflow */
    memcpy(buf, label, ln);
    buf[ln] = '\0';
    memcpy(buf + ln + 1, msg, mn);
    if (HMAC(EVP_sha256(), key, ADMIN_MAC_KEY_LEN, buf, ln + 1 + mn, out, &n) ==
        NULL)
        abort(); /* only out of memory: never hand out an unsigned token */
    OPENSSL_cleanse(buf, sizeof(buf));
}

void
admin_auth_derive(const struct tg_secret *secret,
                  unsigned char key[ADMIN_MAC_KEY_LEN])
{
    unsigned int n = ADMIN_MAC_KEY_LEN;
    static const char label[] = "tollgate admin pages v1";

    if (HMAC(EVP_sha256(), secret->bytes, (int)secret->len,
             (const unsigned char *)label, sizeof(label) - 1, key, &n) == NULL)
        abort();
}

enum tg_code
admin_sid_new(char sid[ADMIN_SID_LEN + 1], struct tg_err *err)
{
    unsigned char r[ADMIN_SID_LEN / 2];

    if (RAND_bytes(r, sizeof(r)) != 1)
        return tg_err_set(err, TG_E_INTERNAL, "no random bytes");
    tg_hex_encode(r, sizeof(r), sid);
    return TG_OK;
}

void
admin_cookie_make(const unsigned char key[ADMIN_MAC_KEY_LEN], const char *sid,
                  time_t expires, char out[ADMIN_COOKIE_MAX + 1])
{
    unsigned char m[32];
    char body[ADMIN_COOKIE_MAX], b64[MAC_B64_LEN + 1];
    int n;

    n = snprintf(body, sizeof(body), "v1.%.32s.%lld", sid, (long long)expires);
    mac(key, "cookie", body, m);
    tg_b64url_encode(m, sizeof(m), b64, sizeof(b64));
    snprintf(out, ADMIN_COOKIE_MAX + 1, "%.*s.%s", n, body, b64);
    OPENSSL_cleanse(m, sizeof(m));
}

enum tg_code
admin_cookie_verify(const unsigned char key[ADMIN_MAC_KEY_LEN],
                    const char *cookie, time_t now, char sid[ADMIN_SID_LEN + 1])
{
    unsigned char want[32], got[32];
    char body[ADMIN_COOKIE_MAX + 1], num[24];
    const char *dot;
    size_t len, i;
    int64_t expires;
    enum tg_code rc = TG_E_NO_KEY;

    /* v1.<32 hex>.<decimal expiry>.<43 base64url> */
    len = cookie != NULL ? strlen(cookie) : 0;
    if (len > ADMIN_COOKIE_MAX || len < 3 + ADMIN_SID_LEN + 3 + MAC_B64_LEN ||
        strncmp(cookie, "v1.", 3) != 0 || cookie[3 + ADMIN_SID_LEN] != '.')
        goto out;
    for (i = 3; i < 3 + ADMIN_SID_LEN; i++)
        if (!((cookie[i] >= '0' && cookie[i] <= '9') ||
              (cookie[i] >= 'a' && cookie[i] <= 'f')))
            goto out;
    dot = strchr(cookie + 4 + ADMIN_SID_LEN, '.');
    if (dot == NULL || strlen(dot + 1) != MAC_B64_LEN ||
        (size_t)(dot - (cookie + 4 + ADMIN_SID_LEN)) >= sizeof(num))
        goto out;
    memcpy(num, cookie + 4 + ADMIN_SID_LEN,
           (size_t)(dot - (cookie + 4 + ADMIN_SID_LEN)));
    num[dot - (cookie + 4 + ADMIN_SID_LEN)] = '\0';
    memcpy(body, cookie, (size_t)(dot - cookie));
    body[dot - cookie] = '\0';
    if (tg_b64url_decode(dot + 1, MAC_B64_LEN, got, sizeof(got)) != sizeof(got))
        goto out;
    mac(key, "cookie", body, want);
    if (CRYPTO_memcmp(want, got, sizeof(want)) != 0)
        goto out;
    if (tg_conf_parse_int(num, 0, INT64_MAX, &expires) != TG_OK ||
        (int64_t)now >= expires)
        goto out;
    memcpy(sid, cookie + 3, ADMIN_SID_LEN);
    sid[ADMIN_SID_LEN] = '\0';
    rc = TG_OK;
out:
    OPENSSL_cleanse(want, sizeof(want));
    return rc;
}

void
admin_csrf_token(const unsigned char key[ADMIN_MAC_KEY_LEN],
                 const char *binding, char out[ADMIN_CSRF_LEN + 1])
{
    unsigned char m[32];

    mac(key, "csrf", binding, m);
    tg_b64url_encode(m, sizeof(m), out, ADMIN_CSRF_LEN + 1);
}

bool
admin_csrf_verify(const unsigned char key[ADMIN_MAC_KEY_LEN],
                  const char *binding, const char *token)
{
    char want[ADMIN_CSRF_LEN + 1];
    bool ok;

    if (token == NULL || strlen(token) != ADMIN_CSRF_LEN)
        return false;
    admin_csrf_token(key, binding, want);
    ok = CRYPTO_memcmp(want, token, ADMIN_CSRF_LEN) == 0;
    OPENSSL_cleanse(want, sizeof(want));
    return ok;
}

static bool
derive(const char *password, const unsigned char *salt, size_t saltlen,
       int iterations, unsigned char dk[DK_LEN])
{
    return PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt,
                             (int)saltlen, iterations, EVP_sha256(), DK_LEN,
                             dk) == 1;
}

enum tg_code
admin_pw_hash(const char *password, int iterations,
              char out[ADMIN_PW_HASH_MAX + 1], struct tg_err *err)
{
    unsigned char salt[SALT_LEN], dk[DK_LEN];
    char s64[32], d64[48];
    enum tg_code rc = TG_E_INTERNAL;

    if (iterations < 1000) {
        rc = tg_err_set(err, TG_E_USAGE, "too few PBKDF2 iterations");
        goto out;
    }
    if (RAND_bytes(salt, sizeof(salt)) != 1 ||
        !derive(password, salt, sizeof(salt), iterations, dk)) {
        rc = tg_err_set(err, TG_E_INTERNAL, "PBKDF2 failed");
        goto out;
    }
    tg_b64url_encode(salt, sizeof(salt), s64, sizeof(s64));
    tg_b64url_encode(dk, sizeof(dk), d64, sizeof(d64));
    snprintf(out, ADMIN_PW_HASH_MAX + 1, "pbkdf2-sha256$%d$%s$%s", iterations,
             s64, d64);
    rc = TG_OK;
out:
    OPENSSL_cleanse(dk, sizeof(dk));
    return rc;
}

bool
admin_pw_verify(const char *password, const char *stored)
{
    static const char tag[] = "pbkdf2-sha256$";
    unsigned char salt[64], want[DK_LEN], got[DK_LEN];
    char copy[ADMIN_PW_HASH_MAX + 1], *it, *s, *h;
    size_t saltlen;
    int64_t iterations;
    bool ok = false;

    if (stored == NULL || strlen(stored) > ADMIN_PW_HASH_MAX ||
        strncmp(stored, tag, sizeof(tag) - 1) != 0)
        return false;
    strcpy(copy, stored + sizeof(tag) - 1);
    it = copy;
    s = strchr(it, '$');
    h = s != NULL ? strchr(s + 1, '$') : NULL;
    if (h == NULL)
        goto out;
    *s++ = '\0';
    *h++ = '\0';
    if (tg_conf_parse_int(it, 1000, 100000000, &iterations) != TG_OK)
        goto out;
    saltlen = tg_b64url_decode(s, strlen(s), salt, sizeof(salt));
    if (saltlen == (size_t)-1 || saltlen < 8 ||
        tg_b64url_decode(h, strlen(h), want, sizeof(want)) != DK_LEN)
        goto out;
    if (!derive(password, salt, saltlen, (int)iterations, got))
        goto out;
    ok = CRYPTO_memcmp(want, got, DK_LEN) == 0;
out:
    OPENSSL_cleanse(got, sizeof(got));
    OPENSSL_cleanse(copy, sizeof(copy));
    return ok;
}
