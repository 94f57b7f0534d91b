/* path: one path, one meaning (normalised before it is classified). */
#include <config.h>

#include <string.h>

#include "path.h"
#include "unit.h"

static const struct {
    const char *in, *out;
} same[] = {
    {"/api/chat", "/api/chat"},
    {"/", "/"},
    {"/api/./chat", "/api/chat"},
    {"/api/tags/../chat", "/api/chat"},
    {"/v1/./chat/completions", "/v1/chat/completions"},
    {"//api//chat", "/api/chat"},
    {"/api/chat/", "/api/chat"},
    {"/api/chat/.", "/api/chat"},
    {"/api/chat/x/..", "/api/chat"},
    {"/v1/models/..", "/v1"},
    {"/api/..", "/"},
    {"/api/%63hat", "/api/chat"},
    {"/api/%2e/chat", "/api/chat"},
    {"/api/x/%2E%2E/chat", "/api/chat"},
    {"/api/.%2e/api/chat", "/api/chat"},
    {"/v1/models/llama3%3A8b", "/v1/models/llama3:8b"},
    {"/api/blobs/sha256:00", "/api/blobs/sha256:00"},
    {"/api/api/chat", "/api/chat"},
    {"/api//api/chat", "/api/chat"},
    {"/v1/v1/v1/models", "/v1/models"},
    {"/api/api", "/api/api"},
    {"/a/b/c/../../d", "/a/d"},
    {"/...", "/..."},
    {"/.a/b.", "/.a/b."},
};

START_TEST(paths_normalise_to_one_spelling)
{
    char out[TG_PATH_MAX];
    const char *why = NULL;

    ck_assert_msg(tg_path_normalise(same[_i].in, strlen(same[_i].in), out,
                                    sizeof(out), &why),
                  "%s: %s", same[_i].in, why);
    ck_assert_str_eq(out, same[_i].out);
}
END_TEST

static const struct {
    const char *in, *why;
} refused[] = {
    {"", "start with '/'"},
    {"api/chat", "start with '/'"},
    {"http://host/api/chat", "start with '/'"},
    {"*", "start with '/'"},
    {"/../api/chat", "above the root"},
    {"/api/../../chat", "above the root"},
    {"/%2e%2e/api/chat", "above the root"},
    {"/api%2Fchat", "not allowed"},
    {"/api/chat%00", "not allowed"},
    {"/api/chat%25", "not allowed"},
    {"/api/chat%3F", "not allowed"},
    {"/api/chat%23", "not allowed"},
    {"/api%5Cchat", "not allowed"},
    {"/api/chat%20", "not allowed"},
    {"/api/chat%C3%A9", "not allowed"},
    {"/api/ch\xc3\xa9t", "not allowed"},
    {"/api/chat\t", "not allowed"},
    {"/api\\chat", "not allowed"},
    {"/api/chat#x", "not allowed"},
    {"/api/%zzchat", "invalid percent-encoding"},
    {"/api/chat%", "invalid percent-encoding"},
    {"/api/chat%6", "invalid percent-encoding"},
};

START_TEST(paths_that_do_not_normalise_cleanly_are_refused)
{
    char out[TG_PATH_MAX];
    const char *why = NULL;

    ck_assert_msg(!tg_path_normalise(refused[_i].in, strlen(refused[_i].in),
                                     out, sizeof(out), &why),
                  "%s: accepted as %s", refused[_i].in, out);
    ck_assert_str_eq(out, "");
    ck_assert_ptr_nonnull(strstr(why, refused[_i].why));
}
END_TEST

START_TEST(a_nul_inside_the_length_is_refused)
{
    char out[TG_PATH_MAX];
    const char *why = NULL;

    ck_assert(!tg_path_normalise("/api\0/chat", 10, out, sizeof(out), &why));
}
END_TEST

START_TEST(the_result_must_fit)
{
    char in[2 * TG_PATH_MAX], out[TG_PATH_MAX];
    const char *why = NULL;

    /* 511 bytes fit in 512, 512 do not; dot segments that would shorten
     * it again count only once they are resolved. */
    memset(in, 'a', sizeof(in));
    in[0] = '/';
    ck_assert(tg_path_normalise(in, TG_PATH_MAX - 1, out, sizeof(out), &why));
    ck_assert_uint_eq(strlen(out), TG_PATH_MAX - 1);
    ck_assert(!tg_path_normalise(in, TG_PATH_MAX, out, sizeof(out), &why));
    ck_assert_ptr_nonnull(strstr(why, "too long"));
    ck_assert(!tg_path_normalise("/api/chat", 9, out, 9, &why));
    ck_assert(tg_path_normalise("/api/chat", 9, out, 10, &why));
    ck_assert_str_eq(out, "/api/chat");
    /* "/x/../api/chat" needs room for "/x" on the way, not more. */
    memcpy(in, "/x/../api/chat", 14);
    ck_assert(tg_path_normalise(in, 14, out, 10, &why));
    ck_assert_str_eq(out, "/api/chat");
}
END_TEST

START_TEST(normalising_twice_changes_nothing)
{
    char once[TG_PATH_MAX], twice[TG_PATH_MAX];
    const char *why = NULL;

    ck_assert(tg_path_normalise(same[_i].in, strlen(same[_i].in), once,
                                sizeof(once), &why));
    ck_assert(
        tg_path_normalise(once, strlen(once), twice, sizeof(twice), &why));
    ck_assert_str_eq(once, twice);
}
END_TEST

static Suite *
path_suite(void)
{
    Suite *s = suite_create("path");
    TCase *tc = tcase_create("paths normalise to one spelling");

    tcase_add_loop_test(tc, paths_normalise_to_one_spelling, 0,
                        sizeof(same) / sizeof(same[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("paths that do not normalise cleanly are refused");
    tcase_add_loop_test(tc, paths_that_do_not_normalise_cleanly_are_refused, 0,
                        sizeof(refused) / sizeof(refused[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("normalising twice changes nothing");
    tcase_add_loop_test(tc, normalising_twice_changes_nothing, 0,
                        sizeof(same) / sizeof(same[0]));
    suite_add_tcase(s, tc);
    TG_TCASE(s, "a NUL inside the length is refused",
             a_nul_inside_the_length_is_refused);
    TG_TCASE(s, "the result must fit", the_result_must_fit);
    return s;
}

TG_CHECK_MAIN(path_suite)
