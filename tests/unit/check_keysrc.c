/* keysrc: every key source and their precedence. */
#include <config.h>

#include <string.h>

#include "keysrc.h"
#include "unit.h"

static const struct {
    const char *auth, *xkey, *query;
    enum tg_keysrc src;
    const char *key;
} table[] = {
    {"Bearer sk-a", NULL, NULL, TG_KEY_FROM_BEARER, "sk-a"},
    {"bearer   sk-a  ", NULL, NULL, TG_KEY_FROM_BEARER, "sk-a"},
    {"BEARER\tsk-a", NULL, NULL, TG_KEY_FROM_BEARER, "sk-a"},
    {"sk-a", NULL, NULL, TG_KEY_FROM_AUTHORIZATION, "sk-a"},
    {" sk-a ", NULL, NULL, TG_KEY_FROM_AUTHORIZATION, "sk-a"},
    {NULL, "sk-b", NULL, TG_KEY_FROM_HEADER, "sk-b"},
    {NULL, NULL, "api_key=sk-c", TG_KEY_FROM_QUERY, "sk-c"},
    {NULL, NULL, "x=1&api_key=sk-c&y=2", TG_KEY_FROM_QUERY, "sk-c"},
    {NULL, NULL, "api_key=sk%2Dc", TG_KEY_FROM_QUERY, "sk-c"},
    {NULL, NULL, "xapi_key=sk-c", TG_KEY_FROM_NONE, ""},
    {NULL, NULL, "api_key=", TG_KEY_FROM_NONE, ""},
    /* precedence: first match wins */
    {"Bearer sk-a", "sk-b", "api_key=sk-c", TG_KEY_FROM_BEARER, "sk-a"},
    {"sk-a", "sk-b", "api_key=sk-c", TG_KEY_FROM_AUTHORIZATION, "sk-a"},
    {NULL, "sk-b", "api_key=sk-c", TG_KEY_FROM_HEADER, "sk-b"},
    /* not keys: the next source is tried */
    {"Basic dXNlcjpwdw==", "sk-b", NULL, TG_KEY_FROM_HEADER, "sk-b"},
    {"Bearer ", NULL, "api_key=sk-c", TG_KEY_FROM_QUERY, "sk-c"},
    {"Bearer a b", NULL, NULL, TG_KEY_FROM_NONE, ""},
    {"", "", "", TG_KEY_FROM_NONE, ""},
    {NULL, NULL, NULL, TG_KEY_FROM_NONE, ""},
};

START_TEST(key_sources_and_precedence)
{
    struct tg_key_found k;

    tg_keysrc_find(table[_i].auth, table[_i].xkey, table[_i].query, &k);
    ck_assert_int_eq(k.src, table[_i].src);
    ck_assert_str_eq(k.key, table[_i].key);
    ck_assert_uint_eq(k.len, strlen(table[_i].key));
}
END_TEST

START_TEST(overlong_candidate_is_cut_so_it_fails_parsing)
{
    char big[600];
    struct tg_key_found k;

    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tg_keysrc_find(NULL, big, NULL, &k);
    ck_assert_int_eq(k.src, TG_KEY_FROM_HEADER);
    ck_assert_uint_eq(k.len, TG_KEY_MAX_LEN + 1);
    ck_assert(!tg_keys_parse("sk-tg-", k.key, k.len));
}
END_TEST

static Suite *
keysrc_suite(void)
{
    Suite *s = suite_create("keysrc");
    TCase *tc = tcase_create("key sources and their precedence");

    tcase_add_loop_test(tc, key_sources_and_precedence, 0,
                        sizeof(table) / sizeof(table[0]));
    suite_add_tcase(s, tc);
    TG_TCASE(s, "an overlong candidate is cut so it fails parsing",
             overlong_candidate_is_cut_so_it_fails_parsing);
    return s;
}

TG_CHECK_MAIN(keysrc_suite)
