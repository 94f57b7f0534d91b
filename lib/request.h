/* What both FastCGI programs know about the request in hand: method, path,
 * query, endpoint, request id and start time. */
#ifndef TG_REQUEST_H
#define TG_REQUEST_H

#include <fcgiapp.h>
#include <stdint.h>

#include "endpoint.h"
#include "log.h"
#include "path.h"

struct tg_request {
    FCGX_Request *fcgi;
    const char *method;     /* borrowed from the params: valid until Finish */
    char path[TG_PATH_MAX]; /* normalised (path.h), without the query */
    /* NULL, or why the path was refused (path is then ""): a 400 */
    const char *path_error;
    const char *query; /* after '?', NULL if none */
    struct tg_endpoint ep;
    char rid[TG_RID_MAX + 1];
    int64_t t0_ms; /* tg_clock_ms() when it began */
};

/* Reads the request line from the params. method and uri, when not NULL,
 * stand in for REQUEST_METHOD and REQUEST_URI (an auth sub-request carries
 * the original ones in headers). */
void tg_request_begin(struct tg_request *r, FCGX_Request *fcgi,
                      const char *method, const char *uri);

/* A FastCGI parameter, or NULL. */
const char *tg_request_param(const struct tg_request *r, const char *name);

/* Milliseconds since tg_request_begin. */
long tg_request_ms(const struct tg_request *r);

#endif
