/* One transfer to the upstream with libcurl, streamed back through FastCGI
 * as it arrives, counted on the way. */
#ifndef RELAY_UPSTREAM_H
#define RELAY_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "buf.h"
#include "count.h"
#include "err.h"

struct relay_xfer {
    /* set by the caller */
    FCGX_Request *fcgi;
    bool strip_usage;     /* hide the usage chunk we asked for (SSE) */
    long connect_timeout; /* seconds */
    long idle_timeout;    /* seconds without upstream data */
    /* Called about every tick_every seconds while the transfer runs (the
     * relay keeps its reservation alive); may be NULL. */
    void (*tick)(void *arg);
    void *tick_arg;
    long tick_every;
    /* When set, the answer is collected here (bounded) instead of relayed,
     * for the caller to rewrite and send with relay_upstream_reply(). */
    struct tg_buf *collect;
    /* Header lines (each ending CRLF) our answer carries: CORS; may be "". */
    const char *extra_headers;
    /* When set, an answer of 502 or 503 (and 401 or 429 when hold_auth:
     * we sent a key of our own) is kept here (bounded) and not sent, so
     * that the caller may try elsewhere: `held` says so. */
    struct tg_buf *hold;
    bool hold_auth;
    /* filled by the transfer */
    long status; /* the upstream's HTTP status, 0 if none */
    char content_type[128];
    bool started;      /* the upstream's answer began */
    bool headers_sent; /* our Status line went out: errors can only end it */
    bool client_gone;
    bool held;        /* the answer went to `hold` */
    long retry_after; /* the upstream's Retry-After in seconds, 0 if none */
    int64_t ttfb_ms;  /* to the first upstream body byte, -1 if none */
    struct relay_count count;
};

/* Runs the transfer; `headers` and `body` are borrowed. TG_OK when the
 * upstream answered (whatever its status) and the answer was relayed or the
 * client left; TG_E_UPSTREAM when it could not be reached or broke,
 * TG_E_TIMEOUT when it went silent. */
enum tg_code relay_upstream_run(CURL *curl, const char *method, const char *url,
                                struct curl_slist *headers, const char *body,
                                size_t len, struct relay_xfer *x,
                                struct tg_err *err) TG_MUSTCHECK;

/* Sends the upstream's status and content type with `body`, for an answer
 * that was collected. -1 when the client is gone. */
int relay_upstream_reply(struct relay_xfer *x, const char *body, size_t len);

/* True when the web server closed our FastCGI connection: after the body
 * has been read, the server sends nothing more, so readable means closed. */
bool relay_peer_closed(int fd);

/* Puts n bytes to the client and flushes: time to first token stays the
 * upstream's. -1 once the web server has dropped us. */
int relay_emit(void *fcgi_out, const char *p, size_t n);

#endif
