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

START_TEST(messages_escape_control_bytes_and_mask_hashes)
{
    static const char hmac[] =
        "9e1d3d47a112fd49a54983ef44480a4213b4e3aaa17c20915c1c7f9eea1eb294";
    struct tg_err err = {0};
    char out[16];

    tg_err_set_sql(&err, TG_E_BAD_REQUEST, "23514", "row (3, a\x01\x1b[2J, %s)",
                   hmac);
    ck_assert_str_eq(err.msg, "row (3, a\\x01\\x1b[2J, 9e1d3d47...)");
    /* ids shorter than a hash stay readable; a log line keeps hex whole */
    ck_assert_uint_eq(tg_err_clean(out, sizeof(out), "rid 0123abcd", true), 12);
    ck_assert_str_eq(out, "rid 0123abcd");
    ck_assert_uint_eq(tg_err_clean(out, sizeof(out), "a\x7f\tb", false), 7);
    ck_assert_str_eq(out, "a\\x7f b");
    /* truncated, never mid-escape */
    ck_assert_uint_eq(tg_err_clean(out, 6,
                                   "ab\x01"
                                   "cd",
                                   false),
                      2);
    ck_assert_str_eq(out, "ab");
}
END_TEST

static const struct {
    enum tg_code code;
    const char *sqlstate, *msg, *shown;
} shown[] = {
    {TG_E_CONFLICT, "", "a key named 'x' already exists",
     "a key named 'x' already exists"},
    {TG_E_CONFLICT, "23505", "duplicate key value",
     "that value is already taken (a name must be unique)"},
    {TG_E_BAD_REQUEST, "23514", "violates check constraint",
     "a value is not valid (check the names, times and numbers)"},
    {TG_E_BAD_REQUEST, "22007", "invalid input syntax",
     "a value is not valid (check the names, times and numbers)"},
    {TG_E_DB_DOWN, "", "cannot reach PostgreSQL at host=db port=5432",
     "database (PostgreSQL) unavailable, try again in a moment"},
    {TG_E_DB_RETRY, "40001", "could not serialize",
     "database (PostgreSQL) unavailable, try again in a moment"},
    {TG_E_INTERNAL, "42P01", "relation \"x\" does not exist",
     "internal error (see the log, request id r1)"},
    {TG_E_INTERNAL, "", "out of memory",
     "internal error (see the log, request id r1)"},
    {TG_E_TIMEOUT, "57014", "canceling statement",
     "internal error (see the log, request id r1)"},
};

START_TEST(clients_see_what_the_class_means)
{
    struct tg_err err = {0};
    char buf[64];

    tg_err_set_sql(&err, shown[_i].code, shown[_i].sqlstate, "%s",
                   shown[_i].msg);
    ck_assert_str_eq(tg_err_client(&err, "r1", buf, sizeof(buf)),
                     shown[_i].shown);
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
    TG_TCASE(s, "messages escape control bytes and mask hashes",
             messages_escape_control_bytes_and_mask_hashes);
    tc = tcase_create("clients see what the class means");
    tcase_add_loop_test(tc, clients_see_what_the_class_means, 0,
                        sizeof(shown) / sizeof(shown[0]));
    suite_add_tcase(s, tc);
    return s;
}

TG_CHECK_MAIN(db_suite)
