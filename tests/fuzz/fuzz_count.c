/* The stream token counter, fed the same body whole and then cut at a
 * position the input chooses and byte by byte after it, for each wire format
 * with and without strip_usage, then again with a client that goes away.
 *
 * Input: bytes 0-1 the cut, byte 2 which emit call fails, the rest the body.
 * (An event longer than RELAY_COUNT_EVENT_MAX is check_count's: repeating
 * the body past 64 KiB here made every such input cost ~100 ms.)
 * Invariants: the cut changes neither the bytes emitted nor the counts;
 * without stripping (and without usage to strip) the client gets exactly
 * the body; counts are never negative; after a failed emit nothing more is
 * emitted, and what was counted is no more than the full run counted. */
#include <config.h>

#include <string.h>

#include "count.h"
#include "fuzz.h"

struct sink {
    char *buf;
    size_t len, cap;
    unsigned calls;
    unsigned fail_at; /* the call that fails, 1-based; 0: none */
    bool failed;
};

static int
emit(void *arg, const char *p, size_t n)
{
    struct sink *s = arg;

    CHECK(!s->failed); /* the counter must stop after a -1 */
    CHECK(n > 0 && p != NULL);
    if (++s->calls == s->fail_at) {
        s->failed = true;
        return -1;
    }
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2;
        s->buf = realloc(s->buf, s->cap);
        CHECK(s->buf != NULL);
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

static void
usage_ok(const struct relay_usage *u)
{
    CHECK(u->prompt_tokens >= 0 && u->completion_tokens >= 0);
    CHECK(u->content_chunks >= 0);
    CHECK(memchr(u->model, '\0', sizeof(u->model)) != NULL);
    CHECK(u->counts_seen ||
          (u->prompt_tokens == 0 && u->completion_tokens == 0));
}

static bool
usage_eq(const struct relay_usage *a, const struct relay_usage *b)
{
    return a->prompt_tokens == b->prompt_tokens &&
           a->completion_tokens == b->completion_tokens &&
           a->counts_seen == b->counts_seen && a->done_seen == b->done_seen &&
           a->error_seen == b->error_seen &&
           a->content_chunks == b->content_chunks &&
           strcmp(a->model, b->model) == 0;
}

/* Feeds body in pieces of `step` bytes, the first one `cut` bytes long. */
static int
run(enum relay_wire wire, bool strip, const char *body, size_t len, size_t cut,
    size_t step, struct sink *s, struct relay_usage *u)
{
    struct relay_count c;
    size_t off = 0, n;
    int rc = 0;

    relay_count_init(&c, wire, strip);
    CHECK(relay_count_feed(&c, NULL, 0, emit, s) == 0);
    while (off < len) {
        n = off == 0 && cut > 0 ? cut : step;
        if (n > len - off)
            n = len - off;
        if (relay_count_feed(&c, body + off, n, emit, s) != 0) {
            rc = -1;
            break;
        }
        off += n;
    }
    if (rc == 0)
        rc = relay_count_finish(&c, emit, s);
    if (rc == 0)
        CHECK(relay_count_finish(&c, emit, s) == 0); /* idempotent */
    CHECK(rc == (s->failed ? -1 : 0));
    if (rc != 0)
        CHECK(relay_count_feed(&c, body, len, emit, s) == -1);
    relay_count_result(&c, u);
    relay_count_free(&c);
    relay_count_free(&c); /* safe twice */
    usage_ok(u);
    return rc;
}

static void
check_wire(enum relay_wire wire, bool strip, const char *body, size_t len,
           size_t cut, unsigned fail_at)
{
    struct sink whole = {0}, split = {0}, failing = {0};
    struct relay_usage uw, us, uf;
    size_t small = len > 4096 ? 4093 : 1; /* byte by byte, unless slow */
    bool untouched = !strip || wire != RELAY_WIRE_SSE ||
                     (memmem(body, len, "usage", 5) == NULL &&
                      memchr(body, '\\', len) == NULL);

    CHECK(run(wire, strip, body, len, 0, len > 0 ? len : 1, &whole, &uw) == 0);
    CHECK(run(wire, strip, body, len, cut, small, &split, &us) == 0);
    CHECK(usage_eq(&uw, &us));
    CHECK(whole.len == split.len);
    CHECK(whole.len == 0 || memcmp(whole.buf, split.buf, whole.len) == 0);
    if (untouched)
        CHECK(whole.len == len &&
              (len == 0 || memcmp(whole.buf, body, len) == 0));

    /* The client leaves at emit call fail_at (feeding in small pieces). */
    failing.fail_at = fail_at;
    (void)run(wire, strip, body, len, 0, small, &failing, &uf);
    CHECK(failing.len <= whole.len);
    CHECK(failing.len == 0 || memcmp(failing.buf, whole.buf, failing.len) == 0);
    CHECK(uf.content_chunks <= uw.content_chunks);
    CHECK(!uf.done_seen || uw.done_seen);
    CHECK(!uf.error_seen || uw.error_seen);
    if (!failing.failed)
        CHECK(usage_eq(&uf, &uw));

    free(whole.buf);
    free(split.buf);
    free(failing.buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len, cut;
    unsigned fail_at;
    char *body;

    if (size < 3)
        return 0;
    len = size - 3;
    body = malloc(len > 0 ? len : 1); /* exact: ASan sees an over-read */
    CHECK(body != NULL);
    memcpy(body, data + 3, len);
    cut = (size_t)(data[0] << 8 | data[1]) % (len + 1);
    fail_at = data[2];
    check_wire(RELAY_WIRE_JSON, false, body, len, cut, fail_at);
    check_wire(RELAY_WIRE_JSON, true, body, len, cut, fail_at);
    check_wire(RELAY_WIRE_NDJSON, false, body, len, cut, fail_at);
    check_wire(RELAY_WIRE_NDJSON, true, body, len, cut, fail_at);
    check_wire(RELAY_WIRE_SSE, false, body, len, cut, fail_at);
    check_wire(RELAY_WIRE_SSE, true, body, len, cut, fail_at);
    free(body);
    return 0;
}
