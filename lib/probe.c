#include <config.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "buf.h"
#include "probe.h"

#define PROBE_BODY_MAX 65536 /* /api/version answers a few dozen bytes */

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
    struct tg_buf *b = arg;

    return tg_buf_append(b, p, size * n) == 0 ? size * n : 0;
}

static double
now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

/* Sets p->up and p->version from a 200's body, or p->why. */
static void
judge(struct tg_probe *p, CURLcode cc, const char *errbuf,
      const struct tg_buf *body)
{
    json_t *doc = NULL, *v;

    if (cc != CURLE_OK) {
        snprintf(p->why, sizeof(p->why), "%.200s",
                 errbuf[0] ? errbuf : curl_easy_strerror(cc));
        return;
    }
    if (p->http == 200)
        doc = json_loads(tg_buf_cstr(body), 0, NULL);
    v = json_object_get(doc, "version");
    if (json_is_string(v)) {
        p->up = true;
        snprintf(p->version, sizeof(p->version), "%s", json_string_value(v));
    } else if (p->http == 200) {
        snprintf(p->why, sizeof(p->why), "no version in the answer");
    } else {
        snprintf(p->why, sizeof(p->why), "HTTP %ld from /api/version", p->http);
    }
    json_decref(doc);
}

void
tg_probe_version(CURL *curl, const char *base, long timeout_ms,
                 struct tg_probe *p)
{
    char url[1100], errbuf[CURL_ERROR_SIZE] = "";
    size_t n = strlen(base);
    CURL *h = curl != NULL ? curl : curl_easy_init();
    CURLcode cc = CURLE_FAILED_INIT;
    struct tg_buf body;
    double t0 = now_ms();

    memset(p, 0, sizeof(*p));
    tg_buf_init(&body, PROBE_BODY_MAX);
    snprintf(url, sizeof(url), "%.1000s%sapi/version", base,
             n > 0 && base[n - 1] == '/' ? "" : "/");
    if (h != NULL) {
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        cc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &p->http);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    }
    judge(p, cc, errbuf, &body);
    p->ms = now_ms() - t0;
    tg_buf_free(&body);
    if (curl == NULL && h != NULL)
        curl_easy_cleanup(h);
}
