/* The request body of an inference endpoint: parsed once, checked, its
 * prompt estimated, its output capped so generation cannot outrun the
 * reservation, then re-encoded for the upstream. */
#ifndef RELAY_BODY_H
#define RELAY_BODY_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "endpoint.h"
#include "err.h"

struct relay_body {
    json_t *doc;        /* new: the parsed body, owned */
    int64_t estimate;   /* prompt tokens, estimated from the text and images */
    int64_t client_max; /* the client's own output cap; -1 when it set none */
    bool stream;        /* the answer will stream */
    bool strip_usage;   /* usage was requested upstream for our counting only */
    char model[128];    /* as the client asked; "" if none */
};

/* Parses and checks `raw` for endpoint `ep` (a TG_EP_GENERATE or
 * TG_EP_EMBED one). TG_E_BAD_REQUEST with a message naming the problem for
 * malformed JSON, duplicate field names (exact, or folded alike where
 * tollgate reads them: top level, options, stream_options, messages and
 * their content parts), a missing model or a wrongly typed field. A name
 * tollgate reads, spelt another way ("Model"), is renamed to its own. On
 * success the caller owns b and calls relay_body_free(). */
enum tg_code relay_body_parse(const struct tg_endpoint *ep, const char *raw,
                              size_t len, struct relay_body *b,
                              struct tg_err *err) TG_MUSTCHECK;

/* Sets the output cap the upstream reads (options.num_predict natively,
 * max_tokens for OpenAI; max_completion_tokens, which Ollama ignores, is
 * folded in) to min(client's, cap). */
enum tg_code relay_body_cap(const struct tg_endpoint *ep, struct relay_body *b,
                            int64_t cap, struct tg_err *err) TG_MUSTCHECK;

/* Copies the top-level string "api_key" of the JSON body `raw` into `key`
 * (keymax bytes, NUL-terminated; a longer one is cut to keymax - 1 bytes,
 * which no key check accepts) and its length into *len. false when the body
 * is no JSON object or holds no such non-empty string. */
bool relay_body_key(const char *raw, size_t len, char *key, size_t keymax,
                    size_t *keylen);

/* True when Go's encoding/json would decode a field named `key` into one
 * named `name` (ASCII): case-insensitively, with its Unicode folding. */
bool relay_body_field_is(const char *key, const char *name);

/* The body to send upstream; the caller free()s it. NULL when out of memory. */
char *relay_body_dump(const struct relay_body *b, size_t *len);

void relay_body_free(struct relay_body *b);

#endif
