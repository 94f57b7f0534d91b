/* The request body's way in (intake.h): a deadline on every read of the
 * FastCGI connection, and a bounded number of body reads per key, so slow
 * clients cost a thread for body_timeout at most and only a few at once. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "clock.h"
#include "intake.h"

/* One row per key reading a body; threads are at most 1024 (conf.c), so
 * the table never fills while every row is a read in progress. */
#define SLOTS 1024

struct slot {
    int64_t key_id;
    int64_t reads; /* 0: the row is free */
};

static struct slot slots[SLOTS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

int64_t
tg_intake_due(const struct tg_intake_limits *lim, int64_t t0, size_t got)
{
    int64_t due = t0 + lim->timeout_ms, by_rate;

    if (lim->min_rate <= 0)
        return due;
    by_rate = t0 + TG_INTAKE_GRACE_MS + (int64_t)got * 1000 / lim->min_rate;
    return by_rate < due ? by_rate : due;
}

/* Bytes libfcgi already holds for the current record: reading them makes
 * no system call. fcgiapp.h calls a stream's state private, but this
 * difference is FCGX_GetStr's own fast-path test; without it a deadline
 * could only be checked byte by byte, since FCGX_GetStr(n) keeps reading
 * until it has n bytes. */
static size_t
buffered(const FCGX_Stream *in)
{
    return in->stop > in->rdNext ? (size_t)(in->stop - in->rdNext) : 0;
}

/* SO_RCVTIMEO on the FastCGI connection (0: none). fcgiapp.h files ipcFd
 * under "Don't use anything below here"; it is the only handle on the
 * reads libfcgi makes. */
static int
arm(FCGX_Request *fcgi, int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
                         .tv_usec = (suseconds_t)(ms % 1000) * 1000};

    return setsockopt(fcgi->ipcFd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* Why the stream ended: its end record, a receive timeout (libfcgi keeps
 * read(2)'s EAGAIN as the stream's error), or anything else; with `peek`,
 * _BROKEN when it has not ended yet. */
static enum tg_intake_end
ended(FCGX_Stream *in, bool peek)
{
    int e = FCGX_GetError(in);

    if (peek && (buffered(in) > 0 || !FCGX_HasSeenEOF(in)))
        return TG_INTAKE_BROKEN;
    if (e == 0)
        return TG_INTAKE_OK;
    return e == EAGAIN || e == EWOULDBLOCK ? TG_INTAKE_SLOW : TG_INTAKE_BROKEN;
}

enum tg_intake_end
tg_intake_read(FCGX_Request *fcgi, struct tg_buf *body,
               const struct tg_intake_limits *lim)
{
    FCGX_Stream *in = fcgi->in;
    enum tg_intake_end end = TG_INTAKE_OK;
    int64_t t0 = tg_clock_ms(), left;
    size_t got = 0;
    bool armed = false;
    char chunk[16384];
    size_t avail;
    int n;

    for (;;) {
        avail = buffered(in);
        if (avail == 0 && FCGX_HasSeenEOF(in)) {
            end = ended(in, false);
            break;
        }
        if (avail > 0) {
            n = FCGX_GetStr(
                chunk, avail < sizeof(chunk) ? (int)avail : (int)sizeof(chunk),
                in);
        } else {
            /* One byte: FCGX_GetStr fills the buffer once, with one record's
             * content, in reads that each end by the deadline. */
            left = tg_intake_due(lim, t0, got) - tg_clock_ms();
            if (left <= 0 || arm(fcgi, left) != 0) {
                end = left <= 0 ? TG_INTAKE_SLOW : TG_INTAKE_BROKEN;
                break;
            }
            armed = true;
            n = FCGX_GetStr(chunk, 1, in);
        }
        if (n <= 0) {
            end = ended(in, false);
            break;
        }
        got += (size_t)n;
        if (body != NULL && tg_buf_append(body, chunk, (size_t)n) != 0) {
            end = TG_INTAKE_TOO_LARGE;
            break;
        }
    }
    /* A kept-alive connection's next request must not inherit it. */
    if (armed)
        (void)arm(fcgi, 0);
    return end;
}

void
tg_intake_finish(FCGX_Request *fcgi, const struct tg_intake_limits *lim,
                 bool abandon)
{
    if (fcgi->ipcFd < 0 || ended(fcgi->in, true) == TG_INTAKE_OK)
        return;
    if (!abandon && tg_intake_read(fcgi, NULL, lim) == TG_INTAKE_OK)
        return;
    (void)shutdown(fcgi->ipcFd, SHUT_RD);
}

bool
tg_intake_enter(int64_t key_id, int64_t max)
{
    size_t i, row = SLOTS;
    bool ok = false;

    pthread_mutex_lock(&slots_lock);
    for (i = 0; i < SLOTS; i++) {
        if (slots[i].reads > 0 && slots[i].key_id == key_id) {
            row = i;
            break;
        }
        if (slots[i].reads == 0 && row == SLOTS)
            row = i;
    }
    if (row < SLOTS && slots[row].reads < max) {
        slots[row].key_id = key_id;
        slots[row].reads++;
        ok = true;
    }
    pthread_mutex_unlock(&slots_lock);
    return ok;
}

void
tg_intake_leave(int64_t key_id)
{
    size_t i;

    pthread_mutex_lock(&slots_lock);
    for (i = 0; i < SLOTS; i++)
        if (slots[i].reads > 0 && slots[i].key_id == key_id) {
            slots[i].reads--;
            break;
        }
    pthread_mutex_unlock(&slots_lock);
}
