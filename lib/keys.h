/* API keys: `<prefix><43 base62 chars of 32 random bytes><6 base62 chars of
 * CRC-32>`. The checksum lets the authorizer turn away a typo or a made-up
 * key without a database round trip; only an HMAC of the key is stored. */
#ifndef TG_KEYS_H
#define TG_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "secret.h"

#define TG_KEY_PREFIX_MAX 16
#define TG_KEY_RANDOM_LEN 43 /* 32 bytes in base62 */
#define TG_KEY_CHECK_LEN 6   /* a CRC-32 in base62 */
#define TG_KEY_BODY_LEN (TG_KEY_RANDOM_LEN + TG_KEY_CHECK_LEN)
#define TG_KEY_MAX_LEN (TG_KEY_PREFIX_MAX + TG_KEY_BODY_LEN)
#define TG_KEY_HASH_LEN 64 /* hex of HMAC-SHA-256 */
#define TG_KEY_DISPLAY_LEN                                                     \
    8 /* characters after the prefix kept for display                          \
       */
#define TG_KEY_MASK_MAX (TG_KEY_PREFIX_MAX + TG_KEY_DISPLAY_LEN + 4)

/* A prefix is 0 to TG_KEY_PREFIX_MAX characters of [A-Za-z0-9_-]. */
bool tg_keys_prefix_ok(const char *prefix);

/* Writes a new key (NUL-terminated) into out, which holds at least
 * TG_KEY_MAX_LEN + 1 bytes. Fails only if the prefix is bad or the random
 * generator does. */
enum tg_code tg_keys_generate(const char *prefix, char *out, size_t outlen,
                              struct tg_err *err) TG_MUSTCHECK;

/* True when `key` is `prefix` followed by a well-formed body whose checksum
 * matches. `len` is the key's length (keys come from headers, unterminated). */
bool tg_keys_parse(const char *prefix, const char *key, size_t len);

/* Keys imported from other proxies ("legacy") carry no checksum, so only
 * a database lookup can tell a real one from a made-up one. To keep that
 * lookup for plausible keys, a legacy key is TG_KEY_LEGACY_MIN to
 * TG_KEY_LEGACY_MAX characters of [A-Za-z0-9._~+/=-], and never starts
 * with the configured prefix (without one: never has a tollgate key's
 * length): those are judged by their checksum alone, so a mistyped
 * tollgate key is "malformed" without a database lookup. */
#define TG_KEY_LEGACY_MIN 8
#define TG_KEY_LEGACY_MAX 64
bool tg_keys_legacy_ok(const char *prefix, const char *key, size_t len);

/* HMAC-SHA-256(secret, key) as 64 lower-case hex digits and a NUL. */
enum tg_code tg_keys_hash(const struct tg_secret *secret, const char *key,
                          size_t len, char out[TG_KEY_HASH_LEN + 1],
                          struct tg_err *err) TG_MUSTCHECK;

/* The part of a key that may be stored and shown: the first
 * TG_KEY_DISPLAY_LEN characters after the prefix. */
void tg_keys_display(const char *prefix, const char *key,
                     char out[TG_KEY_DISPLAY_LEN + 1]);

/* A log-safe hint of any presented string: at most the configured prefix
 * plus the display characters, never more than a third of the input, then
 * "...". Works on garbage too: whatever a client sent is masked. */
void tg_keys_mask(const char *prefix, const char *key, size_t len, char *dst,
                  size_t dstlen);

#endif
