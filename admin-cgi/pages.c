/* The admin pages: server-rendered HTML into one bounded buffer. Every
 * value goes through tg_html_escape; every change is a POST form carrying
 * the CSRF token; nothing needs JavaScript. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "html.h"
#include "keyops.h"
#include "log.h"
#include "pages.h"

static const struct nav {
    const char *path, *label;
} navs[] = {
    {"/keys", "Keys"},         {"/keys/new", "New key"},
    {"/usage", "Usage"},       {"/requests", "Recent requests"},
    {"/settings", "Settings"}, {"/health", "Health"},
    {"/audit", "Audit log"},
};

void
esc(struct admin *a, const char *s)
{
    tg_html_escape(&a->out, s);
}

void
page_begin(struct admin *a, const char *title, const char *active)
{
    size_t i;

    tg_buf_free(&a->out);
    tg_buf_puts(&a->out, "<!doctype html>\n<html lang=\"en\"><head>"
                         "<meta charset=\"utf-8\"><meta name=\"viewport\" "
                         "content=\"width=device-width, initial-scale=1\">"
                         "<title>");
    esc(a, title);
    tg_buf_puts(&a->out, " · tollgate admin</title><link rel=\"stylesheet\" "
                         "href=\"");
    esc(a, a->base);
    tg_buf_puts(&a->out, "-static/admin.css\"><script defer src=\"");
    esc(a, a->base);
    tg_buf_puts(&a->out, "-static/admin.js\"></script></head><body>"
                         "<header class=\"top\"><a class=\"brand\" href=\"");
    esc(a, a->base);
    tg_buf_puts(&a->out, "/keys\">tollgate</a>");
    if (a->who != WHO_NONE) {
        tg_buf_puts(&a->out, "<nav aria-label=\"Main\"><ul>");
        for (i = 0; i < sizeof(navs) / sizeof(navs[0]); i++) {
            tg_buf_puts(&a->out, "<li><a href=\"");
            esc(a, a->base);
            tg_buf_puts(&a->out, navs[i].path);
            tg_buf_puts(&a->out, "\"");
            if (active != NULL && strcmp(active, navs[i].path) == 0)
                tg_buf_puts(&a->out, " aria-current=\"page\"");
            tg_buf_appendf(&a->out, ">%s</a></li>", navs[i].label);
        }
        tg_buf_puts(&a->out, "</ul></nav><div class=\"who\"><span>");
        esc(a, a->actor);
        tg_buf_puts(&a->out, "</span>");
        if (a->who == WHO_SESSION) {
            form_begin(a, "/logout", "inline");
            tg_buf_puts(&a->out, "<button type=\"submit\" class=\"link\">"
                                 "Log out</button></form>");
        }
        tg_buf_puts(&a->out, "</div>");
    }
    tg_buf_puts(&a->out, "</header><main><h1>");
    esc(a, title);
    tg_buf_puts(&a->out, "</h1>");
}

void
page_end(struct admin *a)
{
    tg_buf_puts(&a->out, "</main></body></html>\n");
}

void
form_begin(struct admin *a, const char *action, const char *cls)
{
    tg_buf_puts(&a->out, "<form method=\"post\" action=\"");
    esc(a, a->base);
    esc(a, action);
    tg_buf_puts(&a->out, "\"");
    if (cls != NULL)
        tg_buf_appendf(&a->out, " class=\"%s\"", cls);
    tg_buf_puts(&a->out, "><input type=\"hidden\" name=\"csrf\" value=\"");
    esc(a, a->csrf);
    tg_buf_puts(&a->out, "\">");
}

void
link(struct admin *a, const char *path, const char *text)
{
    tg_buf_puts(&a->out, "<a href=\"");
    esc(a, a->base);
    esc(a, path);
    tg_buf_puts(&a->out, "\">");
    esc(a, text);
    tg_buf_puts(&a->out, "</a>");
}

void
notice(struct admin *a, const char *cls, const char *msg)
{
    tg_buf_appendf(&a->out, "<p class=\"%s\" role=\"%s\">", cls,
                   strcmp(cls, "error") == 0 ? "alert" : "status");
    esc(a, msg);
    tg_buf_puts(&a->out, "</p>");
}

void
admin_error_page(struct admin *a, int status, const char *msg)
{
    a->status = status;
    a->ctype = "text/html; charset=utf-8";
    page_begin(a,
               status == 403   ? "Forbidden"
               : status == 404 ? "Not found"
               : status == 429 ? "Too many attempts"
               : status == 503 ? "Database unavailable"
                               : "Error",
               NULL);
    notice(a, "error", msg);
    page_end(a);
}

/* A database failure as a page: 503 when it is down, else 500. The
 * message goes to the log, not to the page. */
