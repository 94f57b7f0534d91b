/* Prometheus counters of the relay; see metrics.h. */
#include <config.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "metrics.h"

#define SERIES_MAX 1024 /* per family: past it, label values become "other" */
#define LABELS_MAX 320
#define KEY_NAME_MAX 128

/* A token series knows its key by id; the key's name (its latest) is shown
 * only to an admin-key scrape (relay_metrics_render). */
struct series {
    char labels[LABELS_MAX];     /* rendered: a="x",b="y" */
    int64_t key_id;              /* 0: no key (other families, or not known) */
    char key_name[KEY_NAME_MAX]; /* escaped */
    uint64_t v;
};

struct family {
    struct series s[SERIES_MAX];
    int n;
};

/* Seconds; the same bounds for latency and time to first byte. */
static const double bounds[] = {0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                5,    10,  30,   60,  120, 300};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

struct histogram {
    uint64_t le[NBOUNDS]; /* per bucket, made cumulative when rendered */
    uint64_t count;
    double sum;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct family requests, tokens;
static struct histogram latency, ttfb;

static void
escape(char *dst, size_t cap, const char *v)
{
    size_t o = 0;

    for (; v != NULL && *v != '\0' && o + 3 < cap; v++) {
        if (*v == '\\' || *v == '"') {
            dst[o++] = '\\';
            dst[o++] = *v;
        } else if (*v == '\n') {
            dst[o++] = '\\';
            dst[o++] = 'n';
        } else {
            dst[o++] = *v;
        }
    }
    dst[o] = '\0';
}

static void
add(struct family *f, int64_t key_id, const char *key_name, const char *labels,
    uint64_t v)
{
    int i;

    for (i = 0; i < f->n; i++)
        if (f->s[i].key_id == key_id && strcmp(f->s[i].labels, labels) == 0)
            break;
    if (i == f->n && f->n < SERIES_MAX - 1) {
        snprintf(f->s[f->n].labels, LABELS_MAX, "%s", labels);
        f->s[f->n++].key_id = key_id;
    } else if (i == f->n) { /* the last slot, unlabelled, takes the rest */
        i = SERIES_MAX - 1;
        if (f->n == SERIES_MAX - 1)
            f->s[f->n++].labels[0] = '\0';
    }
    if (key_name != NULL && f->s[i].labels[0] != '\0')
        escape(f->s[i].key_name, KEY_NAME_MAX, key_name);
    f->s[i].v += v;
}

static void
observe(struct histogram *h, double s)
{
    size_t i;

    for (i = 0; i < NBOUNDS && s > bounds[i]; i++)
        ;
    if (i < NBOUNDS)
        h->le[i]++;
    h->count++;
    h->sum += s;
}

static void
token_labels(char *dst, size_t cap, const char *m, const char *type)
{
    char em[128];

    escape(em, sizeof(em), m != NULL && m[0] ? m : "-");
    snprintf(dst, cap, "model=\"%s\",type=\"%s\"", em, type);
}

void
relay_metrics_request(const char *endpoint, int status, int64_t key_id,
                      const char *key_name, const char *model, int64_t prompt,
                      int64_t completion, long latency_ms, int64_t ttfb_ms)
{
    char req[LABELS_MAX], tp[LABELS_MAX], tc[LABELS_MAX], ep[64];

    escape(ep, sizeof(ep), endpoint);
    snprintf(req, sizeof(req), "endpoint=\"%s\",status=\"%d\"", ep, status);
    token_labels(tp, sizeof(tp), model, "prompt");
    token_labels(tc, sizeof(tc), model, "completion");
    if (key_name == NULL || key_name[0] == '\0')
        key_name = "-";
    pthread_mutex_lock(&mu);
    add(&requests, 0, NULL, req, 1);
    if (prompt > 0)
        add(&tokens, key_id, key_name, tp, (uint64_t)prompt);
    if (completion > 0)
        add(&tokens, key_id, key_name, tc, (uint64_t)completion);
    observe(&latency, (double)latency_ms / 1000.0);
    if (ttfb_ms >= 0)
        observe(&ttfb, (double)ttfb_ms / 1000.0);
    pthread_mutex_unlock(&mu);
}

void
relay_metrics_family(struct tg_buf *out, const char *name, const char *type,
                     const char *help)
{
    tg_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void
relay_metrics_sample(struct tg_buf *out, const char *name, const char *label,
                     const char *value, int64_t v)
{
    char e[1100];

    if (label == NULL) {
        tg_buf_appendf(out, "%s %" PRId64 "\n", name, v);
        return;
    }
    escape(e, sizeof(e), value);
    tg_buf_appendf(out, "%s{%s=\"%s\"} %" PRId64 "\n", name, label, e, v);
}

/* keyed: the family's series carry a key, as key_id="N" and, with
 * names, key="NAME" before their other labels. */
static void
render_family(struct tg_buf *out, const char *name, const struct family *f,
              bool keyed, bool names)
{
    const struct series *s;
    int i;

    for (i = 0; i < f->n; i++) {
        s = &f->s[i];
        if (s->labels[0] == '\0')
            tg_buf_appendf(out, "%s{overflow=\"1\"} %" PRIu64 "\n", name, s->v);
        else if (!keyed)
            tg_buf_appendf(out, "%s{%s} %" PRIu64 "\n", name, s->labels, s->v);
        else
            tg_buf_appendf(
                out, "%s{%s%s%skey_id=\"%" PRId64 "\",%s} %" PRIu64 "\n", name,
                names ? "key=\"" : "", names ? s->key_name : "",
                names ? "\"," : "", s->key_id, s->labels, s->v);
    }
}

static void
render_histogram(struct tg_buf *out, const char *name, const char *help,
                 const struct histogram *h)
{
    uint64_t cum = 0;
    size_t i;

    relay_metrics_family(out, name, "histogram", help);
    for (i = 0; i < NBOUNDS; i++) {
        cum += h->le[i];
        tg_buf_appendf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
                       bounds[i], cum);
    }
    tg_buf_appendf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, h->count);
    tg_buf_appendf(out, "%s_sum %.3f\n%s_count %" PRIu64 "\n", name, h->sum,
                   name, h->count);
}

void
relay_metrics_render(struct tg_buf *out, bool key_names)
{
    pthread_mutex_lock(&mu);
    relay_metrics_family(out, "tollgate_requests_total", "counter",
                         "Requests the relay finished, by endpoint and the "
                         "HTTP status the client got.");
    render_family(out, "tollgate_requests_total", &requests, false, false);
    relay_metrics_family(out, "tollgate_tokens_total", "counter",
                         "Tokens charged, by key (id; its name too for an "
                         "admin key), model and type.");
    render_family(out, "tollgate_tokens_total", &tokens, true, key_names);
    render_histogram(out, "tollgate_request_duration_seconds",
                     "Time from the relay's start to settlement.", &latency);
    render_histogram(out, "tollgate_time_to_first_byte_seconds",
                     "Time to the upstream's first body byte.", &ttfb);
    pthread_mutex_unlock(&mu);
}
