/* `tollgate usage` and `tollgate events`: usage summed per key (and day,
 * month or model) and the raw events, as a table, CSV or JSON, for export
 * to whatever the site bills or plots with. */
#include <config.h>

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "csv.h"

#define EVENTS_BATCH 5000
#define STR(x) XSTR(x)
#define XSTR(x) #x
#define INT8OID 20
#define INT4OID 23

enum fmt { FMT_TABLE, FMT_CSV, FMT_JSON };

struct report_args {
    const char *key, *since, *until, *by;
    enum fmt fmt;
};

static enum tg_code
parse_report(int argc, char **argv, bool want_by, struct report_args *a,
             struct tg_err *err)
{
    static const struct option opts[] = {{"key", required_argument, 0, 'k'},
                                         {"since", required_argument, 0, 's'},
                                         {"until", required_argument, 0, 'u'},
                                         {"by", required_argument, 0, 'b'},
                                         {"csv", no_argument, 0, 'c'},
                                         {"json", no_argument, 0, 'j'},
                                         {0, 0, 0, 0}};
    int ch;

    memset(a, 0, sizeof(*a));
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (ch == 'k')
            a->key = optarg;
        else if (ch == 's')
            a->since = optarg;
        else if (ch == 'u')
            a->until = optarg;
        else if (ch == 'b' && want_by)
            a->by = optarg;
        else if (ch == 'c' || ch == 'j')
            a->fmt = ch == 'c' ? FMT_CSV : FMT_JSON;
        else
            return tg_err_set(err, TG_E_USAGE,
                              "%s: unknown or incomplete option '%s' (see "
                              "tollgate --help)",
                              argv[0], argv[optind - 1]);
    }
    if (optind != argc)
        return tg_err_set(err, TG_E_USAGE, "%s: unexpected argument '%s'",
                          argv[0], argv[optind]);
    if (a->by != NULL && strcmp(a->by, "day") != 0 &&
        strcmp(a->by, "month") != 0 && strcmp(a->by, "model") != 0)
        return tg_err_set(err, TG_E_USAGE,
                          "%s: --by: use day, month or model, got '%.32s'",
                          argv[0], a->by);
    return TG_OK;
}

static json_t *
cell_json(const PGresult *res, int r, int c)
{
    Oid t = PQftype(res, c);

    if (PQgetisnull(res, r, c))
        return json_null();
    if (t == INT8OID || t == INT4OID)
        return json_integer(strtoll(PQgetvalue(res, r, c), NULL, 10));
    return json_string(PQgetvalue(res, r, c));
}

/* Rows from `skip` columns on; *first says whether anything was printed
 * yet (the CSV header, the JSON array's comma, the table's head). */
static enum tg_code
print_rows(const PGresult *res, int skip, enum fmt fmt, bool *first,
           struct tg_err *err)
{
    int r, c, nc = PQnfields(res);
    struct tg_buf b;

    tg_buf_init(&b, (size_t)1 << 30);
    for (r = *first && fmt != FMT_JSON ? -1 : 0; r < PQntuples(res); r++) {
        json_t *o = json_object(); /* new */
        char *s = NULL;

        for (c = skip; c < nc && fmt != FMT_JSON; c++) {
            const char *v = r < 0 ? PQfname(res, c) : PQgetvalue(res, r, c);

            if (fmt == FMT_CSV)
                tg_csv_field(&b, v, c == nc - 1);
            else
                tg_buf_appendf(&b, c == nc - 1 ? "%s\n" : "%-20s ",
                               v[0] != '\0' ? v : "-");
        }
        for (c = skip; c < nc && fmt == FMT_JSON; c++)
            json_object_set_new(o, PQfname(res, c), cell_json(res, r, c));
        if (fmt == FMT_JSON && (s = json_dumps(o, 0)) != NULL)
            tg_buf_appendf(&b, "%s%s", *first ? "" : ",\n", s);
        free(s);
        json_decref(o);
        *first = false;
    }
    fwrite(tg_buf_cstr(&b), 1, tg_buf_len(&b), stdout);
    if (tg_buf_failed(&b)) {
        tg_buf_free(&b);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory printing rows");
    }
    tg_buf_free(&b);
    return TG_OK;
}

static enum tg_code
key_exists(struct cli *c, const char *name, struct tg_err *err)
{
    const char *params[1] = {name};
    PGresult *res;
    bool found;

    if (name == NULL)
        return TG_OK;
    res = tg_db_exec(c->db, PGRES_TUPLES_OK,
                     "SELECT 1 FROM api_keys WHERE name = $1", 1, params, err);
    if (res == NULL)
        return err->code;
    found = PQntuples(res) == 1;
    PQclear(res);
    return found ? TG_OK
                 : tg_err_set(err, TG_E_NOT_FOUND, "no key named '%s'", name);
}

/* The WHERE shared by both: $1 zone, $2 key name, $3 since, $4 until. */
#define REPORT_WHERE                                                           \
    " FROM usage_events e LEFT JOIN api_keys k ON k.id = e.key_id WHERE "      \
    "($2::text IS NULL OR k.name = $2) AND e.at >= "                           \
    "coalesce(tg_parse_time($3, "                                              \
    "$1), '-infinity') AND e.at < coalesce(tg_parse_time($4, $1, true), "      \
    "'infinity') "

