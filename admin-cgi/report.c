/* Read-mostly pages: usage (chart, per key, CSV), recent requests,
 * settings, health and the audit log. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "chart.h"
#include "csv.h"
#include "html.h"
#include "pages.h"
#include "probe.h"
#include "spool.h"
#include "upspec.h"

#define SERIES_MAX ADMIN_CHART_COLORS /* the last one is "other models" */
#define CSV_ROWS_MAX 50000

static const struct window {
    const char *name, *label;
    int bucket; /* seconds per bar */
    int n;      /* bars */
} windows[] = {
    {"24h", "24 hours", 3600, 24},
    {"7d", "7 days", 3600, 168},
    {"30d", "30 days", 21600, 120},
};

static const struct window *
find_window(const char *name)
{
    size_t i;

    for (i = 0; name != NULL && i < sizeof(windows) / sizeof(*windows); i++)
        if (strcmp(name, windows[i].name) == 0)
            return &windows[i];
    return &windows[0];
}

/* Axis labels in the configured zone: hours for a day, days beyond. */
static void
x_labels(struct admin *a, const struct window *w, time_t start,
         char (*labels)[16], const char **ptrs)
{
    int i;

    setenv("TZ", a->conf.time_zone, 1);
    tzset();
    for (i = 0; i < w->n; i++) {
        time_t t = start + (time_t)i * w->bucket;
        struct tm tm;

        ptrs[i] = NULL;
        if (localtime_r(&t, &tm) == NULL)
            continue;
        if (w->n == 24 && i % 3 == 0)
            strftime(labels[i], 16, "%H:00", &tm);
        else if (w->n == 168 && tm.tm_hour == 0)
            strftime(labels[i], 16, "%a %d", &tm);
        else if (w->n == 120 && i % 20 == 0)
            strftime(labels[i], 16, "%b %d", &tm);
        else
            continue;
        ptrs[i] = labels[i];
    }
}

void
admin_usage_chart(struct admin *a, const char *window)
{
    const struct window *w = find_window(window);
    time_t now = time(NULL);
    time_t start = (now / w->bucket - (w->n - 1)) * (time_t)w->bucket;
    char p0[24], p1[24], (*labels)[16] = NULL;
    const char *params[2] = {p0, p1}, **xl = NULL;
    const char *names[SERIES_MAX];
    int64_t *values = NULL, totals[SERIES_MAX] = {0};
    size_t nseries = 0, s;
    struct admin_chart c = {0};
    PGresult *res;
    int r;

    snprintf(p0, sizeof(p0), "%lld", (long long)start);
    snprintf(p1, sizeof(p1), "%d", w->bucket);
    /* Models by total tokens: the first SERIES_MAX - 1 get a colour each. */
    res = query(a,
                "SELECT floor((extract(epoch FROM e.at) - $1::bigint) / "
                "$2::int)::int, coalesce(e.model, '(none)'), "
                "sum(e.prompt_tokens + e.completion_tokens)::bigint, "
                "sum(sum(e.prompt_tokens + e.completion_tokens)) OVER "
                "(PARTITION BY coalesce(e.model, '(none)')) AS t FROM "
                "usage_events e WHERE e.at >= to_timestamp($1::bigint) "
                "GROUP BY 1, 2 ORDER BY t DESC, 2",
                2, params);
    if (res == NULL)
        return;
    values = calloc((size_t)w->n * SERIES_MAX, sizeof(*values));
    labels = calloc((size_t)w->n, sizeof(*labels));
    xl = calloc((size_t)w->n, sizeof(*xl));
    if (values == NULL || labels == NULL || xl == NULL)
        goto out;
    for (r = 0; r < PQntuples(res); r++) {
        int b = atoi(PQgetvalue(res, r, 0));
        const char *m = PQgetvalue(res, r, 1);

        for (s = 0; s < nseries; s++)
            if (strcmp(names[s], m) == 0 ||
                (s == SERIES_MAX - 1 && nseries == SERIES_MAX))
                break;
        if (s == nseries) {
            names[s] = s == SERIES_MAX - 1 ? "other models" : m;
            nseries++;
        }
        if (b >= 0 && b < w->n) {
            values[s * (size_t)w->n + (size_t)b] +=
                strtoll(PQgetvalue(res, r, 2), NULL, 10);
            totals[s] += strtoll(PQgetvalue(res, r, 2), NULL, 10);
        }
    }
    x_labels(a, w, start, labels, xl);
    c.title = "Tokens per bar, stacked by model";
    c.nbuckets = (size_t)w->n;
    c.nseries = nseries;
    c.values = values;
    c.names = names;
    c.xlabels = xl;
    tg_buf_puts(&a->out, "<figure class=\"card chart\"><div "
                         "class=\"chart-scroll\">");
    admin_chart_svg(&a->out, &c);
    tg_buf_puts(&a->out, "</div>");
    tg_buf_appendf(&a->out,
                   "<figcaption>Tokens (prompt + completion) per "
                   "%s, stacked by model, last %s (%s)."
                   "<ul class=\"legend\">",
                   w->bucket == 3600 ? "hour" : "6 hours", w->label,
                   a->conf.time_zone);
    for (s = 0; s < nseries; s++) {
        tg_buf_appendf(&a->out,
                       "<li><svg width=\"14\" height=\"14\" aria-hidden="
                       "\"true\"><rect width=\"14\" height=\"14\" fill="
                       "\"%s\"/></svg> ",
                       admin_chart_color(s));
        esc(a, names[s]);
        tg_buf_appendf(&a->out, " <span class=\"muted\">%lld</span></li>",
                       (long long)totals[s]);
    }
    tg_buf_puts(&a->out, "</ul></figcaption></figure>");
out:
    free(values);
    free(labels);
    free(xl);
    PQclear(res);
}

