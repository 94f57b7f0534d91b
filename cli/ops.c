/* `tollgate sweep`, `tollgate check` and `tollgate admin unlock`: what an
 * operator (or cron) runs to keep the books straight, to see whether the
 * stack can serve, and to let the admin back in. */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "migrate.h"
#include "probe.h"
#include "secret.h"
#include "spool.h"
#include "upspec.h"

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
        return tg_err_set(err, TG_E_USAGE,
                          "sweep: --retain: %.32s is out of "
                          "range (at least 1)",
                          v);
    snprintf(out, len, "%" PRId64 " %s", n,
             v[digits] == 'd' ? "days" : "hours");
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
    res = query(c, "SELECT tg_sweep(), tg_ip_trust_sweep()", 0, NULL, &err);
    if (res == NULL)
        return cli_fail(err.code, &err);
    printf("sweep: reclaimed %s expired reservation(s)\n",
           PQgetvalue(res, 0, 0));
    printf("sweep: removed %s expired IP trust(s)\n", PQgetvalue(res, 0, 1));
    PQclear(res);
    if (tg_spool_replay(c->conf.spool_dir, c->db, &done, &left, &err) != TG_OK)
        return cli_fail(err.code, &err);
    printf("sweep: replayed %d spooled settlement(s), %d left\n", done, left);
    if (prune(c, keep, &err) != TG_OK)
        return cli_fail(err.code, &err);
    return CLI_EXIT_OK;
}

/* One line of `tollgate check`: what, ok or FAIL, the finding and, when
 * it failed, what to do about it. */
static void
line(const char *what, bool ok, const char *detail, const char *fix)
{
    printf("%-9s %-4s %s%s%s\n", what, ok ? "ok" : "FAIL", detail,
           ok || fix == NULL ? "" : " -- fix: ", ok || fix == NULL ? "" : fix);
}

void
cli_check_conf_failed(const char *path, const struct tg_err *err)
{
    char fix[TG_CONF_STR_MAX + 64];

    snprintf(fix, sizeof(fix), "correct it in %s (see README, Configuration)",
             path);
    line("config", false, err->msg, fix);
}

static bool
check_secret(struct cli *c)
{
    struct tg_secret secret;
    struct tg_err err = {0};
    char detail[TG_CONF_STR_MAX + 64], fix[TG_CONF_STR_MAX + 64];
    struct stat st;
    bool ok;

    snprintf(fix, sizeof(fix),
             "chmod 600 %s, owned by the user tollgate "
             "runs as",
             c->conf.secret_file);
    ok = tg_secret_load(c->conf.secret_file, &secret, &err) == TG_OK;
    tg_secret_wipe(&secret);
    if (!ok) {
        line("secret", false, err.msg, NULL);
        return false;
    }
    ok = stat(c->conf.secret_file, &st) == 0 && (st.st_mode & 077) == 0;
    snprintf(detail, sizeof(detail), "%s (mode %04o%s)", c->conf.secret_file,
             (unsigned)(st.st_mode & 07777),
             ok ? "" : ": the group may read it");
    line("secret", ok, detail, fix);
    return ok;
}

static bool
check_db(struct cli *c)
{
    struct tg_err err = {0};
    char detail[TG_CONF_STR_MAX + 400], first[300], fix[TG_CONF_STR_MAX + 64];
    PGresult *res;
    int pending = 0;

    snprintf(fix, sizeof(fix), "start PostgreSQL or correct db = in %s",
             c->conf_path);
    if (tg_db_connect(c->db, &err) != TG_OK) {
        line("database", false, err.msg, fix);
        return false;
    }
    if (tg_migrate_pending(c->db, c->conf.sql_dir, &pending, first,
                           sizeof(first), &err) != TG_OK) {
        line("database", false, err.msg, fix);
        return false;
    }
    if (pending > 0) {
        snprintf(detail, sizeof(detail),
                 "%d migration(s) in %s not applied, the first %s", pending,
                 c->conf.sql_dir, first);
        line("database", false, detail, "run tollgate migrate");
        return false;
    }
    res = query(c,
                "SELECT (SELECT max(version) FROM schema_migrations), (SELECT "
                "count(*) FROM reservations WHERE settled_at IS NULL), "
                "(SELECT count(*) FROM reservations WHERE settled_at IS NULL "
                "AND expires_at < now())",
                0, NULL, &err);
    if (res == NULL) {
        line("database", false, err.msg, fix);
        return false;
    }
    snprintf(detail, sizeof(detail),
             "reachable, schema %s (all migrations applied); reservations "
             "open %s, expired %s",
             PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
             PQgetvalue(res, 0, 2));
    PQclear(res);
    line("database", true, detail, NULL);
    return true;
}

static bool
check_one_upstream(struct cli *c, const char *base)
{
    char detail[TG_UPSPEC_URL_MAX + 300], fix[TG_CONF_STR_MAX + 64];
    struct tg_probe p;

    tg_probe_version(NULL, base, (long)c->conf.connect_timeout * 1000L, &p);
    if (p.up)
        snprintf(detail, sizeof(detail), "%.512s (Ollama %s)", base, p.version);
    else
        snprintf(detail, sizeof(detail), "%.512s/api/version: %s", base, p.why);
    snprintf(fix, sizeof(fix),
             "start Ollama there or correct upstream = in %.400s",
             c->conf_path);
    line("upstream", p.up, detail, fix);
    return p.up;
}

