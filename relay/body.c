/* Request bodies. The upstream gets the re-encoded document, not the
 * client's bytes, made canonical first: Ollama decodes with Go's
 * encoding/json, which matches field names case-insensitively and lets the
 * last one win, so a body with duplicate names, or names that fold alike
 * where tollgate reads them, is refused, and a name tollgate reads is
 * forwarded in tollgate's spelling. Ollama then sees exactly what the checks
 * saw. The estimate errs high (a token per byte of everything that feeds
 * the prompt, a flat cost per message and image), because an estimate that
 * is too low is what lets usage run past a limit, while one too high only
 * asks a large prompt for a top-up. */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "body.h"

#define EST_BASE 16
#define EST_PER_MESSAGE 8
#define EST_PER_IMAGE 768

/* The names tollgate reads, at each level it reads them. */
static const char *const top_names[] = {"model",      "options",
                                        "stream",     "stream_options",
                                        "max_tokens", "max_completion_tokens",
                                        "messages",   "prompt",
                                        "images",     "context",
                                        "input",      "api_key",
                                        NULL};
static const char *const option_names[] = {"num_predict", NULL};
static const char *const stream_option_names[] = {"include_usage", NULL};
static const char *const message_names[] = {"content", "images", NULL};
static const char *const part_names[] = {"image_url", NULL};

/* Top-level fields that never reach the prompt. Any other field counts:
 * one Ollama adds later, or one we do not know, errs high, not low. */
static const char *const not_prompt[] = {"model",
                                         "options",
                                         "stream",
                                         "stream_options",
                                         "keep_alive",
                                         "think",
                                         "raw",
                                         "truncate",
                                         "shift",
                                         "logprobs",
                                         "top_logprobs",
                                         "max_tokens",
                                         "max_completion_tokens",
                                         "temperature",
                                         "top_p",
                                         "seed",
                                         "stop",
                                         "frequency_penalty",
                                         "presence_penalty",
                                         "dimensions",
                                         "encoding_format",
                                         "reasoning_effort",
                                         "reasoning",
                                         "tool_choice",
                                         "n",
                                         "user",
                                         NULL};

static bool
listed(const char *const *list, const char *name)
{
    for (; *list != NULL; list++)
        if (strcmp(*list, name) == 0)
            return true;
    return false;
}

/* Go's foldName, for what can match Ollama's field names, all of them
 * ASCII: a-z as A-Z, and the two runes whose case orbit holds an ASCII
 * letter, KELVIN SIGN (e2 84 aa, K) and LATIN SMALL LETTER LONG S (c5 bf,
 * S). Other runes stay as they are: folded or not, they match no ASCII
 * name, so no field Ollama reads. `out` holds strlen(key) + 1 bytes. */
static void
fold(const char *key, char *out)
{
    const unsigned char *p = (const unsigned char *)key;

    while (*p != '\0') {
        if (p[0] == 0xe2 && p[1] == 0x84 && p[2] == 0xaa) {
            *out++ = 'K';
            p += 3;
        } else if (p[0] == 0xc5 && p[1] == 0xbf) {
            *out++ = 'S';
            p += 2;
        } else {
            *out++ = *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : (char)*p;
            p++;
        }
    }
    *out = '\0';
}

bool
relay_body_field_is(const char *key, const char *name)
{
    char a[64], b[64];

    if (strlen(key) >= sizeof(a) || strlen(name) >= sizeof(b))
        return false;
    fold(key, a);
    fold(name, b);
    return strcmp(a, b) == 0;
}

/* A client's field name fit for an error message: at most 60 bytes, whole
 * UTF-8 sequences (jansson checked them), control characters as '?'. */
static const char *
shown(const char *key, char out[64])
{
    size_t i = 0, n;
    const unsigned char *p = (const unsigned char *)key;

    while (*p != '\0') {
        n = *p < 0x80 ? 1 : *p < 0xe0 ? 2 : *p < 0xf0 ? 3 : 4;
        if (i + n > 60) {
            memcpy(out + i, "...", 4);
            return out;
        }
        if (n == 1)
            out[i] = *p < 0x20 || *p == 0x7f ? '?' : (char)*p;
        else
            memcpy(out + i, p, n);
        i += n;
        p += n;
    }
    out[i] = '\0';
    return out;
}

