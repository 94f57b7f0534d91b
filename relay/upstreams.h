/* The upstream list at run time: which Ollama serves a request, its
 * credentials, and what each one has shown lately. Shared by every relay
 * thread under one mutex; everything here is in-process (a restart forgets
 * the health, the in-flight counts and the last two hours of tokens). */
#ifndef RELAY_UPSTREAMS_H
#define RELAY_UPSTREAMS_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "upspec.h"

#define RELAY_UP_KEYS_MAX 16
#define RELAY_UP_KEY_MAX 512

struct relay_upstreams;

/* One choice for one attempt; hand it back to relay_upstreams_done(). */
struct relay_pick {
    int idx;
    uint64_t gen; /* the list's version it came from */
    char url[TG_UPSPEC_URL_MAX];
    int key;                          /* -1: the upstream takes none */
    char auth[RELAY_UP_KEY_MAX + 32]; /* the Authorization line or "" */
    char key_hint[40];                /* masked, for logs */
};

enum relay_up_result {
    RELAY_UP_OK,       /* it answered (whatever it said to the client) */
    RELAY_UP_FAILED,   /* unreachable, silent, 502 or 503 before a byte */
    RELAY_UP_REJECTED, /* 401 or 429 before a byte: the key's fault */
};

/* What the health page and /metrics show of one upstream. */
struct relay_up_state {
    struct tg_upspec spec;
    bool healthy;
    int in_flight;
    int64_t tokens_2h;
    uint64_t requests, failures;
    int64_t down_ms; /* back-off left, 0 when healthy */
    char why[160];   /* the last failure */
    int nkeys;
    struct {
        char hint[40];
        int64_t penalty_ms; /* left in the penalty box, 0 when usable */
        uint64_t rejected;
    } keys[RELAY_UP_KEYS_MAX];
};

/* The list from tollgate.conf's `upstream` lines, key files read. */
struct relay_upstreams *relay_upstreams_new(const char *file_list,
                                            struct tg_err *err);
void relay_upstreams_free(struct relay_upstreams *u);

/* The settings table's upstream_url: when not empty it replaces the file's
 * list, when empty the file's list applies. Reloads (re-reading the key
 * files) only when the text changed; a bad text is logged and the list in
 * use stays. */
void relay_upstreams_refresh(struct relay_upstreams *u, const char *table);

/* The upstream for the next attempt: among those that serve `model`, are
 * not in `skip` (bit i: upstream i failed this request already) and have a
 * usable key, the healthy ones first, then the fewest in flight, the
 * fewest tokens in the last two hours, the highest weight. Counts it in
 * flight. false when none is left. */
bool relay_upstreams_pick(struct relay_upstreams *u, const char *model,
                          uint32_t skip, struct relay_pick *out);

/* Ends an attempt: the in-flight count drops; a failure starts or doubles
 * the upstream's back-off, a rejection boxes the key (retry_after seconds
 * when the upstream said, else an exponential back-off) and rotates to the
 * next one. `tokens` charged on success. */
void relay_upstreams_done(struct relay_upstreams *u, const struct relay_pick *p,
                          enum relay_up_result res, long retry_after,
                          int64_t tokens, const char *why);

/* Copies the state of up to `max` upstreams; returns how many. */
int relay_upstreams_state(struct relay_upstreams *u, struct relay_up_state *out,
                          int max);

/* Records what a health probe saw of `url` (state only, no in-flight). */
void relay_upstreams_observe(struct relay_upstreams *u, const char *url,
                             bool ok, const char *why);

/* True when nothing about `url` was seen for `ms` (a probe is due). */
bool relay_upstreams_stale(struct relay_upstreams *u, const char *url,
                           int64_t ms);

#endif
