/* Key pages: the list with usage bars, the new-key form, the key shown
 * once, and a key's detail page with edit, disable/enable, rotate and
 * delete. Changes go through lib/keyops.c, as the CLI's do. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "keyops.h"
#include "pages.h"

static const struct sort {
    const char *name, *label, *sql;
} sorts[] = {
    {"name", "Name", "name"},
    {"created", "Newest", "id DESC"},
    {"today", "Tokens today", "(report->>'tokens_today')::bigint DESC, name"},
    {"month", "Tokens this month",
     "(report->>'tokens_month')::bigint DESC, name"},
    {"state", "State", "report->>'state', name"},
};

/* Human labels and hints for the form, in tg_keyops_fields order. */
static const struct form_field {
    const char *label, *hint;
} form_fields[TG_KEYOPS_NFIELDS] = {
    {"Tokens per day", "empty: unlimited"},
    {"Tokens per month", "empty: unlimited"},
    {"Requests per day", "empty: unlimited"},
    {"Requests per month", "empty: unlimited"},
    {"Requests per minute", "empty: unlimited"},
    {"Reservation per request", "tokens; empty: the global default"},
    {"Expires", "empty: never; 2027-01-31, 2027-01-31 12:00+01 or +30d"},
    {"Valid from", "empty: now; same formats as Expires"},
    {"Allowed models", "comma-separated; empty: every model"},
    {"Model lock", "every request uses this model; empty: none"},
    {"Scope", NULL},
    {"Output cap", "most completion tokens per request; empty: none"},
    {"Capture request bodies",
     "yes or no: keep request bodies (compressed by PostgreSQL) for Recent "
     "requests"},
};

static const char *
report_value(json_t *rep, size_t i, char *tmp, size_t tmplen)
{
    json_t *v =
        rep != NULL ? json_object_get(rep, tg_keyops_fields[i].column) : NULL;

    if (json_is_integer(v)) {
        snprintf(tmp, tmplen, "%lld", (long long)json_integer_value(v));
        return tmp;
    }
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_boolean(v))
        return json_is_true(v) ? "yes" : "no";
    if (json_is_array(v)) {
        size_t k, off = 0;

        tmp[0] = '\0';
        for (k = 0; k < json_array_size(v) && off < tmplen; k++)
            off +=
                (size_t)snprintf(tmp + off, tmplen - off, "%s%s", k ? "," : "",
                                 json_string_value(json_array_get(v, k)));
        return tmp;
    }
    return "";
}

/* The fields of the key form, prefilled from a report or the posted form. */
static void
key_fields(struct admin *a, json_t *rep, bool from_form)
{
    char tmp[1024];
    size_t i;

    tg_buf_puts(&a->out, "<div class=\"grid\">");
    for (i = 0; i < TG_KEYOPS_NFIELDS; i++) {
        const struct tg_keyops_field *f = &tg_keyops_fields[i];
        const char *v = from_form ? admin_param(&a->form, f->flag)
                                  : report_value(rep, i, tmp, sizeof(tmp));

        tg_buf_appendf(&a->out,
                       "<div class=\"field\"><label for=\"f-%s\">%s"
                       "</label>",
                       f->flag, form_fields[i].label);
        if (f->kind == TG_KF_SCOPE) {
            bool admin = v != NULL && strcmp(v, "admin") == 0;

            tg_buf_appendf(&a->out,
                           "<select id=\"f-%s\" name=\"%s\" "
                           "aria-describedby=\"h-%s\"><option value="
                           "\"infer\"%s>infer</option><option value="
                           "\"admin\"%s>admin</option></select><small "
                           "id=\"h-%s\">infer: models, chat, embeddings; "
                           "admin: also pull, push, create, delete</small>"
                           "</div>",
                           f->flag, f->flag, f->flag, admin ? "" : " selected",
                           admin ? " selected" : "", f->flag);
            continue;
        }
        tg_buf_appendf(&a->out,
                       "<input id=\"f-%s\" name=\"%s\" %s "
                       "aria-describedby=\"h-%s\" value=\"",
                       f->flag, f->flag,
                       f->kind == TG_KF_COUNT
                           ? "type=\"number\" min=\"0\" inputmode=\"numeric\""
                           : "type=\"text\"",
                       f->flag);
        if (f->kind == TG_KF_TIME && v != NULL && strlen(v) >= 16 &&
            v[10] == 'T') {
            char t[17];

            memcpy(t, v, 16);
            t[16] = '\0';
            t[10] = ' ';
            esc(a, t);
            esc(a, strlen(v) >= 19 ? v + 19 + strcspn(v + 19, "+-Z") : "");
        } else {
            esc(a, v != NULL ? v : "");
        }
        tg_buf_appendf(&a->out, "\"><small id=\"h-%s\">%s</small></div>",
                       f->flag, form_fields[i].hint);
    }
    tg_buf_puts(&a->out, "</div>");
}

