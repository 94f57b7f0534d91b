/* Shared by every Check suite: one main() that runs the suite it is given,
 * so a suite file holds only its tests. */
#ifndef TG_UNIT_H
#define TG_UNIT_H

#include <check.h>
#include <stdlib.h>

#define TG_CHECK_MAIN(suite_fn)                                                \
    int main(void)                                                             \
    {                                                                          \
        SRunner *sr = srunner_create(suite_fn());                              \
        int failed;                                                            \
                                                                               \
        srunner_run_all(sr, CK_ENV);                                           \
        failed = srunner_ntests_failed(sr);                                    \
        srunner_free(sr);                                                      \
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;                      \
    }

/* One TCase per behaviour, named as a sentence. */
#define TG_TCASE(suite, name, fn)                                              \
    do {                                                                       \
        TCase *tc_ = tcase_create(name);                                       \
        tcase_add_test(tc_, fn);                                               \
        suite_add_tcase(suite, tc_);                                           \
    } while (0)

#endif
