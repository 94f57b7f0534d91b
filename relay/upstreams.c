/* Upstream choice, health and credentials; see upstreams.h. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "conf.h"
#include "keys.h"
#include "log.h"
#include "upstreams.h"

#define BUCKET_S 300 /* tokens are kept in 5-minute buckets ... */
#define BUCKETS 24   /* ... for two hours */
#define BACKOFF_MAX_MS 60000
#define PENALTY_MAX_MS 300000

struct key {
    char text[RELAY_UP_KEY_MAX];
    int64_t until_ms; /* in the penalty box until then */
    int strikes;
    uint64_t rejected;
};

struct up {
    struct tg_upspec spec;
    struct key keys[RELAY_UP_KEYS_MAX];
    int nkeys, cur;
    int in_flight;
    int64_t down_until_ms, seen_ms;
    int fails;
    char why[160];
    int64_t epoch[BUCKETS], tokens[BUCKETS];
    uint64_t requests, failures;
};

struct relay_upstreams {
    pthread_mutex_t mu;
    char file[TG_CONF_LIST_MAX];   /* tollgate.conf's list */
    char source[TG_CONF_LIST_MAX]; /* the text the list in use came from */
    uint64_t gen;
    int n;
    struct up up[TG_UPSPEC_MAX];
};

static void
hint(const char *key, char *dst, size_t cap)
{
    tg_keys_mask("", key, strlen(key), dst, cap);
}

/* One key a line; blanks and # comments skipped. */
static enum tg_code
read_keys(struct up *p, struct tg_err *err)
{
    char line[RELAY_UP_KEY_MAX + 2];
    FILE *f;

    if (p->spec.key_file[0] == '\0')
        return TG_OK;
    f = fopen(p->spec.key_file, "r");
    if (f == NULL)
        return tg_err_set(err, TG_E_CONFIG, "upstream %s: key_file %s: %s",
                          p->spec.url, p->spec.key_file, strerror(errno));
    while (fgets(line, sizeof(line), f) != NULL &&
           p->nkeys < RELAY_UP_KEYS_MAX) {
        char *s = line, *e;

        while (*s == ' ' || *s == '\t')
            s++;
        e = s + strcspn(s, "\r\n");
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *e = '\0';
        if (*s != '\0' && *s != '#' && strlen(s) < RELAY_UP_KEY_MAX)
            memcpy(p->keys[p->nkeys++].text, s, strlen(s) + 1);
    }
    fclose(f);
    if (p->nkeys == 0)
        return tg_err_set(err, TG_E_CONFIG,
                          "upstream %s: key_file %s has no key", p->spec.url,
                          p->spec.key_file);
    return TG_OK;
}

/* Parses `text` into a fresh list (key files read). */
static enum tg_code
build(const char *text, struct up *out, int *n, struct tg_err *err)
{
    struct tg_upspec specs[TG_UPSPEC_MAX];
    int i;

    if (tg_upspec_parse(text, specs, n, err) != TG_OK)
        return err->code;
    if (*n == 0)
        return tg_err_set(err, TG_E_CONFIG, "no upstream configured");
    for (i = 0; i < *n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        out[i].spec = specs[i];
        if (read_keys(&out[i], err) != TG_OK)
            return err->code;
    }
    return TG_OK;
}

/* What the new list keeps of the old: state of the same URL, and the
 * penalty box of the same keys. */
static void
carry_over(const struct up *old, int nold, struct up *p)
{
    int i, k, j;

    for (i = 0; i < nold && strcmp(old[i].spec.url, p->spec.url) != 0; i++)
        ;
    if (i == nold)
        return;
    p->in_flight = old[i].in_flight;
    p->down_until_ms = old[i].down_until_ms;
    p->seen_ms = old[i].seen_ms;
    p->fails = old[i].fails;
    memcpy(p->why, old[i].why, sizeof(p->why));
    memcpy(p->epoch, old[i].epoch, sizeof(p->epoch));
    memcpy(p->tokens, old[i].tokens, sizeof(p->tokens));
    p->requests = old[i].requests;
    p->failures = old[i].failures;
    for (k = 0; k < p->nkeys; k++)
        for (j = 0; j < old[i].nkeys; j++)
            if (strcmp(p->keys[k].text, old[i].keys[j].text) == 0) {
                p->keys[k].until_ms = old[i].keys[j].until_ms;
                p->keys[k].strikes = old[i].keys[j].strikes;
                p->keys[k].rejected = old[i].keys[j].rejected;
            }
}

