/* html: every special character escaped, invalid UTF-8 replaced. */
#include <config.h>

#include <string.h>

#include "html.h"
#include "unit.h"

static const char *
esc(struct tg_buf *b, const char *s, size_t n)
{
    tg_buf_free(b);
    ck_assert_int_eq(tg_html_escape_n(b, s, n), 0);
    return tg_buf_cstr(b);
}

START_TEST(every_special_character_becomes_an_entity)
{
    struct tg_buf b;

    tg_buf_init(&b, 4096);
    ck_assert_str_eq(esc(&b, "<script>alert(1)</script>", 25),
                     "&lt;script&gt;alert(1)&lt;/script&gt;");
    ck_assert_str_eq(esc(&b, "a&b\"c'd", 7), "a&amp;b&quot;c&#39;d");
    ck_assert_str_eq(esc(&b, "&amp;", 5), "&amp;amp;");
    ck_assert_str_eq(esc(&b, "plain text 123", 14), "plain text 123");
    ck_assert_str_eq(esc(&b, "tab\there\nnew", 12), "tab\there\nnew");
    tg_buf_free(&b);
}
END_TEST

START_TEST(valid_utf8_passes_through)
{
    struct tg_buf b;
    const char *s = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80";

    tg_buf_init(&b, 4096);
    ck_assert_str_eq(esc(&b, s, strlen(s)), s);
    tg_buf_free(&b);
}
END_TEST

#define FFFD "\xEF\xBF\xBD"
static const struct {
    const char *in;
    size_t len;
    const char *out;
} bad[] = {
    {"a\x80z", 3, "a" FFFD "z"},                  /* stray continuation */
    {"a\xC3", 2, "a" FFFD},                       /* truncated */
    {"\xC0\xAF", 2, FFFD FFFD},                   /* overlong '/' */
    {"\xE0\x80\xAF", 3, FFFD FFFD FFFD},          /* overlong, 3 bytes */
    {"\xED\xA0\x80", 3, FFFD FFFD FFFD},          /* surrogate */
    {"\xF4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD}, /* > U+10FFFF */
    {"\xFF<", 2, FFFD "&lt;"},                    /* never valid */
    {"a\0b", 3, "a" FFFD "b"},                    /* NUL */
    {"\x1b[31m", 5, FFFD "[31m"},                 /* escape sequence */
    {"\xC3\x28", 2, FFFD "("},                    /* bad continuation */
};

START_TEST(invalid_utf8_and_controls_become_replacement_characters)
{
    struct tg_buf b;

    tg_buf_init(&b, 4096);
    ck_assert_str_eq(esc(&b, bad[_i].in, bad[_i].len), bad[_i].out);
    tg_buf_free(&b);
}
END_TEST

START_TEST(escape_fails_past_the_buffer_limit_and_null_is_empty)
{
    struct tg_buf b;

    tg_buf_init(&b, 8);
    ck_assert_int_eq(tg_html_escape(&b, NULL), 0);
    ck_assert_str_eq(tg_buf_cstr(&b), "");
    ck_assert_int_eq(tg_html_escape(&b, "<<<"), -1); /* 12 bytes > 8 */
    ck_assert(tg_buf_failed(&b));
    tg_buf_free(&b);
}
END_TEST

START_TEST(urlencode_keeps_only_unreserved_characters)
{
    struct tg_buf b;

    tg_buf_init(&b, 4096);
    ck_assert_int_eq(tg_html_urlencode(&b, "a b&c=\"<>'/~._-"), 0);
    ck_assert_str_eq(tg_buf_cstr(&b), "a%20b%26c%3D%22%3C%3E%27%2F~._-");
    tg_buf_free(&b);
}
END_TEST

static Suite *
html_suite(void)
{
    Suite *s = suite_create("html");
    TCase *tc = tcase_create("invalid UTF-8 and controls are replaced");

    TG_TCASE(s, "every special character becomes an entity",
             every_special_character_becomes_an_entity);
    TG_TCASE(s, "valid UTF-8 passes through", valid_utf8_passes_through);
    tcase_add_loop_test(tc,
                        invalid_utf8_and_controls_become_replacement_characters,
                        0, (int)(sizeof(bad) / sizeof(bad[0])));
    suite_add_tcase(s, tc);
    TG_TCASE(s, "escaping past the limit fails; NULL is empty",
             escape_fails_past_the_buffer_limit_and_null_is_empty);
    TG_TCASE(s, "urlencode keeps only unreserved characters",
             urlencode_keeps_only_unreserved_characters);
    return s;
}

TG_CHECK_MAIN(html_suite)