/* Fills a change from the posted form. On create an empty field is left
 * unset (column default); on update it clears the limit (SQL NULL). */
static enum tg_code
change_from_form(struct admin *a, struct tg_keyops_change *ch, bool update,
                 struct tg_err *err)
{
    size_t i;

    for (i = 0; i < TG_KEYOPS_NFIELDS; i++) {
        const struct tg_keyops_field *f = &tg_keyops_fields[i];
        char *v = (char *)admin_param(&a->form, f->flag);
        size_t n;

        if (v == NULL)
            continue;
        while (*v == ' ') /* trim: the form's values are ours to change */
            memmove(v, v + 1, strlen(v));
        n = strlen(v);
        while (n > 0 && v[n - 1] == ' ')
            v[--n] = '\0';
        if (v[0] == '\0') {
            if (update && f->kind != TG_KF_SCOPE && f->kind != TG_KF_BOOL) {
                ch->set[i] = true;
                ch->val[i] = NULL;
            }
            continue;
        }
        if (tg_keyops_check(i, v, "", err) != TG_OK)
            return err->code;
        ch->set[i] = true;
        ch->val[i] = f->kind != TG_KF_SCOPE && tg_keyops_is_none(v) ? NULL : v;
    }
    return TG_OK;
}

static void
make_ctx(struct admin *a, struct tg_keyops_ctx *ctx)
{
    ctx->db = a->db;
    ctx->actor = a->actor;
    ctx->secret_file = a->conf.secret_file;
    ctx->key_prefix = a->conf.key_prefix;
}

static int
change_status(enum tg_code rc)
{
    return rc == TG_E_USAGE || rc == TG_E_BAD_REQUEST ? 400
           : rc == TG_E_CONFLICT                      ? 409
           : rc == TG_E_NOT_FOUND                     ? 404
           : rc == TG_E_DB_DOWN                       ? 503
                                                      : 500;
}

/* ---- list -------------------------------------------------------------- */

/* page_keys' columns, in its query's order, then the count of all rows. */
enum { KEYS_TOTAL = 11 };
static const struct col key_cols[] = {
    {"Name", COL_KEY, 0, 1, NULL, true},
    {"Key", COL_CODE, 2, 0, NULL, false},
    {"Scope", COL_TEXT, 3, 0, NULL, false},
    {"Tokens today", COL_USAGE, 4, 5, NULL, false},
    {"Tokens this month", COL_USAGE, 6, 7, NULL, false},
    {"Requests today", COL_NUM, 8, 0, NULL, false},
    {"Expires", COL_ISOTIME, 9, 0, "never", false},
    {"State", COL_BADGE, 10, 0, NULL, false},
};

