/* The request line, read once the same way by the authorizer and relay. */
#include <config.h>

#include <string.h>

#include "clock.h"
#include "request.h"

const char *
tg_request_param(const struct tg_request *r, const char *name)
{
    return FCGX_GetParam(name, r->fcgi->envp);
}

long
tg_request_ms(const struct tg_request *r)
{
    return (long)(tg_clock_ms() - r->t0_ms);
}

/* "/api/api/chat" is "/api/chat", "/v1/v1/models" is "/v1/models": some
 * clients append the API path to a base URL that already ends in it. Done
 * here, so the authorizer classifies and the relay forwards the same path. */
static size_t
undouble(char *path, size_t n)
{
    static const char *const prefixes[] = {"/api", "/v1"};
    size_t i;

    for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t k = strlen(prefixes[i]);

        while (n > 2 * k && memcmp(path, prefixes[i], k) == 0 &&
               memcmp(path + k, prefixes[i], k) == 0 && path[k + k] == '/') {
            memmove(path, path + k, n - k + 1);
            n -= k;
        }
    }
    return n;
}

void
tg_request_begin(struct tg_request *r, FCGX_Request *fcgi, const char *method,
                 const char *uri)
{
    const char *q;
    size_t n;

    r->t0_ms = tg_clock_ms();
    r->fcgi = fcgi;
    r->method = method != NULL ? method : tg_request_param(r, "REQUEST_METHOD");
    if (r->method == NULL)
        r->method = "GET";
    if (uri == NULL)
        uri = tg_request_param(r, "REQUEST_URI");
    if (uri == NULL)
        uri = "/";
    q = strchr(uri, '?');
    n = q != NULL ? (size_t)(q - uri) : strlen(uri);
    if (n >= sizeof(r->path))
        n = sizeof(r->path) - 1;
    memcpy(r->path, uri, n);
    r->path[n] = '\0';
    n = undouble(r->path, n);
    r->query = q != NULL ? q + 1 : NULL;
    tg_endpoint_classify(r->path, n, &r->ep);
    tg_log_rid(tg_request_param(r, "HTTP_X_REQUEST_ID"), r->rid);
}
