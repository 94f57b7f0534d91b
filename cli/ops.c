/* `tollgate sweep` and `tollgate check`: what an operator (or cron) runs to
 * keep the books straight and to see whether the stack can serve. */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli.h"
#include "secret.h"
#include "spool.h"
#include "upspec.h"

static PGresult *
query(struct cli *c, const char *sql, int n, const char *const *params,
      struct tg_err *err)
{
    return tg_db_exec(c->db, PGRES_TUPLES_OK, sql, n, params, err);
}

int
cli_sweep(struct cli *c, int argc, char **argv)
{
    char days[24];
    const char *params[1] = {days};
    struct tg_err err = {0};
    PGresult *res;
    int done = 0, left = 0;

    (void)argv;
    if (argc != 1) {
        cli_usage(stderr, NULL);
        return CLI_EXIT_USAGE;
    }
    res = query(c, "SELECT tg_sweep()", 0, NULL, &err);
    if (res == NULL)
        return cli_fail(err.code, &err);
    printf("sweep: reclaimed %s expired reservation(s)\n",
           PQgetvalue(res, 0, 0));
    PQclear(res);
    if (tg_spool_replay(c->conf.spool_dir, c->db, &done, &left, &err) != TG_OK)
        return cli_fail(err.code, &err);
    printf("sweep: replayed %d spooled settlement(s), %d left\n", done, left);
    if (c->conf.usage_retention_days > 0) {
        snprintf(days, sizeof(days), "%" PRId64, c->conf.usage_retention_days);
        res = query(c,
                    "WITH d AS (DELETE FROM usage_events WHERE at < now() - "
                    "make_interval(days => $1::int) RETURNING 1) SELECT "
                    "count(*) FROM d",
                    1, params, &err);
        if (res == NULL)
            return cli_fail(err.code, &err);
        printf("sweep: removed %s usage event(s) older than %s days\n",
               PQgetvalue(res, 0, 0), days);
        PQclear(res);
    }
    return CLI_EXIT_OK;
}

static void
line(const char *what, bool ok, const char *detail)
{
    printf("%-13s %-4s %s\n", what, ok ? "ok" : "FAIL", detail);
}

static bool
check_db(struct cli *c)
{
    struct tg_err err = {0};
    struct timespec t0, t1;
    char detail[400];
    PGresult *res;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    res = query(c,
                "SELECT coalesce(max(version), 0), (SELECT count(*) FROM "
                "reservations WHERE settled_at IS NULL), (SELECT count(*) "
                "FROM reservations WHERE settled_at IS NULL AND expires_at < "
                "now()) FROM schema_migrations",
                0, NULL, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (res == NULL) {
        line("database", false, err.msg);
        return false;
    }
    snprintf(detail, sizeof(detail),
             "%ld ms, schema %s; reservations open %s, expired %s",
             (long)((t1.tv_sec - t0.tv_sec) * 1000 +
                    (t1.tv_nsec - t0.tv_nsec) / 1000000),
             PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
             PQgetvalue(res, 0, 2));
    PQclear(res);
    line("database", true, detail);
    return true;
}

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
    struct tg_buf *b = arg;

    return tg_buf_append(b, p, size * n) == 0 ? size * n : 0;
}

static bool
check_one_upstream(struct cli *c, const char *base)
{
    char url[TG_UPSPEC_URL_MAX + 32], detail[TG_UPSPEC_URL_MAX * 2 + 64];
    json_t *doc = NULL; /* new */
    struct tg_buf body;
    long status = 0;
    CURLcode cc;
    CURL *h = curl_easy_init();

    tg_buf_init(&body, 65536);
    snprintf(url, sizeof(url), "%s/api/version", base);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)c->conf.connect_timeout);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (cc == CURLE_OK && status == 200)
        doc = json_loads(tg_buf_cstr(&body), 0, NULL);
    if (json_is_string(json_object_get(doc, "version")))
        snprintf(detail, sizeof(detail), "%s (Ollama %s)", base,
                 json_string_value(json_object_get(doc, "version")));
    else
        snprintf(detail, sizeof(detail), "%s: %s", url,
                 cc != CURLE_OK ? curl_easy_strerror(cc)
                                : "no version in the answer");
    line("upstream", doc != NULL, detail);
    json_decref(doc);
    tg_buf_free(&body);
    curl_easy_cleanup(h);
    return cc == CURLE_OK && status == 200;
}

/* Each upstream of tollgate.conf (the settings table may replace them). */
static bool
check_upstream(struct cli *c)
{
    struct tg_upspec specs[TG_UPSPEC_MAX];
    struct tg_err err = {0};
    bool ok = true;
    int n = 0, i;

    if (tg_upspec_parse(c->conf.upstream, specs, &n, &err) != TG_OK) {
        line("upstream", false, err.msg);
        return false;
    }
    for (i = 0; i < n; i++)
        ok &= check_one_upstream(c, specs[i].url);
    return ok;
}

int
cli_check(struct cli *c, int argc, char **argv)
{
    struct tg_secret secret;
    struct tg_err err = {0};
    char detail[TG_CONF_STR_MAX + 64];
    int64_t backlog;
    bool ok = true;

    (void)argv;
    if (argc != 1) {
        cli_usage(stderr, NULL);
        return CLI_EXIT_USAGE;
    }
    line("config", true, c->conf_path);
    if (tg_secret_load(c->conf.secret_file, &secret, &err) == TG_OK)
        line("secret", true, c->conf.secret_file);
    else
        line("secret", false, err.msg);
    ok = err.code == TG_OK;
    tg_secret_wipe(&secret);
    ok &= check_db(c);
    ok &= check_upstream(c);
    backlog = tg_spool_backlog(c->conf.spool_dir);
    snprintf(detail, sizeof(detail), "%" PRId64 " settlement(s) waiting in %s",
             backlog, c->conf.spool_dir);
    line("spool", backlog == 0, detail);
    ok &= backlog == 0;
    return ok ? CLI_EXIT_OK : CLI_EXIT_RUNTIME;
}
