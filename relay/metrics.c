/* Prometheus counters of the relay; see metrics.h. */
#include <config.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "metrics.h"

#define SERIES_MAX 1024 /* per family: past it, label values become "other" */
#define LABELS_MAX 320

struct series {
    char labels[LABELS_MAX]; /* rendered: a="x",b="y" */
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
add(struct family *f, const char *labels, uint64_t v)
{
    int i;

    for (i = 0; i < f->n; i++)
        if (strcmp(f->s[i].labels, labels) == 0)
            break;
    if (i == f->n && f->n < SERIES_MAX - 1) {
        snprintf(f->s[f->n++].labels, LABELS_MAX, "%s", labels);
    } else if (i == f->n) { /* the last slot, unlabelled, takes the rest */
        i = SERIES_MAX - 1;
        if (f->n == SERIES_MAX - 1)
            f->s[f->n++].labels[0] = '\0';
    }
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
token_labels(char *dst, size_t cap, const char *k, const char *m,
             const char *type)
{
    char ek[128], em[128];

    escape(ek, sizeof(ek), k != NULL && k[0] ? k : "-");
    escape(em, sizeof(em), m != NULL && m[0] ? m : "-");
    snprintf(dst, cap, "key=\"%s\",model=\"%s\",type=\"%s\"", ek, em, type);
}

void
relay_metrics_request(const char *endpoint, int status, const char *key,
                      const char *model, int64_t prompt, int64_t completion,
                      long latency_ms, int64_t ttfb_ms)
{
    char req[LABELS_MAX], tp[LABELS_MAX], tc[LABELS_MAX], ep[64];

    escape(ep, sizeof(ep), endpoint);
    snprintf(req, sizeof(req), "endpoint=\"%s\",status=\"%d\"", ep, status);
    token_labels(tp, sizeof(tp), key, model, "prompt");
    token_labels(tc, sizeof(tc), key, model, "completion");
    pthread_mutex_lock(&mu);
    add(&requests, req, 1);
    if (prompt > 0)
        add(&tokens, tp, (uint64_t)prompt);
    if (completion > 0)
        add(&tokens, tc, (uint64_t)completion);
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

static void
render_family(struct tg_buf *out, const char *name, const struct family *f)
{
    int i;

    for (i = 0; i < f->n; i++)
        tg_buf_appendf(out, "%s{%s} %" PRIu64 "\n", name,
                       f->s[i].labels[0] ? f->s[i].labels : "overflow=\"1\"",
                       f->s[i].v);
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
relay_metrics_render(struct tg_buf *out)
{
    pthread_mutex_lock(&mu);
    relay_metrics_family(out, "tollgate_requests_total", "counter",
                         "Requests the relay finished, by endpoint and the "
                         "HTTP status the client got.");
    render_family(out, "tollgate_requests_total", &requests);
    relay_metrics_family(out, "tollgate_tokens_total", "counter",
                         "Tokens charged, by key name, model and type.");
    render_family(out, "tollgate_tokens_total", &tokens);
    render_histogram(out, "tollgate_request_duration_seconds",
                     "Time from the relay's start to settlement.", &latency);
    render_histogram(out, "tollgate_time_to_first_byte_seconds",
                     "Time to the upstream's first body byte.", &ttfb);
    pthread_mutex_unlock(&mu);
}
