/* Where a client put its key. First match wins: Authorization: Bearer K,
 * Authorization: K, X-API-Key: K, query api_key=K. */
#ifndef TG_KEYSRC_H
#define TG_KEYSRC_H

#include <stddef.h>

#include "keys.h"

enum tg_keysrc {
    TG_KEY_FROM_NONE,
    TG_KEY_FROM_BEARER,
    TG_KEY_FROM_AUTHORIZATION,
    TG_KEY_FROM_HEADER,
    TG_KEY_FROM_QUERY,
};

/* A key found, copied into `key` (NUL-terminated, percent-decoded when it
 * came from the query). A candidate longer than TG_KEY_MAX_LEN is still
 * reported, truncated to `len` = TG_KEY_MAX_LEN + 1 so it fails parsing. */
struct tg_key_found {
    enum tg_keysrc src;
    char key[TG_KEY_MAX_LEN + 2];
    size_t len;
};

/* Any argument may be NULL (header or query absent). */
void tg_keysrc_find(const char *authorization, const char *x_api_key,
                    const char *query, struct tg_key_found *out);

const char *tg_keysrc_name(enum tg_keysrc src);

#endif
