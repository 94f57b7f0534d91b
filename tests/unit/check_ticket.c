/* ticket: sign/verify, every single-byte change refused, expiry, secret. */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "codec.h"
#include "ticket.h"
#include "unit.h"

static struct tg_secret secret = {.len = 20};
static const char *const M = "POST", *const P = "/api/chat";
static const struct tg_ticket t0 = {123456, 42, 2048, 2000000000};

static void
sign(const struct tg_secret *s, const struct tg_ticket *t, char *out)
{
    struct tg_err err = {0};

    ck_assert_int_eq(tg_ticket_sign(s, t, M, P, out, TG_TICKET_MAX, &err),
                     TG_OK);
}

static void
setup(void)
{
    memcpy(secret.bytes, "0123456789abcdefghij", 20);
}

START_TEST(signed_ticket_verifies_with_its_fields)
{
    char s[TG_TICKET_MAX];
    struct tg_ticket t;
    struct tg_err err = {0};

    sign(&secret, &t0, s);
    ck_assert_int_eq(tg_ticket_verify(&secret, s, M, P, 1000, &t, &err), TG_OK);
    ck_assert_int_eq(t.reservation_id, 123456);
    ck_assert_int_eq(t.key_id, 42);
    ck_assert_int_eq(t.tokens, 2048);
    ck_assert_int_eq(t.expires, 2000000000);
}
END_TEST

START_TEST(every_single_byte_change_is_refused)
{
    char s[TG_TICKET_MAX], bad[TG_TICKET_MAX];
    struct tg_ticket t;
    size_t i, n;
    int c;

    sign(&secret, &t0, s);
    n = strlen(s);
    for (i = 0; i < n; i++) {
        for (c = 1; c < 256; c++) {
            struct tg_err err = {0};

            if ((char)c == s[i])
                continue;
            memcpy(bad, s, n + 1);
            bad[i] = (char)c;
            ck_assert_msg(tg_ticket_verify(&secret, bad, M, P, 1000, &t,
                                           &err) == TG_E_FORBIDDEN,
                          "byte %zu -> %d accepted", i, c);
        }
    }
}
END_TEST

START_TEST(truncated_or_extended_ticket_is_refused)
{
    char s[TG_TICKET_MAX], bad[TG_TICKET_MAX + 8];
    struct tg_ticket t;
    struct tg_err err = {0};
    size_t n;

    sign(&secret, &t0, s);
    for (n = 0; n < strlen(s); n++) {
        memcpy(bad, s, n);
        bad[n] = '\0';
        ck_assert_int_eq(tg_ticket_verify(&secret, bad, M, P, 1000, &t, &err),
                         TG_E_FORBIDDEN);
    }
    snprintf(bad, sizeof(bad), "%sA", s);
    ck_assert_int_eq(tg_ticket_verify(&secret, bad, M, P, 1000, &t, &err),
                     TG_E_FORBIDDEN);
    ck_assert_int_eq(tg_ticket_verify(&secret, NULL, M, P, 1000, &t, &err),
                     TG_E_FORBIDDEN);
}
END_TEST

START_TEST(expired_ticket_is_refused)
{
    char s[TG_TICKET_MAX];
    struct tg_ticket t;
    struct tg_err err = {0};

    sign(&secret, &t0, s);
    ck_assert_int_eq(tg_ticket_verify(&secret, s, M, P, 1999999999, &t, &err),
                     TG_OK);
    ck_assert_int_eq(tg_ticket_verify(&secret, s, M, P, 2000000000, &t, &err),
                     TG_E_FORBIDDEN);
    ck_assert_str_eq(err.msg, "ticket expired");
}
END_TEST

START_TEST(ticket_from_another_secret_is_refused)
{
    struct tg_secret other = secret;
    char s[TG_TICKET_MAX];
    struct tg_ticket t;
    struct tg_err err = {0};

    other.bytes[0] ^= 1;
    sign(&other, &t0, s);
    ck_assert_int_eq(tg_ticket_verify(&secret, s, M, P, 1000, &t, &err),
                     TG_E_FORBIDDEN);
}
END_TEST

START_TEST(respelled_numbers_are_refused)
{
    char s[TG_TICKET_MAX], bad[TG_TICKET_MAX + 2];
    struct tg_ticket t;
    struct tg_err err = {0};

    sign(&secret, &t0, s);
    snprintf(bad, sizeof(bad), "0%s", s); /* leading zero, same value */
    ck_assert_int_eq(tg_ticket_verify(&secret, bad, M, P, 1000, &t, &err),
                     TG_E_FORBIDDEN);
    snprintf(bad, sizeof(bad), "+%s", s);
    ck_assert_int_eq(tg_ticket_verify(&secret, bad, M, P, 1000, &t, &err),
                     TG_E_FORBIDDEN);
}
END_TEST

