/* Request bodies. The upstream gets the re-encoded document, not the
 * client's bytes: with duplicate keys jansson keeps the last, and Ollama must
 * see exactly what the checks saw. The estimate errs high (bytes / 3 and a
 * flat cost per message and image), because an estimate that is too low is
 * what lets usage run past a limit. */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "body.h"

#define EST_BASE 16
#define EST_PER_MESSAGE 8
#define EST_PER_IMAGE 768

static int64_t
text_cost(json_t *v)
{
    return json_is_string(v) ? (int64_t)json_string_length(v) / 3 : 0;
}

static int64_t
images_cost(json_t *images)
{
    return json_is_array(images)
               ? (int64_t)json_array_size(images) * EST_PER_IMAGE
               : 0;
}

/* content is a string, or (OpenAI) an array of parts: text or image_url. */
static int64_t
content_cost(json_t *content)
{
    int64_t n = text_cost(content);
    size_t i;
    json_t *part; /* borrowed */

    json_array_foreach(content, i, part)
    {
        n += text_cost(json_object_get(part, "text"));
        if (json_object_get(part, "image_url") != NULL)
            n += EST_PER_IMAGE;
    }
    return n;
}

static int64_t
estimate(json_t *doc)
{
    int64_t n = EST_BASE;
    json_t *m, *input; /* borrowed */
    size_t i;
    char *tools;

    n += text_cost(json_object_get(doc, "prompt"));
    n += text_cost(json_object_get(doc, "system"));
    n += text_cost(json_object_get(doc, "suffix"));
    n += images_cost(json_object_get(doc, "images"));
    json_array_foreach(json_object_get(doc, "messages"), i, m)
    {
        n += EST_PER_MESSAGE + content_cost(json_object_get(m, "content"));
        n += images_cost(json_object_get(m, "images"));
    }
    input = json_object_get(doc, "input");
    n += text_cost(input);
    json_array_foreach(input, i, m) n += EST_PER_MESSAGE + text_cost(m);
    tools = json_object_get(doc, "tools") != NULL
                ? json_dumps(json_object_get(doc, "tools"), JSON_COMPACT)
                : NULL;
    if (tools != NULL)
        n += (int64_t)strlen(tools) / 3;
    free(tools);
    return n;
}

static enum tg_code
want_type(json_t *doc, const char *key, json_type type, const char *what,
          struct tg_err *err)
{
    json_t *v = json_object_get(doc, key); /* borrowed */

    if (v == NULL || json_is_null(v) || json_typeof(v) == type ||
        (type == JSON_TRUE && json_is_boolean(v)) ||
        (type == JSON_REAL && json_is_number(v)))
        return TG_OK;
    return tg_err_set(err, TG_E_BAD_REQUEST, "'%s' must be %s", key, what);
}

/* The client's output cap: -1 when none (Ollama's -1 and -2 mean none). */
static enum tg_code
client_cap(const struct tg_endpoint *ep, json_t *doc, int64_t *out,
           struct tg_err *err)
{
    static const char *const openai[] = {"max_tokens", "max_completion_tokens"};
    json_t *v; /* borrowed */
    size_t i;

    *out = -1;
    if (ep->family == TG_FAMILY_NATIVE) {
        v = json_object_get(json_object_get(doc, "options"), "num_predict");
        if (v != NULL && !json_is_integer(v))
            return tg_err_set(err, TG_E_BAD_REQUEST,
                              "'options.num_predict' must be an integer");
        if (v != NULL && json_integer_value(v) >= 0)
            *out = json_integer_value(v);
        return TG_OK;
    }
    for (i = 0; i < 2; i++) {
        v = json_object_get(doc, openai[i]);
        if (v == NULL || json_is_null(v))
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return tg_err_set(err, TG_E_BAD_REQUEST,
                              "'%s' must be a non-negative integer", openai[i]);
        if (*out < 0 || json_integer_value(v) < *out)
            *out = json_integer_value(v);
    }
    return TG_OK;
}

static enum tg_code
check_fields(const struct tg_endpoint *ep, json_t *doc, struct tg_err *err)
{
    enum tg_code rc = TG_OK;

    if (ep->wire == TG_EP_NATIVE_CHAT || ep->wire == TG_EP_OPENAI_CHAT)
        rc = want_type(doc, "messages", JSON_ARRAY, "an array", err);
    if (rc == TG_OK && (ep->wire == TG_EP_NATIVE_GENERATE ||
                        ep->wire == TG_EP_OPENAI_COMPLETION))
        rc = want_type(doc, "prompt", JSON_STRING, "a string", err);
    if (rc == TG_OK)
        rc = want_type(doc, "stream", JSON_TRUE, "true or false", err);
    if (rc == TG_OK)
        rc = want_type(doc, "options", JSON_OBJECT, "an object", err);
    if (rc == TG_OK)
        rc = want_type(doc, "stream_options", JSON_OBJECT, "an object", err);
    return rc;
}

