/* form: form text and query strings decoded as browsers encode them, the
 * parameter cap, and the session cookie found among others. */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "form.h"
#include "unit.h"

static struct admin_params ps;

static void
parse(const char *text)
{
    admin_params_free(&ps);
    ck_assert(admin_params_parse(&ps, text, strlen(text)));
}

START_TEST(pairs_are_split_and_decoded)
{
    parse("name=caf%C3%A9+bar&tokens=10&empty=&bare");
    ck_assert_uint_eq(ps.n, 4);
    ck_assert_str_eq(admin_param(&ps, "name"), "caf\xc3\xa9 bar");
    ck_assert_str_eq(admin_param(&ps, "tokens"), "10");
    ck_assert_str_eq(admin_param(&ps, "empty"), "");
    ck_assert_str_eq(admin_param(&ps, "bare"), "");
    ck_assert_ptr_null(admin_param(&ps, "missing"));
    admin_params_free(&ps);
}
END_TEST

START_TEST(a_bad_escape_stands_for_itself)
{
    parse("a=100%&b=%zz&c=%4&d=%41%");
    ck_assert_str_eq(admin_param(&ps, "a"), "100%");
    ck_assert_str_eq(admin_param(&ps, "b"), "%zz");
    ck_assert_str_eq(admin_param(&ps, "c"), "%4");
    ck_assert_str_eq(admin_param(&ps, "d"), "A%");
    admin_params_free(&ps);
}
END_TEST

START_TEST(an_encoded_separator_is_data)
{
    parse("q=a%26b%3Dc&n%3Dx=1");
    ck_assert_uint_eq(ps.n, 2);
    ck_assert_str_eq(admin_param(&ps, "q"), "a&b=c");
    ck_assert_str_eq(admin_param(&ps, "n=x"), "1");
    admin_params_free(&ps);
}
END_TEST

START_TEST(a_nul_ends_the_value)
{
    static const char text[] = "a=x%00y&b=2";

    parse(text);
    ck_assert_str_eq(admin_param(&ps, "a"), "x");
    ck_assert_str_eq(admin_param(&ps, "b"), "2");
    admin_params_free(&ps);
}
END_TEST

START_TEST(the_first_of_a_repeated_name_wins)
{
    parse("a=1&a=2");
    ck_assert_uint_eq(ps.n, 2);
    ck_assert_str_eq(admin_param(&ps, "a"), "1");
    admin_params_free(&ps);
}
END_TEST

START_TEST(parameters_beyond_the_cap_are_ignored)
{
    char text[ADMIN_PARAMS_MAX * 16], *w = text;
    int i;

    for (i = 0; i < ADMIN_PARAMS_MAX + 10; i++)
        w += snprintf(w, sizeof(text) - (size_t)(w - text), "%sp%d=%d",
                      i ? "&" : "", i, i);
    parse(text);
    ck_assert_uint_eq(ps.n, ADMIN_PARAMS_MAX);
    ck_assert_str_eq(admin_param(&ps, "p63"), "63");
    ck_assert_ptr_null(admin_param(&ps, "p64"));
    admin_params_free(&ps);
}
END_TEST

START_TEST(only_len_bytes_are_read)
{
    admin_params_free(&ps);
    ck_assert(admin_params_parse(&ps, "a=1&b=2", 3));
    ck_assert_uint_eq(ps.n, 1);
    ck_assert_str_eq(admin_param(&ps, "a"), "1");
    admin_params_free(&ps);
}
END_TEST

START_TEST(the_cookie_is_found_among_others)
{
    char v[16];

    ck_assert(admin_cookie_value("x=1; tg_admin=v1.abc; y=2", "tg_admin", v,
                                 sizeof(v)));
    ck_assert_str_eq(v, "v1.abc");
    ck_assert(admin_cookie_value("tg_admin=z", "tg_admin", v, sizeof(v)));
    ck_assert_str_eq(v, "z");
}
END_TEST

START_TEST(a_lookalike_or_oversize_cookie_is_not_the_cookie)
{
    char v[8];

    ck_assert(!admin_cookie_value("tg_admin2=x; xtg_admin=y", "tg_admin", v,
                                  sizeof(v)));
    ck_assert(admin_cookie_value("tg_admin=", "tg_admin", v, sizeof(v)));
    ck_assert_str_eq(v, ""); /* present but empty: the verifier refuses it */
    ck_assert(
        !admin_cookie_value("tg_admin=12345678", "tg_admin", v, sizeof(v)));
    ck_assert(admin_cookie_value("tg_admin=1234567", "tg_admin", v, sizeof(v)));
    ck_assert(!admin_cookie_value("", "tg_admin", v, sizeof(v)));
}
END_TEST

static Suite *
form_suite(void)
{
    Suite *s = suite_create("form");

    TG_TCASE(s, "pairs are split and decoded", pairs_are_split_and_decoded);
    TG_TCASE(s, "a bad escape stands for itself",
             a_bad_escape_stands_for_itself);
    TG_TCASE(s, "an encoded separator is data", an_encoded_separator_is_data);
    TG_TCASE(s, "a NUL ends the value", a_nul_ends_the_value);
    TG_TCASE(s, "the first of a repeated name wins",
             the_first_of_a_repeated_name_wins);
    TG_TCASE(s, "parameters beyond the cap are ignored",
             parameters_beyond_the_cap_are_ignored);
    TG_TCASE(s, "only len bytes are read", only_len_bytes_are_read);
    TG_TCASE(s, "the cookie is found among others",
             the_cookie_is_found_among_others);
    TG_TCASE(s, "a lookalike or oversize cookie is not the cookie",
             a_lookalike_or_oversize_cookie_is_not_the_cookie);
    return s;
}

TG_CHECK_MAIN(form_suite)