START_TEST(a_ticket_is_good_only_for_its_method_and_path)
{
    static const char *const other[][2] = {
        {"GET", "/api/chat"},    {"DELETE", "/api/chat"}, {"post", "/api/chat"},
        {"POST", "/api/delete"}, {"POST", "/api/chat/"},  {"POST", "/api/cha"},
        {"POST", "/api/chatx"},  {"POS", "T/api/chat"},   {"POST/api", "/chat"},
        {"", "POST/api/chat"},
    };
    char s[TG_TICKET_MAX];
    struct tg_ticket t;
    struct tg_err err = {0};
    size_t i;

    sign(&secret, &t0, s);
    for (i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        tg_err_clear(&err);
        ck_assert_msg(tg_ticket_verify(&secret, s, other[i][0], other[i][1],
                                       1000, &t, &err) == TG_E_FORBIDDEN,
                      "%s %s accepted", other[i][0], other[i][1]);
    }
    ck_assert_int_eq(tg_ticket_verify(&secret, s, NULL, P, 1000, &t, &err),
                     TG_E_FORBIDDEN);
    ck_assert_int_eq(tg_ticket_verify(&secret, s, M, P, 1000, &t, &err), TG_OK);
}
END_TEST

/* The tg1 format (fields only, no request): refused now. */
START_TEST(a_tg1_ticket_is_refused)
{
    const char *f = "123456.42.2048.2000000000";
    unsigned char msg[64], m[32];
    unsigned int len = 0;
    char s[TG_TICKET_MAX];
    struct tg_ticket t;
    struct tg_err err = {0};
    int n;

    n = snprintf((char *)msg, sizeof(msg), "tg1.%s", f);
    ck_assert_ptr_nonnull(HMAC(EVP_sha256(), secret.bytes, (int)secret.len, msg,
                               (size_t)n, m, &len));
    n = snprintf(s, sizeof(s), "%s.", f);
    tg_b64url_encode(m, sizeof(m), s + n, sizeof(s) - (size_t)n);
    ck_assert_int_eq(tg_ticket_verify(&secret, s, M, P, 1000, &t, &err),
                     TG_E_FORBIDDEN);
    /* and the same fields signed now do verify: only the format differs */
    sign(&secret, &t0, s);
    ck_assert_int_eq(strncmp(s, f, strlen(f)), 0);
    ck_assert_int_eq(tg_ticket_verify(&secret, s, M, P, 1000, &t, &err), TG_OK);
}
END_TEST

/* Found by tests/fuzz/fuzz_ticket.c: sign() wrote 19-digit fields that
 * verify() (1-18 digits) then refused. */
START_TEST(sign_refuses_what_verify_would_refuse)
{
    const struct tg_ticket big[] = {
        {INT64_C(1000000000000000000), 1, 1, 2000000000},
        {1, INT64_MAX, 1, 2000000000},
        {1, 1, INT64_C(1000000000000000000), 2000000000},
        {1, 1, 1, INT64_MAX},
    };
    const struct tg_ticket top = {
        INT64_C(999999999999999999), INT64_C(999999999999999999),
        INT64_C(999999999999999999), INT64_C(999999999999999999)};
    char s[TG_TICKET_MAX];
    struct tg_ticket t;
    struct tg_err err = {0};
    size_t i;

    for (i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        tg_err_clear(&err);
        ck_assert_int_eq(
            tg_ticket_sign(&secret, &big[i], M, P, s, sizeof(s), &err),
            TG_E_INTERNAL);
    }
    sign(&secret, &top, s);
    ck_assert_int_eq(tg_ticket_verify(&secret, s, M, P, 1000, &t, &err), TG_OK);
    ck_assert(memcmp(&t, &top, sizeof(t)) == 0);
}
END_TEST

static Suite *
ticket_suite(void)
{
    Suite *s = suite_create("ticket");
    const struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"a signed ticket verifies with its fields",
         signed_ticket_verifies_with_its_fields},
        {"every single-byte change is refused",
         every_single_byte_change_is_refused},
        {"a truncated or extended ticket is refused",
         truncated_or_extended_ticket_is_refused},
        {"an expired ticket is refused", expired_ticket_is_refused},
        {"a ticket from another secret is refused",
         ticket_from_another_secret_is_refused},
        {"re-spelled numbers are refused", respelled_numbers_are_refused},
        {"sign refuses what verify would refuse",
         sign_refuses_what_verify_would_refuse},
        {"a ticket is good only for its method and path",
         a_ticket_is_good_only_for_its_method_and_path},
        {"a tg1 ticket is refused", a_tg1_ticket_is_refused},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_add_test(tc, cases[i].fn);
        suite_add_tcase(s, tc);
    }
    return s;
}

TG_CHECK_MAIN(ticket_suite)
