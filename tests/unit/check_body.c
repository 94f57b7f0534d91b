/* body: parse errors, canonical names, estimate, caps and the usage
 * request. */
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
    {"/api/chat",
     "{\"model\":\"qwen2.5:"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "a"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/../evil\"}",
     "'model' must be at most 127 bytes"},
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

static int64_t
estimate_of(const char *path, const char *in)
{
    struct tg_endpoint e = ep(path);
    struct relay_body b;
    struct tg_err err = {0};
    int64_t n;

    ck_assert_msg(relay_body_parse(&e, in, strlen(in), &b, &err) == TG_OK,
                  "%s: %s", in, err.msg);
    n = b.estimate;
    relay_body_free(&b);
    return n;
}

START_TEST(estimate_grows_with_text_messages_and_images)
{
    const char *small = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                        "\"content\":\"hi\"}]}";
    const char *big = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                      "\"content\":\"hello hello hello hello hello hello\"}]}";
    const char *img = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                      "\"content\":\"hi\",\"images\":[\"AAAA\"]}]}";

    /* base, one message, its role and its content, a token a byte */
    ck_assert_int_eq(estimate_of("/api/chat", small), 16 + 8 + 4 + 2);
    ck_assert_int_eq(estimate_of("/api/chat", big), 16 + 8 + 4 + 35);
    ck_assert_int_eq(estimate_of("/api/chat", img),
                     estimate_of("/api/chat", small) + 768);
}
END_TEST

/* "a a a a" is a token a word to a real tokenizer, two bytes a token: the
 * estimate counts bytes, so no choice of words gets under it. */
START_TEST(one_letter_words_cannot_get_under_the_estimate)
{
    char body[2200];
    int n = snprintf(body, sizeof(body), "{\"model\":\"m\",\"prompt\":\"");

    while (n < 2000)
        n += snprintf(body + n, sizeof(body) - (size_t)n, "a ");
    snprintf(body + n, sizeof(body) - (size_t)n, "\"}");
    ck_assert_int_ge(estimate_of("/api/generate", body), 2000 - 23);
    ck_assert_int_ge(estimate_of("/v1/completions", body), 2000 - 23);
}
END_TEST

static const struct {
    const char *path, *body;
    int64_t more; /* over the same body without the field */
} feeds[] = {
    {"/api/generate", "{\"model\":\"m\",\"system\":\"abcdef\"}", 6},
    {"/api/generate", "{\"model\":\"m\",\"suffix\":\"abcdef\"}", 6},
    {"/api/generate", "{\"model\":\"m\",\"template\":\"abcdef\"}", 6},
    {"/api/generate", "{\"model\":\"m\",\"context\":[1,2,3,400000]}", 4},
    {"/api/generate", "{\"model\":\"m\",\"images\":[\"AA\",\"BB\"]}", 2 * 768},
    {"/api/generate", "{\"model\":\"m\",\"format\":{\"type\":\"object\"}}", 17},
    {"/api/generate", "{\"model\":\"m\",\"format\":\"json\"}", 4},
    {"/api/chat", "{\"model\":\"m\",\"tools\":[{\"type\":\"x\"}]}", 14},
    {"/api/chat",
     "{\"model\":\"m\",\"messages\":[{\"role\":\"a\",\"thinking\":\"abcd\"}]}",
     8 + 1 + 4},
    {"/api/chat",
     "{\"model\":\"m\",\"messages\":[{\"tool_calls\":[{\"a\":1}]}]}", 8 + 9},
    {"/v1/chat/completions",
     "{\"model\":\"m\",\"messages\":[{\"content\":[{\"type\":\"text\","
     "\"text\":\"abcd\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
     "\"data:xyz\"}}]}]}",
     8 + 4 + 4 + 9 + 768},
    {"/api/embed", "{\"model\":\"m\",\"input\":[\"\",\"\",\"abc\"]}", 24 + 3},
    {"/v1/embeddings", "{\"model\":\"m\",\"input\":\"abc\"}", 3},
    /* an unknown field errs high */
    {"/api/generate", "{\"model\":\"m\",\"prefix\":\"abcdef\"}", 6},
    /* what never reaches the prompt does not count */
    {"/api/generate",
     "{\"model\":\"m\",\"options\":{\"stop\":[\"abcdefgh\"]},\"keep_alive\":"
     "\"10m\",\"raw\":true,\"think\":true,\"stream\":false}",
     0},
};

