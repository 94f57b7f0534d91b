/* log: request ids and level handling. */
#include <config.h>

#include <string.h>

#include "log.h"
#include "unit.h"

START_TEST(server_request_id_is_kept_when_safe)
{
    char rid[TG_RID_MAX + 1];

    tg_log_rid("abc-123_X.y", rid);
    ck_assert_str_eq(rid, "abc-123_X.y");
}
END_TEST

static const char *const unsafe[] = {
    NULL,
    "",
    "a b",
    "a\nb",
    "key=sk-tg-1",
    "<script>",
    "01234567890123456789012345678901234567890123456789012345678901234"};

START_TEST(unsafe_request_id_is_replaced)
{
    char rid[TG_RID_MAX + 1];

    tg_log_rid(unsafe[_i], rid);
    ck_assert_uint_eq(strlen(rid), TG_RID_LEN);
    ck_assert_uint_eq(strspn(rid, "0123456789abcdef"), TG_RID_LEN);
}
END_TEST

START_TEST(levels_filter_and_bad_names_are_refused)
{
    struct tg_err err = {0};

    ck_assert_int_eq(tg_log_open("t", "warn", "stderr", &err), TG_OK);
    ck_assert(tg_log_enabled(TG_LOG_ERROR));
    ck_assert(!tg_log_enabled(TG_LOG_INFO));
    ck_assert_int_eq(tg_log_open("t", "loud", "stderr", &err), TG_E_CONFIG);
    tg_err_clear(&err);
    ck_assert_int_eq(tg_log_open("t", "info", "file", &err), TG_E_CONFIG);
}
END_TEST

static Suite *
log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("an unsafe request id is replaced");

    TG_TCASE(s, "a server request id is kept when safe",
             server_request_id_is_kept_when_safe);
    tcase_add_loop_test(tc, unsafe_request_id_is_replaced, 0,
                        sizeof(unsafe) / sizeof(unsafe[0]));
    suite_add_tcase(s, tc);
    TG_TCASE(s, "levels filter and bad names are refused",
             levels_filter_and_bad_names_are_refused);
    return s;
}

TG_CHECK_MAIN(log_suite)
