/* db: SQLSTATE mapping (offline), and failing closed when nothing listens. */
#include <config.h>

#include <string.h>

#include "db.h"
#include "unit.h"

static const struct {
    const char *sqlstate;
    enum tg_code code;
} map[] = {
    {"40001", TG_E_DB_RETRY},    {"40P01", TG_E_DB_RETRY},
    {"57014", TG_E_TIMEOUT},     {"55P03", TG_E_TIMEOUT},
    {"08006", TG_E_DB_DOWN},     {"08001", TG_E_DB_DOWN},
    {"57P01", TG_E_DB_DOWN},     {"57P03", TG_E_DB_DOWN},
    {"53300", TG_E_DB_DOWN},     {NULL, TG_E_DB_DOWN},
    {"", TG_E_DB_DOWN},          {"23505", TG_E_CONFLICT},
    {"23514", TG_E_BAD_REQUEST}, {"22007", TG_E_BAD_REQUEST},
    {"42P01", TG_E_INTERNAL},    {"XX000", TG_E_INTERNAL},
};

START_TEST(sqlstates_map_to_codes)
{
    ck_assert_int_eq(tg_db_code_for_sqlstate(map[_i].sqlstate), map[_i].code);
}
END_TEST

START_TEST(codes_map_to_http_statuses)
{
    ck_assert_int_eq(tg_code_http_status(TG_OK), 200);
    ck_assert_int_eq(tg_code_http_status(TG_E_DB_DOWN), 503);
    ck_assert_int_eq(tg_code_http_status(TG_E_TIMEOUT), 504);
    ck_assert_int_eq(tg_code_http_status(TG_E_LIMIT), 429);
    ck_assert_int_eq(tg_code_http_status(TG_E_NO_KEY), 401);
    ck_assert_int_eq(tg_code_http_status(TG_E_INTERNAL), 500);
    ck_assert_int_eq(tg_code_http_status((enum tg_code)999), 500);
}
END_TEST

START_TEST(unreachable_server_is_db_down_with_advice)
{
    /* Port 1 on loopback: nothing listens, the refusal is immediate. */
    struct tg_db *db = tg_db_new("host=127.0.0.1 port=1 dbname=x", 2, 0, "t");
    struct tg_err err = {0};

    ck_assert_ptr_nonnull(db);
    ck_assert_ptr_null(
        tg_db_exec(db, PGRES_TUPLES_OK, "SELECT 1", 0, NULL, &err));
    ck_assert_int_eq(err.code, TG_E_DB_DOWN);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot reach PostgreSQL at "
                                          "host=127.0.0.1 port=1"));
    ck_assert_ptr_nonnull(strstr(err.msg, "is it running?"));
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    tg_db_free(db);
}
END_TEST

START_TEST(first_error_wins_and_stays_one_line)
{
    struct tg_err err = {0};

    ck_assert_int_eq(tg_err_set_sql(&err, TG_E_DB_DOWN, "08006", "a\nb\n"),
                     TG_E_DB_DOWN);
    ck_assert_int_eq(tg_err_set(&err, TG_E_INTERNAL, "later"), TG_E_INTERNAL);
    ck_assert_int_eq(err.code, TG_E_DB_DOWN);
    ck_assert_str_eq(err.msg, "a b");
    ck_assert_str_eq(err.sqlstate, "08006");
}
END_TEST

static Suite *
db_suite(void)
{
    Suite *s = suite_create("db");
    TCase *tc = tcase_create("SQLSTATEs map to codes");

    tcase_add_loop_test(tc, sqlstates_map_to_codes, 0,
                        sizeof(map) / sizeof(map[0]));
    suite_add_tcase(s, tc);
    TG_TCASE(s, "codes map to HTTP statuses", codes_map_to_http_statuses);
    TG_TCASE(s, "an unreachable server is db_down with advice",
             unreachable_server_is_db_down_with_advice);
    TG_TCASE(s, "the first error wins and stays one line",
             first_error_wins_and_stays_one_line);
    return s;
}

TG_CHECK_MAIN(db_suite)
