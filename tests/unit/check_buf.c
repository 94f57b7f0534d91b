/* buf: bounded, NUL-terminated, sticky failure. */
#include <config.h>

#include <string.h>

#include "buf.h"
#include "unit.h"

START_TEST(append_past_max_fails_and_stays_failed)
{
    struct tg_buf b;

    tg_buf_init(&b, 8);
    ck_assert_int_eq(tg_buf_append(&b, "12345678", 8), 0);
    ck_assert_int_eq(tg_buf_append(&b, "9", 1), -1);
    ck_assert_int_eq(tg_buf_append(&b, "", 0), -1); /* sticky */
    ck_assert(tg_buf_failed(&b));
    ck_assert_str_eq(tg_buf_cstr(&b), "12345678");
    tg_buf_free(&b);
}
END_TEST

START_TEST(appendf_formats_and_grows)
{
    struct tg_buf b;
    int i;

    tg_buf_init(&b, 1 << 20);
    ck_assert_str_eq(tg_buf_cstr(&b), "");
    for (i = 0; i < 1000; i++)
        ck_assert_int_eq(tg_buf_appendf(&b, "%04d,", i), 0);
    ck_assert_uint_eq(tg_buf_len(&b), 5000);
    ck_assert(strncmp(tg_buf_cstr(&b) + 4995, "0999,", 5) == 0);
    ck_assert(!tg_buf_failed(&b));
    tg_buf_free(&b);
}
END_TEST

START_TEST(appendf_past_max_fails_without_writing)
{
    struct tg_buf b;

    tg_buf_init(&b, 10);
    ck_assert_int_eq(tg_buf_puts(&b, "abc"), 0);
    ck_assert_int_eq(tg_buf_appendf(&b, "%s", "12345678"), -1);
    ck_assert_str_eq(tg_buf_cstr(&b), "abc");
    tg_buf_free(&b);
}
END_TEST

static Suite *
buf_suite(void)
{
    Suite *s = suite_create("buf");

    TG_TCASE(s, "append past max fails and stays failed",
             append_past_max_fails_and_stays_failed);
    TG_TCASE(s, "appendf formats and grows", appendf_formats_and_grows);
    TG_TCASE(s, "appendf past max fails without writing",
             appendf_past_max_fails_without_writing);
    return s;
}

TG_CHECK_MAIN(buf_suite)
