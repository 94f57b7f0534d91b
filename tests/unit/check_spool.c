/* spool: append, backlog, and a replay that cannot reach the database
 * keeping every record (the replay that can is in test_faults.py). */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"
#include "unit.h"

static char dir[64];

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tg-spool-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(rmdir(dir), 0); /* append must create it */
}

static void
teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *const rec[TG_SPOOL_FIELDS] = {"7",
                                                 "3",
                                                 "10",
                                                 "8",
                                                 "llama3",
                                                 "/api/chat",
                                                 "ok",
                                                 "200",
                                                 "12",
                                                 NULL,
                                                 "http://127.0.0.1:11434"};

START_TEST(append_creates_a_private_spool_and_counts)
{
    struct tg_err err = {0};
    char path[128];
    struct stat st;

    ck_assert(!tg_spool_pending(dir));
    ck_assert_int_eq(tg_spool_backlog(dir), 0);
    ck_assert_int_eq(tg_spool_append(dir, rec, &err), TG_OK);
    ck_assert_int_eq(tg_spool_append(dir, rec, &err), TG_OK);
    ck_assert(tg_spool_pending(dir));
    ck_assert_int_eq(tg_spool_backlog(dir), 2);
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/settlements.spool", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
}
END_TEST

START_TEST(replay_without_a_database_keeps_every_record)
{
    struct tg_db *db = tg_db_new("host=127.0.0.1 port=1 dbname=x", 2, 0, "t");
    struct tg_err err = {0};
    int done = -1, left = -1;

    ck_assert_int_eq(tg_spool_append(dir, rec, &err), TG_OK);
    ck_assert_int_eq(tg_spool_append(dir, rec, &err), TG_OK);
    ck_assert_int_eq(tg_spool_replay(dir, db, &done, &left, &err),
                     TG_E_DB_DOWN);
    ck_assert_int_eq(done, 0);
    ck_assert_int_eq(left, 2);
    ck_assert_int_eq(tg_spool_backlog(dir), 2);
    tg_db_free(db);
}
END_TEST

START_TEST(replay_of_nothing_is_fine)
{
    struct tg_db *db = tg_db_new("host=127.0.0.1 port=1 dbname=x", 2, 0, "t");
    struct tg_err err = {0};
    int done = -1, left = -1;

    ck_assert_int_eq(tg_spool_replay(dir, db, &done, &left, &err), TG_OK);
    ck_assert_int_eq(done + left, 0);
    tg_db_free(db);
}
END_TEST

static Suite *
spool_suite(void)
{
    Suite *s = suite_create("spool");
    const struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"append creates a private spool and counts",
         append_creates_a_private_spool_and_counts},
        {"a replay without a database keeps every record",
         replay_without_a_database_keeps_every_record},
        {"a replay of nothing is fine", replay_of_nothing_is_fine},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, cases[i].fn);
        suite_add_tcase(s, tc);
    }
    return s;
}

TG_CHECK_MAIN(spool_suite)
