/* libcurl transfer. The write callback relays each upstream chunk at once
 * (one flush per chunk); the progress callback, which also runs during
 * upstream silences, notices a client that left and aborts the transfer, so
 * Ollama stops generating. */
#include <config.h>

#include <limits.h>
#include <stdlib.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "upstream.h"

int
relay_emit(void *fcgi_out, const char *p, size_t n)
{
    FCGX_Stream *out = fcgi_out;

    if (n > INT_MAX || FCGX_PutStr(p, (int)n, out) != (int)n)
        return -1;
    return FCGX_FFlush(out) < 0 ? -1 : 0;
}

bool
relay_peer_closed(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};

    return poll(&p, 1, 0) > 0 &&
           (p.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* Our response head, once: the upstream's status and content type. */
static int
send_head(struct relay_xfer *x)
{
    char head[1536];
    int n;

    x->headers_sent = true;
    n = snprintf(head, sizeof(head),
                 "Status: %ld\r\nContent-Type: %s\r\n"
                 "X-Accel-Buffering: no\r\nCache-Control: no-cache\r\n%s\r\n",
                 x->status,
                 x->content_type[0] ? x->content_type : "application/json",
                 x->extra_headers != NULL ? x->extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof(head))
        return -1;
    return relay_emit(x->fcgi->out, head, (size_t)n);
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
    struct relay_xfer *x = arg;
    size_t len = size * n, v;

    if (len > 13 && strncasecmp(p, "Content-Type:", 13) == 0) {
        for (v = 13; v < len && (p[v] == ' ' || p[v] == '\t'); v++)
            ;
        while (len > v && (p[len - 1] == '\r' || p[len - 1] == '\n'))
            len--;
        snprintf(x->content_type, sizeof(x->content_type), "%.*s",
                 (int)(len - v), p + v);
    } else if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        x->retry_after = strtol(p + 12, NULL, 10); /* a date reads as 0 */
        if (x->retry_after < 0 || x->retry_after > 86400)
            x->retry_after = 0;
    } else if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
        x->content_type[0] = '\0'; /* a new response (after a 100) starts */
        x->retry_after = 0;
    }
    return size * n;
}

static int
collect(void *arg, const char *p, size_t n)
{
    return tg_buf_append(arg, p, n);
}

static void
start_body(struct relay_xfer *x, CURL *curl, int64_t t0)
{
    x->started = true;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &x->status);
    x->ttfb_ms = tg_clock_ms() - t0;
    relay_count_init(&x->count, relay_count_wire_for(x->content_type),
                     x->strip_usage);
    x->held = x->hold != NULL &&
              (x->status == 502 || x->status == 503 ||
               (x->hold_auth && (x->status == 401 || x->status == 429)));
    if (x->collect == NULL && !x->held && send_head(x) != 0)
        x->client_gone = true;
}

/* Where counted bytes go: the client, or the collection buffer. */
static int
deliver(struct relay_xfer *x, const char *p, size_t n, bool finish)
{
    relay_emit_fn fn = x->collect != NULL ? collect : relay_emit;
    void *arg = x->collect != NULL ? (void *)x->collect : (void *)x->fcgi->out;

    return finish ? relay_count_finish(&x->count, fn, arg)
                  : relay_count_feed(&x->count, p, n, fn, arg);
}

int
relay_upstream_reply(struct relay_xfer *x, const char *body, size_t len)
{
    if (send_head(x) != 0 || (len > 0 && relay_emit(x->fcgi->out, body, len)))
        return -1;
    return 0;
}

/* libcurl calls the progress callback many times a millisecond while data
 * flows; a poll(2) each time was a dozen system calls per small request.
 * A client that left is noticed within this, or at the next write. */
#define PEER_CHECK_MS 50

struct cb {
    struct relay_xfer *x;
    CURL *curl;
    int64_t t0;
    int64_t last_data; /* when the upstream last sent something */
    int64_t last_tick;
    int64_t last_peer_check;
    bool silent; /* it stayed silent past idle_timeout */
};

static size_t
on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct cb *c = arg;
    size_t n = size * nmemb;

    c->last_data = tg_clock_ms();
    if (!c->x->started)
        start_body(c->x, c->curl, c->t0);
    if (c->x->held) {
        tg_buf_append(c->x->hold, p, n); /* past its bound: cut, not failed */
        return n;
    }
    if (c->x->client_gone || deliver(c->x, p, n, false) != 0) {
        c->x->client_gone = true;
        return n == 0 ? 1 : 0; /* a short count aborts the transfer */
    }
    return n;
}

static int
on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
            curl_off_t un)
{
    struct cb *c = arg;
    int64_t now = tg_clock_ms();

    (void)dt, (void)dn, (void)ut, (void)un;
    if (now - c->last_peer_check >= PEER_CHECK_MS) {
        c->last_peer_check = now;
        if (relay_peer_closed(c->x->fcgi->ipcFd))
            c->x->client_gone = true;
    }
    /* Our own idle timer: libcurl's low-speed check averages over its
     * window and fires several windows late. */
    if (now - c->last_data > c->x->idle_timeout * 1000)
        c->silent = true;
    if (c->x->tick != NULL && now - c->last_tick >= c->x->tick_every * 1000) {
        c->last_tick = now;
        c->x->tick(c->x->tick_arg);
    }
    return c->x->client_gone || c->silent ? 1 : 0;
}

static void
setup(CURL *curl, const char *method, const char *url,
      struct curl_slist *headers, const char *body, size_t len,
      struct relay_xfer *x, struct cb *c, char *errbuf)
{
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    /* The path is normalised already (lib/path.h): what the authorizer
     * classified goes upstream byte for byte. */
    curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, x->connect_timeout);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0 || len > 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body != NULL ? body : "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
}

enum tg_code
relay_upstream_run(CURL *curl, const char *method, const char *url,
                   struct curl_slist *headers, const char *body, size_t len,
                   struct relay_xfer *x, struct tg_err *err)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    int64_t t0 = tg_clock_ms();
    struct cb c = {x, curl, t0, t0, t0, t0, false};
    CURLcode cc;

    x->ttfb_ms = -1;
    x->held = false;
    x->retry_after = 0;
    setup(curl, method, url, headers, body, len, x, &c, errbuf);
    cc = curl_easy_perform(curl);
    if (!x->started && cc == CURLE_OK)
        start_body(x, curl, c.t0); /* an empty body: the head still goes */
    if (x->started && !x->held && !x->client_gone &&
        deliver(x, NULL, 0, true) != 0)
        x->client_gone = true;
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
    if (cc == CURLE_OK || x->client_gone)
        return TG_OK;
    if (cc == CURLE_OPERATION_TIMEDOUT || c.silent)
        return tg_err_set(err, TG_E_TIMEOUT, "upstream %s: %s", url,
                          errbuf[0] ? errbuf : curl_easy_strerror(cc));
    return tg_err_set(err, TG_E_UPSTREAM, "upstream %s: %s", url,
                      errbuf[0] ? errbuf : curl_easy_strerror(cc));
}
