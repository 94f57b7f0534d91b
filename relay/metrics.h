/* /metrics counters: kept in this process (the relay is one process of
 * many threads) under one mutex, rendered in Prometheus' text format
 * 0.0.4. They count what the relay sees: requests the authorizer denied
 * (401, 403, 429 before a ticket) never reach it and are not here. */
#ifndef RELAY_METRICS_H
#define RELAY_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

/* One finished request. key_id is 0 and key_name and model may be NULL or
 * "" when not known; ttfb_ms < 0 when no byte came from the upstream. */
void relay_metrics_request(const char *endpoint, int status, int64_t key_id,
                           const char *key_name, const char *model,
                           int64_t prompt, int64_t completion, long latency_ms,
                           int64_t ttfb_ms);

/* The counters and histograms, with HELP and TYPE lines. Token series name
 * their key by id; by name too only with key_names: a name says whose
 * usage it is (a customer, a colleague), which an address allow-list of
 * 127.0.0.1 would tell every local user and process. */
void relay_metrics_render(struct tg_buf *out, bool key_names);

/* HELP and TYPE lines of one family. */
void relay_metrics_family(struct tg_buf *out, const char *name,
                          const char *type, const char *help);

/* `name{label="value"} v` with the value escaped as the format wants. */
void relay_metrics_sample(struct tg_buf *out, const char *name,
                          const char *label, const char *value, int64_t v);

#endif
