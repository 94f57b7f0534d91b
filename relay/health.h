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

#endif
