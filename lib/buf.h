/* A growable, NUL-terminated byte buffer with a hard limit. Appends past the
 * limit (or out of memory) set a sticky `failed` flag, so a renderer appends
 * freely and checks tg_buf_failed() once at the end. */
#ifndef TG_BUF_H
#define TG_BUF_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct tg_buf { /* members private: use the functions */
    char *data; /* NUL-terminated once non-NULL; may hold NULs */
    size_t len, cap, max;
    bool failed;
};

void tg_buf_init(struct tg_buf *b, size_t max);
void tg_buf_free(struct tg_buf *b); /* back to empty; init state kept */

/* 0 on success, -1 (and failed stays set) past max or out of memory. */
int tg_buf_append(struct tg_buf *b, const void *p, size_t n);
int tg_buf_puts(struct tg_buf *b, const char *s);
int tg_buf_appendf(struct tg_buf *b, const char *fmt, ...) TG_PRINTF(2, 3);

bool tg_buf_failed(const struct tg_buf *b);
size_t tg_buf_len(const struct tg_buf *b);
const char *tg_buf_cstr(const struct tg_buf *b); /* "" when empty */

#endif
