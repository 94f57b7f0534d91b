/* PostgreSQL access: one handle per thread, connected lazily and reconnected
 * after a broken connection, so a program started while the database is
 * down serves 503s and recovers by itself. Every statement is parameterised. */
#ifndef TG_DB_H
#define TG_DB_H

#include <libpq-fe.h>

#include "err.h"

struct tg_db; /* opaque: owns the PGconn */

/* Copies the settings; connects on first use. NULL only when out of memory.
 * statement_timeout_ms 0 leaves the server's default. */
struct tg_db *tg_db_new(const char *conninfo, int connect_timeout_s,
                        int statement_timeout_ms, const char *app_name);
void tg_db_free(struct tg_db *db); /* NULL is fine */

/* Connects now if not connected (or the connection broke). TG_E_DB_DOWN with
 * a message saying where it tried and what to do. */
enum tg_code tg_db_connect(struct tg_db *db, struct tg_err *err) TG_MUSTCHECK;

/* Runs one parameterised statement (text parameters, NULL for SQL NULL).
 * Returns the result if its status is `want` (the caller PQclear()s it),
 * else NULL with err set from the SQLSTATE. */
PGresult *tg_db_exec(struct tg_db *db, ExecStatusType want, const char *sql,
                     int nparams, const char *const *params,
                     struct tg_err *err);

/* As tg_db_exec, as a statement prepared on this connection on first use,
 * so PostgreSQL parses and plans it once per connection: for the
 * statements a long-lived program runs on every request. `sql` must be a
 * string literal (it is known by its address). */
PGresult *tg_db_exec_prepared(struct tg_db *db, ExecStatusType want,
                              const char *sql, int nparams,
                              const char *const *params, struct tg_err *err);

/* As tg_db_exec for statements whose rows do not matter. */
enum tg_code tg_db_command(struct tg_db *db, const char *sql, int nparams,
                           const char *const *params,
                           struct tg_err *err) TG_MUSTCHECK;

/* A script of several statements without parameters: migrations only. */
enum tg_code tg_db_script(struct tg_db *db, const char *sql,
                          struct tg_err *err) TG_MUSTCHECK;

/* 40001 and 40P01 retry; 57014 is a timeout; class 08, 57P01-57P03 and no
 * answer at all mean the database is down; 23505 is a conflict; class 22
 * and 23 are bad input; anything else is our bug. */
enum tg_code tg_db_code_for_sqlstate(const char *sqlstate);

/* ROLLBACK, best effort: with the connection gone the server has rolled
 * back already. */
void tg_db_rollback(struct tg_db *db);

typedef enum tg_code (*tg_db_txn_fn)(struct tg_db *db, void *arg,
                                     struct tg_err *err);

/* BEGIN, fn, COMMIT; ROLLBACK when fn fails. A serialization failure or
 * deadlock runs the whole transaction again (three tries), so fn must only
 * touch the database and `arg`'s outputs. */
enum tg_code tg_db_txn(struct tg_db *db, tg_db_txn_fn fn, void *arg,
                       struct tg_err *err) TG_MUSTCHECK;

/* A fixed set of connections shared by a program's threads, so a program
 * holds at most `size` PostgreSQL connections however many threads it runs.
 * Connections are made lazily and reset after breaking, as above. */
struct tg_db_pool; /* opaque: owns its connections */

struct tg_db_pool *tg_db_pool_new(int size, const char *conninfo,
                                  int connect_timeout_s,
                                  int statement_timeout_ms,
                                  const char *app_name);
void tg_db_pool_free(struct tg_db_pool *p); /* NULL is fine */

/* Borrows a connection for one short piece of work, waiting at most wait_ms
 * for one to come free; NULL with TG_E_DB_DOWN when none does. */
struct tg_db *tg_db_pool_get(struct tg_db_pool *p, int wait_ms,
                             struct tg_err *err);
void tg_db_pool_put(struct tg_db_pool *p, struct tg_db *db);

/* One prepared statement (tg_db_exec_prepared) on a borrowed connection,
 * held only for that statement; its rows (PGRES_TUPLES_OK) or NULL with
 * err set. */
PGresult *tg_db_pool_query(struct tg_db_pool *p, int wait_ms, const char *sql,
                           int nparams, const char *const *params,
                           struct tg_err *err);

#endif