START_TEST(every_field_that_feeds_the_prompt_counts)
{
    const char *path = feeds[_i].path;
    const char *bare =
        strncmp(path, "/api/chat", 9) == 0 || strncmp(path, "/v1/chat", 8) == 0
            ? "{\"model\":\"m\",\"messages\":[]}"
            : "{\"model\":\"m\"}";
    int64_t base = estimate_of(path, bare);

    if (strstr(feeds[_i].body, "\"messages\"") != NULL)
        base = estimate_of(path, "{\"model\":\"m\",\"messages\":[]}");
    ck_assert_int_eq(estimate_of(path, feeds[_i].body) - base, feeds[_i].more);
}
END_TEST

static const struct {
    const char *path, *body, *msg;
} dup[] = {
    {"/api/chat", "{\"model\":\"a\",\"model\":\"b\"}",
     "duplicate field in request body: duplicate object key near "
     "'\"model\"'"},
    {"/api/chat", "{\"model\":\"a\",\"tools\":[{\"x\":1,\"x\":2}]}",
     "duplicate object key near '\"x\"'"},
    {"/api/chat", "{\"model\":\"a\",\"MODEL\":\"b\"}",
     "duplicate field 'model' (also as 'MODEL'): JSON field names are "
     "matched case-insensitively"},
    {"/api/chat", "{\"Model\":\"a\",\"mODEL\":\"b\"}",
     "duplicate field 'Model' (also as 'mODEL')"},
    {"/api/chat", "{\"model\":\"a\",\"stream\":true,\"\xc5\xbftream\":false}",
     "duplicate field 'stream' (also as '\xc5\xbftream')"},
    {"/v1/chat/completions",
     "{\"model\":\"a\",\"max_tokens\":5,\"max_to\xe2\x84\xaa"
     "ens\":99999}",
     "duplicate field 'max_tokens'"},
    {"/api/chat", "{\"model\":\"a\",\"temperature\":1,\"TEMPERATURE\":2}",
     "duplicate field 'temperature' (also as 'TEMPERATURE')"},
    {"/api/chat",
     "{\"model\":\"a\",\"options\":{\"num_predict\":5},"
     "\"OPTIONS\":{\"num_predict\":99}}",
     "duplicate field 'options' (also as 'OPTIONS')"},
    {"/api/generate",
     "{\"model\":\"a\",\"options\":{\"num_predict\":5,\"NUM_PREDICT\":9}}",
     "duplicate field 'options.num_predict' (also as 'NUM_PREDICT')"},
    {"/v1/completions",
     "{\"model\":\"a\",\"stream_options\":{\"include_usage\":false,"
     "\"Include_Usage\":true}}",
     "duplicate field 'stream_options.include_usage' (also as "
     "'Include_Usage')"},
    {"/api/chat",
     "{\"model\":\"a\",\"messages\":[{},{\"content\":\"x\",\"CONTENT\":\"y\"}"
     "]}",
     "duplicate field 'messages[1].content' (also as 'CONTENT')"},
    {"/v1/chat/completions",
     "{\"model\":\"a\",\"messages\":[{\"content\":[{\"type\":\"text\","
     "\"Type\":\"image_url\"}]}]}",
     "duplicate field 'messages[0].content[0].type' (also as 'Type')"},
    /* a name shown is cut and has no control characters */
    {"/api/chat",
     "{\"model\":\"a\",\"x\\u0001xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxx\":1,\"X\\u0001XXXXXXXXXXXXXXXXXXXXXXXXXXX"
     "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\":2}",
     "xxxxxxxxxx...' (also as 'X?XXXXX"},
};

START_TEST(duplicate_and_case_folded_names_are_refused)
{
    struct tg_endpoint e = ep(dup[_i].path);
    struct relay_body b;
    struct tg_err err = {0};

    ck_assert_int_eq(
        relay_body_parse(&e, dup[_i].body, strlen(dup[_i].body), &b, &err),
        TG_E_BAD_REQUEST);
    ck_assert_msg(strstr(err.msg, dup[_i].msg) != NULL, "%s", err.msg);
    ck_assert_ptr_null(b.doc);
}
END_TEST