void
page_keys(struct admin *a)
{
    const char *q = admin_param(&a->query, "q");
    const char *sort = admin_param(&a->query, "sort");
    const char *pg = admin_param(&a->query, "page");
    const struct sort *s = &sorts[0];
    const char *params[4];
    char sql[1024], off[24];
    int64_t page = 1, total;
    PGresult *res;
    size_t i;
    int rows;

    for (i = 0; sort != NULL && i < sizeof(sorts) / sizeof(sorts[0]); i++)
        if (strcmp(sort, sorts[i].name) == 0)
            s = &sorts[i];
    if (pg != NULL && tg_conf_parse_int(pg, 1, 1000000, &page) != TG_OK)
        page = 1;
    snprintf(off, sizeof(off), "%lld",
             (long long)((page - 1) * ADMIN_PAGE_SIZE));
    params[0] = a->conf.time_zone;
    params[1] = q != NULL ? q : "";
    params[2] = off;
    params[3] = a->conf.key_prefix;
    snprintf(sql, sizeof(sql),
             "SELECT id, name, $4 || (report->>'display_prefix') || '…', "
             "report->>'scope', report->>'tokens_today', "
             "report->>'tokens_day_limit', report->>'tokens_month', "
             "report->>'tokens_month_limit', report->>'requests_today', "
             "report->>'expires_at', report->>'state', count(*) OVER () "
             "FROM tg_key_report($1) WHERE $2 = '' OR "
             "strpos(lower(name), lower($2)) > 0 ORDER BY %s "
             "LIMIT %d OFFSET $3::bigint",
             s->sql, ADMIN_PAGE_SIZE);
    res = query(a, sql, 4, params);
    if (res == NULL)
        return;
    rows = PQntuples(res);
    total = rows > 0 ? atoll(PQgetvalue(res, 0, KEYS_TOTAL)) : 0;
    page_begin(a, "Keys", "/keys");
    tg_buf_puts(&a->out, "<form method=\"get\" class=\"filters\" action=\"");
    esc(a, a->base);
    tg_buf_puts(&a->out, "/keys\"><div class=\"field\"><label for=\"q\">"
                         "Name contains</label><input id=\"q\" name=\"q\" "
                         "type=\"search\" value=\"");
    esc(a, q != NULL ? q : "");
    tg_buf_puts(&a->out, "\"></div><div class=\"field\"><label for=\"sort\">"
                         "Sort by</label><select id=\"sort\" name=\"sort\">");
    for (i = 0; i < sizeof(sorts) / sizeof(sorts[0]); i++)
        tg_buf_appendf(&a->out, "<option value=\"%s\"%s>%s</option>",
                       sorts[i].name, s == &sorts[i] ? " selected" : "",
                       sorts[i].label);
    tg_buf_puts(&a->out, "</select></div><button type=\"submit\">Show"
                         "</button></form>");
    tg_buf_appendf(&a->out, "<p class=\"muted\">%lld key%s", (long long)total,
                   total == 1 ? "" : "s");
    tg_buf_puts(&a->out, ". ");
    link(a, "/keys/new", "Create a key");
    tg_buf_puts(&a->out, "</p>");
    if (rows == 0) {
        notice(a, "empty",
               q != NULL && q[0] ? "No key matches that name."
                                 : "No keys yet.");
    } else {
        put_table(a, NULL, key_cols, sizeof(key_cols) / sizeof(*key_cols), res);
    }
    if (total > ADMIN_PAGE_SIZE) {
        int64_t last = (total + ADMIN_PAGE_SIZE - 1) / ADMIN_PAGE_SIZE;

        tg_buf_puts(&a->out, "<nav class=\"pages\" aria-label=\"Pages\">");
        if (page > 1) {
            tg_buf_puts(&a->out, "<a rel=\"prev\" href=\"");
            esc(a, a->base);
            tg_buf_appendf(&a->out,
                           "/keys?sort=%s&amp;page=%lld&amp;q=", s->name,
                           (long long)page - 1);
            tg_html_urlencode(&a->out, q);
            tg_buf_puts(&a->out, "\">Previous</a>");
        }
        tg_buf_appendf(&a->out, "<span>Page %lld of %lld</span>",
                       (long long)page, (long long)last);
        if (page < last) {
            tg_buf_puts(&a->out, "<a rel=\"next\" href=\"");
            esc(a, a->base);
            tg_buf_appendf(&a->out,
                           "/keys?sort=%s&amp;page=%lld&amp;q=", s->name,
                           (long long)page + 1);
            tg_html_urlencode(&a->out, q);
            tg_buf_puts(&a->out, "\">Next</a>");
        }
        tg_buf_puts(&a->out, "</nav>");
    }
    page_end(a);
    PQclear(res);
}

/* ---- new --------------------------------------------------------------- */

void
page_key_new(struct admin *a, const char *error, int status)
{
    const char *name = admin_param(&a->form, "name");

    a->status = status;
    page_begin(a, "New key", "/keys/new");
    if (error != NULL)
        notice(a, "error", error);
    form_begin(a, "/keys/new", "card");
    tg_buf_puts(&a->out, "<div class=\"field wide\"><label for=\"f-name\">"
                         "Name</label><input id=\"f-name\" name=\"name\" "
                         "required maxlength=\"100\" aria-describedby="
                         "\"h-name\" value=\"");
    esc(a, name != NULL ? name : "");
    tg_buf_puts(&a->out, "\"><small id=\"h-name\">who or what uses the key, "
                         "e.g. lab-3 or alice</small></div>");
    key_fields(a, NULL, error != NULL);
    tg_buf_puts(&a->out, "<button type=\"submit\">Create key</button>"
                         "</form>");
    page_end(a);
}

