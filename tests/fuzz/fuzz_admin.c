/* The admin CGI's client-facing parsers: form text (query strings and
 * bodies), the Cookie: header, the session cookie and the CSRF token. Form
 * text must decode to what was encoded; a cookie or token passes only as the
 * one spelling the signer gives. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "form.h"
#include "fuzz.h"

#define NOW 1700000000

static unsigned char mac_key[ADMIN_MAC_KEY_LEN] =
    "fuzzing-admin-mac-key-0123456789";

static char *
cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Anything parses without reading past len; every name and value fits. */
static void
check_parse(const uint8_t *data, size_t size)
{
    struct admin_params ps = {0};
    size_t i;

    CHECK(admin_params_parse(&ps, (const char *)data, size));
    CHECK(ps.n <= ADMIN_PARAMS_MAX);
    for (i = 0; i < ps.n; i++)
        CHECK(strlen(ps.p[i].name) + strlen(ps.p[i].value) <= size);
    admin_params_free(&ps);
}

/* The input as values, percent-encoded the way a browser does: each decodes
 * back to itself, up to its first NUL. */
static void
check_round_trip(const uint8_t *data, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    char *enc = malloc(size * 3 * 2 + 64), *w = enc, name[8];
    struct admin_params ps = {0};
    size_t half = size / 2, i;
    const uint8_t *parts[2] = {data, data + half};
    size_t lens[2] = {half, size - half};
    int p;

    CHECK(enc != NULL);
    for (p = 0; p < 2; p++) {
        w += sprintf(w, "%sv%d=", p ? "&" : "", p);
        for (i = 0; i < lens[p]; i++) {
            uint8_t c = parts[p][i];

            if (c == ' ') {
                *w++ = '+';
            } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
                *w++ = (char)c;
            } else {
                *w++ = '%';
                *w++ = hex[c >> 4];
                *w++ = hex[c & 15];
            }
        }
    }
    CHECK(admin_params_parse(&ps, enc, (size_t)(w - enc)));
    CHECK(ps.n == 2);
    for (p = 0; p < 2; p++) {
        size_t want = strnlen((const char *)parts[p], lens[p]);

        sprintf(name, "v%d", p);
        CHECK(admin_param(&ps, name) == ps.p[p].value);
        CHECK(strlen(ps.p[p].value) == want);
        CHECK(memcmp(ps.p[p].value, parts[p], want) == 0);
    }
    admin_params_free(&ps);
    free(enc);
}

/* A cookie found is a piece of the header, right after "tg_admin=". */
static void
check_cookie_header(const char *hdr)
{
    char out[ADMIN_COOKIE_MAX + 2], *at;
    size_t n;

    if (!admin_cookie_value(hdr, "tg_admin", out, sizeof(out)))
        return;
    n = strlen(out);
    CHECK(n < sizeof(out));
    at = strstr(hdr, out);
    CHECK(at != NULL);
    for (at = strstr(hdr, "tg_admin="); at != NULL;
         at = strstr(at + 1, "tg_admin="))
        if (strncmp(at + 9, out, n) == 0 &&
            (at[9 + n] == ';' || at[9 + n] == '\0'))
            break;
    CHECK(at != NULL);
}

/* A session cookie verifies only as admin_cookie_make's own output. */
static void
check_cookie(const char *s)
{
    char sid[ADMIN_SID_LEN + 1], again[ADMIN_COOKIE_MAX + 1];
    const char *dot;
    long long expires;

    memset(sid, 0x5a, sizeof(sid));
    if (admin_cookie_verify(mac_key, s, NOW, sid) != TG_OK)
        return;
    CHECK(strlen(sid) == ADMIN_SID_LEN);
    dot = strchr(s + 3, '.');
    CHECK(dot != NULL);
    expires = strtoll(dot + 1, NULL, 10);
    CHECK(expires > NOW);
    admin_cookie_make(mac_key, sid, (time_t)expires, again);
    CHECK(strcmp(again, s) == 0);
}

/* A CSRF token passes only when it is the binding's own. */
static void
check_csrf(const char *s)
{
    char want[ADMIN_CSRF_LEN + 1];

    admin_csrf_token(mac_key, "sid-of-the-fuzzer", want);
    CHECK(admin_csrf_verify(mac_key, "sid-of-the-fuzzer", s) ==
          (strcmp(want, s) == 0));
    CHECK(admin_csrf_verify(mac_key, "sid-of-the-fuzzer", want));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = cstr(data, size);

    check_parse(data, size);
    check_round_trip(data, size);
    check_cookie_header(s);
    check_cookie(s);
    check_csrf(s);
    free(s);
    return 0;
}
