/* codec: hex and base64url round trips and rejections. */
#include <config.h>

#include <string.h>

#include "codec.h"
#include "unit.h"

START_TEST(hex_encodes_lower_case)
{
    const unsigned char in[] = {0x00, 0x9f, 0xff};
    char out[7];

    tg_hex_encode(in, 3, out);
    ck_assert_str_eq(out, "009fff");
}
END_TEST

START_TEST(base64url_matches_rfc4648_vectors)
{
    static const char *const in[] = {"",     "f",     "fo",    "foo",
                                     "foob", "fooba", "foobar"};
    static const char *const want[] = {"",       "Zg",      "Zm8",     "Zm9v",
                                       "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    unsigned char back[16];
    char out[16];
    size_t i, n;

    for (i = 0; i < 7; i++) {
        n = tg_b64url_encode((const unsigned char *)in[i], strlen(in[i]), out,
                             sizeof(out));
        ck_assert_str_eq(out, want[i]);
        ck_assert_uint_eq(n, tg_b64url_len(strlen(in[i])));
        n = tg_b64url_decode(out, strlen(out), back, sizeof(back));
        ck_assert_uint_eq(n, strlen(in[i]));
        ck_assert(memcmp(back, in[i], n) == 0);
    }
}
END_TEST

START_TEST(base64url_uses_the_url_alphabet)
{
    const unsigned char in[] = {0xfb, 0xff, 0xbf};
    unsigned char back[3];
    char out[8];

    tg_b64url_encode(in, 3, out, sizeof(out));
    ck_assert_str_eq(out, "-_-_");
    ck_assert_uint_eq(tg_b64url_decode("+/+/", 4, back, 3), (size_t)-1);
}
END_TEST

START_TEST(base64url_rejects_bad_input)
{
    unsigned char out[8];

    ck_assert_uint_eq(tg_b64url_decode("Zm9v=", 5, out, 8), (size_t)-1);
    ck_assert_uint_eq(tg_b64url_decode("Z", 1, out, 8), (size_t)-1);
    ck_assert_uint_eq(tg_b64url_decode("Zh", 2, out, 8), (size_t)-1);
    ck_assert_uint_eq(tg_b64url_decode("Zm9vYmFy", 8, out, 5), (size_t)-1);
    ck_assert_uint_eq(tg_b64url_encode(out, 6, (char *)out, 8), 0);
}
END_TEST

static Suite *
codec_suite(void)
{
    Suite *s = suite_create("codec");

    TG_TCASE(s, "hex encodes lower case", hex_encodes_lower_case);
    TG_TCASE(s, "base64url matches the RFC 4648 vectors",
             base64url_matches_rfc4648_vectors);
    TG_TCASE(s, "base64url uses the URL alphabet",
             base64url_uses_the_url_alphabet);
    TG_TCASE(s, "base64url rejects bad input", base64url_rejects_bad_input);
    return s;
}

TG_CHECK_MAIN(codec_suite)
