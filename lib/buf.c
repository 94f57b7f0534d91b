/* Bounded buffers: every buffer names its limit, and overflowing it is a
 * reported failure rather than a truncation nobody notices. */
#include <config.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void
tg_buf_init(struct tg_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void
tg_buf_free(struct tg_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

static int
reserve(struct tg_buf *b, size_t extra)
{
    size_t want, cap;
    char *p;

    if (b->failed || extra > b->max - b->len) {
        b->failed = true;
        return -1;
    }
    want = b->len + extra + 1;
    if (want <= b->cap)
        return 0;
    cap = b->cap < 64 ? 64 : b->cap;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = true;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int
tg_buf_append(struct tg_buf *b, const void *p, size_t n)
{
    if (reserve(b, n) != 0)
        return -1;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int
tg_buf_puts(struct tg_buf *b, const char *s)
{
    return tg_buf_append(b, s, strlen(s));
}

int
tg_buf_appendf(struct tg_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(b, (size_t)n) != 0) {
        b->failed = true;
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

bool
tg_buf_failed(const struct tg_buf *b)
{
    return b->failed;
}

size_t
tg_buf_len(const struct tg_buf *b)
{
    return b->len;
}

const char *
tg_buf_cstr(const struct tg_buf *b)
{
    return b->data != NULL ? b->data : "";
}
