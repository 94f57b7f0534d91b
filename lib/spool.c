/* The settlement spool. A lock file, not the data file, carries the flock:
 * replay replaces the data file by rename, and a lock held on the old inode
 * would let an appender write into a file nobody reads again. */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "spool.h"

#define DATA "settlements.spool"
#define NEXT "settlements.spool.new"
#define LOCK "settlements.lock"

static int
lock_dir(const char *dir, struct tg_err *err)
{
    char path[1100];
    int fd;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        tg_err_set(err, TG_E_IO, "spool_dir %s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof(path), "%s/" LOCK, dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        tg_err_set(err, TG_E_IO, "spool lock %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void
unlock_dir(int fd)
{
    flock(fd, LOCK_UN);
    close(fd);
}

static char *
encode(const char *const fields[TG_SPOOL_FIELDS])
{
    json_t *a = json_array(); /* new */
    char *s = NULL;
    int i;

    if (a == NULL)
        return NULL;
    for (i = 0; i < TG_SPOOL_FIELDS; i++)
        if (json_array_append_new(a, fields[i] != NULL ? json_string(fields[i])
                                                       : json_null()) != 0)
            goto out;
    s = json_dumps(a, JSON_COMPACT);
out:
    json_decref(a);
    return s;
}

static enum tg_code
write_all(int fd, const char *p, size_t n, const char *path, struct tg_err *err)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return tg_err_set(err, TG_E_IO, "writing %s: %s", path,
                              strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return fsync(fd) == 0 ? TG_OK
                          : tg_err_set(err, TG_E_IO, "fsync %s: %s", path,
                                       strerror(errno));
}

enum tg_code
tg_spool_append(const char *dir, const char *const fields[TG_SPOOL_FIELDS],
                struct tg_err *err)
{
    enum tg_code rc = TG_E_IO;
    char path[1100], line[TG_SPOOL_LINE_MAX];
    char *rec = encode(fields);
    int lock = -1, fd = -1, n;

    if (rec == NULL)
        return tg_err_set(err, TG_E_INTERNAL, "spool: out of memory");
    n = snprintf(line, sizeof(line), "%s\n", rec);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        rc = tg_err_set(err, TG_E_INTERNAL, "spool record too long");
        goto out;
    }
    lock = lock_dir(dir, err);
    if (lock < 0)
        goto out;
    snprintf(path, sizeof(path), "%s/" DATA, dir);
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = tg_err_set(err, TG_E_IO, "%s: %s", path, strerror(errno));
        goto out;
    }
    rc = write_all(fd, line, (size_t)n, path, err);
out:
    if (fd >= 0)
        close(fd);
    if (lock >= 0)
        unlock_dir(lock);
    free(rec);
    return rc;
}

static bool
transient(enum tg_code rc)
{
    return rc == TG_E_DB_DOWN || rc == TG_E_DB_RETRY || rc == TG_E_TIMEOUT;
}

/* Settles one record; TG_OK also when it had been settled before. */
static enum tg_code
settle_line(struct tg_db *db, const char *line, struct tg_err *err)
{
    const char *fields[TG_SPOOL_FIELDS];
    json_t *a = json_loads(line, 0, NULL); /* new */
    enum tg_code rc = TG_OK;
    PGresult *res;
    int i;

    if (!json_is_array(a) || json_array_size(a) != TG_SPOOL_FIELDS) {
        json_decref(a);
        return TG_OK; /* a torn last line from a crash: nothing to settle */
    }
    for (i = 0; i < TG_SPOOL_FIELDS; i++)
        fields[i] = json_string_value(json_array_get(a, (size_t)i));
    res = tg_db_exec(db, PGRES_TUPLES_OK, TG_SETTLE_SQL, TG_SPOOL_FIELDS,
                     fields, err);
    if (res == NULL)
        rc = err->code;
    PQclear(res);
    json_decref(a);
    return rc;
}

enum tg_code
tg_spool_replay(const char *dir, struct tg_db *db, int *replayed, int *left,
                struct tg_err *err)
{
    char path[1100], next[1100], line[TG_SPOOL_LINE_MAX];
    enum tg_code rc = TG_OK;
    int lock, out = -1, done = 0, kept = 0;
    bool broken = false; /* the new file is incomplete: keep the old one */
    FILE *in = NULL;

    lock = lock_dir(dir, err);
    if (lock < 0)
        return err->code;
    snprintf(path, sizeof(path), "%s/" DATA, dir);
    snprintf(next, sizeof(next), "%s/" NEXT, dir);
    in = fopen(path, "r");
    if (in == NULL)
        goto out; /* nothing spooled */
    out = open(next, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        rc = tg_err_set(err, TG_E_IO, "%s: %s", next, strerror(errno));
        goto out;
    }
    while (fgets(line, sizeof(line), in) != NULL) {
        enum tg_code one = rc == TG_OK ? settle_line(db, line, err) : rc;

        if (one == TG_OK) {
            done++;
            continue;
        }
        if (!transient(one)) { /* it will never settle: keep the rest going */
            tg_log(TG_LOG_ERROR, NULL, "spool: dropping a record: %s",
                   err->msg);
            tg_err_clear(err);
            continue;
        }
        rc = one; /* keep this record and every later one */
        kept++;
        if (write_all(out, line, strlen(line), next, NULL) != TG_OK) {
            broken = true;
            break;
        }
    }
    if (!broken && rename(next, path) != 0)
        rc = tg_err_set(err, TG_E_IO, "rename %s: %s", next, strerror(errno));
out:
    if (in != NULL)
        fclose(in);
    if (out >= 0)
        close(out);
    unlink(next);
    unlock_dir(lock);
    if (replayed != NULL)
        *replayed = done;
    if (left != NULL)
        *left = kept;
    return rc;
}

int64_t
tg_spool_backlog(const char *dir)
{
    char path[1100];
    int64_t n = 0;
    FILE *f;
    int c;

    snprintf(path, sizeof(path), "%s/" DATA, dir);
    f = fopen(path, "r");
    if (f == NULL)
        return errno == ENOENT ? 0 : -1;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

bool
tg_spool_pending(const char *dir)
{
    char path[1100];
    struct stat st;

    snprintf(path, sizeof(path), "%s/" DATA, dir);
    return stat(path, &st) == 0 && st.st_size > 0;
}
