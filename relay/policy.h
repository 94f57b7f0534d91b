/* What a key may ask for: a model lock (the key's own, else the global one
 * staff set in the admin pages) and a model allow-list. */
#ifndef RELAY_POLICY_H
#define RELAY_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "body.h"
#include "err.h"

struct relay_policy {
    json_t *allowed;       /* new: array of names and "family:*", or NULL */
    char force_model[128]; /* "" when no lock applies */
};

/* Reads the claim's columns: the allow-list as JSON text (NULL: every
 * model), the key's lock and the global one (NULL or "" for none). */
void relay_policy_load(struct relay_policy *p, const char *allowed_json,
                       const char *key_lock, const char *global_lock);
void relay_policy_free(struct relay_policy *p);

/* "llama3" is "llama3:latest"; "qwen2.5:*" allows every tag of qwen2.5. */
bool relay_policy_model_ok(const struct relay_policy *p, const char *model);

/* Replaces the body's model under a lock; else refuses a model the key may
 * not use with TG_E_FORBIDDEN and a message that lists what it may use. */
enum tg_code relay_policy_apply(const struct relay_policy *p,
                                struct relay_body *b,
                                struct tg_err *err) TG_MUSTCHECK;

/* True when `path` lists models the allow-list must filter (/api/tags,
 * /api/ps, /v1/models) and the key has a list. */
bool relay_policy_filters(const struct relay_policy *p, const char *path);

/* The list answer with only the models the key may use; the caller
 * free()s it. NULL when out of memory; an answer that is not the expected
 * JSON becomes an empty list (fail closed). */
char *relay_policy_filter_list(const struct relay_policy *p, const char *path,
                               const char *body, size_t len, size_t *outlen);

#endif
