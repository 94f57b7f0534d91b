/* Hex and base64url. OpenSSL's EVP_EncodeBlock is standard base64 with
 * padding and line rules; tickets need the URL-safe alphabet, so this is
 * the one small encoder the project writes itself. */
#include <config.h>

#include "codec.h"

static const char b64u[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int
tg_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void
tg_hex_encode(const unsigned char *p, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = "0123456789abcdef"[p[i] >> 4];
        out[2 * i + 1] = "0123456789abcdef"[p[i] & 15];
    }
    out[2 * n] = '\0';
}

size_t
tg_b64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t
tg_b64url_encode(const unsigned char *p, size_t n, char *out, size_t outlen)
{
    size_t i, o = 0, want = tg_b64url_len(n);

    if (outlen < want + 1)
        return 0;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned long v = (unsigned long)p[i] << 16 | p[i + 1] << 8 | p[i + 2];

        out[o++] = b64u[v >> 18];
        out[o++] = b64u[(v >> 12) & 63];
        out[o++] = b64u[(v >> 6) & 63];
        out[o++] = b64u[v & 63];
    }
    if (n - i == 1) {
        out[o++] = b64u[p[i] >> 2];
        out[o++] = b64u[(p[i] & 3) << 4];
    } else if (n - i == 2) {
        out[o++] = b64u[p[i] >> 2];
        out[o++] = b64u[((p[i] & 3) << 4) | p[i + 1] >> 4];
        out[o++] = b64u[(p[i + 1] & 15) << 2];
    }
    out[o] = '\0';
    return o;
}

static int
b64u_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

size_t
tg_b64url_decode(const char *s, size_t len, unsigned char *out, size_t outlen)
{
    unsigned long acc = 0;
    size_t i, o = 0;
    int bits = 0;

    if (len % 4 == 1)
        return (size_t)-1;
    for (i = 0; i < len; i++) {
        int v = b64u_val(s[i]);

        if (v < 0)
            return (size_t)-1;
        acc = (acc << 6 | (unsigned long)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outlen)
                return (size_t)-1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* Leftover bits must be zero, or two strings would decode alike. */
    if (bits > 0 && (acc & ((1ul << bits) - 1)) != 0)
        return (size_t)-1;
    return o;
}
