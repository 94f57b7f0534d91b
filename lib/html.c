/* HTML escaping and URL encoding for server-rendered pages. Decoding UTF-8
 * here, rather than trusting it, keeps a malformed byte in a key name from
 * turning the rest of the page into mojibake or swallowing a quote. */
#include <config.h>

#include <stdint.h>
#include <string.h>

#include "html.h"

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len, i;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        len = 2, cp = s[0] & 0x1F;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        len = 3, cp = s[0] & 0x0F;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

int
tg_html_escape_n(struct tg_buf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, n;

    while (i < len) {
        unsigned char c = p[i];

        switch (c) {
        case '&':
            tg_buf_puts(b, "&amp;");
            break;
        case '<':
            tg_buf_puts(b, "&lt;");
            break;
        case '>':
            tg_buf_puts(b, "&gt;");
            break;
        case '"':
            tg_buf_puts(b, "&quot;");
            break;
        case '\'':
            tg_buf_puts(b, "&#39;");
            break;
        default:
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') ||
                c == 0x7F) {
                tg_buf_puts(b, REPLACEMENT);
                break;
            }
            n = utf8_len(p + i, len - i);
            if (n == 0) {
                tg_buf_puts(b, REPLACEMENT);
                break;
            }
            tg_buf_append(b, p + i, n);
            i += n;
            continue;
        }
        i++;
    }
    return tg_buf_failed(b) ? -1 : 0;
}

int
tg_html_escape(struct tg_buf *b, const char *s)
{
    if (s == NULL)
        return tg_buf_failed(b) ? -1 : 0;
    return tg_html_escape_n(b, s, strlen(s));
}

int
tg_html_urlencode(struct tg_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");

    for (; *p != '\0'; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
            (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL) {
            tg_buf_append(b, p, 1);
        } else {
            char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};

            tg_buf_append(b, enc, 3);
        }
    }
    return tg_buf_failed(b) ? -1 : 0;
}
