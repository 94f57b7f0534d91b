/* Keys: generation, parsing, checksum, hashing and masking. */
#include <config.h>

#include <string.h>

#include "keys.h"
#include "unit.h"

static const char b62[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static void
make_key(const char *prefix, char *out, size_t len)
{
    struct tg_err err = {0};

    ck_assert_int_eq(tg_keys_generate(prefix, out, len, &err), TG_OK);
}

START_TEST(generated_key_parses_back)
{
    char key[TG_KEY_MAX_LEN + 1];
    size_t i;

    for (i = 0; i < 200; i++) {
        make_key("sk-tg-", key, sizeof(key));
        ck_assert_uint_eq(strlen(key), 6 + TG_KEY_BODY_LEN);
        ck_assert(strncmp(key, "sk-tg-", 6) == 0);
        ck_assert(strspn(key + 6, b62) == TG_KEY_BODY_LEN);
        ck_assert(tg_keys_parse("sk-tg-", key, strlen(key)));
    }
}
END_TEST

START_TEST(two_keys_differ)
{
    char a[TG_KEY_MAX_LEN + 1], b[TG_KEY_MAX_LEN + 1];

    make_key("sk-tg-", a, sizeof(a));
    make_key("sk-tg-", b, sizeof(b));
    ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(every_single_character_change_is_rejected)
{
    char key[TG_KEY_MAX_LEN + 1], bad[TG_KEY_MAX_LEN + 1];
    size_t i, j, n, tried = 0;

    make_key("sk-tg-", key, sizeof(key));
    n = strlen(key);
    for (i = 0; i < n; i++) {
        for (j = 0; j < 256; j++) {
            if ((char)j == key[i])
                continue;
            memcpy(bad, key, n + 1);
            bad[i] = (char)j;
            ck_assert_msg(!tg_keys_parse("sk-tg-", bad, n),
                          "change at %zu to %zu accepted", i, j);
            tried++;
        }
    }
    ck_assert_uint_eq(tried, n * 255);
}
END_TEST

START_TEST(wrong_length_or_prefix_is_rejected)
{
    char key[TG_KEY_MAX_LEN + 1];
    size_t n;

    make_key("sk-tg-", key, sizeof(key));
    n = strlen(key);
    ck_assert(!tg_keys_parse("sk-tg-", key, n - 1));
    ck_assert(!tg_keys_parse("sk-tg-", key, 0));
    ck_assert(!tg_keys_parse("sk-xx-", key, n));
    ck_assert(!tg_keys_parse("sk-tg-", "sk-tg-", 6));
}
END_TEST

START_TEST(configured_prefix_is_used)
{
    char key[TG_KEY_MAX_LEN + 1];
    struct tg_err err = {0};

    make_key("acme_", key, sizeof(key));
    ck_assert(strncmp(key, "acme_", 5) == 0);
    ck_assert(tg_keys_parse("acme_", key, strlen(key)));
    ck_assert(!tg_keys_parse("sk-tg-", key, strlen(key)));
    make_key("", key, sizeof(key));
    ck_assert(tg_keys_parse("", key, strlen(key)));
    ck_assert_int_eq(tg_keys_generate("bad prefix", key, sizeof(key), &err),
                     TG_E_CONFIG);
    ck_assert_int_eq(tg_keys_generate("sk-", key, 10, &err), TG_E_INTERNAL);
}
END_TEST

START_TEST(hash_is_keyed_and_stable)
{
    struct tg_secret s1 = {.len = 16}, s2 = {.len = 16};
    char h1[TG_KEY_HASH_LEN + 1], h2[TG_KEY_HASH_LEN + 1];
    char h3[TG_KEY_HASH_LEN + 1];
    struct tg_err err = {0};

    memcpy(s1.bytes, "0123456789abcdef", 16);
    memcpy(s2.bytes, "0123456789abcdeX", 16);
    ck_assert_int_eq(tg_keys_hash(&s1, "sk-tg-x", 7, h1, &err), TG_OK);
    ck_assert_int_eq(tg_keys_hash(&s1, "sk-tg-x", 7, h2, &err), TG_OK);
    ck_assert_int_eq(tg_keys_hash(&s2, "sk-tg-x", 7, h3, &err), TG_OK);
    ck_assert_str_eq(h1, h2);
    ck_assert_str_ne(h1, h3);
    ck_assert_uint_eq(strlen(h1), 64);
    ck_assert_uint_eq(strspn(h1, "0123456789abcdef"), 64);
    /* openssl dgst -sha256 -hmac 0123456789abcdef <<< "sk-tg-x" (no \n) */
    ck_assert_str_eq(
        h1, "ae54c9ebef267337a257612b2170917e3ccddc7446f7eca64b970848b2634cf7");
}
END_TEST

START_TEST(display_is_eight_characters_after_the_prefix)
{
    char d[TG_KEY_DISPLAY_LEN + 1];

    tg_keys_display("sk-tg-", "sk-tg-ABCDEFGHIJKLMN", d);
    ck_assert_str_eq(d, "ABCDEFGH");
    tg_keys_display("sk-tg-", "sk-tg-AB", d);
    ck_assert_str_eq(d, "AB");
}
END_TEST

START_TEST(mask_never_shows_more_than_the_prefix)
{
    char key[TG_KEY_MAX_LEN + 1], m[TG_KEY_MASK_MAX];
    static const char *const junk[] = {
        "", "a", "abc", "Bearer", "sk-tg-short", "0123456789012345678"};
    size_t i;

    make_key("sk-tg-", key, sizeof(key));
    tg_keys_mask("sk-tg-", key, strlen(key), m, sizeof(m));
    ck_assert_uint_eq(strlen(m), 6 + TG_KEY_DISPLAY_LEN + 3);
    ck_assert(strncmp(m, key, 6 + TG_KEY_DISPLAY_LEN) == 0);
    ck_assert_str_eq(m + 6 + TG_KEY_DISPLAY_LEN, "...");
    for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        size_t n = strlen(junk[i]);

        tg_keys_mask("sk-tg-", junk[i], n, m, sizeof(m));
        ck_assert_uint_le(strlen(m) - 3, n / 3);
        ck_assert_str_eq(m + strlen(m) - 3, "...");
    }
    tg_keys_mask("sk-tg-", key, strlen(key), m, 5);
    ck_assert_uint_eq(strlen(m), 4);
    tg_keys_mask("sk-tg-", "sk-\n\x01zzzzzzzzzzzzzzz", 19, m, sizeof(m));
    ck_assert(strchr(m, '\n') == NULL && strchr(m, '\x01') == NULL);
}
END_TEST

START_TEST(legacy_keys_are_bounded_and_never_shaped_like_ours)
{
    char ours[TG_KEY_MAX_LEN + 1], long_key[TG_KEY_LEGACY_MAX + 2];
    struct tg_err err = {0};

    ck_assert(tg_keys_legacy_ok("sk-tg-", "abcd-123_x.y", 12));
    ck_assert(!tg_keys_legacy_ok("sk-tg-", "sk-tg-short-one", 15));
    ck_assert(tg_keys_legacy_ok("sk-tg-", "sk-other-one", 12));
    ck_assert(tg_keys_legacy_ok("", "abcd-123_x.y", 12));
    ck_assert(!tg_keys_legacy_ok("sk-tg-", "abc1234", 7));
    ck_assert(!tg_keys_legacy_ok("sk-tg-", "abc 12345", 9));
    ck_assert(!tg_keys_legacy_ok("sk-tg-", "abc\"12345", 9));
    ck_assert(!tg_keys_legacy_ok("sk-tg-",
                                 "abc1\0"
                                 "2345",
                                 9));
    memset(long_key, 'a', sizeof(long_key));
    ck_assert(tg_keys_legacy_ok("sk-tg-", long_key, TG_KEY_LEGACY_MAX));
    ck_assert(!tg_keys_legacy_ok("sk-tg-", long_key, TG_KEY_LEGACY_MAX + 1));
    ck_assert_int_eq(tg_keys_generate("sk-tg-", ours, sizeof(ours), &err),
                     TG_OK);
    ours[10] = ours[10] == 'A' ? 'B' : 'A'; /* a typo: the checksum decides */
    ck_assert(!tg_keys_legacy_ok("sk-tg-", ours, strlen(ours)));
}
END_TEST

static Suite *
keys_suite(void)
{
    Suite *s = suite_create("keys");

    TG_TCASE(s, "a generated key parses back", generated_key_parses_back);
    TG_TCASE(s, "legacy keys are bounded and never shaped like ours",
             legacy_keys_are_bounded_and_never_shaped_like_ours);
    TG_TCASE(s, "two generated keys differ", two_keys_differ);
    TG_TCASE(s, "every single-character change is rejected",
             every_single_character_change_is_rejected);
    TG_TCASE(s, "a wrong length or prefix is rejected",
             wrong_length_or_prefix_is_rejected);
    TG_TCASE(s, "the configured prefix is used", configured_prefix_is_used);
    TG_TCASE(s, "the hash is keyed and stable", hash_is_keyed_and_stable);
    TG_TCASE(s, "display is eight characters after the prefix",
             display_is_eight_characters_after_the_prefix);
    TG_TCASE(s, "a mask never shows more than the prefix",
             mask_never_shows_more_than_the_prefix);
    return s;
}

TG_CHECK_MAIN(keys_suite)