static void
show_key_once(struct admin *a, const char *title, const char *name,
              long long id, const char *key)
{
    char path[64];

    page_begin(a, title, NULL);
    tg_buf_puts(&a->out, "<div class=\"card secret\"><p class=\"warning\" "
                         "role=\"alert\"><strong>Copy this key now.</strong> "
                         "It is shown this once and cannot be shown again; "
                         "tollgate keeps only a hash of it.</p>"
                         "<label for=\"newkey\">Key for ");
    esc(a, name);
    tg_buf_puts(&a->out, "</label><input id=\"newkey\" class=\"key\" "
                         "readonly spellcheck=\"false\" value=\"");
    esc(a, key);
    tg_buf_puts(&a->out, "\"><p>Use it as <code>Authorization: Bearer "
                         "&lt;key&gt;</code>.</p><p>");
    snprintf(path, sizeof(path), "/keys/%lld", id);
    link(a, path, "Go to the key's page");
    tg_buf_puts(&a->out, "</p></div>");
    page_end(a);
}

void
page_key_create(struct admin *a)
{
    char key[TG_KEY_MAX_LEN + 1], msg[128];
    struct tg_keyops_change ch = {0};
    struct tg_keyops_ctx ctx;
    struct tg_err err = {0};
    long long id = 0;
    enum tg_code rc;

    make_ctx(a, &ctx);
    ch.name = admin_param(&a->form, "name");
    if (ch.name == NULL || ch.name[0] == '\0') {
        page_key_new(a, "Give the key a name.", 400);
        return;
    }
    rc = change_from_form(a, &ch, false, &err);
    if (rc == TG_OK)
        rc = tg_keyops_create(&ctx, &ch, key, sizeof(key), &id, &err);
    if (rc != TG_OK) {
        page_key_new(a, admin_err_client(&err, msg, sizeof(msg)),
                     change_status(rc));
        return;
    }
    show_key_once(a, "Key created", ch.name, id, key);
    explicit_bzero(key, sizeof(key));
}

/* ---- detail ------------------------------------------------------------ */

#define BODY_SHOWN 8192 /* characters of a captured body on the page */

/* requests_table's columns, in its query's order. */
static const struct col request_cols[] = {
    {"Time", COL_TIME, 0, 0, NULL, false},
    {"Key", COL_KEY, 1, 2, "deleted", false},
    {"Model", COL_TEXT, 3, 0, NULL, false},
    {"Endpoint", COL_CODE, 4, 0, NULL, false},
    {"Status", COL_TEXT, 5, 0, NULL, false},
    {"Prompt", COL_NUM, 6, 0, NULL, false},
    {"Completion", COL_NUM, 7, 0, NULL, false},
    {"Latency ms", COL_NUM, 8, 0, NULL, false},
    {"TTFB ms", COL_NUM, 9, 0, NULL, false},
    {"Body", COL_DETAILS, 10, 0, "body", false},
};

void
requests_table(struct admin *a, const char *where, int n,
               const char *const *params, int limit)
{
    char sql[2048];
    PGresult *res;

    snprintf(sql, sizeof(sql),
             "SELECT to_char(e.at AT TIME ZONE $1, 'YYYY-MM-DD HH24:MI:SS'), "
             "e.key_id, k.name, e.model, e.endpoint, "
             "concat(e.http_status, ' ', e.status), "
             "e.prompt_tokens, e.completion_tokens, e.latency_ms, e.ttfb_ms, "
             "(SELECT left(b.body, " ADMIN_STR(
                 BODY_SHOWN) ") FROM "
                             "request_bodies b WHERE b.reservation_id = "
                             "e.reservation_id) "
                             "FROM usage_events e LEFT JOIN api_keys k ON k.id "
                             "= e.key_id "
                             "WHERE %s ORDER BY e.id DESC LIMIT %d",
             where, limit);
    res = query(a, sql, n, params);
    if (res == NULL)
        return;
    if (PQntuples(res) == 0) {
        notice(a, "empty", "No requests.");
        PQclear(res);
        return;
    }
    put_table(a, "requests", request_cols,
              sizeof(request_cols) / sizeof(*request_cols), res);
    PQclear(res);
}

static void
dl_row(struct admin *a, const char *term)
{
    tg_buf_appendf(&a->out, "<dt>%s</dt><dd>", term);
}

