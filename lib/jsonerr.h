/* Error bodies in the shape of the API family a client called: OpenAI
 * clients parse {"error":{"message","type","param","code"}}, Ollama clients
 * {"error":"..."}. */
#ifndef TG_JSONERR_H
#define TG_JSONERR_H

#include <stdbool.h>

enum tg_family { TG_FAMILY_NATIVE, TG_FAMILY_OPENAI };

/* /v1/... is OpenAI's family; everything else is Ollama's. */
enum tg_family tg_family_of(const char *path);

/* The body for an error, or NULL when out of memory; the caller free()s it.
 * `type` may be NULL: it is then derived from the status as Ollama does
 * (invalid_request_error for 4xx, api_error for 5xx). `code` may be NULL. */
char *tg_jsonerr_body(enum tg_family fam, int status, const char *type,
                      const char *code, const char *message);

#endif
