/* libpq wrapper: errors keep their SQLSTATE, broken connections are reset
 * on the next use, transactions retry only where PostgreSQL says retrying
 * is safe (40001, 40P01). */
#include <config.h>

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"

/* Statements prepared on this connection, by the address of their text
 * (the callers pass string literals); named tg_<name>. */
#define PREPARED_MAX 16

struct prepared {
    const char *sql;
    unsigned name;
};

struct tg_db {
    PGconn *conn;
    char *conninfo;
    char *app_name;
    char connect_timeout[16];
    char statement_timeout[16];
    struct prepared prepared[PREPARED_MAX];
    int nprepared;
    unsigned next_name;
};

struct tg_db *
tg_db_new(const char *conninfo, int connect_timeout_s, int statement_timeout_ms,
          const char *app_name)
{
    struct tg_db *db = calloc(1, sizeof(*db));

    if (db == NULL)
        return NULL;
    db->conninfo = strdup(conninfo);
    db->app_name = strdup(app_name);
    if (db->conninfo == NULL || db->app_name == NULL) {
        tg_db_free(db);
        return NULL;
    }
    snprintf(db->connect_timeout, sizeof(db->connect_timeout), "%d",
             connect_timeout_s);
    snprintf(db->statement_timeout, sizeof(db->statement_timeout), "%d",
             statement_timeout_ms);
    return db;
}

void
tg_db_free(struct tg_db *db)
{
    if (db == NULL)
        return;
    PQfinish(db->conn);
    free(db->conninfo);
    free(db->app_name);
    free(db);
}

enum tg_code
tg_db_code_for_sqlstate(const char *st)
{
    if (st == NULL || st[0] == '\0')
        return TG_E_DB_DOWN; /* no answer from the server */
    if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0)
        return TG_E_DB_RETRY;
    if (strcmp(st, "57014") == 0 || strcmp(st, "55P03") == 0)
        return TG_E_TIMEOUT;
    if (strncmp(st, "08", 2) == 0 || strncmp(st, "57P0", 4) == 0 ||
        strncmp(st, "53", 2) == 0)
        return TG_E_DB_DOWN;
    if (strcmp(st, "23505") == 0)
        return TG_E_CONFLICT;
    if (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0)
        return TG_E_BAD_REQUEST;
    return TG_E_INTERNAL;
}

/* libpq's messages span lines ("…failed: Connection refused\n\tIs the
 * server running…"); the first line is the one worth repeating. */
static void
first_line(const char *msg, char *out, size_t outlen)
{
    size_t n = strcspn(msg, "\n");

    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, msg, n);
    out[n] = '\0';
}

/* An idle connection has nothing to read unless the server is going away
 * (a restart sends "terminating connection" and closes; an admin's
 * pg_terminate_backend likewise). One poll(2) finds out before a statement
 * is lost on a dead socket; anything readable means reconnect. */
static bool
alive(PGconn *conn)
{
    struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};

    return p.fd >= 0 && poll(&p, 1, 0) == 0;
}

/* NOTICEs ("already exists, skipping") are for people at a psql prompt;
 * libpq would print them on our stderr. */
static void
ignore_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

enum tg_code
tg_db_connect(struct tg_db *db, struct tg_err *err)
{
    const char *const keys[] = {"dbname", "connect_timeout", "application_name",
                                "keepalives_idle", NULL};
    const char *const vals[] = {db->conninfo, db->connect_timeout, db->app_name,
                                "30", NULL};
    const char *params[1] = {db->statement_timeout};
    PGresult *res;
    char why[200];

    if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK &&
        alive(db->conn))
        return TG_OK;
    db->nprepared = 0; /* a new session has none */
    if (db->conn != NULL)
        PQreset(db->conn);
    else
        db->conn = PQconnectdbParams(keys, vals, 1);
    if (db->conn == NULL)
        return tg_err_set(err, TG_E_INTERNAL, "libpq: out of memory");
    if (PQstatus(db->conn) != CONNECTION_OK) {
        first_line(PQerrorMessage(db->conn), why, sizeof(why));
        return tg_err_set(err, TG_E_DB_DOWN,
                          "cannot reach PostgreSQL at host=%s port=%s: %s - "
                          "is it running? (script/server starts one)",
                          PQhost(db->conn) ? PQhost(db->conn) : "?",
                          PQport(db->conn) ? PQport(db->conn) : "?", why);
    }
    PQsetNoticeProcessor(db->conn, ignore_notice, NULL);
    res = PQexecParams(db->conn,
                       "SELECT set_config('statement_timeout', $1, false)", 1,
                       NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return tg_err_set(err, TG_E_DB_DOWN, "setting statement_timeout: %s",
                          PQerrorMessage(db->conn));
    }
    PQclear(res);
    return TG_OK;
}