static const char *
usage_sql(const char *by)
{
    if (by == NULL)
        return "SELECT coalesce(k.name, '(deleted)') AS key, count(*) AS "
               "requests, sum(e.prompt_tokens)::bigint AS prompt_tokens, "
               "sum(e.completion_tokens)::bigint AS completion_tokens, "
               "sum(e.prompt_tokens + e.completion_tokens)::bigint AS "
               "tokens" REPORT_WHERE "GROUP BY 1 ORDER BY 1";
    if (strcmp(by, "model") == 0)
        return "SELECT coalesce(k.name, '(deleted)') AS key, "
               "coalesce(e.model, '') AS model, count(*) AS requests, "
               "sum(e.prompt_tokens)::bigint AS prompt_tokens, "
               "sum(e.completion_tokens)::bigint AS completion_tokens, "
               "sum(e.prompt_tokens + e.completion_tokens)::bigint AS "
               "tokens" REPORT_WHERE "GROUP BY 1, 2 ORDER BY 1, 2";
    return strcmp(by, "day") == 0
               ? "SELECT coalesce(k.name, '(deleted)') AS key, "
                 "to_char(e.at AT TIME ZONE $1, 'YYYY-MM-DD') AS day, "
                 "count(*) AS requests, sum(e.prompt_tokens)::bigint AS "
                 "prompt_tokens, sum(e.completion_tokens)::bigint AS "
                 "completion_tokens, sum(e.prompt_tokens + "
                 "e.completion_tokens)::bigint AS tokens" REPORT_WHERE
                 "GROUP BY 1, 2 ORDER BY 1, 2"
               : "SELECT coalesce(k.name, '(deleted)') AS key, "
                 "to_char(e.at AT TIME ZONE $1, 'YYYY-MM') AS month, "
                 "count(*) AS requests, sum(e.prompt_tokens)::bigint AS "
                 "prompt_tokens, sum(e.completion_tokens)::bigint AS "
                 "completion_tokens, sum(e.prompt_tokens + "
                 "e.completion_tokens)::bigint AS tokens" REPORT_WHERE
                 "GROUP BY 1, 2 ORDER BY 1, 2";
}

static int
report_fail(enum tg_code rc, struct tg_err *err)
{
    if (rc == TG_E_BAD_REQUEST)
        strncat(err->msg,
                " (--since/--until: 2027-01-31, '2027-01-31 12:00', "
                "'2027-01-31T12:00+01', 7d, 24h)",
                sizeof(err->msg) - strlen(err->msg) - 1);
    return cli_fail(rc, err);
}

/* The options, the key if one was named, and the four parameters both
 * reports start with: time zone, key, since, until. */
static enum tg_code
report_begin(struct cli *c, int argc, char **argv, bool want_by,
             struct report_args *a, const char *params[4], struct tg_err *err)
{
    enum tg_code rc = parse_report(argc, argv, want_by, a, err);

    if (rc == TG_OK)
        rc = key_exists(c, a->key, err);
    if (rc != TG_OK)
        return rc;
    params[0] = c->conf.time_zone;
    params[1] = a->key;
    params[2] = a->since;
    params[3] = a->until;
    return TG_OK;
}

int
cli_usage_report(struct cli *c, int argc, char **argv)
{
    struct report_args a;
    struct tg_err err = {0};
    const char *params[4];
    PGresult *res = NULL;
    enum tg_code rc;
    bool first = true;

    rc = report_begin(c, argc, argv, true, &a, params, &err);
    if (rc != TG_OK)
        return report_fail(rc, &err);
    res = tg_db_exec(c->db, PGRES_TUPLES_OK, usage_sql(a.by), 4, params, &err);
    if (res == NULL)
        return report_fail(err.code, &err);
    if (a.fmt == FMT_JSON)
        fputs("[", stdout);
    rc = print_rows(res, 0, a.fmt, &first, &err);
    if (a.fmt == FMT_JSON)
        fputs("]\n", stdout);
    PQclear(res);
    return rc == TG_OK ? CLI_EXIT_OK : cli_fail(rc, &err);
}

/* Events go out in batches by id, so an export of months holds one batch
 * in memory, never the whole table. */
int
cli_events(struct cli *c, int argc, char **argv)
{
    struct report_args a;
    struct tg_err err = {0};
    const char *params[5];
    char after[24] = "0";
    PGresult *res = NULL;
    enum tg_code rc;
    bool first = true;
    int n;

    rc = report_begin(c, argc, argv, false, &a, params, &err);
    if (rc != TG_OK)
        return report_fail(rc, &err);
    params[4] = after;
    if (a.fmt == FMT_JSON)
        fputs("[", stdout);
    do {
        res = tg_db_exec(
            c->db, PGRES_TUPLES_OK,
            "SELECT e.id, e.id AS id, to_char(e.at AT TIME ZONE $1, "
            "'YYYY-MM-DD\"T\"HH24:MI:SS') AS time, k.name AS key, e.model, "
            "e.endpoint, e.status, e.http_status, e.prompt_tokens, "
            "e.completion_tokens, e.latency_ms, e.ttfb_ms, "
            "e.upstream" REPORT_WHERE "AND e.id > $5::bigint ORDER BY e.id "
            "LIMIT " STR(EVENTS_BATCH),
            5, params, &err);
        if (res == NULL)
            return report_fail(err.code, &err);
        n = PQntuples(res);
        if (n > 0)
            snprintf(after, sizeof(after), "%s", PQgetvalue(res, n - 1, 0));
        rc = print_rows(res, 1, a.fmt, &first, &err);
        PQclear(res);
    } while (rc == TG_OK && n == EVENTS_BATCH);
    if (a.fmt == FMT_JSON)
        fputs("]\n", stdout);
    return rc == TG_OK ? CLI_EXIT_OK : cli_fail(rc, &err);
}
