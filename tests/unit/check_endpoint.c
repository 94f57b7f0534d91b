/* endpoint: the classification the authorizer and the relay share. */
#include <config.h>

#include <string.h>

#include "endpoint.h"
#include "unit.h"

static const struct {
    const char *path;
    enum tg_ep_kind kind;
    enum tg_family family;
    const char *name;
} table[] = {
    {"/api/chat", TG_EP_GENERATE, TG_FAMILY_NATIVE, "/api/chat"},
    {"/api/generate", TG_EP_GENERATE, TG_FAMILY_NATIVE, "/api/generate"},
    {"/v1/chat/completions", TG_EP_GENERATE, TG_FAMILY_OPENAI,
     "/v1/chat/completions"},
    {"/v1/completions", TG_EP_GENERATE, TG_FAMILY_OPENAI, "/v1/completions"},
    {"/api/embed", TG_EP_EMBED, TG_FAMILY_NATIVE, "/api/embed"},
    {"/api/embeddings", TG_EP_EMBED, TG_FAMILY_NATIVE, "/api/embeddings"},
    {"/v1/embeddings", TG_EP_EMBED, TG_FAMILY_OPENAI, "/v1/embeddings"},
    {"/api/tags", TG_EP_READ, TG_FAMILY_NATIVE, "/api/tags"},
    {"/v1/models", TG_EP_READ, TG_FAMILY_OPENAI, "/v1/models"},
    {"/v1/models/llama3", TG_EP_READ, TG_FAMILY_OPENAI, "/v1/models/{model}"},
    {"/v1/models/a/b", TG_EP_UNKNOWN, TG_FAMILY_OPENAI, "other"},
    {"/api/pull", TG_EP_ADMIN, TG_FAMILY_NATIVE, "/api/pull"},
    {"/api/blobs/sha256:00", TG_EP_ADMIN, TG_FAMILY_NATIVE,
     "/api/blobs/{digest}"},
    {"/api/chat/x", TG_EP_UNKNOWN, TG_FAMILY_NATIVE, "other"},
    {"/api/chatty", TG_EP_UNKNOWN, TG_FAMILY_NATIVE, "other"},
    {"/v1/responses", TG_EP_UNKNOWN, TG_FAMILY_OPENAI, "other"},
    {"/", TG_EP_UNKNOWN, TG_FAMILY_NATIVE, "other"},
};

START_TEST(paths_are_classified_exactly)
{
    struct tg_endpoint ep;

    tg_endpoint_classify(table[_i].path, strlen(table[_i].path), &ep);
    ck_assert_int_eq(ep.kind, table[_i].kind);
    ck_assert_int_eq(ep.family, table[_i].family);
    ck_assert_str_eq(ep.name, table[_i].name);
}
END_TEST

START_TEST(only_inference_is_metered)
{
    struct tg_endpoint ep;

    tg_endpoint_classify("/api/chat", 9, &ep);
    ck_assert(tg_endpoint_metered(&ep));
    tg_endpoint_classify("/v1/embeddings", 14, &ep);
    ck_assert(tg_endpoint_metered(&ep));
    tg_endpoint_classify("/api/tags", 9, &ep);
    ck_assert(!tg_endpoint_metered(&ep));
    tg_endpoint_classify("/api/pull", 9, &ep);
    ck_assert(!tg_endpoint_metered(&ep));
}
END_TEST

static Suite *
endpoint_suite(void)
{
    Suite *s = suite_create("endpoint");
    TCase *tc = tcase_create("paths are classified exactly");

    tcase_add_loop_test(tc, paths_are_classified_exactly, 0,
                        sizeof(table) / sizeof(table[0]));
    suite_add_tcase(s, tc);
    TG_TCASE(s, "only inference is metered", only_inference_is_metered);
    return s;
}

TG_CHECK_MAIN(endpoint_suite)
