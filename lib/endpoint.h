/* What a request path is to tollgate: which API family, whether it is
 * metered, and who may call it. The authorizer decides scope and
 * reservation from it; the relay decides what to parse and cap. */
#ifndef TG_ENDPOINT_H
#define TG_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "jsonerr.h"

enum tg_ep_kind {
    TG_EP_GENERATE, /* produces tokens: generate, chat, OpenAI completions */
    TG_EP_EMBED,    /* consumes tokens only */
    TG_EP_READ,     /* tags, show, ps, version, models: free */
    TG_EP_ADMIN,    /* pull, push, create, copy, delete, blobs */
    TG_EP_UNKNOWN,  /* anything else: admin keys only */
};

enum tg_ep_wire {
    TG_EP_NATIVE_CHAT,
    TG_EP_NATIVE_GENERATE,
    TG_EP_OPENAI_CHAT,
    TG_EP_OPENAI_COMPLETION,
    TG_EP_OTHER
};

struct tg_endpoint {
    enum tg_ep_kind kind;
    enum tg_ep_wire wire; /* how its body is shaped, for the relay */
    enum tg_family family;
    char name[40]; /* "/api/chat": the path without query or ids */
};

/* Classifies `path` (no query string; the caller strips it). */
void tg_endpoint_classify(const char *path, size_t len,
                          struct tg_endpoint *out);

bool tg_endpoint_metered(const struct tg_endpoint *ep);

#endif
