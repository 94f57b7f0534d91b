/* CORS. The origin is echoed (with Vary: Origin) rather than "*" even for
 * `cors_origins = *`: one rule for every answer, and caches keep answers
 * for different origins apart. */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cors.h"

#define ORIGIN_MAX 256
#define REQ_HEADERS_MAX 512

/* Headers the clients we know send: the key, JSON, the OpenAI SDK's own. */
#define DEFAULT_HEADERS                                                        \
    "authorization, content-type, x-api-key, x-request-id, openai-"            \
    "organization, openai-project, openai-beta, x-stainless-arch, "            \
    "x-stainless-lang, x-stainless-os, x-stainless-package-version, "          \
    "x-stainless-retry-count, x-stainless-runtime, "                           \
    "x-stainless-runtime-version, x-stainless-timeout"

/* Printable, no blanks: an origin is scheme://host[:port]. */
static bool
plain_origin(const char *o)
{
    size_t n = o != NULL ? strlen(o) : 0;
    size_t i;

    if (n == 0 || n > ORIGIN_MAX)
        return false;
    for (i = 0; i < n; i++)
        if ((unsigned char)o[i] <= 0x20 || (unsigned char)o[i] >= 0x7f)
            return false;
    return true;
}

bool
tg_cors_allowed(const char *list, const char *origin)
{
    const char *p = list;
    size_t olen, n, m;

    if (list == NULL || list[0] == '\0' || !plain_origin(origin))
        return false;
    olen = strlen(origin);
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        n = strcspn(p, ",");
        for (m = n; m > 0 && (p[m - 1] == ' ' || p[m - 1] == '\t'); m--)
            ;
        if ((m == 1 && p[0] == '*') ||
            (m == olen && strncasecmp(p, origin, m) == 0))
            return true;
        if (p[n] == '\0')
            return false;
        p += n + 1;
    }
}

bool
tg_cors_preflight(const char *method, const char *origin,
                  const char *request_method)
{
    return method != NULL && strcmp(method, "OPTIONS") == 0 && origin != NULL &&
           request_method != NULL;
}

/* Header names and commas only, bounded: safe to echo. */
static bool
name_list(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    return n > 0 && n <= REQ_HEADERS_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789-_, ") == n;
}

void
tg_cors_headers(const char *list, const char *origin, bool preflight,
                const char *request_headers, char *out, size_t outlen)
{
    int n;

    out[0] = '\0';
    if (!tg_cors_allowed(list, origin))
        return;
    if (preflight)
        n = snprintf(out, outlen,
                     "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n"
                     "Access-Control-Allow-Methods: GET, HEAD, POST, PUT, "
                     "DELETE, OPTIONS\r\nAccess-Control-Allow-Headers: %s\r\n"
                     "Access-Control-Max-Age: 600\r\n",
                     origin,
                     name_list(request_headers) ? request_headers
                                                : DEFAULT_HEADERS);
    else
        n = snprintf(out, outlen,
                     "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n"
                     "Access-Control-Expose-Headers: retry-after, "
                     "x-request-id, x-ratelimit-limit-requests, "
                     "x-ratelimit-remaining-requests, "
                     "x-ratelimit-limit-tokens, "
                     "x-ratelimit-remaining-tokens\r\n",
                     origin);
    if (n < 0 || (size_t)n >= outlen)
        out[0] = '\0'; /* all or nothing: never half a header */
}
