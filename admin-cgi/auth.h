/* Admin authentication primitives, free of I/O so they are unit-tested:
 * the signed session cookie, CSRF tokens bound to a session, and the PBKDF2
 * admin password hash. Keys and tokens never reach a log. */
#ifndef ADMIN_AUTH_H
#define ADMIN_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "err.h"
#include "secret.h"

#define ADMIN_MAC_KEY_LEN 32
#define ADMIN_SID_LEN 32     /* 16 random bytes in hex */
#define ADMIN_COOKIE_MAX 128 /* "v1.<sid>.<expiry>.<43 b64url>" */
#define ADMIN_CSRF_LEN 43    /* HMAC-SHA-256 in unpadded base64url */
#define ADMIN_PW_HASH_MAX 160
#define ADMIN_PW_ITERATIONS 600000

/* The admin pages' own MAC key, derived from the server secret so that a
 * cookie can never pass for a ticket or the other way round. */
void admin_auth_derive(const struct tg_secret *secret,
                       unsigned char key[ADMIN_MAC_KEY_LEN]);

/* A fresh random session id (hex, NUL-terminated). */
enum tg_code admin_sid_new(char sid[ADMIN_SID_LEN + 1],
                           struct tg_err *err) TG_MUSTCHECK;

/* "v1.<sid>.<expires>.<mac>" into out (ADMIN_COOKIE_MAX + 1 bytes). */
void admin_cookie_make(const unsigned char key[ADMIN_MAC_KEY_LEN],
                       const char *sid, time_t expires,
                       char out[ADMIN_COOKIE_MAX + 1]);

/* TG_OK and the session id when the cookie is well formed, its MAC right
 * (compared in constant time) and `now` before its expiry; TG_E_NO_KEY
 * otherwise. */
enum tg_code admin_cookie_verify(const unsigned char key[ADMIN_MAC_KEY_LEN],
                                 const char *cookie, time_t now,
                                 char sid[ADMIN_SID_LEN + 1]);

/* The CSRF token for a binding (the session id, or "user:" + REMOTE_USER
 * when the web server authenticates). */
void admin_csrf_token(const unsigned char key[ADMIN_MAC_KEY_LEN],
                      const char *binding, char out[ADMIN_CSRF_LEN + 1]);
bool admin_csrf_verify(const unsigned char key[ADMIN_MAC_KEY_LEN],
                       const char *binding, const char *token);

/* "pbkdf2-sha256$<iterations>$<salt b64url>$<hash b64url>". */
enum tg_code admin_pw_hash(const char *password, int iterations,
                           char out[ADMIN_PW_HASH_MAX + 1],
                           struct tg_err *err) TG_MUSTCHECK;
/* True when password matches stored (constant-time compare). */
bool admin_pw_verify(const char *password, const char *stored);

#endif
