/* Helpers shared by the page modules (pages.c, keys.c, report.c): all
 * render into a->out and escape every value they are given. */
#ifndef ADMIN_PAGES_H
#define ADMIN_PAGES_H

#include <stdbool.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "admin.h"

void esc(struct admin *a, const char *s);
void page_begin(struct admin *a, const char *title, const char *active);
void page_end(struct admin *a);
/* <form method=post action=base+action> with the CSRF field; close it. */
void form_begin(struct admin *a, const char *action, const char *cls);
void link(struct admin *a, const char *path, const char *text);
void notice(struct admin *a, const char *cls, const char *msg);
void db_error_page(struct admin *a, const struct tg_err *err);
const char *jstr(json_t *o, const char *k); /* borrowed; NULL if absent */
void put_time(struct admin *a, const char *iso, const char *none);
void put_int(struct admin *a, json_t *v, const char *none);
void put_usage(struct admin *a, json_t *used, json_t *limit);
void state_badge(struct admin *a, const char *state);

/* A list table's columns, said once: each gives its header cell and how a
 * row of the PGresult becomes its cell. Every value is escaped. */
enum col_how {
    COL_TEXT,    /* the value */
    COL_NUM,     /* the value, class "num" on header and cell */
    COL_CODE,    /* <code>value</code> */
    COL_TIME,    /* <time>value</time>, the value already formatted */
    COL_ISOTIME, /* a report time as put_time() shows it; NULL: text */
    COL_KEY,     /* a link to /keys/<value> named by field2; NULL: muted text */
    COL_USAGE,   /* put_usage() of value (used) and field2 (limit) */
    COL_BADGE,   /* state_badge() of the value */
    COL_DETAILS, /* <details> summarised by text; nothing when NULL */
};
struct col {
    const char *label; /* the header; markup, not escaped */
    enum col_how how;
    int field, field2;
    const char *text;
    bool row_header; /* <th scope="row"> rather than <td> */
};
/* The whole table (class cls, or none) of every row of res. */
void put_table(struct admin *a, const char *cls, const struct col *cols,
               size_t ncols, PGresult *res);
/* A query whose failure renders the error page; the caller PQclear()s. */
PGresult *query(struct admin *a, const char *sql, int n,
                const char *const *params);

/* keys.c */
void page_keys(struct admin *a);
void page_key_new(struct admin *a, const char *error, int status);
void page_key_create(struct admin *a);
void page_key_route(struct admin *a, const char *id, const char *rest,
                    bool post);
/* The recent-requests table for a WHERE clause over usage_events e. */
void requests_table(struct admin *a, const char *where, int n,
                    const char *const *params, int limit);

/* report.c */
void page_usage(struct admin *a);
void page_usage_csv(struct admin *a);
void page_requests(struct admin *a);
void page_settings(struct admin *a, const char *error, const char *ok,
                   int status);
void page_settings_post(struct admin *a);
/* True for a known setting name with a value it accepts. */
bool admin_setting_valid(const char *name, const char *v);
void page_health(struct admin *a);
void page_audit(struct admin *a);

#endif