static void
page_key_detail(struct admin *a, json_t *rep, const char *id, const char *error,
                const char *done)
{
    const char *state = jstr(rep, "state");
    const char *params[2] = {a->conf.time_zone, id};
    char path[64];
    json_t *models = json_object_get(rep, "allowed_models");
    size_t i;

    page_begin(a, jstr(rep, "name"), NULL);
    if (error != NULL)
        notice(a, "error", error);
    if (done != NULL)
        notice(a, "ok", done);
    tg_buf_puts(&a->out, "<div class=\"cols\"><section class=\"card\">"
                         "<h2>Overview</h2><dl>");
    dl_row(a, "State");
    state_badge(a, state);
    tg_buf_puts(&a->out, "</dd>");
    dl_row(a, "Key");
    tg_buf_puts(&a->out, "<code>");
    esc(a, a->conf.key_prefix);
    esc(a, jstr(rep, "display_prefix"));
    tg_buf_puts(&a->out, "…</code></dd>");
    dl_row(a, "Scope");
    esc(a, jstr(rep, "scope"));
    tg_buf_puts(&a->out, "</dd>");
    dl_row(a, "Tokens today");
    put_usage(a, json_object_get(rep, "tokens_today"),
              json_object_get(rep, "tokens_day_limit"));
    tg_buf_puts(&a->out, "</dd>");
    dl_row(a, "Tokens this month");
    put_usage(a, json_object_get(rep, "tokens_month"),
              json_object_get(rep, "tokens_month_limit"));
    tg_buf_puts(&a->out, "</dd>");
    dl_row(a, "Requests today");
    put_usage(a, json_object_get(rep, "requests_today"),
              json_object_get(rep, "requests_day_limit"));
    tg_buf_puts(&a->out, "</dd>");
    dl_row(a, "Requests this month");
    put_usage(a, json_object_get(rep, "requests_month"),
              json_object_get(rep, "requests_month_limit"));
    tg_buf_puts(&a->out, "</dd>");
    dl_row(a, "Requests per minute");
    put_int(a, json_object_get(rep, "rpm_limit"), "unlimited");
    tg_buf_puts(&a->out, "</dd>");
    dl_row(a, "Models");
    if (!json_is_array(models))
        tg_buf_puts(&a->out, "all");
    for (i = 0; json_is_array(models) && i < json_array_size(models); i++) {
        if (i > 0)
            tg_buf_puts(&a->out, ", ");
        esc(a, json_string_value(json_array_get(models, i)));
    }
    tg_buf_puts(&a->out, "</dd>");
    dl_row(a, "Model lock");
    esc(a,
        jstr(rep, "force_model") != NULL ? jstr(rep, "force_model") : "none");
    tg_buf_puts(&a->out, "</dd>");
    dl_row(a, "In flight");
    put_int(a, json_object_get(rep, "open_reservations"), "0");
    tg_buf_puts(&a->out, " requests, ");
    put_int(a, json_object_get(rep, "reserved_tokens"), "0");
    tg_buf_puts(&a->out, " tokens reserved</dd>");
    dl_row(a, "Created");
    put_time(a, jstr(rep, "created_at"), "");
    tg_buf_puts(&a->out, "</dd>");
    dl_row(a, "Rotated");
    put_time(a, jstr(rep, "rotated_at"), "never");
    tg_buf_puts(&a->out, "</dd>");
    dl_row(a, "Expires");
    put_time(a, jstr(rep, "expires_at"), "never");
    tg_buf_puts(&a->out, "</dd></dl>");

    tg_buf_puts(&a->out, "<h2>Actions</h2><div class=\"actions\">");
    snprintf(path, sizeof(path), "/keys/%s/%s", id,
             state != NULL && strcmp(state, "disabled") == 0 ? "enable"
                                                             : "disable");
    form_begin(a, path, "inline");
    tg_buf_appendf(&a->out, "<button type=\"submit\">%s key</button></form>",
                   state != NULL && strcmp(state, "disabled") == 0 ? "Enable"
                                                                   : "Disable");
    snprintf(path, sizeof(path), "/keys/%s/rotate", id);
    form_begin(a, path, "inline");
    tg_buf_puts(&a->out, "<button type=\"submit\">Rotate key</button>"
                         "</form>");
    snprintf(path, sizeof(path), "/keys/%s/delete", id);
    tg_buf_puts(&a->out, "<a class=\"button danger\" href=\"");
    esc(a, a->base);
    esc(a, path);
    tg_buf_puts(&a->out, "\">Delete…</a></div></section>");

    tg_buf_puts(&a->out, "<section class=\"card\"><h2>Edit limits</h2>");
    snprintf(path, sizeof(path), "/keys/%s/update", id);
    form_begin(a, path, NULL);
    key_fields(a, rep, false);
    tg_buf_puts(&a->out, "<button type=\"submit\">Save changes</button>"
                         "</form></section></div>");
    tg_buf_puts(&a->out, "<h2>Recent requests</h2>");
    requests_table(a, "e.key_id = $2::bigint", 2, params, 20);
    page_end(a);
}

