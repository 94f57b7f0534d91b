/* chart: inline SVG for no data, one point, a huge value, escaping. */
#include <config.h>

#include <stdint.h>
#include <string.h>

#include "chart.h"
#include "unit.h"

static int
count(const char *hay, const char *needle)
{
    int n = 0;

    for (hay = strstr(hay, needle); hay != NULL; hay = strstr(hay + 1, needle))
        n++;
    return n;
}

START_TEST(no_data_says_so)
{
    struct tg_buf b;
    int64_t v[3] = {0, 0, 0};
    struct admin_chart c = {"t", 3, 1, v, (const char *[]){"m"}, NULL};

    tg_buf_init(&b, 1 << 20);
    ck_assert_int_eq(admin_chart_svg(&b, &c), 0);
    ck_assert_ptr_nonnull(strstr(tg_buf_cstr(&b), "No usage in this window"));
    ck_assert_int_eq(count(tg_buf_cstr(&b), "<rect"), 0);
    ck_assert(strncmp(tg_buf_cstr(&b), "<svg", 4) == 0);
    ck_assert_ptr_nonnull(strstr(tg_buf_cstr(&b), "</svg>"));
    tg_buf_free(&b);

    c.nbuckets = 0; /* no buckets at all */
    c.nseries = 0;
    ck_assert_int_eq(admin_chart_svg(&b, &c), 0);
    ck_assert_ptr_nonnull(strstr(tg_buf_cstr(&b), "No usage"));
    tg_buf_free(&b);
}
END_TEST

START_TEST(one_point_draws_one_full_height_bar)
{
    struct tg_buf b;
    int64_t v[24] = {0};
    struct admin_chart c = {"t", 24, 1, v, (const char *[]){"llama3"}, NULL};

    v[23] = 7;
    tg_buf_init(&b, 1 << 20);
    ck_assert_int_eq(admin_chart_svg(&b, &c), 0);
    ck_assert_int_eq(count(tg_buf_cstr(&b), "<rect"), 1);
    ck_assert_ptr_nonnull(strstr(tg_buf_cstr(&b), "llama3: 7 tokens"));
    /* the axis tops out at the nice ceiling 10: the bar is 70% high */
    ck_assert_ptr_nonnull(strstr(tg_buf_cstr(&b), "height=\"180.60\""));
    tg_buf_free(&b);
}
END_TEST

START_TEST(a_huge_value_scales_without_overflow)
{
    struct tg_buf b;
    int64_t v[4] = {INT64_MAX, 1, INT64_MAX, -5}; /* two series, 2 bars */
    struct admin_chart c = {"t", 2, 2, v, (const char *[]){"a", "b"}, NULL};
    const char *s;

    tg_buf_init(&b, 1 << 20);
    ck_assert_int_eq(admin_chart_svg(&b, &c), 0);
    s = tg_buf_cstr(&b);
    ck_assert_ptr_null(strstr(s, "nan"));
    ck_assert_ptr_null(strstr(s, "inf"));
    ck_assert_ptr_null(strstr(s, "height=\"-"));
    /* the tiny value stays visible next to the huge one; -5 is not drawn */
    ck_assert_int_eq(count(s, "<rect"), 3);
    ck_assert_ptr_nonnull(strstr(s, "E</text>")); /* exa on the axis */
    tg_buf_free(&b);
}
END_TEST

START_TEST(names_and_labels_are_escaped)
{
    struct tg_buf b;
    int64_t v[1] = {5};
    const char *x[1] = {"<b>"};
    struct admin_chart c = {
        "<t>", 1, 1, v, (const char *[]){"<script>alert(1)</script>"}, x};

    tg_buf_init(&b, 1 << 20);
    ck_assert_int_eq(admin_chart_svg(&b, &c), 0);
    ck_assert_ptr_null(strstr(tg_buf_cstr(&b), "<script"));
    ck_assert_ptr_null(strstr(tg_buf_cstr(&b), "<b>"));
    ck_assert_ptr_nonnull(strstr(tg_buf_cstr(&b), "&lt;script&gt;"));
    tg_buf_free(&b);
}
END_TEST

START_TEST(a_small_buffer_fails_cleanly)
{
    struct tg_buf b;
    int64_t v[100];
    struct admin_chart c = {"t", 100, 1, v, (const char *[]){"m"}, NULL};
    size_t i;

    for (i = 0; i < 100; i++)
        v[i] = (int64_t)i + 1;
    tg_buf_init(&b, 256);
    ck_assert_int_eq(admin_chart_svg(&b, &c), -1);
    tg_buf_free(&b);
}
END_TEST

START_TEST(si_labels_are_short)
{
    char s[32];

    admin_chart_si(0, s, sizeof(s));
    ck_assert_str_eq(s, "0");
    admin_chart_si(999, s, sizeof(s));
    ck_assert_str_eq(s, "999");
    admin_chart_si(1500, s, sizeof(s));
    ck_assert_str_eq(s, "1.5k");
    admin_chart_si(5e6, s, sizeof(s));
    ck_assert_str_eq(s, "5M");
    admin_chart_si(2e19, s, sizeof(s));
    ck_assert_str_eq(s, "20E");
}
END_TEST

static Suite *
chart_suite(void)
{
    Suite *s = suite_create("chart");

    TG_TCASE(s, "no data says so", no_data_says_so);
    TG_TCASE(s, "one point draws one bar", one_point_draws_one_full_height_bar);
    TG_TCASE(s, "a huge value scales without overflow",
             a_huge_value_scales_without_overflow);
    TG_TCASE(s, "names and labels are escaped", names_and_labels_are_escaped);
    TG_TCASE(s, "a small buffer fails cleanly", a_small_buffer_fails_cleanly);
    TG_TCASE(s, "SI labels are short", si_labels_are_short);
    return s;
}

TG_CHECK_MAIN(chart_suite)
