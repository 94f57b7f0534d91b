/* upspec: the upstream list syntax of tollgate.conf and the settings
 * table. */
#include <config.h>

#include <string.h>

#include "unit.h"
#include "upspec.h"

START_TEST(entries_start_at_each_url)
{
    struct tg_upspec s[TG_UPSPEC_MAX];
    struct tg_err err = {0};
    int n = -1;

    ck_assert_int_eq(
        tg_upspec_parse("http://a:1/,https://b:2\nhttp://c:3", s, &n, &err),
        TG_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(s[0].url, "http://a:1"); /* the '/' goes */
    ck_assert_str_eq(s[1].url, "https://b:2");
    ck_assert_str_eq(s[2].url, "http://c:3");
    ck_assert_int_eq(s[2].weight, 1);
    ck_assert_int_eq(tg_upspec_parse("", s, &n, &err), TG_OK);
    ck_assert_int_eq(n, 0);
}
END_TEST

START_TEST(options_follow_their_url)
{
    struct tg_upspec s[TG_UPSPEC_MAX];
    struct tg_err err = {0};
    int n = 0;

    ck_assert_int_eq(
        tg_upspec_parse("http://a:1 weight=3 models=llama3,qwen2.5:* "
                        "key_file=/etc/k,http://b:2 models=x",
                        s, &n, &err),
        TG_OK);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(s[0].weight, 3);
    ck_assert_str_eq(s[0].models, "llama3,qwen2.5:*");
    ck_assert_str_eq(s[0].key_file, "/etc/k");
    ck_assert_str_eq(s[1].models, "x");
    ck_assert_str_eq(s[1].key_file, "");
}
END_TEST

static const char *const bad[] = {
    "ftp://a",           "http://a weight=0",
    "http://a weight=x", "http://a colour=red",
    "a.example.com",     "http://",
};

START_TEST(bad_lists_are_errors)
{
    struct tg_upspec s[TG_UPSPEC_MAX];
    struct tg_err err = {0};
    int n = 0;

    ck_assert_int_eq(tg_upspec_parse(bad[_i], s, &n, &err), TG_E_CONFIG);
    ck_assert(err.msg[0] != '\0');
}
END_TEST

START_TEST(models_decide_who_serves)
{
    struct tg_upspec s = {.url = "http://a", .weight = 1};

    ck_assert(tg_upspec_serves(&s, "anything"));
    strcpy(s.models, "llama3,qwen2.5:*,phi3:mini");
    ck_assert(tg_upspec_serves(&s, "llama3"));
    ck_assert(tg_upspec_serves(&s, "llama3:latest"));
    ck_assert(tg_upspec_serves(&s, "qwen2.5:7b"));
    ck_assert(tg_upspec_serves(&s, "phi3:mini"));
    ck_assert(tg_upspec_serves(&s, "")); /* a request without a model */
    ck_assert(!tg_upspec_serves(&s, "llama3:8b"));
    ck_assert(!tg_upspec_serves(&s, "phi3"));
    ck_assert(!tg_upspec_serves(&s, "qwen2"));
    strcpy(s.models, "mistral:latest");
    ck_assert(tg_upspec_serves(&s, "mistral"));
}
END_TEST

static Suite *
upspec_suite(void)
{
    Suite *s = suite_create("upspec");
    TCase *tc;

    TG_TCASE(s, "entries start at each URL", entries_start_at_each_url);
    TG_TCASE(s, "options follow their URL", options_follow_their_url);
    tc = tcase_create("bad lists are errors");
    tcase_add_loop_test(tc, bad_lists_are_errors, 0,
                        sizeof(bad) / sizeof(bad[0]));
    suite_add_tcase(s, tc);
    TG_TCASE(s, "models decide who serves", models_decide_who_serves);
    return s;
}

TG_CHECK_MAIN(upspec_suite)
