/* Is an Ollama there? GET <base>/api/version, the cheapest call Ollama
 * answers: up when it says 200 with a JSON "version". One probe for the
 * relay's upstream health, the admin Health page and `tollgate check`. */
#ifndef TG_PROBE_H
#define TG_PROBE_H

#include <stdbool.h>

#include <curl/curl.h>

struct tg_probe {
    bool up;
    long http;        /* the status, 0 when there was no answer */
    char version[64]; /* Ollama's version when up */
    char why[256];    /* when not up: curl's error or the status */
    double ms;        /* how long it took */
};

/* Probes `base` (with or without a trailing '/') within timeout_ms, on
 * `curl` (reset first; NULL: a handle of its own, cleaned up). Only http
 * and https are followed. */
void tg_probe_version(CURL *curl, const char *base, long timeout_ms,
                      struct tg_probe *p);

#endif