struct relay_upstreams *
relay_upstreams_new(const char *file_list, struct tg_err *err)
{
    struct relay_upstreams *u = calloc(1, sizeof(*u));

    if (u == NULL) {
        tg_err_set(err, TG_E_INTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&u->mu, NULL);
    snprintf(u->file, sizeof(u->file), "%s", file_list);
    snprintf(u->source, sizeof(u->source), "%s", file_list);
    if (build(file_list, u->up, &u->n, err) != TG_OK) {
        relay_upstreams_free(u);
        return NULL;
    }
    return u;
}

void
relay_upstreams_free(struct relay_upstreams *u)
{
    if (u == NULL)
        return;
    pthread_mutex_destroy(&u->mu);
    memset(u->up, 0, sizeof(u->up)); /* the keys */
    free(u);
}

void
relay_upstreams_refresh(struct relay_upstreams *u, const char *table)
{
    const char *text = table != NULL && table[0] != '\0' ? table : u->file;
    struct up *fresh = NULL;
    struct tg_err err = {0};
    bool same;
    int n = 0, i;

    pthread_mutex_lock(&u->mu);
    same = strcmp(u->source, text) == 0;
    pthread_mutex_unlock(&u->mu);
    if (same)
        return;
    fresh = calloc(TG_UPSPEC_MAX, sizeof(*fresh));
    if (fresh == NULL || build(text, fresh, &n, &err) != TG_OK) {
        tg_log(TG_LOG_ERROR, NULL, "upstream list not changed: %s",
               fresh == NULL ? "out of memory" : err.msg);
        goto out;
    }
    pthread_mutex_lock(&u->mu);
    for (i = 0; i < n; i++)
        carry_over(u->up, u->n, &fresh[i]);
    memcpy(u->up, fresh, (size_t)n * sizeof(*fresh));
    u->n = n;
    u->gen++;
    snprintf(u->source, sizeof(u->source), "%s", text);
    pthread_mutex_unlock(&u->mu);
    tg_log(TG_LOG_INFO, NULL, "upstream list now has %d entr%s (from %s)", n,
           n == 1 ? "y" : "ies",
           text == u->file ? "tollgate.conf" : "settings");
out:
    if (fresh != NULL)
        memset(fresh, 0, TG_UPSPEC_MAX * sizeof(*fresh));
    free(fresh);
}

static int64_t
tokens_2h(const struct up *p, int64_t now)
{
    int64_t e = now / 1000 / BUCKET_S, sum = 0;
    int i;

    for (i = 0; i < BUCKETS; i++)
        if (p->epoch[i] > e - BUCKETS)
            sum += p->tokens[i];
    return sum;
}

/* The key to use: the current one unless boxed, else the next usable;
 * -1 for an upstream without keys, -2 when every key is boxed. */
static int
usable_key(const struct up *p, int64_t now)
{
    int i;

    if (p->nkeys == 0)
        return -1;
    for (i = 0; i < p->nkeys; i++) {
        int k = (p->cur + i) % p->nkeys;

        if (p->keys[k].until_ms <= now)
            return k;
    }
    return -2;
}

/* a is a better choice than b. */
static bool
better(const struct up *a, const struct up *b, int64_t now)
{
    bool ha = a->down_until_ms <= now, hb = b->down_until_ms <= now;
    int64_t ta, tb;

    if (ha != hb)
        return ha;
    if (!ha && a->down_until_ms != b->down_until_ms)
        return a->down_until_ms < b->down_until_ms; /* all down: the soonest */
    if (a->in_flight != b->in_flight)
        return a->in_flight < b->in_flight;
    ta = tokens_2h(a, now);
    tb = tokens_2h(b, now);
    if (ta != tb)
        return ta < tb;
    return a->spec.weight > b->spec.weight;
}

bool
relay_upstreams_pick(struct relay_upstreams *u, const char *model,
                     uint32_t skip, struct relay_pick *out)
{
    int64_t now = tg_clock_ms();
    int i, best = -1, best_key = -1;

    pthread_mutex_lock(&u->mu);
    for (i = 0; i < u->n; i++) {
        int k = usable_key(&u->up[i], now);

        if ((skip & (1u << i)) != 0 || k == -2 ||
            !tg_upspec_serves(&u->up[i].spec, model))
            continue;
        if (best < 0 || better(&u->up[i], &u->up[best], now)) {
            best = i;
            best_key = k;
        }
    }
    if (best >= 0) {
        struct up *p = &u->up[best];

        p->in_flight++;
        out->idx = best;
        out->gen = u->gen;
        out->key = best_key;
        snprintf(out->url, sizeof(out->url), "%s", p->spec.url);
        out->auth[0] = out->key_hint[0] = '\0';
        if (best_key >= 0) {
            snprintf(out->auth, sizeof(out->auth), "Authorization: Bearer %s",
                     p->keys[best_key].text);
            hint(p->keys[best_key].text, out->key_hint, sizeof(out->key_hint));
        }
    }
    pthread_mutex_unlock(&u->mu);
    return best >= 0;
}

static struct up *
find(struct relay_upstreams *u, int idx, uint64_t gen, const char *url)
{
    int i;

    if (gen == u->gen && idx >= 0 && idx < u->n)
        return &u->up[idx];
    for (i = 0; i < u->n; i++)
        if (strcmp(u->up[i].spec.url, url) == 0)
            return &u->up[i];
    return NULL;
}

static int64_t
doubling(int strikes, int64_t base, int64_t max)
{
    int64_t ms = base;

    while (--strikes > 0 && ms < max)
        ms *= 2;
    return ms < max ? ms : max;
}

static void
add_tokens(struct up *p, int64_t now, int64_t tokens)
{
    int64_t e = now / 1000 / BUCKET_S;
    int i = (int)(e % BUCKETS);

    if (p->epoch[i] != e) {
        p->epoch[i] = e;
        p->tokens[i] = 0;
    }
    p->tokens[i] += tokens;
}

static void
failed(struct up *p, int64_t now, long retry_after, const char *why)
{
    p->fails++;
    p->down_until_ms =
        now + (retry_after > 0 ? (int64_t)retry_after * 1000
                               : doubling(p->fails, 2000, BACKOFF_MAX_MS));
    snprintf(p->why, sizeof(p->why), "%s", why != NULL ? why : "failed");
}

static void
rejected(struct up *p, int k, int64_t now, long retry_after, const char *why)
{
    struct key *key = &p->keys[k];

    key->strikes++;
    key->rejected++;
    key->until_ms =
        now + (retry_after > 0 ? (int64_t)retry_after * 1000
                               : doubling(key->strikes, 1000, PENALTY_MAX_MS));
    p->cur = (k + 1) % p->nkeys;
    snprintf(p->why, sizeof(p->why), "%s", why != NULL ? why : "rejected");
}

void
relay_upstreams_done(struct relay_upstreams *u, const struct relay_pick *p,
                     enum relay_up_result res, long retry_after, int64_t tokens,
                     const char *why)
{
    int64_t now = tg_clock_ms();
    struct up *up;

    pthread_mutex_lock(&u->mu);
    up = find(u, p->idx, p->gen, p->url);
    if (up == NULL)
        goto out; /* it left the list meanwhile */
    if (up->in_flight > 0)
        up->in_flight--;
    up->seen_ms = now;
    up->requests++;
    if (res == RELAY_UP_OK) {
        up->fails = 0;
        up->down_until_ms = 0;
        if (p->key >= 0 && p->key < up->nkeys)
            up->keys[p->key].strikes = 0;
        add_tokens(up, now, tokens);
    } else if (res == RELAY_UP_REJECTED && p->key >= 0 && p->key < up->nkeys) {
        rejected(up, p->key, now, retry_after, why);
    } else {
        up->failures++;
        failed(up, now, retry_after, why);
    }
out:
    pthread_mutex_unlock(&u->mu);
}

static void
copy_state(const struct up *p, int64_t now, struct relay_up_state *s)
{
    int k;

    s->spec = p->spec;
    s->spec.key_file[0] = p->spec.key_file[0] != '\0' ? '*' : '\0';
    s->spec.key_file[1] = '\0'; /* the path is for admins, not here */
    s->healthy = p->down_until_ms <= now && usable_key(p, now) != -2;
    s->in_flight = p->in_flight;
    s->tokens_2h = tokens_2h(p, now);
    s->requests = p->requests;
    s->failures = p->failures;
    s->down_ms = p->down_until_ms > now ? p->down_until_ms - now : 0;
    memcpy(s->why, p->why, sizeof(s->why));
    s->nkeys = p->nkeys;
    for (k = 0; k < p->nkeys; k++) {
        hint(p->keys[k].text, s->keys[k].hint, sizeof(s->keys[k].hint));
        s->keys[k].penalty_ms =
            p->keys[k].until_ms > now ? p->keys[k].until_ms - now : 0;
        s->keys[k].rejected = p->keys[k].rejected;
    }
}

int
relay_upstreams_state(struct relay_upstreams *u, struct relay_up_state *out,
                      int max)
{
    int64_t now = tg_clock_ms();
    int i;

    pthread_mutex_lock(&u->mu);
    for (i = 0; i < u->n && i < max; i++)
        copy_state(&u->up[i], now, &out[i]);
    pthread_mutex_unlock(&u->mu);
    return i;
}

void
relay_upstreams_observe(struct relay_upstreams *u, const char *url, bool ok,
                        const char *why)
{
    int64_t now = tg_clock_ms();
    struct up *up;

    pthread_mutex_lock(&u->mu);
    up = find(u, -1, 0, url);
    if (up != NULL && ok) {
        up->fails = 0;
        up->down_until_ms = 0;
        up->seen_ms = now;
    } else if (up != NULL) {
        up->seen_ms = now;
        failed(up, now, 0, why);
    }
    pthread_mutex_unlock(&u->mu);
}

bool
relay_upstreams_stale(struct relay_upstreams *u, const char *url, int64_t ms)
{
    struct up *up;
    bool stale;

    pthread_mutex_lock(&u->mu);
    up = find(u, -1, 0, url);
    stale = up != NULL && tg_clock_ms() - up->seen_ms >= ms;
    pthread_mutex_unlock(&u->mu);
    return stale;
}
