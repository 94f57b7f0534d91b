/* body: parse errors, estimate, caps and the usage request. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "unit.h"

static struct tg_endpoint
ep(const char *path)
{
    struct tg_endpoint e;

    tg_endpoint_classify(path, strlen(path), &e);
    return e;
}

static const struct {
    const char *path, *body, *msg;
} bad[] = {
    {"/api/chat", "", "missing request body"},
    {"/api/chat", "{\"model\":", "invalid JSON in request body"},
    {"/api/chat", "[1]", "request body must be a JSON object"},
    {"/api/chat", "{\"messages\":[]}", "model is required"},
    {"/api/chat", "{\"model\":7}", "'model' must be a non-empty string"},
    {"/api/chat", "{\"model\":\"m\",\"messages\":\"hi\"}",
     "'messages' must be an array"},
    {"/api/generate", "{\"model\":\"m\",\"prompt\":1}",
     "'prompt' must be a string"},
    {"/api/chat", "{\"model\":\"m\",\"stream\":\"yes\"}",
     "'stream' must be true or false"},
    {"/api/chat", "{\"model\":\"m\",\"options\":{\"num_predict\":\"9\"}}",
     "'options.num_predict' must be an integer"},
    {"/v1/chat/completions", "{\"model\":\"m\",\"max_tokens\":-1}",
     "'max_tokens' must be a non-negative integer"},
};

START_TEST(bad_bodies_get_a_message_naming_the_problem)
{
    struct tg_endpoint e = ep(bad[_i].path);
    struct relay_body b;
    struct tg_err err = {0};

    ck_assert_int_eq(
        relay_body_parse(&e, bad[_i].body, strlen(bad[_i].body), &b, &err),
        TG_E_BAD_REQUEST);
    ck_assert_msg(strstr(err.msg, bad[_i].msg) != NULL, "%s", err.msg);
    ck_assert_ptr_null(b.doc);
}
END_TEST

static char *
prepared(const char *path, const char *in, int64_t cap, struct relay_body *b)
{
    struct tg_endpoint e = ep(path);
    struct tg_err err = {0};
    size_t len;

    ck_assert_int_eq(relay_body_parse(&e, in, strlen(in), b, &err), TG_OK);
    ck_assert_int_eq(relay_body_cap(&e, b, cap, &err), TG_OK);
    return relay_body_dump(b, &len);
}

START_TEST(native_cap_is_the_lower_of_client_and_reservation)
{
    struct relay_body b;
    char *out;

    out = prepared("/api/chat",
                   "{\"model\":\"m\",\"messages\":[],\"options\":{\"num_"
                   "predict\":50,\"temperature\":0}}",
                   100, &b);
    ck_assert_str_eq(out, "{\"model\":\"m\",\"messages\":[],\"options\":{\"num_"
                          "predict\":50,\"temperature\":0}}");
    ck_assert(b.stream);
    free(out);
    relay_body_free(&b);
    out = prepared("/api/generate", "{\"model\":\"m\",\"prompt\":\"hi\"}", 100,
                   &b);
    ck_assert_str_eq(out, "{\"model\":\"m\",\"prompt\":\"hi\",\"options\":{"
                          "\"num_predict\":100}}");
    free(out);
    relay_body_free(&b);
}
END_TEST

START_TEST(openai_cap_folds_max_completion_tokens_into_max_tokens)
{
    struct relay_body b;
    char *out;

    out = prepared("/v1/chat/completions",
                   "{\"model\":\"m\",\"messages\":[],\"max_completion_"
                   "tokens\":30,\"max_tokens\":80}",
                   100, &b);
    ck_assert_str_eq(out,
                     "{\"model\":\"m\",\"messages\":[],\"max_tokens\":30}");
    ck_assert(!b.stream);
    free(out);
    relay_body_free(&b);
}
END_TEST

START_TEST(openai_stream_asks_for_usage_and_strips_it)
{
    struct relay_body b;
    char *out;

    out = prepared("/v1/chat/completions",
                   "{\"model\":\"m\",\"messages\":[],\"stream\":true}", 10, &b);
    ck_assert_str_eq(out, "{\"model\":\"m\",\"messages\":[],\"stream\":true,"
                          "\"stream_options\":{\"include_usage\":true},"
                          "\"max_tokens\":10}");
    ck_assert(b.strip_usage);
    free(out);
    relay_body_free(&b);
    out = prepared("/v1/chat/completions",
                   "{\"model\":\"m\",\"messages\":[],\"stream\":true,"
                   "\"stream_options\":{\"include_usage\":true}}",
                   10, &b);
    ck_assert(!b.strip_usage);
    free(out);
    relay_body_free(&b);
}
END_TEST

START_TEST(body_api_key_never_reaches_the_upstream)
{
    struct relay_body b;
    char *out;

    out = prepared(
        "/api/generate",
        "{\"model\":\"m\",\"prompt\":\"x\",\"api_key\":\"sk-secret\"}", 10, &b);
    ck_assert_ptr_null(strstr(out, "sk-secret"));
    free(out);
    relay_body_free(&b);
}
END_TEST

START_TEST(the_body_key_is_the_top_level_api_key_string)
{
    char key[16];
    size_t len = 99;
    const char *ok = "{\"model\":\"m\",\"api_key\":\"sk-abc\"}";
    const char *nested = "{\"options\":{\"api_key\":\"sk-abc\"}}";
    const char *long_key = "{\"api_key\":\"0123456789abcdefghij\"}";

    ck_assert(relay_body_key(ok, strlen(ok), key, sizeof(key), &len));
    ck_assert_str_eq(key, "sk-abc");
    ck_assert_uint_eq(len, 6);
    ck_assert(!relay_body_key(nested, strlen(nested), key, sizeof(key), &len));
    ck_assert(!relay_body_key("{\"api_key\":7}", 13, key, sizeof(key), &len));
    ck_assert(
        !relay_body_key("{\"api_key\":\"\"}", 14, key, sizeof(key), &len));
    ck_assert(!relay_body_key("not json", 8, key, sizeof(key), &len));
    ck_assert_uint_eq(len, 0);
    /* cut, and so refused by the key check, never overflowing */
    ck_assert(
        relay_body_key(long_key, strlen(long_key), key, sizeof(key), &len));
    ck_assert_uint_eq(len, sizeof(key) - 1);
    ck_assert_str_eq(key, "0123456789abcde");
}
END_TEST

