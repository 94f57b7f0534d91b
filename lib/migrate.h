/* Forward-only schema migrations: sql/NNN_name.sql applied in order, each
 * in its own transaction, recorded in schema_migrations. */
#ifndef TG_MIGRATE_H
#define TG_MIGRATE_H

#include "db.h"
#include "err.h"

#define TG_MIGRATE_MAX 999

/* Applies every migration in `dir` not yet recorded. Idempotent; concurrent
 * runs serialise on an advisory lock. *applied (may be NULL) gets the number
 * of migrations this call applied. */
enum tg_code tg_migrate(struct tg_db *db, const char *dir, int *applied,
                        struct tg_err *err) TG_MUSTCHECK;

/* How many migrations in `dir` are not applied yet (all of them when the
 * database has never been migrated), and the first one's file name. */
enum tg_code tg_migrate_pending(struct tg_db *db, const char *dir, int *pending,
                                char *first, size_t firstlen,
                                struct tg_err *err) TG_MUSTCHECK;

#endif