static void
page_key_delete_confirm(struct admin *a, json_t *rep, const char *id)
{
    char path[64];

    page_begin(a, "Delete key", NULL);
    tg_buf_puts(&a->out,
                "<div class=\"card narrow\"><p>Delete the key <strong>");
    esc(a, jstr(rep, "name"));
    tg_buf_puts(&a->out, "</strong>? Clients using it get 401 from now on. "
                         "Its usage history stays, without the name. This "
                         "cannot be undone; to stop a key for a while, "
                         "disable it instead.</p>");
    snprintf(path, sizeof(path), "/keys/%s/delete", id);
    form_begin(a, path, "inline");
    tg_buf_puts(&a->out, "<button type=\"submit\" class=\"danger\">Delete "
                         "for good</button></form> ");
    snprintf(path, sizeof(path), "/keys/%s", id);
    link(a, path, "Cancel");
    tg_buf_puts(&a->out, "</div>");
    page_end(a);
}

static const char *const done_msgs[][2] = {
    {"saved", "Saved."},
    {"disabled", "Disabled: requests with this key now get 403."},
    {"enabled", "Enabled."},
};

void
page_key_route(struct admin *a, const char *id, const char *rest, bool post)
{
    char key[TG_KEY_MAX_LEN + 1], name[128], path[96], msg[128];
    struct tg_keyops_change ch = {0};
    struct tg_keyops_ctx ctx;
    struct tg_err err = {0};
    json_t *rep = admin_key_report(a, id, &err);
    enum tg_code rc = TG_OK;
    const char *done = NULL, *shown = NULL;
    size_t i;

    make_ctx(a, &ctx);
    if (rep == NULL) {
        if (err.code == TG_E_NOT_FOUND)
            admin_error_page(a, 404,
                             "No such key (it may have been "
                             "deleted).");
        else
            db_error_page(a, &err);
        return;
    }
    snprintf(name, sizeof(name), "%s", jstr(rep, "name"));
    if (!post && rest[0] == '\0') {
        done = admin_param(&a->query, "done");
        for (i = 0; done != NULL && i < sizeof(done_msgs) / sizeof(*done_msgs);
             i++)
            if (strcmp(done, done_msgs[i][0]) == 0)
                shown = done_msgs[i][1];
        page_key_detail(a, rep, id, NULL, shown);
        goto out;
    }
    if (!post && strcmp(rest, "/delete") == 0) {
        page_key_delete_confirm(a, rep, id);
        goto out;
    }
    if (post && strcmp(rest, "/update") == 0) {
        ch.name = name;
        rc = change_from_form(a, &ch, true, &err);
        if (rc == TG_OK)
            rc = tg_keyops_update(&ctx, &ch, &err);
        done = "saved";
    } else if (post && (strcmp(rest, "/disable") == 0 ||
                        strcmp(rest, "/enable") == 0)) {
        bool dis = strcmp(rest, "/disable") == 0;

        rc = tg_keyops_simple(&ctx, dis ? TG_KEYOPS_DISABLE : TG_KEYOPS_ENABLE,
                              name, false, &err);
        done = dis ? "disabled" : "enabled";
    } else if (post && strcmp(rest, "/rotate") == 0) {
        rc = tg_keyops_rotate(&ctx, name, key, sizeof(key), &err);
        if (rc == TG_OK) {
            show_key_once(a, "Key rotated", name, atoll(id), key);
            explicit_bzero(key, sizeof(key));
            goto out;
        }
    } else if (post && strcmp(rest, "/delete") == 0) {
        rc = tg_keyops_simple(&ctx, TG_KEYOPS_DELETE, name, false, &err);
        if (rc == TG_OK) {
            admin_redirect(a, "/keys");
            goto out;
        }
    } else {
        admin_error_page(a, 404, "No such page.");
        goto out;
    }
    if (rc != TG_OK) {
        a->status = change_status(rc);
        page_key_detail(a, rep, id, admin_err_client(&err, msg, sizeof(msg)),
                        NULL);
        goto out;
    }
    /* Post/redirect/get: reloading the page does not repeat the change. */
    snprintf(path, sizeof(path), "/keys/%s?done=%s", id, done);
    admin_redirect(a, path);
out:
    json_decref(rep);
}