void
db_error_page(struct admin *a, const struct tg_err *err)
{
    char buf[128];
    const char *msg = admin_err_client(err, buf, sizeof(buf));

    admin_error_page(a, err->code == TG_E_DB_DOWN ? 503 : 500, msg);
}

const char *
jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* A report time ("2026-03-04T10:15:02.1+00:00") as "2026-03-04 10:15". */
void
put_time(struct admin *a, const char *iso, const char *none)
{
    char t[17];

    if (iso == NULL || strlen(iso) < 16) {
        esc(a, none);
        return;
    }
    memcpy(t, iso, 16);
    t[16] = '\0';
    t[10] = ' ';
    tg_buf_puts(&a->out, "<time>");
    esc(a, t);
    tg_buf_puts(&a->out, "</time>");
}

void
put_int(struct admin *a, json_t *v, const char *none)
{
    if (json_is_integer(v))
        tg_buf_appendf(&a->out, "%lld", (long long)json_integer_value(v));
    else
        esc(a, none);
}

/* "used / limit" with a <meter> (no inline style needed for the bar). */
static void
usage(struct admin *a, long long u, bool limited, long long l)
{
    if (!limited) {
        tg_buf_appendf(&a->out,
                       "<span class=\"num\">%lld</span> <span "
                       "class=\"muted\">/ unlimited</span>",
                       u);
        return;
    }
    tg_buf_appendf(&a->out,
                   "<meter min=\"0\" max=\"%lld\" low=\"%lld\" high=\"%lld\" "
                   "optimum=\"0\" value=\"%lld\">%lld of %lld</meter> "
                   "<span class=\"num\">%lld</span> <span class=\"muted\">/ "
                   "%lld</span>",
                   l > 0 ? l : 1, l * 7 / 10, l * 9 / 10, u < l ? u : l, u, l,
                   u, l);
}

void
put_usage(struct admin *a, json_t *used, json_t *limit)
{
    usage(a, json_is_integer(used) ? json_integer_value(used) : 0,
          json_is_integer(limit), json_integer_value(limit));
}

void
state_badge(struct admin *a, const char *state)
{
    tg_buf_puts(&a->out, "<span class=\"badge ");
    esc(a, state != NULL ? state : "unknown");
    tg_buf_puts(&a->out, "\">");
    esc(a, state != NULL ? state : "unknown");
    tg_buf_puts(&a->out, "</span>");
}

static void
put_cell(struct admin *a, const struct col *c, PGresult *res, int r)
{
    const char *v = PQgetvalue(res, r, c->field);
    bool null = PQgetisnull(res, r, c->field);
    char path[64];

    switch (c->how) {
    case COL_TEXT:
    case COL_NUM:
        esc(a, v);
        break;
    case COL_CODE:
    case COL_TIME:
        tg_buf_puts(&a->out, c->how == COL_CODE ? "<code>" : "<time>");
        esc(a, v);
        tg_buf_puts(&a->out, c->how == COL_CODE ? "</code>" : "</time>");
        break;
    case COL_ISOTIME:
        put_time(a, null ? NULL : v, c->text);
        break;
    case COL_KEY:
        if (PQgetisnull(res, r, c->field2)) {
            tg_buf_puts(&a->out, "<span class=\"muted\">");
            esc(a, c->text);
            tg_buf_puts(&a->out, "</span>");
            break;
        }
        snprintf(path, sizeof(path), "/keys/%s", v);
        link(a, path, PQgetvalue(res, r, c->field2));
        break;
    case COL_USAGE:
        usage(a, atoll(v), !PQgetisnull(res, r, c->field2),
              atoll(PQgetvalue(res, r, c->field2)));
        break;
    case COL_BADGE:
        state_badge(a, null ? NULL : v);
        break;
    case COL_DETAILS:
        if (null)
            break;
        tg_buf_puts(&a->out, "<details><summary>");
        esc(a, c->text);
        tg_buf_puts(&a->out, "</summary><pre>");
        esc(a, v);
        tg_buf_puts(&a->out, "</pre></details>");
        break;
    }
}

static const char *
col_class(const struct col *c)
{
    return c->how == COL_NUM     ? " class=\"num\""
           : c->how == COL_USAGE ? " class=\"usage\""
                                 : "";
}

