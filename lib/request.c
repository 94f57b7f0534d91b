/* The request line, read once the same way by the authorizer and relay. */
#include <config.h>

#include <string.h>

#include "clock.h"
#include "path.h"
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
    r->path_error = NULL;
    if (!tg_path_normalise(uri, n, r->path, sizeof(r->path), &r->path_error))
        r->path[0] = '\0';
    r->query = q != NULL ? q + 1 : NULL;
    tg_endpoint_classify(r->path, strlen(r->path), &r->ep);
    /* A refused path still answers in its family's shape. */
    if (r->path_error != NULL)
        r->ep.family = tg_family_of(uri);
    tg_log_rid(tg_request_param(r, "HTTP_X_REQUEST_ID"), r->rid);
}