static PGresult *
checked(struct tg_db *db, PGresult *res, ExecStatusType want,
        struct tg_err *err)
{
    const char *st, *msg;

    if (res != NULL && PQresultStatus(res) == want)
        return res;
    if (res != NULL && PQresultStatus(res) != PGRES_FATAL_ERROR &&
        PQresultStatus(res) != PGRES_NONFATAL_ERROR) {
        tg_err_set(err, TG_E_INTERNAL, "unexpected result %s",
                   PQresStatus(PQresultStatus(res)));
        PQclear(res);
        return NULL;
    }
    st = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if ((st == NULL || st[0] == '\0') && PQstatus(db->conn) == CONNECTION_OK)
        st = "XX000"; /* an error without a code on a live connection */
    /* The primary message names the constraint; the DETAIL quotes the
     * failing row (a key's HMAC among it) and stays out. */
    msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    tg_err_set_sql(err, tg_db_code_for_sqlstate(st), st, "%s",
                   msg != NULL   ? msg
                   : res != NULL ? PQresultErrorMessage(res)
                                 : PQerrorMessage(db->conn));
    PQclear(res);
    return NULL;
}

PGresult *
tg_db_exec(struct tg_db *db, ExecStatusType want, const char *sql, int nparams,
           const char *const *params, struct tg_err *err)
{
    if (tg_db_connect(db, err) != TG_OK)
        return NULL;
    return checked(
        db, PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0),
        want, err);
}

/* Runs `sql` as a prepared statement, preparing it on first use; unprepared
 * once the table is full. A failed PQprepare comes back as the result. */
static PGresult *
exec_prepared(struct tg_db *db, const char *sql, int nparams,
              const char *const *params)
{
    char name[16];
    PGresult *res;
    int i;

    for (i = 0; i < db->nprepared && db->prepared[i].sql != sql; i++)
        ;
    if (i == PREPARED_MAX)
        return PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL,
                            0);
    if (i == db->nprepared) {
        snprintf(name, sizeof(name), "tg_%u", db->next_name);
        res = PQprepare(db->conn, name, sql, nparams, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            return res;
        PQclear(res);
        db->prepared[i] = (struct prepared){sql, db->next_name++};
        db->nprepared++;
    }
    snprintf(name, sizeof(name), "tg_%u", db->prepared[i].name);
    return PQexecPrepared(db->conn, name, nparams, params, NULL, NULL, 0);
}

/* A migration that changes a function's result type leaves a prepared
 * call of it unusable ("cached plan must not change result type", 0A000);
 * 26000 is a statement the server no longer has. Either way: prepare it
 * again, under a new name, once. */
static bool
stale_statement(struct tg_db *db, const PGresult *res)
{
    const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    return st != NULL &&
           (strcmp(st, "0A000") == 0 || strcmp(st, "26000") == 0) &&
           PQtransactionStatus(db->conn) == PQTRANS_IDLE;
}

static void
forget_statement(struct tg_db *db, const char *sql)
{
    int i;

    for (i = 0; i < db->nprepared; i++)
        if (db->prepared[i].sql == sql)
            db->prepared[i] = db->prepared[--db->nprepared];
}

PGresult *
tg_db_exec_prepared(struct tg_db *db, ExecStatusType want, const char *sql,
                    int nparams, const char *const *params, struct tg_err *err)
{
    PGresult *res;

    if (tg_db_connect(db, err) != TG_OK)
        return NULL;
    res = exec_prepared(db, sql, nparams, params);
    if (res != NULL && stale_statement(db, res)) {
        PQclear(res);
        forget_statement(db, sql);
        res = exec_prepared(db, sql, nparams, params);
    }
    return checked(db, res, want, err);
}

enum tg_code
tg_db_command(struct tg_db *db, const char *sql, int nparams,
              const char *const *params, struct tg_err *err)
{
    struct tg_err local;
    PGresult *res;

    if (err == NULL) {
        tg_err_clear(&local);
        err = &local;
    }
    res = tg_db_exec(db, PGRES_COMMAND_OK, sql, nparams, params, err);
    if (res == NULL)
        return err->code;
    PQclear(res);
    return TG_OK;
}