START_TEST(estimate_grows_with_text_messages_and_images)
{
    struct tg_endpoint e = ep("/api/chat");
    struct relay_body a, b, c;
    struct tg_err err = {0};
    const char *small = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                        "\"content\":\"hi\"}]}";
    const char *big = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                      "\"content\":\"hello hello hello hello hello hello\"}]}";
    const char *img = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                      "\"content\":\"hi\",\"images\":[\"AAAA\"]}]}";

    ck_assert_int_eq(relay_body_parse(&e, small, strlen(small), &a, &err),
                     TG_OK);
    ck_assert_int_eq(relay_body_parse(&e, big, strlen(big), &b, &err), TG_OK);
    ck_assert_int_eq(relay_body_parse(&e, img, strlen(img), &c, &err), TG_OK);
    ck_assert_int_eq(a.estimate, 16 + 8 + 0);
    ck_assert_int_eq(b.estimate, 16 + 8 + 35 / 3);
    ck_assert_int_eq(c.estimate, a.estimate + 768);
    relay_body_free(&a);
    relay_body_free(&b);
    relay_body_free(&c);
}
END_TEST

static Suite *
body_suite(void)
{
    Suite *s = suite_create("body");
    TCase *tc = tcase_create("bad bodies get a message naming the problem");

    tcase_add_loop_test(tc, bad_bodies_get_a_message_naming_the_problem, 0,
                        sizeof(bad) / sizeof(bad[0]));
    suite_add_tcase(s, tc);
    TG_TCASE(s, "the native cap is the lower of client and reservation",
             native_cap_is_the_lower_of_client_and_reservation);
    TG_TCASE(s, "the OpenAI cap folds max_completion_tokens into max_tokens",
             openai_cap_folds_max_completion_tokens_into_max_tokens);
    TG_TCASE(s, "an OpenAI stream asks for usage and strips it",
             openai_stream_asks_for_usage_and_strips_it);
    TG_TCASE(s, "a key in the body never reaches the upstream",
             body_api_key_never_reaches_the_upstream);
    TG_TCASE(s, "the body key is the top-level api_key string",
             the_body_key_is_the_top_level_api_key_string);
    TG_TCASE(s, "the estimate grows with text, messages and images",
             estimate_grows_with_text_messages_and_images);
    return s;
}

TG_CHECK_MAIN(body_suite)
