/* Where a client put its key. First match wins: Authorization: Bearer K,
 * Authorization: K, X-API-Key: K, query api_key=K. */
#ifndef AUTHZ_KEYSRC_H
#define AUTHZ_KEYSRC_H

#include <stddef.h>

#include "keys.h"

enum authz_keysrc {
    AUTHZ_KEY_NONE,
    AUTHZ_KEY_BEARER,
    AUTHZ_KEY_AUTHORIZATION,
    AUTHZ_KEY_HEADER,
    AUTHZ_KEY_QUERY,
};

/* A key found, copied into `key` (NUL-terminated, percent-decoded when it
 * came from the query). A candidate longer than TG_KEY_MAX_LEN is still
 * reported, truncated to `len` = TG_KEY_MAX_LEN + 1 so it fails parsing. */
struct authz_key {
    enum authz_keysrc src;
    char key[TG_KEY_MAX_LEN + 2];
    size_t len;
};

/* Any argument may be NULL (header or query absent). */
void authz_key_find(const char *authorization, const char *x_api_key,
                    const char *query, struct authz_key *out);

const char *authz_keysrc_name(enum authz_keysrc src);

#endif
