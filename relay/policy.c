/* Model policy. The lock is applied before the allow-list is consulted:
 * staff who lock a key to a model have chosen what it runs. */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "policy.h"

void
relay_policy_load(struct relay_policy *p, const char *allowed_json,
                  const char *key_lock, const char *global_lock)
{
    const char *lock =
        key_lock != NULL && key_lock[0] != '\0' ? key_lock : global_lock;

    memset(p, 0, sizeof(*p));
    if (allowed_json != NULL) {
        p->allowed = json_loads(allowed_json, 0, NULL);
        if (!json_is_array(p->allowed)) { /* fail closed: nothing allowed */
            json_decref(p->allowed);
            p->allowed = json_array();
        }
    }
    if (lock != NULL)
        snprintf(p->force_model, sizeof(p->force_model), "%s", lock);
}

void
relay_policy_free(struct relay_policy *p)
{
    json_decref(p->allowed);
    p->allowed = NULL;
}

/* The name without its tag, and the tag ("latest" when none). */
static size_t
base_len(const char *name)
{
    const char *colon = strrchr(name, ':');
    const char *slash = strrchr(name, '/');

    if (colon == NULL || (slash != NULL && slash > colon))
        return strlen(name);
    return (size_t)(colon - name);
}

static const char *
tag(const char *name)
{
    size_t n = base_len(name);

    return name[n] == ':' ? name + n + 1 : "latest";
}

static bool
matches(const char *pattern, const char *model)
{
    size_t pn = base_len(pattern), mn = base_len(model);

    if (pn != mn || strncmp(pattern, model, pn) != 0)
        return false;
    return strcmp(tag(pattern), "*") == 0 ||
           strcmp(tag(pattern), tag(model)) == 0;
}

bool
relay_policy_model_ok(const struct relay_policy *p, const char *model)
{
    size_t i;
    json_t *v; /* borrowed */

    if (p->allowed == NULL)
        return true;
    json_array_foreach(p->allowed, i,
                       v) if (json_is_string(v) &&
                              matches(json_string_value(v), model)) return true;
    return false;
}

enum tg_code
relay_policy_apply(const struct relay_policy *p, struct relay_body *b,
                   struct tg_err *err)
{
    struct tg_buf list;
    size_t i;
    json_t *v; /* borrowed */
    enum tg_code rc;

    if (p->force_model[0] != '\0') {
        if (json_object_set_new(b->doc, "model", json_string(p->force_model)) !=
            0)
            return tg_err_set(err, TG_E_INTERNAL, "out of memory");
        snprintf(b->model, sizeof(b->model), "%s", p->force_model);
        return TG_OK;
    }
    if (relay_policy_model_ok(p, b->model))
        return TG_OK;
    tg_buf_init(&list, 512);
    json_array_foreach(p->allowed, i, v)
    {
        tg_buf_puts(&list, i > 0 ? ", " : "");
        tg_buf_puts(&list, json_string_value(v) ? json_string_value(v) : "?");
    }
    rc = tg_err_set(err, TG_E_FORBIDDEN,
                    "This API key may not use model '%.100s'. It may use: "
                    "%s.",
                    b->model,
                    tg_buf_len(&list) > 0 && !tg_buf_failed(&list)
                        ? tg_buf_cstr(&list)
                        : "no model");
    tg_buf_free(&list);
    return rc;
}

bool
relay_policy_filters(const struct relay_policy *p, const char *path)
{
    return p->allowed != NULL &&
           (strcmp(path, "/api/tags") == 0 || strcmp(path, "/api/ps") == 0 ||
            strcmp(path, "/v1/models") == 0);
}

char *
relay_policy_filter_list(const struct relay_policy *p, const char *path,
                         const char *body, size_t len, size_t *outlen)
{
    bool openai = strcmp(path, "/v1/models") == 0;
    const char *list_key = openai ? "data" : "models";
    const char *name_key = openai ? "id" : "name";
    json_t *doc = json_loadb(body, len, 0, NULL); /* new */
    json_t *kept = json_array();                  /* new */
    json_t *list, *m;                             /* borrowed */
    char *out = NULL;
    size_t i;

    if (kept == NULL)
        goto out;
    if (!json_is_object(doc)) {
        json_decref(doc);
        doc = openai ? json_pack("{s:s}", "object", "list") : json_object();
        if (doc == NULL)
            goto out;
    }
    list = json_object_get(doc, list_key);
    json_array_foreach(list, i, m)
    {
        const char *name = json_string_value(json_object_get(m, name_key));

        if (name != NULL && relay_policy_model_ok(p, name) &&
            json_array_append(kept, m) != 0)
            goto out;
    }
    if (json_object_set(doc, list_key, kept) != 0)
        goto out;
    out = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    *outlen = out != NULL ? strlen(out) : 0;
out:
    json_decref(kept);
    json_decref(doc);
    return out;
}
