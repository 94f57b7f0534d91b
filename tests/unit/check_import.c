/* import: the three key-list formats, read conservatively. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import.h"
#include "unit.h"

struct seen {
    int n;
    char names[8][128], keys[8][128];
    int lines[8];
    long long tokens_day[8];
};

static enum tg_code
collect(void *arg, const struct tg_import_entry *e, struct tg_err *err)
{
    struct seen *s = arg;

    (void)err;
    if (s->n == 8)
        return TG_E_INTERNAL;
    snprintf(s->names[s->n], 128, "%s", e->ch.name);
    snprintf(s->keys[s->n], 128, "%s", e->key);
    s->lines[s->n] = e->line;
    s->tokens_day[s->n] =
        e->ch.set[0] ? (e->ch.val[0] ? atoll(e->ch.val[0]) : -1) : -2;
    s->n++;
    return TG_OK;
}

START_TEST(a_fastapi_dict_with_comments_and_trailing_comma)
{
    static const char text[] =
        "API = 1\n"
        "VALID_API_KEYS: dict[str, str] = {  # who may call\n"
        "    \"k-one\": \"alice\",\n"
        "\n"
        "    'k-two' : 'b\\'ob', # note\n"
        "}\n";
    struct seen s = {0};
    struct tg_err err = {0};

    ck_assert_int_eq(
        tg_import_parse(TG_IMPORT_FASTAPI, text, collect, &s, &err), TG_OK);
    ck_assert_int_eq(s.n, 2);
    ck_assert_str_eq(s.keys[0], "k-one");
    ck_assert_str_eq(s.names[0], "alice");
    ck_assert_int_eq(s.lines[0], 3);
    ck_assert_str_eq(s.keys[1], "k-two");
    ck_assert_str_eq(s.names[1], "b'ob");
    ck_assert_int_eq(s.lines[1], 5);
}
END_TEST

START_TEST(fastapi_refuses_anything_but_plain_strings_naming_the_line)
{
    static const char *const bad[] = {
        "VALID_API_KEYS = {\n\"a\": os.getenv(\"X\")}\n",
        "VALID_API_KEYS = {\n\"a\": \"\"\"b\"\"\"}\n",
        "VALID_API_KEYS = {\n\"a\": \"b\" \"c\"}\n",
        "VALID_API_KEYS = {\n\"a\": \"b\\n\"}\n",
        "VALID_API_KEYS = {\n\"a\": \"b\",\n",
        "KEYS = {}\n",
    };
    struct tg_err err = {0};
    struct seen s;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&s, 0, sizeof(s));
        tg_err_clear(&err);
        ck_assert_int_eq(
            tg_import_parse(TG_IMPORT_FASTAPI, bad[i], collect, &s, &err),
            TG_E_BAD_REQUEST);
        ck_assert_msg(i == 5 || strstr(err.msg, "line 2") != NULL ||
                          strstr(err.msg, "line 3") != NULL,
                      "%s", err.msg);
    }
}
END_TEST

START_TEST(ollaguard_takes_a_list_of_strings_or_objects_or_a_map)
{
    struct tg_err err = {0};
    struct seen s = {0};

    ck_assert_int_eq(
        tg_import_parse(TG_IMPORT_OLLAGUARD,
                        "{\"keys\": [\"k1\", {\"key\": \"k2\", \"user\": "
                        "\"u\\u0001\"}]}",
                        collect, &s, &err),
        TG_OK);
    ck_assert_int_eq(s.n, 2);
    ck_assert_str_eq(s.names[0], "ollaguard");
    ck_assert_str_eq(s.names[1], "u_"); /* control characters go */
    ck_assert_str_eq(s.keys[1], "k2");
    ck_assert_int_eq(tg_import_parse(TG_IMPORT_OLLAGUARD,
                                     "{\"api_keys\": {\"k3\": \"carol\"}}",
                                     collect, &s, &err),
                     TG_OK);
    ck_assert_str_eq(s.keys[2], "k3");
    ck_assert_str_eq(s.names[2], "carol");
    ck_assert_int_eq(tg_import_parse(TG_IMPORT_OLLAGUARD, "{\"keys\": [1]}",
                                     collect, &s, &err),
                     TG_E_BAD_REQUEST);
    ck_assert_int_eq(
        tg_import_parse(TG_IMPORT_OLLAGUARD, "{\"keys\": [", collect, &s, &err),
        TG_E_BAD_REQUEST);
}
END_TEST

START_TEST(csv_maps_header_names_to_key_fields)
{
    struct tg_err err = {0};
    struct seen s = {0};

    ck_assert_int_eq(tg_import_parse(TG_IMPORT_CSV,
                                     "key,tokens-day,name\r\n"
                                     "k1,100,a\r\n"
                                     "k2,none,b\r\n"
                                     "k3,,c\r\n",
                                     collect, &s, &err),
                     TG_OK);
    ck_assert_int_eq(s.n, 3);
    ck_assert_int_eq(s.tokens_day[0], 100);
    ck_assert_int_eq(s.tokens_day[1], -1); /* none: unlimited */
    ck_assert_int_eq(s.tokens_day[2], -2); /* empty: not given */
    ck_assert_int_eq(s.lines[2], 4);
    ck_assert_int_eq(
        tg_import_parse(TG_IMPORT_CSV, "name\r\nx\r\n", collect, &s, &err),
        TG_E_BAD_REQUEST);
    tg_err_clear(&err);
    ck_assert_int_eq(tg_import_parse(TG_IMPORT_CSV, "key,name\r\nk,a,b\r\n",
                                     collect, &s, &err),
                     TG_E_BAD_REQUEST);
    ck_assert_ptr_nonnull(strstr(err.msg, "line 2"));
}
END_TEST

START_TEST(long_names_are_cut_without_splitting_a_character)
{
    char text[256];
    struct tg_err err = {0};
    struct seen s = {0};
    size_t i;

    strcpy(text, "key,name\r\nkkkkkkkk,");
    for (i = 0; i < 89; i++)
        strcat(text, "a");
    strcat(text, "\xc3\xa9\xc3\xa9\r\n"); /* é straddles the limit */
    ck_assert_int_eq(tg_import_parse(TG_IMPORT_CSV, text, collect, &s, &err),
                     TG_OK);
    ck_assert_uint_eq(strlen(s.names[0]), 89);
}
END_TEST

START_TEST(format_names)
{
    ck_assert_int_eq(tg_import_format("fastapi"), TG_IMPORT_FASTAPI);
    ck_assert_int_eq(tg_import_format("ollaguard"), TG_IMPORT_OLLAGUARD);
    ck_assert_int_eq(tg_import_format("csv"), TG_IMPORT_CSV);
    ck_assert_int_eq(tg_import_format("yaml"), -1);
}
END_TEST

static Suite *
import_suite(void)
{
    Suite *s = suite_create("import");

    TG_TCASE(s, "a FastAPI dict with comments and a trailing comma",
             a_fastapi_dict_with_comments_and_trailing_comma);
    TG_TCASE(s, "FastAPI: anything but plain strings is refused by line",
             fastapi_refuses_anything_but_plain_strings_naming_the_line);
    TG_TCASE(s, "Ollaguard: a list of strings or objects, or a map",
             ollaguard_takes_a_list_of_strings_or_objects_or_a_map);
    TG_TCASE(s, "CSV maps header names to key fields",
             csv_maps_header_names_to_key_fields);
    TG_TCASE(s, "long names are cut without splitting a character",
             long_names_are_cut_without_splitting_a_character);
    TG_TCASE(s, "format names", format_names);
    return s;
}

TG_CHECK_MAIN(import_suite)
