/* Upstream list parsing; see upspec.h for the syntax. */
#include <config.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "upspec.h"

static bool
url_at(const char *p)
{
    return strncmp(p, "http://", 7) == 0 || strncmp(p, "https://", 8) == 0;
}

static bool
separator(char c)
{
    return c == ',' || isspace((unsigned char)c);
}

/* Copies the word at p (up to a blank) into dst; returns its length. */
static size_t
word(const char *p, const char *end, char *dst, size_t cap, bool *fits)
{
    size_t n = 0;

    while (p + n < end && !isspace((unsigned char)p[n]))
        n++;
    /* A comma before the next entry belongs to the list, not the word. */
    while (n > 0 && p[n - 1] == ',')
        n--;
    *fits = n < cap;
    if (*fits) {
        memcpy(dst, p, n);
        dst[n] = '\0';
    }
    return n;
}

static enum tg_code
option(struct tg_upspec *s, const char *w, struct tg_err *err)
{
    const char *eq = strchr(w, '=');
    size_t k = eq != NULL ? (size_t)(eq - w) : 0;

    if (eq != NULL && k == 6 && strncmp(w, "weight", 6) == 0) {
        if (tg_conf_parse_int(eq + 1, 1, 1000, &s->weight) != TG_OK)
            return tg_err_set(err, TG_E_CONFIG,
                              "upstream %s: weight wants 1 to 1000", s->url);
        return TG_OK;
    }
    if (eq != NULL && k == 8 && strncmp(w, "key_file", 8) == 0 &&
        snprintf(s->key_file, sizeof(s->key_file), "%s", eq + 1) <
            (int)sizeof(s->key_file))
        return TG_OK;
    if (eq != NULL && k == 6 && strncmp(w, "models", 6) == 0 &&
        snprintf(s->models, sizeof(s->models), "%s", eq + 1) <
            (int)sizeof(s->models))
        return TG_OK;
    return tg_err_set(err, TG_E_CONFIG,
                      "upstream %s: '%.60s' is not weight=N, key_file=FILE "
                      "or models=a,b (or is too long)",
                      s->url, w);
}

/* One entry from p to end: the URL, then options. */
static enum tg_code
entry(const char *p, const char *end, struct tg_upspec *s, struct tg_err *err)
{
    char w[1100];
    bool fits;
    size_t n;

    memset(s, 0, sizeof(*s));
    s->weight = 1;
    n = word(p, end, s->url, sizeof(s->url), &fits);
    if (!fits || n <= (size_t)(p[4] == 's' ? 8 : 7))
        return tg_err_set(err, TG_E_CONFIG, "upstream URL '%.60s' %s", p,
                          fits ? "has no host" : "is too long");
    p += n;
    while (n > 0 && s->url[n - 1] == '/')
        s->url[--n] = '\0';
    while (p < end) {
        while (p < end && separator(*p))
            p++;
        if (p >= end)
            break;
        n = word(p, end, w, sizeof(w), &fits);
        if (!fits)
            return tg_err_set(err, TG_E_CONFIG, "upstream %s: option too long",
                              s->url);
        if (n > 0 && option(s, w, err) != TG_OK)
            return err != NULL ? err->code : TG_E_CONFIG;
        p += n > 0 ? n : 1;
    }
    return TG_OK;
}

static const char *
next_entry(const char *p)
{
    for (; *p != '\0'; p++)
        if (separator(*p) && url_at(p + 1))
            return p + 1;
    return p;
}

enum tg_code
tg_upspec_parse(const char *text, struct tg_upspec *out, int *n,
                struct tg_err *err)
{
    const char *p = text, *end;

    *n = 0;
    while (*p != '\0' && separator(*p))
        p++;
    if (*p != '\0' && !url_at(p))
        return tg_err_set(err, TG_E_CONFIG,
                          "upstream '%.60s': want an http:// or https:// URL",
                          p);
    for (; *p != '\0'; p = end) {
        end = next_entry(p);
        if (*n == TG_UPSPEC_MAX)
            return tg_err_set(err, TG_E_CONFIG, "more than %d upstreams",
                              TG_UPSPEC_MAX);
        if (entry(p, end, &out[*n], err) != TG_OK)
            return err != NULL ? err->code : TG_E_CONFIG;
        (*n)++;
    }
    return TG_OK;
}

/* name equals pattern, with ":latest" implied on either side, or pattern
 * is "family:*". */
static bool
model_match(const char *pat, size_t plen, const char *model)
{
    size_t mlen = strlen(model);

    if (plen >= 2 && pat[plen - 1] == '*' && pat[plen - 2] == ':')
        return mlen >= plen - 1 && memcmp(model, pat, plen - 1) == 0;
    if (plen == mlen && memcmp(pat, model, plen) == 0)
        return true;
    if (mlen == plen + 7 && memcmp(model, pat, plen) == 0 &&
        strcmp(model + plen, ":latest") == 0)
        return true;
    return plen == mlen + 7 && memcmp(model, pat, mlen) == 0 &&
           memcmp(pat + mlen, ":latest", 7) == 0;
}

bool
tg_upspec_serves(const struct tg_upspec *s, const char *model)
{
    const char *p = s->models;

    if (s->models[0] == '\0' || model == NULL || model[0] == '\0')
        return true;
    while (*p != '\0') {
        size_t n = strcspn(p, ",");

        if (n > 0 && model_match(p, n, model))
            return true;
        p += n + (p[n] == ',');
    }
    return false;
}
