/* Stacked bar charts as inline SVG, drawn on the server: no chart library,
 * no script, so the usage page works with JavaScript off and under a strict
 * Content-Security-Policy. */
#ifndef ADMIN_CHART_H
#define ADMIN_CHART_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define ADMIN_CHART_COLORS 8

/* values[s * nbuckets + i] is series s in bucket i (negative counts as 0).
 * names[s] labels series s in the bar tooltips; xlabels[i] (NULL, or an
 * entry NULL, for none) is drawn under bucket i. With no data at all the
 * chart says so instead of drawing an empty frame. Appends to b; -1 once b
 * has failed. */
struct admin_chart {
    const char *title; /* aria-label */
    size_t nbuckets, nseries;
    const int64_t *values;
    const char *const *names;
    const char *const *xlabels;
};
int admin_chart_svg(struct tg_buf *b, const struct admin_chart *c);

/* The fill colour of series s (the last colour is reused past the end). */
const char *admin_chart_color(size_t s);

/* 1234 -> "1.2k", 5000000 -> "5M": short axis labels. */
void admin_chart_si(double v, char *out, size_t outlen);

#endif
