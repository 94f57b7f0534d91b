/* The request body's way in: read within a deadline and a minimum rate, so
 * a client that sends slowly cannot hold a relay thread for longer than
 * body_timeout, and with only a few such reads at once per key (and for
 * keys that come in the body), so one key cannot hold them all. */
#ifndef TG_INTAKE_H
#define TG_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fcgiapp.h>

#include "buf.h"

/* Before the minimum rate counts: a client's first bytes may follow its
 * headers after a TLS round trip or two, and a short body needs no rate. */
#define TG_INTAKE_GRACE_MS 2000

struct tg_intake_limits {
    int64_t timeout_ms; /* the whole body within this, from the first read */
    int64_t min_rate;   /* bytes per second after the grace; 0: none */
};

enum tg_intake_end {
    TG_INTAKE_OK,        /* the whole body is in `body` */
    TG_INTAKE_TOO_LARGE, /* past the buffer's max */
    TG_INTAKE_SLOW,      /* the deadline or the minimum rate passed */
    TG_INTAKE_BROKEN     /* the web server broke off the body */
};

/* The moment (tg_clock_ms) by which more than `got` bytes must have come,
 * for a body whose reading began at t0: the earlier of the total deadline
 * and the point where `got` falls below the minimum rate. */
int64_t tg_intake_due(const struct tg_intake_limits *lim, int64_t t0,
                      size_t got);

/* Reads the request body of `fcgi` into `body` (NULL: drops it) until its
 * end. No read
 * blocks past tg_intake_due(): the FastCGI connection's receive timeout
 * is set before each read and cleared again before this returns. After
 * TG_INTAKE_SLOW or _BROKEN the input stream is closed with an error,
 * so FCGX_Finish_r closes the connection: the thread's next request starts
 * on a fresh one. */
enum tg_intake_end tg_intake_read(FCGX_Request *fcgi, struct tg_buf *body,
                                  const struct tg_intake_limits *lim);

/* Before FCGX_Finish_r, for a request whose body was not read to its end:
 * libfcgi's close would read and drop what the web server still sends for
 * as long as it keeps coming within 2 s, so a client sending a byte a
 * second would hold the thread there. Reads the rest (to nowhere) within
 * `lim`, so that a web server that must send the whole body before it
 * reads the answer (Apache, Caddy) can deliver it; with `abandon`, or past
 * the deadline, stops reading instead, and such a web server gives its
 * client an error of its own. */
void tg_intake_finish(FCGX_Request *fcgi, const struct tg_intake_limits *lim,
                      bool abandon);

/* Takes one of the body reads `key_id` may have at once (`max`), key_id 0
 * standing for every request whose key is in its body. false when all are
 * taken (the caller answers at once instead); every true is matched by one
 * tg_intake_leave() with the same key_id. Thread-safe. */
bool tg_intake_enter(int64_t key_id, int64_t max);
void tg_intake_leave(int64_t key_id);

#endif
