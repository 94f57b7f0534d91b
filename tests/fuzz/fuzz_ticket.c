/* Tickets: the input as a presented ticket (anything that verifies must be
 * the one spelling sign() gives its fields), then as the fields of a ticket
 * that is signed, verified (for its own request only) and changed one byte
 * at a time. base64url, which
 * carries the MAC, is round-tripped on the way. */
#include <config.h>

#include <string.h>

#include "codec.h"
#include "fuzz.h"
#include "ticket.h"

#define NOW 1700000000

/* The request the tickets are for; another one must never verify. */
static const char *const M = "GET", *const P = "/api/tags";

static struct tg_secret secret = {.bytes = "fuzzing-secret-0123456789abcdef",
                                  .len = 31};

static int64_t
field(const uint8_t *p, uint8_t shift)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)((v & INT64_MAX) >> (shift % 64)); /* small ones too */
}

/* Verify the input as a string: it passes only as sign()'s own output. */
static void
check_presented(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1), again[TG_TICKET_MAX];
    struct tg_ticket t, sentinel;
    struct tg_err err = {0};
    enum tg_code rc;

    CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    memset(&sentinel, 0xa5, sizeof(sentinel));
    t = sentinel;
    rc = tg_ticket_verify(&secret, s, M, P, NOW, &t, &err);
    if (rc == TG_OK) {
        CHECK(t.expires > NOW);
        CHECK(tg_ticket_sign(&secret, &t, M, P, again, sizeof(again), &err) ==
              TG_OK);
        CHECK(strcmp(again, s) == 0);
    } else {
        CHECK(rc == TG_E_FORBIDDEN && err.code == TG_E_FORBIDDEN);
        CHECK(memcmp(&t, &sentinel, sizeof(t)) == 0); /* untouched */
        CHECK(strchr(err.msg, '\n') == NULL);
    }
    free(s);
}

/* Fields from the input: what sign() accepts, verify() must accept back,
 * and no single-byte change of it may verify. */
static void
check_round_trip(const uint8_t *data, size_t size)
{
    struct tg_ticket in, out;
    struct tg_err err = {0};
    char s[TG_TICKET_MAX], bad[TG_TICKET_MAX];
    enum tg_code rc;
    size_t n, pos;

    if (size < 36)
        return;
    in.reservation_id = field(data, data[32]);
    in.key_id = field(data + 8, data[33]);
    in.tokens = field(data + 16, data[34]);
    in.expires = field(data + 24, data[35]);
    if (tg_ticket_sign(&secret, &in, M, P, s, sizeof(s), &err) != TG_OK)
        return;
    n = strlen(s);
    CHECK(n < TG_TICKET_MAX);
    memset(&out, 0, sizeof(out));
    rc = tg_ticket_verify(&secret, s, M, P, NOW, &out, &err);
    if (in.expires <= NOW) {
        CHECK(rc == TG_E_FORBIDDEN);
        rc = tg_ticket_verify(&secret, s, M, P, in.expires - 1, &out, &err);
    }
    CHECK(rc == TG_OK);
    CHECK(memcmp(&in, &out, sizeof(in)) == 0);
    CHECK(tg_ticket_verify(&secret, s, "DELETE", "/api/delete", 0, &out,
                           &err) == TG_E_FORBIDDEN);
    CHECK(tg_ticket_verify(&secret, s, M, "/api/tags/", 0, &out, &err) ==
          TG_E_FORBIDDEN);
    pos = size > 36 ? data[36] % n : 0;
    memcpy(bad, s, n + 1);
    bad[pos] = (char)(size > 37 && data[37] != 0 ? data[37] : 0x7f);
    if (bad[pos] == s[pos])
        bad[pos] ^= 0x01;
    CHECK(tg_ticket_verify(&secret, bad, M, P, 0, &out, &err) ==
          TG_E_FORBIDDEN);
}

/* Decoding then encoding gives the input back: one spelling per value. */
static void
check_b64url(const uint8_t *data, size_t size)
{
    unsigned char *dec = malloc(size + 1);
    char *enc = malloc(tg_b64url_len(size) + 1);
    size_t n, m;

    CHECK(dec != NULL && enc != NULL);
    n = tg_b64url_decode((const char *)data, size, dec, size);
    if (n != (size_t)-1) {
        CHECK(n <= size);
        m = tg_b64url_encode(dec, n, enc, tg_b64url_len(n) + 1);
        CHECK(m == size && memcmp(enc, data, size) == 0);
    }
    m = tg_b64url_encode(data, size, enc, tg_b64url_len(size) + 1);
    CHECK(m == tg_b64url_len(size));
    CHECK(tg_b64url_decode(enc, m, dec, size) == size);
    CHECK(memcmp(dec, data, size) == 0);
    free(enc);
    free(dec);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_presented(data, size);
    check_round_trip(data, size);
    check_b64url(data, size);
    return 0;
}