/* OpenAI streams without counts unless asked: ask, and remember to hide
 * the extra chunk from a client that did not. */
static enum tg_code
ask_usage(struct relay_body *b, struct tg_err *err)
{
    json_t *so = json_object_get(b->doc, "stream_options"); /* borrowed */

    if (json_is_true(json_object_get(so, "include_usage")))
        return TG_OK;
    if (!json_is_object(so)) {
        so = json_object();
        if (so == NULL || json_object_set_new(b->doc, "stream_options", so))
            return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    if (json_object_set_new(so, "include_usage", json_true()))
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    b->strip_usage = true;
    return TG_OK;
}

enum tg_code
relay_body_parse(const struct tg_endpoint *ep, const char *raw, size_t len,
                 struct relay_body *b, struct tg_err *err)
{
    json_t *model, *stream; /* borrowed */
    json_error_t jerr;
    enum tg_code rc = TG_E_BAD_REQUEST;

    memset(b, 0, sizeof(*b));
    b->doc = json_loadb(raw, len, 0, &jerr);
    if (b->doc == NULL) {
        if (len == 0)
            rc = tg_err_set(err, TG_E_BAD_REQUEST, "missing request body");
        else
            rc = tg_err_set(err, TG_E_BAD_REQUEST,
                            "invalid JSON in request body: %s (line %d, "
                            "column %d)",
                            jerr.text, jerr.line, jerr.column);
        goto out;
    }
    if (!json_is_object(b->doc)) {
        rc = tg_err_set(err, TG_E_BAD_REQUEST,
                        "request body must be a JSON object");
        goto out;
    }
    model = json_object_get(b->doc, "model");
    if (!json_is_string(model) || json_string_length(model) == 0) {
        rc = tg_err_set(err, TG_E_BAD_REQUEST, "%s",
                        model == NULL ? "model is required"
                                      : "'model' must be a non-empty string");
        goto out;
    }
    snprintf(b->model, sizeof(b->model), "%s", json_string_value(model));
    rc = check_fields(ep, b->doc, err);
    if (rc == TG_OK)
        rc = client_cap(ep, b->doc, &b->client_max, err);
    if (rc != TG_OK)
        goto out;
    /* A key in the body is a credential too: it never reaches the upstream. */
    json_object_del(b->doc, "api_key");
    stream = json_object_get(b->doc, "stream");
    b->stream = ep->family == TG_FAMILY_NATIVE ? !json_is_false(stream)
                                               : json_is_true(stream);
    b->estimate = estimate(b->doc);
    if (ep->family == TG_FAMILY_OPENAI && ep->kind == TG_EP_GENERATE &&
        b->stream)
        rc = ask_usage(b, err);
out:
    if (rc != TG_OK)
        relay_body_free(b);
    return rc;
}

bool
relay_body_key(const char *raw, size_t len, char *key, size_t keymax,
               size_t *keylen)
{
    json_t *doc = json_loadb(raw, len, 0, NULL); /* new */
    json_t *k = json_object_get(doc, "api_key"); /* borrowed */
    size_t n = json_string_length(k);

    *keylen = 0;
    if (json_is_string(k) && n > 0 && keymax > 0) {
        *keylen = n < keymax ? n : keymax - 1;
        memcpy(key, json_string_value(k), *keylen);
        key[*keylen] = '\0';
    }
    json_decref(doc);
    return *keylen > 0;
}

enum tg_code
relay_body_cap(const struct tg_endpoint *ep, struct relay_body *b, int64_t cap,
               struct tg_err *err)
{
    json_t *opts; /* borrowed */

    if (b->client_max >= 0 && b->client_max < cap)
        cap = b->client_max;
    if (ep->family == TG_FAMILY_OPENAI) {
        json_object_del(b->doc, "max_completion_tokens");
        if (json_object_set_new(b->doc, "max_tokens", json_integer(cap)))
            return tg_err_set(err, TG_E_INTERNAL, "out of memory");
        return TG_OK;
    }
    opts = json_object_get(b->doc, "options");
    if (!json_is_object(opts)) {
        opts = json_object();
        if (opts == NULL || json_object_set_new(b->doc, "options", opts))
            return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    if (json_object_set_new(opts, "num_predict", json_integer(cap)))
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    return TG_OK;
}

char *
relay_body_dump(const struct relay_body *b, size_t *len)
{
    char *s = json_dumps(b->doc, JSON_COMPACT | JSON_PRESERVE_ORDER);

    *len = s != NULL ? strlen(s) : 0;
    return s;
}

void
relay_body_free(struct relay_body *b)
{
    json_decref(b->doc);
    b->doc = NULL;
}
