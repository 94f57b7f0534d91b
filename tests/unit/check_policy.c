/* policy: model lock and allow-list. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "unit.h"

static const struct {
    const char *allowed, *model;
    bool ok;
} table[] = {
    {NULL, "anything", true},
    {"[\"llama3\"]", "llama3", true},
    {"[\"llama3\"]", "llama3:latest", true},
    {"[\"llama3:latest\"]", "llama3", true},
    {"[\"llama3\"]", "llama3:70b", false},
    {"[\"llama3\"]", "llama", false},
    {"[\"qwen2.5:*\"]", "qwen2.5:7b", true},
    {"[\"qwen2.5:*\"]", "qwen2.5", true},
    {"[\"qwen2.5:*\"]", "qwen2:7b", false},
    {"[\"a\",\"b:1\"]", "b:1", true},
    {"[]", "llama3", false},
    {"not json", "llama3", false}, /* fails closed */
    {"[\"hf.co/org/m:q4\"]", "hf.co/org/m:q4", true},
    {"[\"hf.co/org/m\"]", "hf.co/org/m:q4", false},
};

START_TEST(models_match_names_tags_and_families)
{
    struct relay_policy p;

    relay_policy_load(&p, table[_i].allowed, NULL, NULL);
    ck_assert_msg(relay_policy_model_ok(&p, table[_i].model) == table[_i].ok,
                  "%s in %s", table[_i].model, table[_i].allowed);
    relay_policy_free(&p);
}
END_TEST

static struct relay_body
body(const char *model)
{
    struct tg_endpoint e;
    struct relay_body b;
    struct tg_err err = {0};
    char raw[256];

    snprintf(raw, sizeof(raw), "{\"model\":\"%s\",\"messages\":[]}", model);
    tg_endpoint_classify("/api/chat", 9, &e);
    ck_assert_int_eq(relay_body_parse(&e, raw, strlen(raw), &b, &err), TG_OK);
    return b;
}

START_TEST(key_lock_wins_over_global_lock_and_list)
{
    struct relay_policy p;
    struct relay_body b = body("other");
    struct tg_err err = {0};
    size_t n;
    char *out;

    relay_policy_load(&p, "[\"llama3\"]", "qwen2.5:7b", "llama3");
    ck_assert_int_eq(relay_policy_apply(&p, &b, &err), TG_OK);
    ck_assert_str_eq(b.model, "qwen2.5:7b");
    out = relay_body_dump(&b, &n);
    ck_assert_ptr_nonnull(strstr(out, "\"model\":\"qwen2.5:7b\""));
    free(out);
    relay_body_free(&b);
    relay_policy_free(&p);
    b = body("other");
    relay_policy_load(&p, NULL, "", "llama3");
    ck_assert_int_eq(relay_policy_apply(&p, &b, &err), TG_OK);
    ck_assert_str_eq(b.model, "llama3");
    relay_body_free(&b);
    relay_policy_free(&p);
}
END_TEST

START_TEST(refusal_lists_what_the_key_may_use)
{
    struct relay_policy p;
    struct relay_body b = body("mistral");
    struct tg_err err = {0};

    relay_policy_load(&p, "[\"llama3\",\"qwen2.5:*\"]", NULL, "");
    ck_assert_int_eq(relay_policy_apply(&p, &b, &err), TG_E_FORBIDDEN);
    ck_assert_str_eq(err.msg, "This API key may not use model 'mistral'. It "
                              "may use: llama3, qwen2.5:*.");
    relay_body_free(&b);
    relay_policy_free(&p);
}
END_TEST

static Suite *
policy_suite(void)
{
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("models match names, tags and families");

    tcase_add_loop_test(tc, models_match_names_tags_and_families, 0,
                        sizeof(table) / sizeof(table[0]));
    suite_add_tcase(s, tc);
    TG_TCASE(s, "the key's lock wins over the global lock and the list",
             key_lock_wins_over_global_lock_and_list);
    TG_TCASE(s, "a refusal lists what the key may use",
             refusal_lists_what_the_key_may_use);
    return s;
}

TG_CHECK_MAIN(policy_suite)
