/* The relay's own paths, reached without the authorizer: GET /health for
 * anyone, GET /health/upstreams for admin keys, GET /metrics for the
 * metrics_allow addresses or admin keys. */
#ifndef RELAY_HEALTH_H
#define RELAY_HEALTH_H

#include <stdbool.h>

#include <curl/curl.h>

#include "relay.h"
#include "request.h"

/* Answers the request when its path is one of the above; false otherwise
 * (the caller relays it). `curl` is the thread's handle, for probes. */
bool relay_health_handle(struct relay *app, CURL *curl,
                         const struct tg_request *q);

/* One whole answer of the relay's own, not to be cached; `headers` are
 * more header lines, each ending CRLF ("" for none). */
void relay_health_answer(const struct tg_request *q, int status,
                         const char *type, const char *headers,
                         const char *body);

#endif