/* Best effort: which web server's configuration mentions tollgate, from
 * the places the examples install to. Informational, never a failure. */
static void
check_web(void)
{
    static const char *const places[][2] = {
        {"apache", "/etc/apache2/conf-enabled/tollgate.conf"},
        {"apache", "/etc/httpd/conf.d/tollgate.conf"},
        {"nginx", "/etc/nginx/conf.d/tollgate.conf"},
        {"nginx", "/etc/nginx/sites-enabled/tollgate"},
        {"lighttpd", "/etc/lighttpd/conf-enabled/50-tollgate.conf"},
        {"lighttpd", "/etc/lighttpd/conf.d/tollgate.conf"},
        {"caddy", "/etc/caddy/Caddyfile"},
    };
    char detail[512] = "", text[4096];
    size_t i, n;

    for (i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
        FILE *f = fopen(places[i][1], "r");

        if (f == NULL)
            continue;
        n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        text[n] = '\0';
        if (strstr(text, "tollgate") != NULL)
            snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail),
                     "%s%s (%s)", detail[0] ? ", " : "", places[i][0],
                     places[i][1]);
    }
    printf("%-9s %-4s %s\n", "web", detail[0] ? "ok" : "-",
           detail[0] ? detail
                     : "no installed example naming tollgate found (best "
                       "effort, not counted)");
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
        line("upstream", false, err.msg,
             "write each as upstream = URL [weight=N] [key_file=FILE] "
             "[models=a,b]");
        return false;
    }
    for (i = 0; i < n; i++)
        ok &= check_one_upstream(c, specs[i].url);
    return ok;
}

int
cli_check(struct cli *c, int argc, char **argv)
{
    char detail[TG_CONF_STR_MAX + 64], fix[TG_CONF_STR_MAX + 64];
    int64_t backlog;
    bool ok = true;

    (void)argv;
    if (argc != 1) {
        cli_usage(stderr, NULL);
        return CLI_EXIT_USAGE;
    }
    line("config", true, c->conf_path, NULL);
    ok &= check_secret(c);
    ok &= check_db(c);
    ok &= check_upstream(c);
    check_web();
    backlog = tg_spool_backlog(c->conf.spool_dir);
    snprintf(detail, sizeof(detail), "%" PRId64 " settlement(s) waiting in %s",
             backlog, c->conf.spool_dir);
    snprintf(fix, sizeof(fix), "%s",
             backlog < 0 ? "create the directory, writable by "
                           "the relay's user"
                         : "run tollgate sweep once the "
                           "database is up");
    line("spool", backlog == 0, detail, fix);
    ok &= backlog == 0;
    return ok ? CLI_EXIT_OK : CLI_EXIT_RUNTIME;
}

/* `tollgate admin unlock [--address ADDR]`: the admin's way back in after
 * failed sign-ins locked an address out (every address without
 * --address), at once and in the audit log. */
int
cli_admin(struct cli *c, int argc, char **argv)
{
    struct tg_keyops_ctx ctx;
    struct tg_err err = {0};
    const char *addr = NULL, *params[2];
    char who[96];
    PGresult *res;

    if (argc == 4 && strcmp(argv[1], "unlock") == 0 &&
        strcmp(argv[2], "--address") == 0)
        addr = argv[3];
    else if (argc == 3 && strcmp(argv[1], "unlock") == 0 &&
             strncmp(argv[2], "--address=", 10) == 0)
        addr = argv[2] + 10;
    else if (argc != 2 || strcmp(argv[1], "unlock") != 0) {
        cli_usage(stderr, NULL);
        return CLI_EXIT_USAGE;
    }
    if (addr != NULL && (addr[0] == '\0' || strlen(addr) > 64))
        return cli_fail(tg_err_set(&err, TG_E_USAGE,
                                   "admin unlock: --address: want a client "
                                   "address like 192.0.2.7 or 2001:db8::1"),
                        &err);
    cli_key_ctx(c, &ctx, who, sizeof(who));
    params[0] = addr;
    params[1] = ctx.actor;
    res =
        query(c,
              "WITH u AS (SELECT tg_login_unlock($1::text) AS n), a AS (INSERT "
              "INTO admin_audit (actor, action, target, detail) SELECT $2, "
              "'signin.unlock', coalesce($1, '*'), jsonb_build_object("
              "'addresses', u.n) FROM u) SELECT n FROM u",
              2, params, &err);
    if (res == NULL)
        return cli_fail(err.code, &err);
    printf("admin unlock: cleared the sign-in attempts of %s address(es)%s%s\n",
           PQgetvalue(res, 0, 0), addr != NULL ? " matching " : "",
           addr != NULL ? addr : "");
    PQclear(res);
    return CLI_EXIT_OK;
}
