/* csv: RFC 4180 fields out (exports) and records in (import). */
#include <config.h>

#include <string.h>

#include "csv.h"
#include "unit.h"

static const char *
written(struct tg_buf *b, const char *v, bool last)
{
    tg_buf_free(b);
    tg_csv_field(b, v, last);
    return tg_buf_cstr(b);
}

START_TEST(fields_are_quoted_only_when_they_need_it)
{
    struct tg_buf b;

    tg_buf_init(&b, 4096);
    ck_assert_str_eq(written(&b, "plain", false), "plain,");
    ck_assert_str_eq(written(&b, "", true), "\r\n");
    ck_assert_str_eq(written(&b, "a,b", false), "\"a,b\",");
    ck_assert_str_eq(written(&b, "say \"hi\"", true), "\"say \"\"hi\"\"\"\r\n");
    ck_assert_str_eq(written(&b, "two\nlines", false), "\"two\nlines\",");
    tg_buf_free(&b);
}
END_TEST

START_TEST(a_leading_formula_character_is_defused)
{
    struct tg_buf b;

    tg_buf_init(&b, 4096);
    ck_assert_str_eq(written(&b, "=SUM(A1)", false), "\"'=SUM(A1)\",");
    ck_assert_str_eq(written(&b, "-5", false), "\"'-5\",");
    ck_assert_str_eq(written(&b, "@x", true), "\"'@x\"\r\n");
    ck_assert_str_eq(written(&b, "a=b", false), "a=b,");
    tg_buf_free(&b);
}
END_TEST

START_TEST(records_round_trip_through_the_writer)
{
    static const char *const v[] = {"a,b", "q\"q", "multi\r\nline", "", "x"};
    struct tg_csv_record rec;
    struct tg_buf b;
    const char *p;
    int line = 0;
    size_t i;

    tg_buf_init(&b, 4096);
    for (i = 0; i < 5; i++)
        tg_csv_field(&b, v[i], i == 4);
    p = tg_buf_cstr(&b);
    ck_assert_int_eq(tg_csv_next(&p, &rec, &line), 1);
    ck_assert_uint_eq(rec.n, 5);
    for (i = 0; i < 5; i++)
        ck_assert_str_eq(rec.field[i], v[i]);
    ck_assert_int_eq(line, 2); /* the quoted line break counts */
    ck_assert_int_eq(tg_csv_next(&p, &rec, &line), 0);
    tg_buf_free(&b);
}
END_TEST

START_TEST(bare_lf_and_a_missing_final_newline_are_fine)
{
    struct tg_csv_record rec;
    const char *p = "a,b\nc,d";
    int line = 0;

    ck_assert_int_eq(tg_csv_next(&p, &rec, &line), 1);
    ck_assert_str_eq(rec.field[1], "b");
    ck_assert_int_eq(tg_csv_next(&p, &rec, &line), 1);
    ck_assert_str_eq(rec.field[0], "c");
    ck_assert_str_eq(rec.field[1], "d");
    ck_assert_int_eq(tg_csv_next(&p, &rec, &line), 0);
}
END_TEST

START_TEST(malformed_records_are_refused)
{
    static const char *const bad[] = {"\"open,b\n", "a\"b,c\n", "\"x\"y,z\n"};
    struct tg_csv_record rec;
    size_t i;

    for (i = 0; i < 3; i++) {
        const char *p = bad[i];
        int line = 0;

        ck_assert_int_eq(tg_csv_next(&p, &rec, &line), -1);
        ck_assert_ptr_eq(p, bad[i]);
    }
}
END_TEST

START_TEST(too_many_or_too_long_fields_are_refused)
{
    static char text[TG_CSV_FIELD_MAX + 8];
    struct tg_csv_record rec;
    char many[TG_CSV_FIELDS_MAX * 2 + 4];
    const char *p;
    int line = 0;

    memset(many, ',', sizeof(many) - 2);
    many[sizeof(many) - 2] = '\n';
    many[sizeof(many) - 1] = '\0';
    p = many;
    ck_assert_int_eq(tg_csv_next(&p, &rec, &line), -1);
    memset(text, 'x', TG_CSV_FIELD_MAX + 1);
    text[TG_CSV_FIELD_MAX + 1] = '\0';
    p = text;
    ck_assert_int_eq(tg_csv_next(&p, &rec, &line), -1);
    text[TG_CSV_FIELD_MAX] = '\0';
    p = text;
    ck_assert_int_eq(tg_csv_next(&p, &rec, &line), 1);
}
END_TEST

static Suite *
csv_suite(void)
{
    Suite *s = suite_create("csv");

    TG_TCASE(s, "fields are quoted only when they need it",
             fields_are_quoted_only_when_they_need_it);
    TG_TCASE(s, "a leading formula character is defused",
             a_leading_formula_character_is_defused);
    TG_TCASE(s, "records round trip through the writer",
             records_round_trip_through_the_writer);
    TG_TCASE(s, "bare LF and a missing final newline are fine",
             bare_lf_and_a_missing_final_newline_are_fine);
    TG_TCASE(s, "malformed records are refused", malformed_records_are_refused);
    TG_TCASE(s, "too many or too long fields are refused",
             too_many_or_too_long_fields_are_refused);
    return s;
}

TG_CHECK_MAIN(csv_suite)