void
put_table(struct admin *a, const char *cls, const struct col *cols,
          size_t ncols, PGresult *res)
{
    size_t c;
    int r;

    tg_buf_puts(&a->out, "<div class=\"scroll\"><table");
    if (cls != NULL)
        tg_buf_appendf(&a->out, " class=\"%s\"", cls);
    tg_buf_puts(&a->out, "><thead><tr>");
    for (c = 0; c < ncols; c++) /* numbers align under their header */
        tg_buf_appendf(&a->out, "<th scope=\"col\"%s>%s</th>",
                       cols[c].how == COL_NUM ? " class=\"num\"" : "",
                       cols[c].label);
    tg_buf_puts(&a->out, "</tr></thead><tbody>");
    for (r = 0; r < PQntuples(res); r++) {
        tg_buf_puts(&a->out, "<tr>");
        for (c = 0; c < ncols; c++) {
            if (cols[c].row_header)
                tg_buf_puts(&a->out, "<th scope=\"row\">");
            else
                tg_buf_appendf(&a->out, "<td%s>", col_class(&cols[c]));
            put_cell(a, &cols[c], res, r);
            tg_buf_puts(&a->out, cols[c].row_header ? "</th>" : "</td>");
        }
        tg_buf_puts(&a->out, "</tr>");
    }
    tg_buf_puts(&a->out, "</tbody></table></div>");
}

/* Runs a query; NULL (and the error page rendered) on failure. */
PGresult *
query(struct admin *a, const char *sql, int n, const char *const *params)
{
    struct tg_err err = {0};
    PGresult *res = tg_db_exec(a->db, PGRES_TUPLES_OK, sql, n, params, &err);

    if (res == NULL)
        db_error_page(a, &err);
    return res;
}

json_t *
admin_key_report(struct admin *a, const char *id, struct tg_err *err)
{
    const char *params[2] = {a->conf.time_zone, id};
    int64_t n;
    PGresult *res;
    json_t *doc = NULL;

    if (tg_conf_parse_int(id, 1, INT64_MAX, &n) != TG_OK) {
        tg_err_set(err, TG_E_NOT_FOUND, "no such key");
        return NULL;
    }
    res = tg_db_exec(a->db, PGRES_TUPLES_OK,
                     "SELECT report FROM tg_key_report($1) WHERE id = $2", 2,
                     params, err);
    if (res != NULL && PQntuples(res) == 1)
        doc = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    else if (res != NULL)
        tg_err_set(err, TG_E_NOT_FOUND, "no such key");
    PQclear(res);
    return doc;
}

/* ---- login ------------------------------------------------------------- */

void
admin_login_page(struct admin *a, const char *error, int status)
{
    a->status = status;
    a->who = WHO_NONE;
    page_begin(a, "Sign in", NULL);
    if (error != NULL)
        notice(a, "error", error);
    tg_buf_puts(&a->out, "<form method=\"post\" action=\"");
    esc(a, a->base);
    tg_buf_puts(&a->out,
                "/login\" class=\"card narrow\"><label for=\"password\">"
                "Admin password</label><input type=\"password\" "
                "id=\"password\" name=\"password\" autocomplete="
                "\"current-password\" required autofocus>"
                "<button type=\"submit\">Sign in</button></form>");
    page_end(a);
}

#define LOGIN_WINDOW "900" /* seconds */
#define LOGIN_MAX_PER_ADDR "5"

/* Counts this attempt for the client's address before any password is
 * checked (one atomic upsert: concurrent attempts cannot all slip under
 * the limit). False: refused already, with 429 and the real wait. Only
 * the address is locked out, so the admin elsewhere still signs in, and
 * `tollgate admin unlock` ends it at once; there is no global cap, which
 * anyone could trip to lock the admin out. */
static bool
login_allowed(struct admin *a)
{
    const char *params[1] = {a->remote_addr};
    char msg[160];
    PGresult *res;
    bool ok;

    res =
        query(a,
              "SELECT allowed, retry_after FROM "
              "tg_login_attempt($1, " LOGIN_MAX_PER_ADDR ", " LOGIN_WINDOW ")",
              1, params);
    if (res == NULL)
        return false;
    ok = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    if (!ok) {
        long long wait = atoll(PQgetvalue(res, 0, 1));

        admin_header(a, "Retry-After: %lld", wait);
        snprintf(msg, sizeof(msg),
                 "Too many sign-in attempts from your address. Try again in "
                 "%lld minute(s).",
                 (wait + 59) / 60);
        admin_login_page(a, msg, 429);
        tg_log(TG_LOG_WARN, NULL, "admin: sign-in from %s refused: locked out",
               params[0]);
    }
    PQclear(res);
    return ok;
}

