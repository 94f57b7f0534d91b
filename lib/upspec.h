/* Upstream specifications: `URL [weight=N] [key_file=FILE] [models=a,b]`,
 * from tollgate.conf's repeatable `upstream` key or the settings table's
 * upstream_url. One parser, so the relay, the admin pages and the CLI read
 * the same list the same way. */
#ifndef TG_UPSPEC_H
#define TG_UPSPEC_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

#define TG_UPSPEC_MAX 16 /* upstreams in one list */
#define TG_UPSPEC_URL_MAX 512

struct tg_upspec {
    char url[TG_UPSPEC_URL_MAX]; /* without a trailing '/' */
    int64_t weight;              /* 1 unless given; the last tie-breaker */
    char key_file[1024];         /* "" for none */
    char models[512];            /* comma list; "" serves every model */
};

/* Parses a list. An entry starts at each http:// or https:// that begins
 * the text or follows a blank, newline or comma, so "u1,u2" (what the admin
 * page has always taken), one entry a line, and `models=a,b` all read as
 * meant. Fills at most TG_UPSPEC_MAX entries and sets *n (0 for an empty
 * text). Anything else (an unknown option, a bad weight) is an error. */
enum tg_code tg_upspec_parse(const char *text, struct tg_upspec *out, int *n,
                             struct tg_err *err) TG_MUSTCHECK;

/* True when the entry serves `model`: no models= list, an empty model (a
 * request that names none), the name with or without ":latest", or a
 * "family:*" pattern. */
bool tg_upspec_serves(const struct tg_upspec *s, const char *model);

#endif
