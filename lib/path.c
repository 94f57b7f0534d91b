/* Path normalisation (RFC 3986 6.2.2: percent-encoding, then 5.2.4 dot
 * segments). What may not be normalised safely is refused, never guessed:
 * an encoded '/' would be a segment to us and a separator to Ollama (Go
 * decodes the path before it routes), an encoded '%' decodes twice
 * somewhere, and control or non-ASCII bytes have no place in Ollama's
 * routes. */
#include <config.h>

#include <string.h>

#include "codec.h"
#include "path.h"

/* RFC 3986 pchar without pct-encoded: what a segment may hold literally. */
static bool
pchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("-._~!$&'()*+,;=:@", c) != NULL);
}

static const char *const not_allowed =
    "The request path has a character that is not allowed there (an encoded "
    "'/', '%', '?', '#' or '\\', a space, a control or a non-ASCII byte).";

/* Decodes the segment in[0..len) into dst (room bytes); its length, or -1
 * with *why set. */
static long
decode_segment(const char *in, size_t len, char *dst, size_t room,
               const char **why)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];

        if (c == '%') {
            if (i + 2 >= len || tg_hex_digit((unsigned char)in[i + 1]) < 0 ||
                tg_hex_digit((unsigned char)in[i + 2]) < 0) {
                *why = "The request path has an invalid percent-encoding.";
                return -1;
            }
            c = (unsigned char)(tg_hex_digit((unsigned char)in[i + 1]) * 16 +
                                tg_hex_digit((unsigned char)in[i + 2]));
            i += 2;
        }
        if (!pchar(c)) {
            *why = not_allowed;
            return -1;
        }
        if (n >= room) {
            *why = "The request path is too long.";
            return -1;
        }
        dst[n++] = (char)c;
    }
    return (long)n;
}

/* "/api/api/chat" is "/api/chat", "/v1/v1/models" is "/v1/models": some
 * clients append the API path to a base URL that already ends in it. */
static size_t
undouble(char *path, size_t n)
{
    static const char *const prefixes[] = {"/api", "/v1"};
    size_t i;

    for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t k = strlen(prefixes[i]);

        while (n > 2 * k && memcmp(path, prefixes[i], k) == 0 &&
               memcmp(path + k, prefixes[i], k) == 0 && path[k + k] == '/') {
            memmove(path, path + k, n - k + 1);
            n -= k;
        }
    }
    return n;
}

/* Adds the segment that starts at in (len bytes) to out[0..*n), or applies
 * it when it is "." or ".."; out never ends in '/' here ("" is the root). */
static bool
add_segment(const char *in, size_t len, char *out, size_t outsize, size_t *n,
            const char **why)
{
    long k;

    if (*n + 2 > outsize) {
        *why = "The request path is too long.";
        return false;
    }
    /* Decoded first: "%2e%2e" is a ".." segment to every server. */
    k = decode_segment(in, len, out + *n + 1, outsize - *n - 2, why);
    if (k < 0)
        return false;
    if (k == 0 || (k == 1 && out[*n + 1] == '.'))
        return true;
    if (k == 2 && out[*n + 1] == '.' && out[*n + 2] == '.') {
        if (*n == 0) {
            *why = "The request path climbs above the root ('..').";
            return false;
        }
        while (out[--*n] != '/')
            ;
        return true;
    }
    out[*n] = '/';
    *n += 1 + (size_t)k;
    return true;
}

bool
tg_path_normalise(const char *in, size_t len, char *out, size_t outsize,
                  const char **why)
{
    size_t i = 0, n = 0;

    if (outsize < 2) {
        *why = "The request path is too long.";
        if (outsize > 0)
            out[0] = '\0';
        return false;
    }
    if (len == 0 || in[0] != '/') {
        *why = "The request path must start with '/'.";
        out[0] = '\0';
        return false;
    }
    while (i < len) {
        size_t start = i + 1, end = start;

        while (end < len && in[end] != '/')
            end++;
        if (!add_segment(in + start, end - start, out, outsize, &n, why)) {
            out[0] = '\0';
            return false;
        }
        i = end;
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = '\0';
    undouble(out, n);
    return true;
}