static enum tg_code
collision(const char *where, const char *a, const char *b, json_t *seen,
          struct tg_err *err)
{
    char sa[64], sb[64];
    enum tg_code rc = tg_err_set(err, TG_E_BAD_REQUEST,
                                 "duplicate field '%s%s' (also as '%s'): "
                                 "JSON field names are matched "
                                 "case-insensitively",
                                 where, shown(a, sa), shown(b, sb));

    json_decref(seen); /* owns a */
    return rc;
}

/* The client's spelling of each name it folds to; NULL (and err set) when
 * two names fold alike. */
static json_t *
spellings(json_t *obj, const char *where, struct tg_err *err)
{
    json_t *seen = json_object(); /* new: folded name -> client's spelling */
    json_t *prev;                 /* borrowed */
    const char *key;
    json_t *v; /* borrowed */
    char *f;

    if (seen == NULL)
        goto oom;
    json_object_foreach(obj, key, v)
    {
        f = malloc(strlen(key) + 1);
        if (f == NULL)
            goto oom;
        fold(key, f);
        prev = json_object_get(seen, f);
        if (prev != NULL) {
            free(f);
            collision(where, json_string_value(prev), key, seen, err);
            return NULL;
        }
        if (json_object_set_new(seen, f, json_string(key)) != 0) {
            free(f);
            goto oom;
        }
        free(f);
    }
    return seen;
oom:
    json_decref(seen);
    tg_err_set(err, TG_E_INTERNAL, "out of memory");
    return NULL;
}

/* One object at a level tollgate polices, made to mean to Ollama what it
 * means to tollgate: Go's encoding/json matches field names
 * case-insensitively and lets the last of a kind win, so two names that
 * fold alike are refused, and a name tollgate reads spelt another way
 * ("Model", "NUM_PREDICT") is renamed to tollgate's spelling, which is what
 * Ollama itself would have taken it for. */
static enum tg_code
canon_object(json_t *obj, const char *const *names, const char *where,
             struct tg_err *err)
{
    json_t *seen = spellings(obj, where, err); /* new */
    json_t *s, *v;                             /* borrowed */
    char f[32];
    enum tg_code rc = TG_OK;

    if (seen == NULL)
        return err->code;
    for (; *names != NULL && rc == TG_OK; names++) {
        fold(*names, f);
        s = json_object_get(seen, f);
        if (s == NULL || strcmp(json_string_value(s), *names) == 0)
            continue;
        v = json_incref(json_object_get(obj, json_string_value(s)));
        json_object_del(obj, json_string_value(s));
        if (json_object_set_new(obj, *names, v) != 0)
            rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    json_decref(seen);
    return rc;
}

static enum tg_code
canon_message(json_t *m, size_t i, struct tg_err *err)
{
    char where[80];
    size_t j;
    json_t *part; /* borrowed */
    enum tg_code rc;

    snprintf(where, sizeof(where), "messages[%zu].", i);
    rc = canon_object(m, message_names, where, err);
    json_array_foreach(json_object_get(m, "content"), j, part)
    {
        if (rc != TG_OK)
            break;
        if (!json_is_object(part))
            continue;
        snprintf(where, sizeof(where), "messages[%zu].content[%zu].", i, j);
        rc = canon_object(part, part_names, where, err);
    }
    return rc;
}

/* Every level tollgate reads: the top, options, stream_options, each
 * message and each part of its content. */
static enum tg_code
canonicalise(json_t *doc, struct tg_err *err)
{
    enum tg_code rc = canon_object(doc, top_names, "", err);
    json_t *v; /* borrowed */
    size_t i;

    v = json_object_get(doc, "options");
    if (rc == TG_OK && json_is_object(v))
        rc = canon_object(v, option_names, "options.", err);
    v = json_object_get(doc, "stream_options");
    if (rc == TG_OK && json_is_object(v))
        rc = canon_object(v, stream_option_names, "stream_options.", err);
    json_array_foreach(json_object_get(doc, "messages"), i, v)
    {
        if (rc != TG_OK)
            break;
        if (json_is_object(v))
            rc = canon_message(v, i, err);
    }
    return rc;
}

/* A tokenizer makes at most about one token of a byte (odd text, digits,
 * byte fallback): text counts its bytes, anything else its JSON. */
static int64_t
value_cost(json_t *v)
{
    char *s;
    int64_t n;

    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_string(v))
        return (int64_t)json_string_length(v);
    s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    n = s != NULL ? (int64_t)strlen(s) : INT32_MAX;
    free(s);
    return n;
}

