/* tollgate-admin.cgi: one CGI request in, one response out. The request is
 * parsed once into struct admin; pages (pages.c) and the JSON API (api.c)
 * render into a.resp, and main.c writes it to stdout. */
#ifndef ADMIN_H
#define ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "auth.h"
#include "buf.h"
#include "conf.h"
#include "db.h"
#include "err.h"
#include "form.h"

#define ADMIN_BODY_MAX (1 << 20)  /* request bodies: forms and JSON */
#define ADMIN_PAGE_MAX (16 << 20) /* one rendered response */
#define ADMIN_PAGE_SIZE 100       /* rows per page in every list */
#define ADMIN_COOKIE "tg_admin"
#define ADMIN_XSTR(x) #x
#define ADMIN_STR(x) ADMIN_XSTR(x) /* a number macro as a literal */

enum admin_who { WHO_NONE, WHO_SESSION, WHO_REMOTE_USER, WHO_MASTER_KEY };

struct admin {
    struct tg_conf conf;
    struct tg_db *db;
    unsigned char mac_key[ADMIN_MAC_KEY_LEN];

    /* the request (borrowed from the environment unless noted) */
    const char *method, *route, *base, *remote_addr;
    char *body; /* owned; NUL-terminated */
    size_t body_len;
    struct admin_params query, form;

    /* who asks */
    enum admin_who who;
    char actor[160]; /* for admin_audit: "admin", "user:alice", "master-key" */
    char binding[160]; /* what the CSRF token is bound to */
    char csrf[ADMIN_CSRF_LEN + 1];
    char sid[ADMIN_SID_LEN + 1];

    /* the response */
    int status;
    const char *ctype;
    struct tg_buf headers; /* extra "Name: value\r\n" lines */
    struct tg_buf out;
};

/* Parameter lookup: NULL when absent. */

/* Response helpers. */
void admin_header(struct admin *a, const char *fmt, ...) TG_PRINTF(2, 3);
void admin_redirect(struct admin *a, const char *path); /* 303 to base+path */
void admin_json(struct admin *a, int status, json_t *doc); /* steals doc */
void admin_json_error(struct admin *a, int status, const char *msg);
/* What a failed request may tell its client (tg_err_client); err->msg is
 * logged under the request id that the client is shown. buflen >= 64. */
const char *admin_err_client(const struct tg_err *err, char *buf,
                             size_t buflen);

/* A key's tg_key_report JSON by id (new reference) or NULL with err. */
json_t *admin_key_report(struct admin *a, const char *id, struct tg_err *err);

/* Pages and API: each renders the whole response. */
void admin_pages(struct admin *a, const char *route);
void admin_login_page(struct admin *a, const char *error, int status);
void admin_login_post(struct admin *a);
void admin_logout(struct admin *a);
void admin_api(struct admin *a, const char *route);
void admin_key_generate(struct admin *a);
void admin_error_page(struct admin *a, int status, const char *msg);

/* Renders the usage chart of a window ("24h", "7d", "30d") into a.out. */
void admin_usage_chart(struct admin *a, const char *window);

#endif
