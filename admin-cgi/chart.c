/* Stacked bars in SVG. Sums are taken in double: a single huge value
 * (int64 near its maximum) scales instead of overflowing. */
#include <config.h>

#include <math.h>
#include <stdio.h>

#include "chart.h"
#include "html.h"

#define W 960.0
#define H 300.0
#define LEFT 64.0
#define RIGHT 12.0
#define TOP 12.0
#define BOTTOM 30.0

/* Okabe-Ito: distinguishable with the common colour-vision deficiencies. */
static const char *const colors[ADMIN_CHART_COLORS] = {
    "#0072B2", "#E69F00", "#009E73", "#CC79A7",
    "#56B4E9", "#D55E00", "#8C6D1F", "#999999"};

const char *
admin_chart_color(size_t s)
{
    return colors[s < ADMIN_CHART_COLORS ? s : ADMIN_CHART_COLORS - 1];
}

void
admin_chart_si(double v, char *out, size_t outlen)
{
    static const char *const units[] = {"", "k", "M", "G", "T", "P", "E"};
    size_t u = 0;

    while (fabs(v) >= 1000.0 && u < sizeof(units) / sizeof(units[0]) - 1) {
        v /= 1000.0;
        u++;
    }
    if (u == 0 || v >= 100.0 || v == floor(v))
        snprintf(out, outlen, "%.0f%s", v, units[u]);
    else
        snprintf(out, outlen, "%.1f%s", v, units[u]);
}

/* The smallest 1, 2 or 5 times a power of ten that is >= v. */
static double
nice_ceiling(double v)
{
    double p = pow(10.0, floor(log10(v)));

    if (v <= p)
        return p;
    if (v <= 2 * p)
        return 2 * p;
    if (v <= 5 * p)
        return 5 * p;
    return 10 * p;
}

static double
value(const struct admin_chart *c, size_t s, size_t i)
{
    int64_t v = c->values[s * c->nbuckets + i];

    return v > 0 ? (double)v : 0.0;
}

int
admin_chart_svg(struct tg_buf *b, const struct admin_chart *c)
{
    double max = 0, scale, bw, pw = W - LEFT - RIGHT, ph = H - TOP - BOTTOM;
    char label[32];
    size_t i, s;
    int t;

    for (i = 0; i < c->nbuckets; i++) {
        double sum = 0;

        for (s = 0; s < c->nseries; s++)
            sum += value(c, s, i);
        if (sum > max)
            max = sum;
    }
    tg_buf_appendf(b,
                   "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" "
                   "role=\"img\" aria-label=\"",
                   W, H);
    tg_html_escape(b, c->title);
    tg_buf_puts(b, "\" xmlns=\"http://www.w3.org/2000/svg\">");
    tg_buf_appendf(b,
                   "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" "
                   "stroke=\"#888\"/>",
                   LEFT, H - BOTTOM, W - RIGHT, H - BOTTOM);
    if (max <= 0 || c->nbuckets == 0) {
        tg_buf_appendf(b,
                       "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\" "
                       "font-size=\"18\" fill=\"#555\">No usage in this "
                       "window</text></svg>",
                       W / 2, H / 2);
        return tg_buf_failed(b) ? -1 : 0;
    }
    max = nice_ceiling(max);
    scale = ph / max;
    for (t = 0; t <= 4; t++) {
        double v = max * t / 4, y = H - BOTTOM - v * scale;

        admin_chart_si(v, label, sizeof(label));
        tg_buf_appendf(b,
                       "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" "
                       "stroke=\"#ddd\"/><text x=\"%.0f\" y=\"%.1f\" "
                       "text-anchor=\"end\" font-size=\"13\" "
                       "fill=\"#333\">%s</text>",
                       LEFT, y, W - RIGHT, y, LEFT - 6, y + 4, label);
    }
    bw = pw / (double)c->nbuckets;
    for (i = 0; i < c->nbuckets; i++) {
        double y = H - BOTTOM, x = LEFT + bw * (double)i;

        for (s = 0; s < c->nseries; s++) {
            double v = value(c, s, i), h = v * scale;

            if (v <= 0)
                continue;
            if (h < 0.5)
                h = 0.5; /* a bar that exists stays visible */
            y -= h;
            tg_buf_appendf(b,
                           "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
                           "height=\"%.2f\" fill=\"%s\"><title>",
                           x + bw * 0.1, y, bw * 0.8 > 0.5 ? bw * 0.8 : 0.5, h,
                           admin_chart_color(s));
            tg_html_escape(b, c->names != NULL ? c->names[s] : "");
            if (c->xlabels != NULL && c->xlabels[i] != NULL) {
                tg_buf_puts(b, " at ");
                tg_html_escape(b, c->xlabels[i]);
            }
            tg_buf_appendf(b, ": %.0f tokens</title></rect>", v);
        }
        if (c->xlabels != NULL && c->xlabels[i] != NULL) {
            tg_buf_appendf(b,
                           "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\" "
                           "font-size=\"13\" fill=\"#333\">",
                           x + bw / 2, H - BOTTOM + 18);
            tg_html_escape(b, c->xlabels[i]);
            tg_buf_puts(b, "</text>");
        }
    }
    tg_buf_puts(b, "</svg>");
    return tg_buf_failed(b) ? -1 : 0;
}
