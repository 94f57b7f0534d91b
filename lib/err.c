/* The first error wins: later failures during cleanup must not hide the
 * cause an operator needs to act on. */
#include <config.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

void
tg_err_clear(struct tg_err *err)
{
    if (err == NULL)
        return;
    err->code = TG_OK;
    err->sqlstate[0] = '\0';
    err->msg[0] = '\0';
}

static enum tg_code set_va(struct tg_err *err, enum tg_code code,
                           const char *sqlstate, const char *fmt, va_list ap)
    TG_PRINTF(4, 0);

static enum tg_code
set_va(struct tg_err *err, enum tg_code code, const char *sqlstate,
       const char *fmt, va_list ap)
{
    char raw[sizeof(err->msg)];
    size_t n;

    if (err == NULL || err->code != TG_OK)
        return code;
    err->code = code;
    vsnprintf(raw, sizeof(raw), fmt, ap);
    /* libpq messages end in newlines and may span lines: keep one. */
    n = tg_err_clean(err->msg, sizeof(err->msg), raw, true);
    while (n > 0 && err->msg[n - 1] == ' ')
        err->msg[--n] = '\0';
    if (sqlstate != NULL && strlen(sqlstate) == 5)
        memcpy(err->sqlstate, sqlstate, 6);
    else
        err->sqlstate[0] = '\0';
    return code;
}

enum tg_code
tg_err_set(struct tg_err *err, enum tg_code code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    code = set_va(err, code, NULL, fmt, ap);
    va_end(ap);
    return code;
}

enum tg_code
tg_err_set_sql(struct tg_err *err, enum tg_code code, const char *sqlstate,
               const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    code = set_va(err, code, sqlstate, fmt, ap);
    va_end(ap);
    return code;
}

#define HEX_RUN_MASKED 32 /* shorter runs are ids, not secrets */
#define HEX_RUN_KEPT 8

static size_t
hex_run(const char *s)
{
    size_t n = 0;

    while (isxdigit((unsigned char)s[n]))
        n++;
    return n;
}

size_t
tg_err_clean(char *out, size_t outlen, const char *in, bool mask_hex)
{
    const char *start = in;
    size_t o = 0, run;
    unsigned char c;

    for (; *in != '\0'; in++) {
        c = (unsigned char)*in;
        run = mask_hex && (in == start || !isxdigit((unsigned char)in[-1]))
                  ? hex_run(in)
                  : 0;
        if (run >= HEX_RUN_MASKED) {
            if (o + HEX_RUN_KEPT + 3 >= outlen)
                break;
            memcpy(out + o, in, HEX_RUN_KEPT);
            memcpy(out + o + HEX_RUN_KEPT, "...", 3);
            o += HEX_RUN_KEPT + 3;
            in += run - 1;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            if (o + 1 >= outlen)
                break;
            out[o++] = ' ';
        } else if (c < 0x20 || c == 0x7f) {
            if (o + 4 >= outlen)
                break;
            o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
        } else {
            if (o + 1 >= outlen)
                break;
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return o;
}

const char *
tg_err_client(const struct tg_err *err, const char *rid, char *buf,
              size_t buflen)
{
    const char *st = err->sqlstate;

    switch (err->code) {
    case TG_E_DB_DOWN:
    case TG_E_DB_RETRY:
        return "database (PostgreSQL) unavailable, try again in a moment";
    case TG_E_USAGE:
    case TG_E_NO_KEY:
    case TG_E_FORBIDDEN:
    case TG_E_LIMIT:
    case TG_E_NOT_FOUND:
    case TG_E_CONFLICT:
    case TG_E_BAD_REQUEST:
    case TG_E_TOO_LARGE:
        if (st[0] == '\0')
            return err->msg;
        break;
    default:
        break;
    }
    if (strcmp(st, "23505") == 0)
        return "that value is already taken (a name must be unique)";
    if (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0)
        return "a value is not valid (check the names, times and numbers)";
    snprintf(buf, buflen, "internal error (see the log, request id %s)",
             rid != NULL ? rid : "-");
    return buf;
}

static const struct {
    const char *name;
    int status;
} codes[] = {
    [TG_OK] = {"ok", 200},
    [TG_E_INTERNAL] = {"internal", 500},
    [TG_E_USAGE] = {"usage", 500},
    [TG_E_CONFIG] = {"config", 500},
    [TG_E_NO_KEY] = {"invalid_api_key", 401},
    [TG_E_FORBIDDEN] = {"forbidden", 403},
    [TG_E_LIMIT] = {"rate_limit_exceeded", 429},
    [TG_E_NOT_FOUND] = {"not_found", 404},
    [TG_E_CONFLICT] = {"conflict", 409},
    [TG_E_BAD_REQUEST] = {"bad_request", 400},
    [TG_E_TOO_LARGE] = {"too_large", 413},
    [TG_E_DB_DOWN] = {"db_down", 503},
    [TG_E_DB_RETRY] = {"db_retry", 503},
    [TG_E_TIMEOUT] = {"timeout", 504},
    [TG_E_UPSTREAM] = {"upstream", 502},
    [TG_E_IO] = {"io", 500},
};

const char *
tg_code_name(enum tg_code code)
{
    if ((size_t)code >= sizeof(codes) / sizeof(codes[0]) ||
        codes[code].name == NULL)
        return "internal";
    return codes[code].name;
}

int
tg_code_http_status(enum tg_code code)
{
    if ((size_t)code >= sizeof(codes) / sizeof(codes[0]) ||
        codes[code].status == 0)
        return 500;
    return codes[code].status;
}
