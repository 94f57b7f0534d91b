/* The request-body policy rewriter and canonicaliser, for each metered
 * endpoint: parse, cap, dump. The dump must be JSON that carries the cap and
 * no api_key, has no two names that fold alike where the relay reads names,
 * means to Go's encoding/json (case-insensitive names, the last one wins)
 * the model, stream flag and cap the checks saw, and parses again to the
 * same model, estimate and stream flag, with the cap now the client's own.
 * The model Go would read from the client's own bytes is the one checked. */
#include <config.h>

#include <string.h>

#include "body.h"
#include "endpoint.h"
#include "fuzz.h"

static const char *const paths[] = {
    "/api/generate",   "/api/chat",  "/v1/chat/completions",
    "/v1/completions", "/api/embed", "/api/embeddings",
    "/v1/embeddings",
};

/* An oracle apart from relay/body.c: one rune of a name as Go's foldName
 * sees it, for the runes that can reach an ASCII field name. */
static uint32_t
go_rune(const unsigned char **p)
{
    const unsigned char *s = *p;
    uint32_t r;

    if (s[0] < 0x80) {
        r = s[0] >= 'a' && s[0] <= 'z' ? s[0] - 32u : s[0];
        *p += 1;
        return r;
    }
    if (s[0] < 0xe0) {
        r = ((s[0] & 0x1fu) << 6) | (s[1] & 0x3fu);
        *p += 2;
    } else if (s[0] < 0xf0) {
        r = ((s[0] & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu);
        *p += 3;
    } else {
        r = ((s[0] & 0x07u) << 18) | ((s[1] & 0x3fu) << 12) |
            ((s[2] & 0x3fu) << 6) | (s[3] & 0x3fu);
        *p += 4;
    }
    return r == 0x212a ? 'K' : r == 0x17f ? 'S' : r;
}

/* Would encoding/json put a member named a into a field named b? */
static bool
go_same(const char *a, const char *b)
{
    const unsigned char *p = (const unsigned char *)a;
    const unsigned char *q = (const unsigned char *)b;

    while (*p != '\0' && *q != '\0')
        if (go_rune(&p) != go_rune(&q))
            return false;
    return *p == '\0' && *q == '\0';
}

/* The value Go decodes into struct field `name`: the last member that
 * matches it. */
static json_t *
go_get(json_t *obj, const char *name)
{
    const char *key;
    json_t *v, *found = NULL; /* borrowed */

    json_object_foreach(obj, key, v) if (go_same(key, name)) found = v;
    return found;
}

/* No two names of obj fold alike: Go would read one field from both. */
static void
check_unfolded(json_t *obj)
{
    const char *a, *b;
    json_t *v, *w; /* borrowed */

    json_object_foreach(obj, a, v) json_object_foreach(obj, b, w)
    {
        if (v != w && a != b)
            CHECK(strcmp(a, b) == 0 || !go_same(a, b));
    }
}

/* At each level the relay reads. */
static void
check_levels(json_t *doc)
{
    json_t *m, *part; /* borrowed */
    size_t i, j;

    check_unfolded(doc);
    check_unfolded(json_object_get(doc, "options"));
    check_unfolded(json_object_get(doc, "stream_options"));
    json_array_foreach(json_object_get(doc, "messages"), i, m)
    {
        check_unfolded(m);
        json_array_foreach(json_object_get(m, "content"), j, part)
            check_unfolded(part);
    }
}

/* What Ollama reads from the dump is what the checks saw: the model, the
 * stream flag and the cap, found as Go finds them. */
static void
check_as_go_reads(const struct tg_endpoint *ep, const struct relay_body *b,
                  json_t *doc, int64_t want)
{
    json_t *stream = go_get(doc, "stream"); /* borrowed */
    json_t *cap;                            /* borrowed */

    CHECK(strcmp(json_string_value(go_get(doc, "model")), b->model) == 0);
    CHECK(b->stream == (ep->family == TG_FAMILY_NATIVE ? !json_is_false(stream)
                                                       : json_is_true(stream)));
    if (ep->family == TG_FAMILY_OPENAI) {
        cap = go_get(doc, "max_tokens");
        CHECK(go_get(doc, "max_completion_tokens") == NULL);
    } else { /* options is a map[string]any: exact names */
        cap = json_object_get(go_get(doc, "options"), "num_predict");
    }
    CHECK(json_is_integer(cap) && json_integer_value(cap) == want);
    check_levels(doc);
}

/* The cap the upstream reads from the dumped document, or -2 if none. */
static int64_t
cap_in(const struct tg_endpoint *ep, json_t *doc)
{
    json_t *v; /* borrowed */

    if (ep->family == TG_FAMILY_OPENAI) {
        CHECK(json_object_get(doc, "max_completion_tokens") == NULL);
        v = json_object_get(doc, "max_tokens");
    } else {
        v = json_object_get(json_object_get(doc, "options"), "num_predict");
    }
    return json_is_integer(v) ? json_integer_value(v) : -2;
}

static void
check_dump(const struct tg_endpoint *ep, const struct relay_body *b,
           int64_t cap)
{
    struct relay_body again;
    struct tg_err err = {0};
    json_error_t jerr;
    json_t *doc = NULL; /* new */
    json_t *so;         /* borrowed */
    int64_t want =
        b->client_max >= 0 && b->client_max < cap ? b->client_max : cap;
    size_t len;
    char *s = relay_body_dump(b, &len);

    CHECK(s != NULL && strlen(s) == len);
    doc = json_loadb(s, len, 0, &jerr);
    CHECK(json_is_object(doc));
    CHECK(cap_in(ep, doc) == want);
    check_as_go_reads(ep, b, doc, want);
    CHECK(json_object_get(doc, "api_key") == NULL);
    CHECK(strncmp(json_string_value(json_object_get(doc, "model")), b->model,
                  strlen(b->model)) == 0);
    if (b->strip_usage) {
        so = json_object_get(doc, "stream_options");
        CHECK(json_is_true(json_object_get(so, "include_usage")));
    }
    /* What the upstream gets is a body we would accept as it is. */
    CHECK(relay_body_parse(ep, s, len, &again, &err) == TG_OK);
    CHECK(strcmp(again.model, b->model) == 0);
    CHECK(again.estimate == b->estimate);
    CHECK(again.stream == b->stream);
    CHECK(again.client_max == want);
    CHECK(!again.strip_usage);
    relay_body_free(&again);
    json_decref(doc);
    free(s);
}

/* accept_body_key: what relay_body_key finds is exactly the top-level
 * "api_key" string jansson reads (cut to the buffer), and nothing else. */
static void
check_body_key(const char *raw, size_t size)
{
    char key[72];
    size_t len = 99999;
    json_t *doc = json_loadb(raw, size, 0, NULL);
    json_t *v = json_object_get(doc, "api_key");
    bool want = json_is_string(v) && json_string_length(v) > 0;

    CHECK(relay_body_key(raw, size, key, sizeof(key), &len) == want);
    if (want) {
        size_t n = json_string_length(v);

        CHECK(len < sizeof(key) && strlen(key) <= len);
        CHECK(memcmp(key, json_string_value(v),
                     n < sizeof(key) - 1 ? n : sizeof(key) - 1) == 0);
    }
    json_decref(doc);
}

/* An accepted body means to Go what it meant to the checks: the model Go
 * would have decoded from the client's own bytes is the one checked. */
static void
check_client_model(const char *raw, size_t size, const struct relay_body *b)
{
    json_t *doc = json_loadb(raw, size, 0, NULL); /* new */
    const char *m = json_string_value(go_get(doc, "model"));

    CHECK(m != NULL && strcmp(m, b->model) == 0);
    json_decref(doc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t caps[] = {0, 1, 2048, INT64_MAX};
    const char *raw = (const char *)data;
    struct tg_endpoint ep;
    struct relay_body b;
    size_t i;

    check_body_key(raw, size);
    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct tg_err err = {0};
        int64_t cap = caps[(size + i) % (sizeof(caps) / sizeof(caps[0]))];

        tg_endpoint_classify(paths[i], strlen(paths[i]), &ep);
        if (relay_body_parse(&ep, raw, size, &b, &err) != TG_OK) {
            CHECK(b.doc == NULL);
            CHECK(err.code == TG_E_BAD_REQUEST && err.msg[0] != '\0');
            continue;
        }
        CHECK(json_is_object(b.doc));
        CHECK(b.model[0] != '\0');
        check_client_model(raw, size, &b);
        CHECK(b.estimate >= 16);
        CHECK(b.client_max >= -1);
        CHECK(!b.strip_usage || (ep.family == TG_FAMILY_OPENAI && b.stream));
        CHECK(relay_body_cap(&ep, &b, cap, &err) == TG_OK);
        check_dump(&ep, &b, cap);
        relay_body_free(&b);
        relay_body_free(&b); /* safe twice */
    }
    return 0;
}