/* page_usage's top keys, in its query's order. */
static const struct col top_key_cols[] = {
    {"Key", COL_KEY, 0, 1, "deleted key", true},
    {"Requests", COL_NUM, 2, 0, NULL, false},
    {"Prompt tokens", COL_NUM, 3, 0, NULL, false},
    {"Completion tokens", COL_NUM, 4, 0, NULL, false},
    {"Total", COL_NUM, 5, 0, NULL, false},
};

void
page_usage(struct admin *a)
{
    const struct window *w = find_window(admin_param(&a->query, "window"));
    char p0[24];
    const char *params[1] = {p0};
    PGresult *res;
    size_t i;

    snprintf(p0, sizeof(p0), "%lld",
             (long long)(time(NULL) - (time_t)w->bucket * w->n));
    page_begin(a, "Usage", "/usage");
    tg_buf_puts(&a->out, "<nav class=\"tabs\" aria-label=\"Window\">");
    for (i = 0; i < sizeof(windows) / sizeof(*windows); i++) {
        tg_buf_puts(&a->out, "<a href=\"");
        esc(a, a->base);
        tg_buf_appendf(&a->out, "/usage?window=%s\"%s>%s</a>", windows[i].name,
                       &windows[i] == w ? " aria-current=\"page\"" : "",
                       windows[i].label);
    }
    tg_buf_puts(&a->out, "</nav>");
    admin_usage_chart(a, w->name);
    res = query(a,
                "SELECT e.key_id, k.name, count(*), sum(e.prompt_tokens), "
                "sum(e.completion_tokens), sum(e.prompt_tokens + "
                "e.completion_tokens) AS t FROM usage_events e LEFT JOIN "
                "api_keys k ON k.id = e.key_id WHERE e.at >= "
                "to_timestamp($1::bigint) GROUP BY 1, 2 ORDER BY t DESC, 2 "
                "LIMIT 100",
                1, params);
    if (res == NULL)
        return;
    tg_buf_puts(&a->out, "<h2>Top keys</h2>");
    if (PQntuples(res) == 0)
        notice(a, "empty", "No requests in this window.");
    else
        put_table(a, NULL, top_key_cols,
                  sizeof(top_key_cols) / sizeof(*top_key_cols), res);
    PQclear(res);
    tg_buf_puts(&a->out, "<h2>Download</h2><form method=\"get\" "
                         "class=\"filters\" action=\"");
    esc(a, a->base);
    tg_buf_puts(&a->out, "/usage.csv\"><div class=\"field\"><label for="
                         "\"from\">From</label><input type=\"date\" id="
                         "\"from\" name=\"from\" required></div><div "
                         "class=\"field\"><label for=\"to\">To (inclusive)"
                         "</label><input type=\"date\" id=\"to\" name=\"to\" "
                         "required></div><button type=\"submit\">Download "
                         "CSV</button></form>");
    page_end(a);
}

