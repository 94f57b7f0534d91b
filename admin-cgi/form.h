/* What the admin CGI parses from the client before it knows who is asking:
 * application/x-www-form-urlencoded text (query strings and form bodies) and
 * the session cookie inside a Cookie: header. Free of I/O and of struct
 * admin, so the unit suite and a fuzz target drive them directly. */
#ifndef ADMIN_FORM_H
#define ADMIN_FORM_H

#include <stdbool.h>
#include <stddef.h>

#define ADMIN_PARAMS_MAX 64 /* form or query parameters; the rest ignored */

struct admin_param {
    char *name, *value; /* decoded, NUL-terminated, owned */
};

struct admin_params {
    struct admin_param p[ADMIN_PARAMS_MAX];
    size_t n;
};

/* Appends the pairs of `len` bytes of form text to ps (up to
 * ADMIN_PARAMS_MAX in all); false when memory ran out, with what was parsed
 * so far kept in ps. A "%00" decodes to a NUL, which ends that name or
 * value: what follows it is never seen. */
bool admin_params_parse(struct admin_params *ps, const char *text, size_t len);
void admin_params_free(struct admin_params *ps);

/* The first value of `name`, or NULL. */
const char *admin_param(const struct admin_params *ps, const char *name);

/* The value of cookie `name` from a Cookie: header into out (NUL-terminated);
 * false when it is absent or does not fit in outlen bytes. */
bool admin_cookie_value(const char *hdr, const char *name, char *out,
                        size_t outlen);

#endif
