/* Key extraction. A header that holds something else (Basic credentials,
 * an empty Bearer) is not a match, so the next source is tried. */
#include <config.h>

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "keysrc.h"

static void
take(struct tg_key_found *out, enum tg_keysrc src, const char *p, size_t n)
{
    out->src = src;
    out->len = n > TG_KEY_MAX_LEN ? TG_KEY_MAX_LEN + 1 : n;
    memcpy(out->key, p, out->len);
    out->key[out->len] = '\0';
}

/* The single token of a header value, blanks around it trimmed; 0 when the
 * value is empty or holds more than one token. */
static size_t
token(const char *v, const char **start)
{
    const char *e;

    while (*v == ' ' || *v == '\t')
        v++;
    e = v + strcspn(v, " \t");
    *start = v;
    while (*e == ' ' || *e == '\t')
        e++;
    return *e == '\0' ? strcspn(v, " \t") : 0;
}

static int
from_authorization(const char *v, struct tg_key_found *out)
{
    const char *t;
    size_t n;

    while (*v == ' ' || *v == '\t')
        v++;
    if (strncasecmp(v, "Bearer", 6) == 0 && (v[6] == ' ' || v[6] == '\t')) {
        n = token(v + 7, &t);
        if (n == 0)
            return 0;
        take(out, TG_KEY_FROM_BEARER, t, n);
        return 1;
    }
    n = token(v, &t);
    if (n == 0) /* "Basic xyz" and other schemes are not our keys */
        return 0;
    take(out, TG_KEY_FROM_AUTHORIZATION, t, n);
    return 1;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The first api_key= parameter, percent-decoded. */
static int
from_query(const char *q, struct tg_key_found *out)
{
    char buf[TG_KEY_MAX_LEN + 2];
    const char *p, *next;
    size_t n = 0;

    for (p = q; p != NULL; p = next) {
        next = strchr(p, '&');
        if (next != NULL)
            next++;
        if (strncmp(p, "api_key=", 8) != 0)
            continue;
        for (p += 8; *p != '\0' && *p != '&' && n < sizeof(buf) - 1; p++) {
            if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
                buf[n++] = (char)(hexval(p[1]) * 16 + hexval(p[2]));
                p += 2;
            } else {
                buf[n++] = *p == '+' ? ' ' : *p;
            }
        }
        if (n == 0)
            return 0;
        take(out, TG_KEY_FROM_QUERY, buf, n);
        return 1;
    }
    return 0;
}

void
tg_keysrc_find(const char *authorization, const char *x_api_key,
               const char *query, struct tg_key_found *out)
{
    const char *t;
    size_t n;

    memset(out, 0, sizeof(*out));
    if (authorization != NULL && from_authorization(authorization, out))
        return;
    if (x_api_key != NULL && (n = token(x_api_key, &t)) > 0) {
        take(out, TG_KEY_FROM_HEADER, t, n);
        return;
    }
    if (query != NULL)
        from_query(query, out);
}

const char *
tg_keysrc_name(enum tg_keysrc src)
{
    static const char *const names[] = {"none", "bearer", "authorization",
                                        "x-api-key", "query"};

    return names[src];
}
