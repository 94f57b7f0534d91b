/* Byte encodings used in more than one place: hex for hashes and ids,
 * unpadded base64url for tickets (safe in headers and environment). */
#ifndef TG_CODEC_H
#define TG_CODEC_H

#include <stddef.h>

/* The value of one hex digit (either case), or -1. */
int tg_hex_digit(int c);

/* Writes 2 * n lower-case hex digits and a NUL: out holds 2 * n + 1. */
void tg_hex_encode(const unsigned char *p, size_t n, char *out);

/* Unpadded base64url of n bytes into out (outlen must hold
 * tg_b64url_len(n) + 1); returns the length written, 0 if out is too small. */
size_t tg_b64url_len(size_t n);
size_t tg_b64url_encode(const unsigned char *p, size_t n, char *out,
                        size_t outlen);

/* Decodes unpadded base64url; returns the byte count, or (size_t)-1 on a bad
 * character, a bad length or a too small out. */
size_t tg_b64url_decode(const char *s, size_t len, unsigned char *out,
                        size_t outlen);

#endif
