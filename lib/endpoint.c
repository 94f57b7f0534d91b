/* The endpoint table, from ollama-protocol.md §1 and §3. Exact paths only:
 * /api/chat/x is not /api/chat, so nothing unmetered hides behind a prefix. */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "endpoint.h"

static const struct {
    const char *path;
    enum tg_ep_kind kind;
    enum tg_ep_wire wire;
} table[] = {
    {"/api/generate", TG_EP_GENERATE, TG_EP_NATIVE_GENERATE},
    {"/api/chat", TG_EP_GENERATE, TG_EP_NATIVE_CHAT},
    {"/v1/chat/completions", TG_EP_GENERATE, TG_EP_OPENAI_CHAT},
    {"/v1/completions", TG_EP_GENERATE, TG_EP_OPENAI_COMPLETION},
    {"/api/embed", TG_EP_EMBED, TG_EP_OTHER},
    {"/api/embeddings", TG_EP_EMBED, TG_EP_OTHER},
    {"/v1/embeddings", TG_EP_EMBED, TG_EP_OTHER},
    {"/api/tags", TG_EP_READ, TG_EP_OTHER},
    {"/api/show", TG_EP_READ, TG_EP_OTHER},
    {"/api/ps", TG_EP_READ, TG_EP_OTHER},
    {"/api/version", TG_EP_READ, TG_EP_OTHER},
    {"/v1/models", TG_EP_READ, TG_EP_OTHER},
    {"/api/pull", TG_EP_ADMIN, TG_EP_OTHER},
    {"/api/push", TG_EP_ADMIN, TG_EP_OTHER},
    {"/api/create", TG_EP_ADMIN, TG_EP_OTHER},
    {"/api/copy", TG_EP_ADMIN, TG_EP_OTHER},
    {"/api/delete", TG_EP_ADMIN, TG_EP_OTHER},
};

static bool
has_prefix(const char *p, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);

    return len > n && memcmp(p, prefix, n) == 0 &&
           memchr(p + n, '/', len - n) == NULL;
}

void
tg_endpoint_classify(const char *path, size_t len, struct tg_endpoint *out)
{
    size_t i;

    out->family = len >= 4 && memcmp(path, "/v1/", 4) == 0 ? TG_FAMILY_OPENAI
                                                           : TG_FAMILY_NATIVE;
    out->wire = TG_EP_OTHER;
    for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (strlen(table[i].path) == len &&
            memcmp(table[i].path, path, len) == 0) {
            out->kind = table[i].kind;
            out->wire = table[i].wire;
            snprintf(out->name, sizeof(out->name), "%s", table[i].path);
            return;
        }
    }
    if (has_prefix(path, len, "/v1/models/")) {
        out->kind = TG_EP_READ;
        snprintf(out->name, sizeof(out->name), "/v1/models/{model}");
    } else if (has_prefix(path, len, "/api/blobs/")) {
        out->kind = TG_EP_ADMIN;
        snprintf(out->name, sizeof(out->name), "/api/blobs/{digest}");
    } else {
        out->kind = TG_EP_UNKNOWN;
        snprintf(out->name, sizeof(out->name), "other");
    }
}

bool
tg_endpoint_metered(const struct tg_endpoint *ep)
{
    return ep->kind == TG_EP_GENERATE || ep->kind == TG_EP_EMBED;
}