void
page_usage_csv(struct admin *a)
{
    const char *from = admin_param(&a->query, "from");
    const char *to = admin_param(&a->query, "to");
    const char *params[3];
    struct tg_err err = {0};
    PGresult *res;
    int r, c, nc;

    params[0] = a->conf.time_zone;
    params[1] = from != NULL && from[0] ? from : NULL;
    params[2] = to != NULL && to[0] ? to : NULL;
    res = tg_db_exec(
        a->db, PGRES_TUPLES_OK,
        "SELECT to_char(e.at AT TIME ZONE $1, 'YYYY-MM-DD\"T\"HH24:MI:SS'), "
        "e.key_id, k.name, e.model, e.endpoint, e.status, e.http_status, "
        "e.prompt_tokens, e.completion_tokens, e.latency_ms, e.ttfb_ms, "
        "e.upstream FROM usage_events e LEFT JOIN api_keys k ON k.id = "
        "e.key_id WHERE e.at >= coalesce($2::date, (now() AT TIME ZONE $1)::"
        "date - 6)::timestamp AT TIME ZONE $1 AND e.at < (coalesce($3::date, "
        "(now() AT TIME ZONE $1)::date) + 1)::timestamp AT TIME ZONE $1 "
        "ORDER BY e.id LIMIT " ADMIN_STR(CSV_ROWS_MAX),
        3, params, &err);
    if (res == NULL) {
        if (err.code == TG_E_BAD_REQUEST)
            admin_error_page(a, 400, "Give the dates as YYYY-MM-DD.");
        else
            db_error_page(a, &err);
        return;
    }
    a->ctype = "text/csv; charset=utf-8";
    admin_header(a, "Content-Disposition: attachment; "
                    "filename=\"tollgate-usage.csv\"");
    tg_buf_free(&a->out);
    tg_buf_puts(&a->out, "time,key_id,key_name,model,endpoint,status,"
                         "http_status,prompt_tokens,completion_tokens,"
                         "latency_ms,ttfb_ms,upstream\r\n");
    nc = PQnfields(res);
    for (r = 0; r < PQntuples(res); r++)
        for (c = 0; c < nc; c++)
            tg_csv_field(&a->out, PQgetvalue(res, r, c), c == nc - 1);
    PQclear(res);
}

/* ---- recent requests --------------------------------------------------- */

static void
filter_input(struct admin *a, const char *name, const char *label,
             const char *hint)
{
    const char *v = admin_param(&a->query, name);

    tg_buf_appendf(&a->out,
                   "<div class=\"field\"><label for=\"%s\">%s</label>"
                   "<input id=\"%s\" name=\"%s\" placeholder=\"%s\" value=\"",
                   name, label, name, name, hint);
    esc(a, v != NULL ? v : "");
    tg_buf_puts(&a->out, "\"></div>");
}

void
page_requests(struct admin *a)
{
    static const struct {
        const char *param, *cond;
    } filters[] = {
        {"key", "strpos(lower(k.name), lower(?)) > 0"},
        {"model", "e.model = ?"},
        {"endpoint", "strpos(e.endpoint, ?) > 0"},
        {"status", "(e.status = ? OR e.http_status::text = ?)"},
    };
    const char *params[8];
    struct tg_buf where;
    const char *p;
    size_t i;
    int n = 1;

    tg_buf_init(&where, 4096);
    params[0] = a->conf.time_zone;
    tg_buf_puts(&where, "true");
    for (i = 0; i < sizeof(filters) / sizeof(*filters); i++) {
        const char *v = admin_param(&a->query, filters[i].param);

        if (v == NULL || v[0] == '\0')
            continue;
        params[n++] = v;
        tg_buf_puts(&where, " AND ");
        for (p = filters[i].cond; *p != '\0'; p++) /* ? is this value */
            if (*p == '?')
                tg_buf_appendf(&where, "$%d", n);
            else
                tg_buf_append(&where, p, 1);
    }
    page_begin(a, "Recent requests", "/requests");
    tg_buf_puts(&a->out, "<form method=\"get\" class=\"filters\" action=\"");
    esc(a, a->base);
    tg_buf_puts(&a->out, "/requests\">");
    filter_input(a, "key", "Key name contains", "any key");
    filter_input(a, "model", "Model", "any model");
    filter_input(a, "endpoint", "Endpoint contains", "/api/chat");
    filter_input(a, "status", "Status", "ok, 200, 429 ...");
    tg_buf_puts(&a->out, "<button type=\"submit\">Filter</button></form>"
                         "<p class=\"muted\">The latest 100 matching "
                         "requests; times in ");
    esc(a, a->conf.time_zone);
    tg_buf_puts(&a->out, ".</p>");
    requests_table(a, tg_buf_cstr(&where), n, params, ADMIN_PAGE_SIZE);
    page_end(a);
    tg_buf_free(&where);
}