void
admin_login_post(struct admin *a)
{
    const char *pw = admin_param(&a->form, "password");
    char stored[ADMIN_PW_HASH_MAX + 2], sid[ADMIN_SID_LEN + 1];
    char cookie[ADMIN_COOKIE_MAX + 1], ttl[24];
    const char *params[4];
    struct tg_err err = {0};
    PGresult *res = NULL;
    FILE *f;
    bool ok = false;

    stored[0] = '\0';
    if (!login_allowed(a))
        goto out;
    params[0] = a->remote_addr;
    f = fopen(a->conf.admin_password_file, "r");
    if (f != NULL) {
        if (fgets(stored, sizeof(stored), f) == NULL)
            stored[0] = '\0';
        stored[strcspn(stored, "\r\n")] = '\0';
        fclose(f);
    } else {
        tg_log(TG_LOG_ERROR, NULL, "admin: cannot read admin_password_file %s",
               a->conf.admin_password_file);
    }
    ok = pw != NULL && admin_pw_verify(pw, stored);
    params[1] = ok ? "true" : "false";
    if (tg_db_command(a->db,
                      "INSERT INTO admin_login_attempts (addr, ok) VALUES "
                      "($1, $2::bool)",
                      2, params, &err) != TG_OK) {
        db_error_page(a, &err);
        goto out;
    }
    if (!ok) {
        tg_log(TG_LOG_WARN, NULL, "admin: failed sign-in from %s",
               a->remote_addr);
        admin_login_page(a, "Wrong password.", 401);
        goto out;
    }
    /* Signed in: the address's attempts start again from none. */
    res = query(a, "SELECT tg_login_unlock($1)", 1, params);
    if (res == NULL)
        goto out;
    if (admin_sid_new(sid, &err) != TG_OK) {
        admin_error_page(a, 500, "No random numbers.");
        goto out;
    }
    snprintf(ttl, sizeof(ttl), "%lld", (long long)a->conf.admin_session_ttl);
    params[0] = sid;
    params[1] = "admin";
    params[2] = a->remote_addr;
    params[3] = ttl;
    if (tg_db_command(a->db,
                      "WITH d AS (DELETE FROM admin_sessions WHERE "
                      "expires_at < now()) INSERT INTO admin_sessions (id, "
                      "actor, addr, expires_at) VALUES ($1, $2, $3, now() + "
                      "make_interval(secs => $4::int))",
                      4, params, &err) != TG_OK) {
        db_error_page(a, &err);
        goto out;
    }
    admin_cookie_make(a->mac_key, sid,
                      time(NULL) + (time_t)a->conf.admin_session_ttl, cookie);
    admin_header(a,
                 "Set-Cookie: " ADMIN_COOKIE "=%s; Path=%s/; Max-Age=%lld; "
                 "HttpOnly; Secure; SameSite=Strict",
                 cookie, a->base, (long long)a->conf.admin_session_ttl);
    explicit_bzero(cookie, sizeof(cookie));
    tg_log(TG_LOG_INFO, NULL, "admin: signed in from %s", a->remote_addr);
    admin_redirect(a, "/keys");
out:
    explicit_bzero(stored, sizeof(stored));
    PQclear(res);
}

void
admin_logout(struct admin *a)
{
    const char *params[1] = {a->sid};
    struct tg_err err = {0};

    if (tg_db_command(a->db, "DELETE FROM admin_sessions WHERE id = $1", 1,
                      params, &err) != TG_OK) {
        db_error_page(a, &err);
        return;
    }
    admin_header(a,
                 "Set-Cookie: " ADMIN_COOKIE "=; Path=%s/; Max-Age=0; "
                 "HttpOnly; Secure; SameSite=Strict",
                 a->base);
    admin_redirect(a, "/login");
}

/* ---- routing ----------------------------------------------------------- */

void
admin_pages(struct admin *a, const char *r)
{
    bool post = strcmp(a->method, "POST") == 0;
    char id[24];
    const char *rest;
    size_t n;

    if (r[0] == '\0' || strcmp(r, "/") == 0) {
        admin_redirect(a, "/keys");
        return;
    }
    if (strcmp(r, "/keys") == 0 && !post) {
        page_keys(a);
        return;
    }
    if (strcmp(r, "/keys/new") == 0) {
        if (post)
            page_key_create(a);
        else
            page_key_new(a, NULL, 200);
        return;
    }
    if (strncmp(r, "/keys/", 6) == 0) {
        n = strspn(r + 6, "0123456789");
        rest = r + 6 + n;
        if (n == 0 || n >= sizeof(id)) {
            admin_error_page(a, 404, "No such page.");
            return;
        }
        memcpy(id, r + 6, n);
        id[n] = '\0';
        page_key_route(a, id, rest, post);
        return;
    }
    if (post) {
        if (strcmp(r, "/settings") == 0)
            page_settings_post(a);
        else
            admin_error_page(a, 404, "No such page.");
        return;
    }
    if (strcmp(r, "/usage") == 0)
        page_usage(a);
    else if (strcmp(r, "/usage.csv") == 0)
        page_usage_csv(a);
    else if (strcmp(r, "/requests") == 0)
        page_requests(a);
    else if (strcmp(r, "/settings") == 0)
        page_settings(a, NULL, NULL, 200);
    else if (strcmp(r, "/health") == 0)
        page_health(a);
    else if (strcmp(r, "/audit") == 0)
        page_audit(a);
    else
        admin_error_page(a, 404, "No such page.");
}
