/* Migrations. An advisory lock (not a table lock) serialises concurrent
 * runs, so `migrate` can run on every start of every program. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "migrate.h"

#define MIGRATE_LOCK "SELECT pg_advisory_lock(hashtext('tollgate.migrate'))"
#define MIGRATE_UNLOCK "SELECT pg_advisory_unlock(hashtext('tollgate.migrate'))"
#define MIGRATE_FILE_MAX (4 * 1024 * 1024)

struct migration {
    char name[256];
    char version[4];
};

static int
by_name(const void *a, const void *b)
{
    return strcmp(((const struct migration *)a)->name,
                  ((const struct migration *)b)->name);
}

/* NNN_name.sql with NNN three digits; anything else in the folder is
 * ignored, so editors' backup files cannot become migrations. */
static int
is_migration(const char *n)
{
    size_t len = strlen(n);

    return len > 8 && len < 256 && n[0] >= '0' && n[0] <= '9' && n[1] >= '0' &&
           n[1] <= '9' && n[2] >= '0' && n[2] <= '9' && n[3] == '_' &&
           strcmp(n + len - 4, ".sql") == 0;
}

static enum tg_code
list_dir(const char *dir, struct migration *out, size_t *n, struct tg_err *err)
{
    struct dirent *de;
    DIR *d = opendir(dir);

    *n = 0;
    if (d == NULL)
        return tg_err_set(err, TG_E_CONFIG, "sql_dir %s: %s", dir,
                          strerror(errno));
    while ((de = readdir(d)) != NULL) {
        if (!is_migration(de->d_name))
            continue;
        if (*n == TG_MIGRATE_MAX) {
            closedir(d);
            return tg_err_set(err, TG_E_CONFIG, "%s: too many migrations", dir);
        }
        snprintf(out[*n].name, sizeof(out[*n].name), "%s", de->d_name);
        memcpy(out[*n].version, de->d_name, 3);
        out[*n].version[3] = '\0';
        (*n)++;
    }
    closedir(d);
    qsort(out, *n, sizeof(*out), by_name);
    return TG_OK;
}

static char *
read_file(const char *path, struct tg_err *err)
{
    char *buf = NULL;
    struct stat st;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        tg_err_set(err, TG_E_IO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fileno(f), &st) != 0 || st.st_size > MIGRATE_FILE_MAX) {
        tg_err_set(err, TG_E_IO, "%s: unreadable or over %d bytes", path,
                   MIGRATE_FILE_MAX);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL ||
        fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        tg_err_set(err, TG_E_IO, "%s: read failed", path);
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[st.st_size] = '\0';
out:
    if (f != NULL)
        fclose(f);
    return buf;
}

static enum tg_code
apply_one(struct tg_db *db, const char *dir, const struct migration *m,
          struct tg_err *err)
{
    const char *params[2] = {m->version, m->name};
    char path[1400];
    char *sql = NULL;
    enum tg_code rc;

    snprintf(path, sizeof(path), "%s/%s", dir, m->name);
    sql = read_file(path, err);
    if (sql == NULL)
        return err->code;
    rc = tg_db_command(db, "BEGIN", 0, NULL, err);
    if (rc == TG_OK)
        rc = tg_db_script(db, sql, err);
    if (rc == TG_OK)
        rc = tg_db_command(db,
                           "INSERT INTO schema_migrations (version, name) "
                           "VALUES ($1::int, $2)",
                           2, params, err);
    if (rc == TG_OK)
        rc = tg_db_command(db, "COMMIT", 0, NULL, err);
    else
        tg_db_rollback(db);
    if (rc != TG_OK)
        tg_err_set(err, rc, "migration %s failed", m->name);
    free(sql);
    return rc;
}

static enum tg_code
is_applied(struct tg_db *db, const struct migration *m, int *yes,
           struct tg_err *err)
{
    const char *params[1] = {m->version};
    PGresult *res =
        tg_db_exec(db, PGRES_TUPLES_OK,
                   "SELECT 1 FROM schema_migrations WHERE version = $1::int", 1,
                   params, err);

    if (res == NULL)
        return err->code;
    *yes = PQntuples(res) > 0;
    PQclear(res);
    return TG_OK;
}

enum tg_code
tg_migrate(struct tg_db *db, const char *dir, int *applied, struct tg_err *err)
{
    static struct migration list[TG_MIGRATE_MAX];
    enum tg_code rc;
    size_t n = 0, i;
    int done = 0, yes = 0;
    PGresult *res;

    rc = list_dir(dir, list, &n, err);
    if (rc != TG_OK)
        return rc;
    res = tg_db_exec(db, PGRES_TUPLES_OK, MIGRATE_LOCK, 0, NULL, err);
    if (res == NULL)
        return err->code;
    PQclear(res);
    rc = tg_db_command(db,
                       "CREATE TABLE IF NOT EXISTS schema_migrations ("
                       " version integer PRIMARY KEY,"
                       " name text NOT NULL,"
                       " applied_at timestamptz NOT NULL DEFAULT now())",
                       0, NULL, err);
    for (i = 0; rc == TG_OK && i < n; i++) {
        rc = is_applied(db, &list[i], &yes, err);
        if (rc == TG_OK && !yes) {
            rc = apply_one(db, dir, &list[i], err);
            done += rc == TG_OK;
        }
    }
    PQclear(tg_db_exec(db, PGRES_TUPLES_OK, MIGRATE_UNLOCK, 0, NULL, NULL));
    if (applied != NULL)
        *applied = done;
    return rc;
}

enum tg_code
tg_migrate_pending(struct tg_db *db, const char *dir, int *pending, char *first,
                   size_t firstlen, struct tg_err *err)
{
    static struct migration list[TG_MIGRATE_MAX];
    enum tg_code rc;
    size_t n = 0, i;
    int yes = 0, have_table;
    PGresult *res;

    *pending = 0;
    snprintf(first, firstlen, "%s", "");
    rc = list_dir(dir, list, &n, err);
    if (rc != TG_OK)
        return rc;
    res = tg_db_exec(db, PGRES_TUPLES_OK,
                     "SELECT to_regclass('schema_migrations') IS NOT NULL", 0,
                     NULL, err);
    if (res == NULL)
        return err->code;
    have_table = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    for (i = 0; rc == TG_OK && i < n; i++) {
        yes = 0;
        if (have_table)
            rc = is_applied(db, &list[i], &yes, err);
        if (rc == TG_OK && !yes && (*pending)++ == 0)
            snprintf(first, firstlen, "%s", list[i].name);
    }
    return rc;
}