/* ---- settings ---------------------------------------------------------- */

static const struct setting {
    const char *name, *label, *hint;
} settings[] = {
    {"upstream_url", "Upstream URL(s)",
     "Ollama base URLs, comma-separated, each optionally followed by "
     "weight=N key_file=FILE models=a,b; replaces tollgate.conf's upstream "
     "lines within seconds; empty: those lines"},
    {"force_model", "Global model lock",
     "every request uses this model; empty: none"},
    {"reservation_tokens", "Default reservation",
     "tokens reserved per request before it runs; empty: "
     "reservation_tokens from tollgate.conf"},
    {"output_cap", "Default output cap",
     "most completion tokens per request for keys without their own cap; "
     "empty: output_cap from tollgate.conf"},
};

bool
admin_setting_valid(const char *name, const char *v)
{
    int64_t n;
    const char *p;
    size_t i;

    for (i = 0; i < sizeof(settings) / sizeof(*settings); i++)
        if (strcmp(name, settings[i].name) == 0)
            break;
    if (i == sizeof(settings) / sizeof(*settings))
        return false;

    for (p = v; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    /* Empty: tollgate.conf's value counts (sql/006_settings.sql). */
    if (strcmp(name, "reservation_tokens") == 0 ||
        strcmp(name, "output_cap") == 0)
        return v[0] == '\0' || tg_conf_parse_int(v, 1, 100000000, &n) == TG_OK;
    if (strcmp(name, "upstream_url") == 0) {
        struct tg_upspec specs[TG_UPSPEC_MAX];
        int count;

        return strlen(v) < TG_CONF_LIST_MAX &&
               tg_upspec_parse(v, specs, &count, NULL) == TG_OK;
    }
    return strlen(v) <= 200;
}

void
page_settings(struct admin *a, const char *error, const char *ok, int status)
{
    PGresult *res = query(a,
                          "SELECT name, value, to_char(updated_at AT TIME "
                          "ZONE $1, 'YYYY-MM-DD HH24:MI') FROM settings",
                          1, (const char *const[]){a->conf.time_zone});
    size_t i;
    int r;

    if (res == NULL)
        return;
    a->status = status;
    page_begin(a, "Settings", "/settings");
    if (error != NULL)
        notice(a, "error", error);
    if (ok != NULL)
        notice(a, "ok", ok);
    form_begin(a, "/settings", "card");
    tg_buf_puts(&a->out, "<p class=\"muted\">Stored in PostgreSQL (table "
                         "settings); every change is in the audit log.</p>"
                         "<div class=\"grid\">");
    for (i = 0; i < sizeof(settings) / sizeof(*settings); i++) {
        const char *v = admin_param(&a->form, settings[i].name);
        const char *when = "";

        for (r = 0; r < PQntuples(res); r++)
            if (strcmp(PQgetvalue(res, r, 0), settings[i].name) == 0) {
                if (v == NULL)
                    v = PQgetvalue(res, r, 1);
                when = PQgetvalue(res, r, 2);
            }
        tg_buf_appendf(&a->out,
                       "<div class=\"field\"><label for=\"s-%s\">%s</label>"
                       "<input id=\"s-%s\" name=\"%s\" aria-describedby="
                       "\"sh-%s\" value=\"",
                       settings[i].name, settings[i].label, settings[i].name,
                       settings[i].name, settings[i].name);
        esc(a, v != NULL ? v : "");
        tg_buf_appendf(&a->out, "\"><small id=\"sh-%s\">%s", settings[i].name,
                       settings[i].hint);
        if (when[0] != '\0') {
            tg_buf_puts(&a->out, " · changed ");
            esc(a, when);
        }
        tg_buf_puts(&a->out, "</small></div>");
    }
    tg_buf_puts(&a->out, "</div><button type=\"submit\">Save settings"
                         "</button></form>");
    page_end(a);
    PQclear(res);
}

void
page_settings_post(struct admin *a)
{
    const char *params[3];
    struct tg_err err = {0};
    size_t i;
    int changed = 0;
    char msg[64];

    for (i = 0; i < sizeof(settings) / sizeof(*settings); i++) {
        const char *v = admin_param(&a->form, settings[i].name);

        if (v != NULL && !admin_setting_valid(settings[i].name, v)) {
            char e[160];

            snprintf(e, sizeof(e), "%s: not a valid value.", settings[i].label);
            page_settings(a, e, NULL, 400);
            return;
        }
    }
    for (i = 0; i < sizeof(settings) / sizeof(*settings); i++) {
        PGresult *res;

        params[0] = settings[i].name;
        params[1] = admin_param(&a->form, settings[i].name);
        params[2] = a->actor;
        if (params[1] == NULL)
            continue;
        res = tg_db_exec(
            a->db, PGRES_TUPLES_OK,
            "WITH b AS (SELECT value FROM settings WHERE name = $1), u AS "
            "(INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT "
            "(name) DO UPDATE SET value = EXCLUDED.value, updated_at = now() "
            "WHERE settings.value IS DISTINCT FROM EXCLUDED.value RETURNING "
            "name), a AS (INSERT INTO admin_audit (actor, action, target, "
            "detail) SELECT $3, 'setting.update', u.name, "
            "jsonb_build_object('before', (SELECT value FROM b), 'after', "
            "$2::text) FROM u) SELECT count(*) FROM u",
            3, params, &err);
        if (res == NULL) {
            db_error_page(a, &err);
            return;
        }
        changed += atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    snprintf(msg, sizeof(msg), "Saved (%d changed).", changed);
    page_settings(a, NULL, msg, 200);
}

/* ---- health ------------------------------------------------------------ */

/* One row: the upstream, up or down, Ollama's version or why not, ms. */
static void
check_upstream(struct admin *a, const char *url)
{
    struct tg_probe p;

    tg_probe_version(NULL, url, 3000L, &p);
    tg_buf_puts(&a->out, "<tr><th scope=\"row\"><code>");
    esc(a, url);
    tg_buf_puts(&a->out, "</code></th>");
    if (p.up) {
        tg_buf_puts(&a->out, "<td><span class=\"badge active\">up</span>"
                             "</td><td>Ollama ");
        esc(a, p.version);
    } else {
        tg_buf_puts(&a->out, "<td><span class=\"badge disabled\">down"
                             "</span></td><td>");
        esc(a, p.why);
    }
    tg_buf_appendf(&a->out, "</td><td class=\"num\">%.0f</td></tr>", p.ms);
}

void
page_health(struct admin *a)
{
    struct timespec t0, t1;
    PGresult *res;
    double ms;
    int64_t backlog;
    struct tg_upspec specs[TG_UPSPEC_MAX];
    int n = 0, i;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    res = query(a,
                "SELECT split_part(current_setting('server_version'), ' ', "
                "1), (SELECT count(*) "
                "FROM reservations WHERE settled_at IS NULL), (SELECT "
                "count(*) FROM reservations WHERE settled_at IS NULL AND "
                "expires_at < now()), (SELECT value FROM settings WHERE "
                "name = 'upstream_url')",
                0, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (res == NULL)
        return;
    ms = (double)(t1.tv_sec - t0.tv_sec) * 1000.0 +
         (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    page_begin(a, "Health", "/health");
    tg_buf_puts(&a->out, "<div class=\"scroll\"><table><thead><tr><th "
                         "scope=\"col\">Part</th><th scope=\"col\">State"
                         "</th><th scope=\"col\">Detail</th><th scope="
                         "\"col\" class=\"num\">ms</th></tr></thead><tbody>"
                         "<tr><th scope=\"row\">PostgreSQL</th><td><span "
                         "class=\"badge active\">up</span></td><td>"
                         "version ");
    esc(a, PQgetvalue(res, 0, 0));
    tg_buf_appendf(&a->out, "</td><td class=\"num\">%.1f</td></tr>", ms);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (tg_upspec_parse(PQgetisnull(res, 0, 3) ||
                                PQgetvalue(res, 0, 3)[0] == '\0'
                            ? a->conf.upstream
                            : PQgetvalue(res, 0, 3),
                        specs, &n, NULL) == TG_OK)
        for (i = 0; i < n; i++)
            check_upstream(a, specs[i].url);
    curl_global_cleanup();
    tg_buf_puts(&a->out, "</tbody></table></div><h2>Reservations</h2><dl "
                         "class=\"card\"><dt>Unsettled (requests in "
                         "flight)</dt><dd class=\"num\">");
    esc(a, PQgetvalue(res, 0, 1));
    tg_buf_puts(&a->out, "</dd><dt>Unsettled and expired (reclaimed on the "
                         "key's next request)</dt><dd class=\"num\">");
    esc(a, PQgetvalue(res, 0, 2));
    backlog = tg_spool_backlog(a->conf.spool_dir);
    tg_buf_puts(&a->out, "</dd><dt>Spool backlog (settlements waiting for "
                         "the database; <code>tollgate sweep</code> replays "
                         "them)</dt><dd class=\"num\">");
    if (backlog >= 0)
        tg_buf_appendf(&a->out, "%lld", (long long)backlog);
    else
        tg_buf_puts(&a->out, "unreadable");
    tg_buf_puts(&a->out, "</dd></dl>");
    page_end(a);
    PQclear(res);
}

/* ---- audit ------------------------------------------------------------- */

static const struct col audit_cols[] = {
    {"Time", COL_TIME, 0, 0, NULL, false},
    {"Who", COL_TEXT, 1, 0, NULL, false},
    {"Action", COL_TEXT, 2, 0, NULL, false},
    {"What", COL_TEXT, 3, 0, NULL, false},
    {"Change", COL_DETAILS, 4, 0, "before / after", false},
};

void
page_audit(struct admin *a)
{
    const char *pg = admin_param(&a->query, "page");
    char off[24];
    const char *params[2] = {a->conf.time_zone, off};
    int64_t page = 1;
    PGresult *res;

    if (pg != NULL && tg_conf_parse_int(pg, 1, 1000000, &page) != TG_OK)
        page = 1;
    snprintf(off, sizeof(off), "%lld",
             (long long)((page - 1) * ADMIN_PAGE_SIZE));
    res = query(a,
                "SELECT to_char(at AT TIME ZONE $1, 'YYYY-MM-DD HH24:MI:SS'), "
                "actor, action, target, jsonb_pretty(detail) FROM "
                "admin_audit ORDER BY id DESC LIMIT " ADMIN_STR(
                    ADMIN_PAGE_SIZE) " OFFSET $2::bigint",
                2, params);
    if (res == NULL)
        return;
    page_begin(a, "Audit log", "/audit");
    if (PQntuples(res) == 0)
        notice(a, "empty", "No changes recorded.");
    else
        put_table(a, NULL, audit_cols, sizeof(audit_cols) / sizeof(*audit_cols),
                  res);
    tg_buf_puts(&a->out, "<nav class=\"pages\" aria-label=\"Pages\">");
    if (page > 1) {
        tg_buf_puts(&a->out, "<a rel=\"prev\" href=\"");
        esc(a, a->base);
        tg_buf_appendf(&a->out, "/audit?page=%lld\">Newer</a>",
                       (long long)page - 1);
    }
    if (PQntuples(res) == ADMIN_PAGE_SIZE) {
        tg_buf_puts(&a->out, "<a rel=\"next\" href=\"");
        esc(a, a->base);
        tg_buf_appendf(&a->out, "/audit?page=%lld\">Older</a>",
                       (long long)page + 1);
    }
    tg_buf_puts(&a->out, "</nav>");
    page_end(a);
    PQclear(res);
}
