/* Error codes and the error carrier every tollgate function fills.
 * A struct tg_err lives on the caller's stack; the first error set wins, so
 * the root cause survives the unwinding that follows it. */
#ifndef TG_ERR_H
#define TG_ERR_H

#include <stdbool.h>
#include <stddef.h>

#if defined(__GNUC__)
#define TG_MUSTCHECK __attribute__((warn_unused_result))
#define TG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TG_MUSTCHECK
#define TG_PRINTF(a, b)
#endif

enum tg_code {
    TG_OK = 0,
    TG_E_INTERNAL,    /* our bug or out of memory: 500 */
    TG_E_USAGE,       /* bad command-line arguments */
    TG_E_CONFIG,      /* bad configuration, secret file or setup */
    TG_E_NO_KEY,      /* no, malformed or unknown key: 401 */
    TG_E_FORBIDDEN,   /* disabled, expired, out of scope: 403 */
    TG_E_LIMIT,       /* a quota is used up: 429 */
    TG_E_NOT_FOUND,   /* a named thing does not exist: 404 */
    TG_E_CONFLICT,    /* a unique name or state clash: 409 */
    TG_E_BAD_REQUEST, /* malformed input: 400 */
    TG_E_TOO_LARGE,   /* body over its limit: 413 */
    TG_E_DB_DOWN,     /* PostgreSQL unreachable or shutting down: 503 */
    TG_E_DB_RETRY,    /* serialization failure or deadlock: retry */
    TG_E_TIMEOUT,     /* statement or upstream timeout: 504 */
    TG_E_UPSTREAM,    /* upstream unreachable or broken: 502 */
    TG_E_IO,          /* a file or socket failed */
};

struct tg_err {
    enum tg_code code; /* TG_OK until something fails */
    char sqlstate[6];  /* "" unless PostgreSQL sent one */
    char msg[256];     /* one line for the log and the CLI, never sent to a
                          client as it is: see tg_err_client */
};

void tg_err_clear(struct tg_err *err);

/* Records the first error only; cleans the message with tg_err_clean (hex
 * masked), so it stays one log line that leaks no hash. Returns code, so
 * callers can write `rc = tg_err_set(...)`. A NULL err is allowed and only
 * returns code. */
enum tg_code tg_err_set(struct tg_err *err, enum tg_code code, const char *fmt,
                        ...) TG_PRINTF(3, 4);

/* As tg_err_set, keeping PostgreSQL's SQLSTATE (NULL or "" for none). */
enum tg_code tg_err_set_sql(struct tg_err *err, enum tg_code code,
                            const char *sqlstate, const char *fmt, ...)
    TG_PRINTF(4, 5);

/* Copies in to out (outlen > 0) as one printable line: newline, CR and tab
 * become spaces, other control bytes \xNN; with mask_hex a run of 32 or
 * more hex digits (a key's HMAC, a session id, as PostgreSQL quotes them
 * in a failing row) keeps its first 8, then "...". Truncates to fit;
 * returns the length written. */
size_t tg_err_clean(char *out, size_t outlen, const char *in, bool mask_hex);

/* What a client (the admin API and pages) may be told about err: our own
 * message when it has no SQLSTATE and is the client's to fix; for a
 * PostgreSQL error only what its class means ("already taken" for 23505,
 * "not valid" for classes 22 and 23, "database unavailable" when it is
 * down); anything else is "internal error" naming rid, under which the
 * caller logs err->msg. Returns err->msg or buf (buflen >= 64). */
const char *tg_err_client(const struct tg_err *err, const char *rid, char *buf,
                          size_t buflen);

/* A short stable name for the code ("limit", "db_down") for logs and JSON. */
const char *tg_code_name(enum tg_code code);

/* The HTTP status a code maps to: unmapped is 500, only TG_OK is 200. */
int tg_code_http_status(enum tg_code code);

#endif
