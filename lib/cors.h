/* CORS for browser clients: which origins may call, the preflight answer,
 * and the headers every answer carries (denials too, or a browser shows
 * its own opaque network error instead of ours). */
#ifndef TG_CORS_H
#define TG_CORS_H

#include <stdbool.h>
#include <stddef.h>

#define TG_CORS_MAX 1024 /* room for every header line cors writes */

/* True when `origin` may call: `list` (cors_origins) is "*" or names it
 * among its comma-separated entries. Empty list: CORS is off. */
bool tg_cors_allowed(const char *list, const char *origin);

/* A browser's preflight: OPTIONS with Origin and
 * Access-Control-Request-Method. */
bool tg_cors_preflight(const char *method, const char *origin,
                       const char *request_method);

/* Writes the header lines (each ending CRLF) for an answer to `origin`:
 * nothing when it is not allowed. A preflight also gets the methods, the
 * headers it asked for (`request_headers`, when they are a plain list of
 * names; a default list otherwise) and a max age. */
void tg_cors_headers(const char *list, const char *origin, bool preflight,
                     const char *request_headers, char *out, size_t outlen);

#endif