static const struct {
    const char *path, *in, *out;
    int64_t cap;
} renamed[] = {
    {"/api/generate",
     "{\"MODEL\":\"big\",\"Prompt\":\"x\",\"OPTIONS\":{\"NUM_PREDICT\":"
     "100000}}",
     "{\"model\":\"big\",\"options\":{\"num_predict\":5},\"prompt\":\"x\"}", 5},
    {"/api/chat",
     "{\"model\":\"m\",\"Messages\":[{\"role\":\"user\",\"CONTENT\":\"hi\"}],"
     "\"\xc5\xbftream\":false}",
     "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\","
     "\"content\":\"hi\"}],\"options\":{\"num_predict\":5}}",
     5},
    {"/v1/chat/completions",
     "{\"model\":\"m\",\"messages\":[],\"MAX_TO\xe2\x84\xaa"
     "ENS\":99999,\"Max_Completion_Tokens\":7}",
     "{\"model\":\"m\",\"messages\":[],\"max_tokens\":5}", 5},
    {"/v1/completions",
     "{\"model\":\"m\",\"prompt\":\"p\",\"Stream\":true,\"Stream_Options\":{"
     "\"INCLUDE_USAGE\":true},\"Api_Key\":\"sk-x\"}",
     "{\"model\":\"m\",\"prompt\":\"p\",\"stream\":true,\"stream_options\":{"
     "\"include_usage\":true},\"max_tokens\":5}",
     5},
    /* levels tollgate does not read are left as they are */
    {"/api/generate",
     "{\"model\":\"m\",\"format\":{\"Model\":1,\"MODEL\":2},\"Keep_Alive\":"
     "\"1m\"}",
     "{\"model\":\"m\",\"format\":{\"Model\":1,\"MODEL\":2},\"Keep_Alive\":"
     "\"1m\",\"options\":{\"num_predict\":5}}",
     5},
};

START_TEST(names_tollgate_reads_are_forwarded_in_its_spelling)
{
    struct relay_body b;
    char *out = prepared(renamed[_i].path, renamed[_i].in, renamed[_i].cap, &b);

    ck_assert_str_eq(out, renamed[_i].out);
    free(out);
    relay_body_free(&b);
}
END_TEST

/* What the renames mean to the checks: the model, the client's cap, the
 * stream flag and the messages are the ones Ollama would have read. */
START_TEST(renamed_names_are_what_the_checks_see)
{
    struct tg_endpoint e = ep("/api/chat");
    struct relay_body b;
    struct tg_err err = {0};
    const char *in = "{\"Model\":\"big\",\"OPTIONS\":{\"Num_Predict\":100000},"
                     "\"STREAM\":false,\"Messages\":[{\"Content\":\"abcd\"}]}";

    ck_assert_int_eq(relay_body_parse(&e, in, strlen(in), &b, &err), TG_OK);
    ck_assert_str_eq(b.model, "big");
    ck_assert_int_eq(b.client_max, 100000);
    ck_assert(!b.stream);
    ck_assert_int_eq(b.estimate, 16 + 8 + 4);
    relay_body_free(&b);
}
END_TEST

START_TEST(field_names_match_as_go_matches_them)
{
    ck_assert(relay_body_field_is("model", "model"));
    ck_assert(relay_body_field_is("MoDeL", "model"));
    ck_assert(relay_body_field_is("\xe2\x84\xaa"
                                  "eep_alive",
                                  "keep_alive"));
    ck_assert(relay_body_field_is("\xc5\xbf"
                                  "TREAM",
                                  "stream"));
    /* dotless i and dotted I are not in i's fold orbit in Go */
    ck_assert(!relay_body_field_is("\xc4\xb1nput", "input"));
    ck_assert(!relay_body_field_is("\xc4\xb0nput", "input"));
    ck_assert(!relay_body_field_is("num-predict", "num_predict"));
    ck_assert(!relay_body_field_is("models", "model"));
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
    TG_TCASE(s, "one-letter words cannot get under the estimate",
             one_letter_words_cannot_get_under_the_estimate);
    tc = tcase_create("every field that feeds the prompt counts");
    tcase_add_loop_test(tc, every_field_that_feeds_the_prompt_counts, 0,
                        sizeof(feeds) / sizeof(feeds[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("duplicate and case-folded names are refused");
    tcase_add_loop_test(tc, duplicate_and_case_folded_names_are_refused, 0,
                        sizeof(dup) / sizeof(dup[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("names tollgate reads are forwarded in its spelling");
    tcase_add_loop_test(tc, names_tollgate_reads_are_forwarded_in_its_spelling,
                        0, sizeof(renamed) / sizeof(renamed[0]));
    suite_add_tcase(s, tc);
    TG_TCASE(s, "renamed names are what the checks see",
             renamed_names_are_what_the_checks_see);
    TG_TCASE(s, "field names match as Go matches them",
             field_names_match_as_go_matches_them);
    return s;
}

TG_CHECK_MAIN(body_suite)
