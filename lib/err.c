/* The first error wins: later failures during cleanup must not hide the
 * cause an operator needs to act on. */
#include <config.h>

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
    char *p;

    if (err == NULL || err->code != TG_OK)
        return code;
    err->code = code;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    /* libpq messages end in newlines and may span lines: keep one. */
    for (p = err->msg; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    while (p > err->msg && p[-1] == ' ')
        *--p = '\0';
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
