/* lib/intake.c: when a body is due, and how many body reads a key may
 * have at once. (Reading under a deadline is tested end to end, in
 * tests/integration/test_slow_clients.py.) */
#include <config.h>

#include "intake.h"
#include "unit.h"

START_TEST(the_total_deadline_holds_without_a_rate)
{
    struct tg_intake_limits lim = {3000, 0};

    ck_assert_int_eq(tg_intake_due(&lim, 1000, 0), 4000);
    ck_assert_int_eq(tg_intake_due(&lim, 1000, 1000000), 4000);
}
END_TEST

START_TEST(each_byte_buys_time_at_the_minimum_rate)
{
    struct tg_intake_limits lim = {60000, 1000};

    /* Nothing yet: due at the end of the grace; then 1 ms per byte. */
    ck_assert_int_eq(tg_intake_due(&lim, 0, 0), TG_INTAKE_GRACE_MS);
    ck_assert_int_eq(tg_intake_due(&lim, 0, 500), TG_INTAKE_GRACE_MS + 500);
    /* ... never past the total deadline. */
    ck_assert_int_eq(tg_intake_due(&lim, 0, 10000000), 60000);
}
END_TEST

START_TEST(a_key_gets_max_reads_and_others_are_apart)
{
    int i;

    for (i = 0; i < 4; i++)
        ck_assert(tg_intake_enter(7, 4));
    ck_assert(!tg_intake_enter(7, 4));
    ck_assert(tg_intake_enter(8, 4)); /* another key is not affected */
    ck_assert(tg_intake_enter(0, 1)); /* nor keys in bodies */
    ck_assert(!tg_intake_enter(0, 1));
    tg_intake_leave(7);
    ck_assert(tg_intake_enter(7, 4)); /* a leave frees one */
    for (i = 0; i < 4; i++)
        tg_intake_leave(7);
    tg_intake_leave(8);
    tg_intake_leave(0);
    ck_assert(tg_intake_enter(7, 1)); /* all back */
    tg_intake_leave(7);
}
END_TEST

static Suite *
intake_suite(void)
{
    Suite *s = suite_create("intake");

    TG_TCASE(s, "the total deadline holds without a rate",
             the_total_deadline_holds_without_a_rate);
    TG_TCASE(s, "each byte buys time at the minimum rate",
             each_byte_buys_time_at_the_minimum_rate);
    TG_TCASE(s, "a key gets max reads and others are apart",
             a_key_gets_max_reads_and_others_are_apart);
    return s;
}

TG_CHECK_MAIN(intake_suite)
