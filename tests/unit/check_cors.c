/* cors: which origins may call, what a preflight and an answer carry. */
#include <config.h>

#include <string.h>

#include "cors.h"
#include "unit.h"

START_TEST(listed_origins_and_the_star_are_allowed)
{
    const char *list = "https://a.example, http://b.example:8080";

    ck_assert(tg_cors_allowed(list, "https://a.example"));
    ck_assert(tg_cors_allowed(list, "http://b.example:8080"));
    ck_assert(!tg_cors_allowed(list, "https://a.example.evil"));
    ck_assert(!tg_cors_allowed(list, "https://a.exampl"));
    ck_assert(!tg_cors_allowed(list, "http://b.example"));
    ck_assert(tg_cors_allowed("*", "https://anything.example"));
    ck_assert(tg_cors_allowed("https://x.example,*", "null"));
}
END_TEST

START_TEST(an_empty_list_or_origin_allows_nothing)
{
    ck_assert(!tg_cors_allowed("", "https://a.example"));
    ck_assert(!tg_cors_allowed(NULL, "https://a.example"));
    ck_assert(!tg_cors_allowed("*", NULL));
    ck_assert(!tg_cors_allowed("*", ""));
    ck_assert(!tg_cors_allowed("*", "https://a.example\r\nX-Evil: 1"));
    ck_assert(!tg_cors_allowed("*", "https://a example"));
}
END_TEST

START_TEST(a_preflight_is_options_with_origin_and_request_method)
{
    ck_assert(tg_cors_preflight("OPTIONS", "https://a", "POST"));
    ck_assert(!tg_cors_preflight("OPTIONS", "https://a", NULL));
    ck_assert(!tg_cors_preflight("OPTIONS", NULL, "POST"));
    ck_assert(!tg_cors_preflight("POST", "https://a", "POST"));
}
END_TEST

START_TEST(answers_echo_the_origin_and_expose_the_limit_headers)
{
    char out[TG_CORS_MAX];

    tg_cors_headers("*", "https://a.example", false, NULL, out, sizeof(out));
    ck_assert_ptr_nonnull(
        strstr(out, "Access-Control-Allow-Origin: https://a.example\r\n"));
    ck_assert_ptr_nonnull(strstr(out, "Vary: Origin\r\n"));
    ck_assert_ptr_nonnull(strstr(out, "x-ratelimit-remaining-tokens"));
    ck_assert_ptr_nonnull(strstr(out, "retry-after"));
    ck_assert_ptr_null(strstr(out, "Allow-Methods"));
    tg_cors_headers("https://b", "https://a.example", false, NULL, out,
                    sizeof(out));
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(a_preflight_allows_the_headers_it_asked_for)
{
    char out[TG_CORS_MAX];

    tg_cors_headers("*", "https://a", true, "authorization, x-stainless-os",
                    out, sizeof(out));
    ck_assert_ptr_nonnull(strstr(
        out,
        "Access-Control-Allow-Headers: authorization, x-stainless-os\r\n"));
    ck_assert_ptr_nonnull(strstr(out, "Access-Control-Allow-Methods: "));
    tg_cors_headers("*", "https://a", true, "evil\r\nX-Injected: 1", out,
                    sizeof(out));
    ck_assert_ptr_null(strstr(out, "X-Injected"));
    ck_assert_ptr_nonnull(
        strstr(out, "authorization, content-type, x-api-key"));
}
END_TEST

START_TEST(headers_that_do_not_fit_are_left_out_whole)
{
    char out[64];

    tg_cors_headers("*", "https://a.example", false, NULL, out, sizeof(out));
    ck_assert_str_eq(out, "");
}
END_TEST

static Suite *
cors_suite(void)
{
    Suite *s = suite_create("cors");

    TG_TCASE(s, "listed origins and * are allowed",
             listed_origins_and_the_star_are_allowed);
    TG_TCASE(s, "an empty list or origin allows nothing",
             an_empty_list_or_origin_allows_nothing);
    TG_TCASE(s, "a preflight is OPTIONS with Origin and request method",
             a_preflight_is_options_with_origin_and_request_method);
    TG_TCASE(s, "answers echo the origin and expose the limit headers",
             answers_echo_the_origin_and_expose_the_limit_headers);
    TG_TCASE(s, "a preflight allows the headers it asked for",
             a_preflight_allows_the_headers_it_asked_for);
    TG_TCASE(s, "headers that do not fit are left out whole",
             headers_that_do_not_fit_are_left_out_whole);
    return s;
}

TG_CHECK_MAIN(cors_suite)
