/* Settlements that could not reach PostgreSQL, kept on disk until they can:
 * usage is never lost to a database outage. One JSON array per line, the
 * tg_settle() arguments, so replaying is idempotent (tg_settle settles a
 * reservation once). Safe across threads and processes (flock). */
#ifndef TG_SPOOL_H
#define TG_SPOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "err.h"

#define TG_SPOOL_FIELDS 11 /* the arguments of tg_settle() */
#define TG_SPOOL_LINE_MAX 4096

/* Appends one record (NULL fields are SQL NULLs): one write(2), then
 * fsync(2); TG_OK means the record survives a crash. Creates the directory
 * (0700) and files as needed. */
enum tg_code tg_spool_append(const char *dir,
                             const char *const fields[TG_SPOOL_FIELDS],
                             struct tg_err *err) TG_MUSTCHECK;

/* Settles every spooled record through db. Records that settled (or had
 * been settled before) leave the spool; if the database fails again the
 * rest stay. *replayed and *left may be NULL. */
enum tg_code tg_spool_replay(const char *dir, struct tg_db *db, int *replayed,
                             int *left, struct tg_err *err) TG_MUSTCHECK;

/* True when records are waiting (one stat(2): cheap enough per request). */
bool tg_spool_pending(const char *dir);

/* Records waiting; 0 when the spool does not exist, -1 when unreadable. */
int64_t tg_spool_backlog(const char *dir);

/* The statement that settles one record; the relay runs it directly. */
#define TG_SETTLE_SQL                                                          \
    "SELECT tg_settle($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"

#endif