enum tg_code
tg_db_script(struct tg_db *db, const char *sql, struct tg_err *err)
{
    PGresult *res;

    if (tg_db_connect(db, err) != TG_OK)
        return err->code;
    /* PQexec runs a multi-statement script; it has no parameters to bind. */
    res = checked(db, PQexec(db->conn, sql), PGRES_COMMAND_OK, err);
    if (res == NULL)
        return err->code;
    PQclear(res);
    return TG_OK;
}

void
tg_db_rollback(struct tg_db *db)
{
    /* Best effort: if the connection is gone the server rolled back. */
    PQclear(PQexec(db->conn, "ROLLBACK"));
}

enum tg_code
tg_db_txn(struct tg_db *db, tg_db_txn_fn fn, void *arg, struct tg_err *err)
{
    enum tg_code rc = TG_E_INTERNAL;
    struct tg_err e;
    int attempt;

    for (attempt = 0; attempt < 3; attempt++) {
        tg_err_clear(&e);
        rc = tg_db_command(db, "BEGIN", 0, NULL, &e);
        if (rc != TG_OK)
            break;
        rc = fn(db, arg, &e);
        if (rc == TG_OK)
            rc = tg_db_command(db, "COMMIT", 0, NULL, &e);
        else
            tg_db_rollback(db);
        if (rc != TG_E_DB_RETRY)
            break;
    }
    if (rc != TG_OK)
        tg_err_set_sql(err, rc, e.sqlstate, "%s", e.msg);
    return rc;
}

struct tg_db_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    int size, nfree;
    struct tg_db **all;
    struct tg_db **free; /* a stack of the idle ones */
};

struct tg_db_pool *
tg_db_pool_new(int size, const char *conninfo, int connect_timeout_s,
               int statement_timeout_ms, const char *app_name)
{
    struct tg_db_pool *p = calloc(1, sizeof(*p));
    pthread_condattr_t attr;
    int i;

    if (p == NULL)
        return NULL;
    p->all = calloc((size_t)size, sizeof(*p->all));
    p->free = calloc((size_t)size, sizeof(*p->free));
    if (p->all == NULL || p->free == NULL)
        goto fail;
    for (i = 0; i < size; i++) {
        p->all[i] = tg_db_new(conninfo, connect_timeout_s, statement_timeout_ms,
                              app_name);
        if (p->all[i] == NULL)
            goto fail;
        p->free[i] = p->all[i];
        p->size = p->nfree = i + 1;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->freed, &attr);
    pthread_condattr_destroy(&attr);
    return p;
fail:
    for (i = 0; i < p->size; i++)
        tg_db_free(p->all[i]);
    free(p->all);
    free(p->free);
    free(p);
    return NULL;
}

void
tg_db_pool_free(struct tg_db_pool *p)
{
    int i;

    if (p == NULL)
        return;
    for (i = 0; i < p->size; i++)
        tg_db_free(p->all[i]);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
    free(p->all);
    free(p->free);
    free(p);
}

struct tg_db *
tg_db_pool_get(struct tg_db_pool *p, int wait_ms, struct tg_err *err)
{
    struct tg_db *db = NULL;
    struct timespec until;
    int rc = 0;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&p->lock);
    while (p->nfree == 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&p->freed, &p->lock, &until);
    if (p->nfree > 0)
        db = p->free[--p->nfree];
    pthread_mutex_unlock(&p->lock);
    if (db == NULL)
        tg_err_set(err, TG_E_DB_DOWN,
                   "all %d database connections stayed busy for %d ms "
                   "(raise db_pool_size?)",
                   p->size, wait_ms);
    return db;
}

void
tg_db_pool_put(struct tg_db_pool *p, struct tg_db *db)
{
    if (db == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->free[p->nfree++] = db;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

PGresult *
tg_db_pool_query(struct tg_db_pool *p, int wait_ms, const char *sql,
                 int nparams, const char *const *params, struct tg_err *err)
{
    struct tg_db *db = tg_db_pool_get(p, wait_ms, err);
    PGresult *res = db != NULL ? tg_db_exec_prepared(db, PGRES_TUPLES_OK, sql,
                                                     nparams, params, err)
                               : NULL;

    tg_db_pool_put(p, db);
    return res;
}
