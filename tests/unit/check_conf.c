/* Configuration: the file format and its errors. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "unit.h"

static char path[64];

static const char *
write_conf(const char *text)
{
    FILE *f;
    int fd;

    snprintf(path, sizeof(path), "/tmp/tg-conf-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void
cleanup(void)
{
    if (path[0] != '\0')
        unlink(path);
    path[0] = '\0';
}

START_TEST(defaults_hold_without_a_key)
{
    struct tg_conf c;
    struct tg_err err = {0};

    ck_assert_int_eq(tg_conf_load(&c, write_conf(""), &err), TG_OK);
    ck_assert_str_eq(c.key_prefix, "sk-tg-");
    ck_assert_int_eq(c.reservation_tokens, 2048);
    ck_assert_str_eq(c.time_zone, "UTC");
    ck_assert_int_eq(c.ip_trust_ttl, 0); /* IP trust is opt-in */
}
END_TEST

START_TEST(comments_blanks_and_spaces_are_ignored)
{
    struct tg_conf c;
    struct tg_err err = {0};

    ck_assert_int_eq(tg_conf_load(&c,
                                  write_conf("# a comment\n\n   \n"
                                             "  time_zone   =  Europe/Berlin  "
                                             "\n\t# indented comment\n"
                                             "db = host=/tmp port=5 dbname=x\n"
                                             "reservation_tokens=100"),
                                  &err),
                     TG_OK);
    ck_assert_str_eq(c.time_zone, "Europe/Berlin");
    ck_assert_str_eq(c.db, "host=/tmp port=5 dbname=x");
    ck_assert_int_eq(c.reservation_tokens, 100);
}
END_TEST

START_TEST(a_repeated_upstream_line_adds_to_the_list)
{
    struct tg_conf c;
    struct tg_err err = {0};

    ck_assert_int_eq(tg_conf_load(&c, write_conf(""), &err), TG_OK);
    ck_assert_str_eq(c.upstream, "http://127.0.0.1:11434");
    ck_assert_int_eq(tg_conf_load(&c,
                                  write_conf("upstream = http://a:1 weight=2\n"
                                             "time_zone = UTC\n"
                                             "upstream = http://b:2\n"),
                                  &err),
                     TG_OK);
    /* The first line replaces the default, the next adds to it. */
    ck_assert_str_eq(c.upstream, "http://a:1 weight=2\nhttp://b:2");
    ck_assert_int_eq(c.upstream_lines, 2);
}
END_TEST

START_TEST(unknown_key_names_file_and_line)
{
    struct tg_conf c;
    struct tg_err err = {0};
    char want[128];

    ck_assert_int_eq(
        tg_conf_load(&c, write_conf("time_zone = UTC\n\nbogus = 1\n"), &err),
        TG_E_CONFIG);
    snprintf(want, sizeof(want), "%s:3: unknown key 'bogus'", path);
    ck_assert_str_eq(err.msg, want);
}
END_TEST

START_TEST(line_without_equals_is_an_error)
{
    struct tg_conf c;
    struct tg_err err = {0};

    ck_assert_int_eq(tg_conf_load(&c, write_conf("time_zone UTC\n"), &err),
                     TG_E_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, ":1: expected `key = value`"));
}
END_TEST

START_TEST(missing_file_is_an_error)
{
    struct tg_conf c;
    struct tg_err err = {0};

    ck_assert_int_eq(tg_conf_load(&c, "/nonexistent/tollgate.conf", &err),
                     TG_E_CONFIG);
    ck_assert_str_eq(err.msg, "cannot read /nonexistent/tollgate.conf: No "
                              "such file or directory");
}
END_TEST

START_TEST(overlong_line_is_an_error)
{
    struct tg_conf c;
    struct tg_err err = {0};
    char *text = malloc(TG_CONF_LINE_MAX + 64);

    memset(text, 'x', TG_CONF_LINE_MAX + 10);
    memcpy(text, "db = ", 5);
    strcpy(text + TG_CONF_LINE_MAX + 10, "\ntime_zone = UTC\n");
    ck_assert_int_eq(tg_conf_load(&c, write_conf(text), &err), TG_E_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, ":1: line longer than"));
    free(text);
}
END_TEST

START_TEST(value_too_long_for_its_field_is_an_error)
{
    struct tg_conf c;
    struct tg_err err = {0};

    ck_assert_int_eq(
        tg_conf_load(
            &c, write_conf("key_prefix = abcdefghijklmnopqrstuvwxyz\n"), &err),
        TG_E_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, ":1: key_prefix: value longer"));
}
END_TEST

static const char *const bad_numbers[] = {
    "-1", "abc", "12abc", " 5", "", "99999999999999999999", "0", "+3"};

START_TEST(numbers_are_bounded_and_whole)
{
    struct tg_conf c;
    struct tg_err err = {0};
    char line[96];

    tg_conf_defaults(&c);
    snprintf(line, sizeof(line), "threads = %s", bad_numbers[_i]);
    if (bad_numbers[_i][0] == ' ') /* trimmed: " 5" is fine in a file */
        ck_assert_int_eq(tg_conf_set_line(&c, line, "t", &err), TG_OK);
    else
        ck_assert_int_eq(tg_conf_set_line(&c, line, "t", &err), TG_E_CONFIG);
}
END_TEST

START_TEST(path_comes_from_flag_then_environment_then_default)
{
    unsetenv("TOLLGATE_CONFIG");
    ck_assert_str_eq(tg_conf_path(NULL), TG_CONF_DEFAULT_PATH);
    setenv("TOLLGATE_CONFIG", "/tmp/env.conf", 1);
    ck_assert_str_eq(tg_conf_path(NULL), "/tmp/env.conf");
    ck_assert_str_eq(tg_conf_path("/tmp/flag.conf"), "/tmp/flag.conf");
    unsetenv("TOLLGATE_CONFIG");
}
END_TEST

/* Every case removes the file it wrote. */
#define ADD(suite, name, fn)                                                   \
    do {                                                                       \
        TCase *t_ = tcase_create(name);                                        \
        tcase_add_checked_fixture(t_, NULL, cleanup);                          \
        tcase_add_test(t_, fn);                                                \
        suite_add_tcase(suite, t_);                                            \
    } while (0)

static Suite *
conf_suite(void)
{
    Suite *s = suite_create("conf");
    TCase *tc;

    ADD(s, "defaults hold without a key", defaults_hold_without_a_key);
    ADD(s, "comments, blanks and spaces are ignored",
        comments_blanks_and_spaces_are_ignored);
    ADD(s, "a repeated upstream line adds to the list",
        a_repeated_upstream_line_adds_to_the_list);
    ADD(s, "an unknown key names file and line",
        unknown_key_names_file_and_line);
    ADD(s, "a line without = is an error", line_without_equals_is_an_error);
    ADD(s, "a missing file is an error", missing_file_is_an_error);
    ADD(s, "an overlong line is an error", overlong_line_is_an_error);
    ADD(s, "a value too long for its field is an error",
        value_too_long_for_its_field_is_an_error);
    tc = tcase_create("numbers are bounded and whole");
    tcase_add_loop_test(tc, numbers_are_bounded_and_whole, 0,
                        sizeof(bad_numbers) / sizeof(bad_numbers[0]));
    suite_add_tcase(s, tc);
    ADD(s, "the path comes from the flag, then the environment",
        path_comes_from_flag_then_environment_then_default);
    return s;
}

TG_CHECK_MAIN(conf_suite)
