/* HTML escaping: the one helper every value on an admin page goes through.
 * The output is safe in element content and in double- or single-quoted
 * attribute values. */
#ifndef TG_HTML_H
#define TG_HTML_H

#include <stddef.h>

#include "buf.h"

/* Appends s (len bytes) to b with & < > " ' as entities. Invalid UTF-8
 * (stray, overlong, surrogate or out-of-range sequences), NUL and control
 * characters other than tab, LF and CR become U+FFFD, so a stored name
 * cannot break the page's encoding. Returns -1 once b has failed. */
int tg_html_escape_n(struct tg_buf *b, const char *s, size_t len);

/* As tg_html_escape_n for a NUL-terminated string; NULL appends nothing. */
int tg_html_escape(struct tg_buf *b, const char *s);

/* Appends s percent-encoded for a URL query value (RFC 3986 unreserved
 * characters stay); the result still needs tg_html_escape in an attribute
 * only if it is not produced by this function (it never contains & < > "). */
int tg_html_urlencode(struct tg_buf *b, const char *s);

#endif