static int64_t
images_cost(json_t *images)
{
    return json_is_array(images)
               ? (int64_t)json_array_size(images) * EST_PER_IMAGE
               : value_cost(images);
}

/* content is a string, or (OpenAI) an array of parts: text or image_url. */
static int64_t
content_cost(json_t *content)
{
    int64_t n = json_is_array(content) ? 0 : value_cost(content);
    size_t i;
    const char *key;
    json_t *part, *v; /* borrowed */

    json_array_foreach(content, i, part)
    {
        if (!json_is_object(part))
            n += value_cost(part);
        json_object_foreach(part, key, v) n +=
            strcmp(key, "image_url") == 0 ? EST_PER_IMAGE : value_cost(v);
    }
    return n;
}

/* Every field of a message feeds the prompt: role, content, thinking,
 * tool calls, tool names. */
static int64_t
message_cost(json_t *m)
{
    int64_t n = EST_PER_MESSAGE;
    const char *key;
    json_t *v; /* borrowed */

    if (!json_is_object(m))
        return n + value_cost(m);
    json_object_foreach(m, key, v)
    {
        if (strcmp(key, "images") == 0)
            n += images_cost(v);
        else if (strcmp(key, "content") == 0)
            n += content_cost(v);
        else
            n += value_cost(v);
    }
    return n;
}

static int64_t
field_cost(const char *key, json_t *v)
{
    int64_t n = 0;
    json_t *e; /* borrowed */
    size_t i;

    if (listed(not_prompt, key))
        return 0;
    if (strcmp(key, "images") == 0)
        return images_cost(v);
    if (!json_is_array(v))
        return value_cost(v);
    if (strcmp(key, "context") == 0) /* token ids: one token each */
        return (int64_t)json_array_size(v);
    if (strcmp(key, "messages") == 0) {
        json_array_foreach(v, i, e) n += message_cost(e);
        return n;
    }
    if (strcmp(key, "input") == 0) {
        json_array_foreach(v, i, e) n += EST_PER_MESSAGE + value_cost(e);
        return n;
    }
    return value_cost(v);
}

/* The body is at most max_body_bytes, so the sum cannot overflow. */
static int64_t
estimate(json_t *doc)
{
    int64_t n = EST_BASE;
    const char *key;
    json_t *v; /* borrowed */

    json_object_foreach(doc, key, v) n += field_cost(key, v);
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
    b->doc = json_loadb(raw, len, JSON_REJECT_DUPLICATES, &jerr);
    if (b->doc == NULL) {
        if (len == 0)
            rc = tg_err_set(err, TG_E_BAD_REQUEST, "missing request body");
        else if (json_error_code(&jerr) == json_error_duplicate_key)
            rc = tg_err_set(err, TG_E_BAD_REQUEST,
                            "duplicate field in request body: %s (line %d, "
                            "column %d)",
                            jerr.text, jerr.line, jerr.column);
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
    rc = canonicalise(b->doc, err);
    if (rc != TG_OK)
        goto out;
    rc = TG_E_BAD_REQUEST;
    model = json_object_get(b->doc, "model");
    if (!json_is_string(model) || json_string_length(model) == 0) {
        rc = tg_err_set(err, TG_E_BAD_REQUEST, "%s",
                        model == NULL ? "model is required"
                                      : "'model' must be a non-empty string");
        goto out;
    }
    /* Cut, it would be checked as another name than the one Ollama runs. */
    if (json_string_length(model) >= sizeof(b->model)) {
        rc = tg_err_set(err, TG_E_BAD_REQUEST,
                        "'model' must be at most %zu bytes",
                        sizeof(b->model) - 1);
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
