/* The server secret: the HMAC key behind stored key hashes and tickets.
 * Losing it invalidates every key; leaking it lets anyone mint tickets. */
#ifndef TG_SECRET_H
#define TG_SECRET_H

#include <stddef.h>

#include "err.h"

#define TG_SECRET_MIN 16
#define TG_SECRET_MAX 512

struct tg_secret {
    unsigned char bytes[TG_SECRET_MAX];
    size_t len;
};

/* Reads the file's contents, trailing whitespace removed. Refuses a file
 * that is missing, empty, shorter than TG_SECRET_MIN bytes, or that other
 * users may read or write, with a message that says how to fix it. */
enum tg_code tg_secret_load(const char *path, struct tg_secret *s,
                            struct tg_err *err) TG_MUSTCHECK;

/* Overwrites the secret in memory; call before the struct goes away. */
void tg_secret_wipe(struct tg_secret *s);

#endif
