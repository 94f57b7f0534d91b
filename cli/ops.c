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

static PGresult *
query(struct cli *c, const char *sql, int n, const char *const *params,
      struct tg_err *err)
{
    return tg_db_exec(c->db, PGRES_TUPLES_OK, sql, n, params, err);
}

/* "90d" or "24h" (what --retain takes) as an interval PostgreSQL reads. */
static enum tg_code
retention(const char *v, char *out, size_t len, struct tg_err *err)
{
    int64_t n;
    char num[16];
    size_t digits = strspn(v, "0123456789");

    if (digits == 0 || digits >= sizeof(num) || strlen(v) != digits + 1 ||
        (v[digits] != 'd' && v[digits] != 'h'))
        return tg_err_set(err, TG_E_USAGE,
                          "sweep: --retain: want days or hours like 90d or "
                          "24h, got '%.32s'",
                          v);
    memcpy(num, v, digits);
    num[digits] = '\0';
    if (tg_conf_parse_int(num, 1, 1000000, &n) != TG_OK)
        return tg_err_set(err, TG_E_USAGE, "sweep: --retain: %.32s is out of "
                          "range (at least 1)", v);
    snprintf(out, len, "%" PRId64 " %s", n, v[digits] == 'd' ? "days" : "hours");
    return TG_OK;
}

/* Drops everything older than `keep` (an interval; "" keeps all). */
static enum tg_code
prune(struct cli *c, const char *keep, struct tg_err *err)
{
    const char *params[1] = {keep};
    PGresult *res;
    int r;

    if (keep[0] == '\0')
        return TG_OK;
    res = query(c, "SELECT what, removed FROM tg_prune($1::interval)", 1,
                params, err);
    if (res == NULL)
        return err->code;
    for (r = 0; r < PQntuples(res); r++)
        printf("sweep: removed %s %s older than %s\n", PQgetvalue(res, r, 1),
               PQgetvalue(res, r, 0), keep);
    PQclear(res);
    return TG_OK;
}

int
cli_sweep(struct cli *c, int argc, char **argv)
{
    const char *retain = NULL;
    struct tg_err err = {0};
    char keep[48] = "";
    PGresult *res;
    int done = 0, left = 0;

    if (argc == 3 && strcmp(argv[1], "--retain") == 0)
        retain = argv[2];
    else if (argc == 2 && strncmp(argv[1], "--retain=", 9) == 0)
        retain = argv[1] + 9;
    else if (argc != 1) {
        cli_usage(stderr, NULL);
        return CLI_EXIT_USAGE;
    }
    if (retain != NULL && retention(retain, keep, sizeof(keep), &err) != TG_OK)
        return cli_fail(err.code, &err);
    if (retain == NULL && c->conf.usage_retention_days > 0)
        snprintf(keep, sizeof(keep), "%" PRId64 " days",
                 c->conf.usage_retention_days);
    res = query(c, "SELECT tg_sweep()", 0, NULL, &err);
    if (res == NULL)
        return cli_fail(err.code, &err);
    printf("sweep: reclaimed %s expired reservation(s)\n",
           PQgetvalue(res, 0, 0));
    PQclear(res);
    if (tg_spool_replay(c->conf.spool_dir, c->db, &done, &left, &err) != TG_OK)
        return cli_fail(err.code, &err);
    printf("sweep: replayed %d spooled settlement(s), %d left\n", done, left);
    if (prune(c, keep, &err) != TG_OK)
        return cli_fail(err.code, &err);
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
check_upstream(struct cli *c)
{
    char url[TG_CONF_STR_MAX + 32], detail[TG_CONF_STR_MAX * 2 + 64];
    json_t *doc = NULL; /* new */
    struct tg_buf body;
    long status = 0;
    CURLcode cc;
    CURL *h = curl_easy_init();

    tg_buf_init(&body, 65536);
    snprintf(url, sizeof(url), "%s/api/version", c->conf.upstream);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)c->conf.connect_timeout);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (cc == CURLE_OK && status == 200)
        doc = json_loads(tg_buf_cstr(&body), 0, NULL);
    if (json_is_string(json_object_get(doc, "version")))
        snprintf(detail, sizeof(detail), "%s (Ollama %s)", c->conf.upstream,
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
