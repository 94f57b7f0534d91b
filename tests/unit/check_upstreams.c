/* upstreams: the choice among upstreams, their back-off, and the key
 * penalty box. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "upstreams.h"

static struct relay_upstreams *
list(const char *text)
{
    struct tg_err err = {0};
    struct relay_upstreams *u = relay_upstreams_new(text, &err);

    ck_assert_msg(u != NULL, "%s", err.msg);
    return u;
}

static int
pick(struct relay_upstreams *u, const char *model, struct relay_pick *p)
{
    return relay_upstreams_pick(u, model, 0, p) ? p->idx : -1;
}

START_TEST(fewest_in_flight_then_fewest_tokens_then_weight)
{
    struct relay_upstreams *u = list("http://a:1,http://b:2 weight=2");
    struct relay_pick p1, p2, p3;

    ck_assert_int_eq(pick(u, "m", &p1), 1); /* all even: the weight */
    ck_assert_int_eq(pick(u, "m", &p2), 0); /* b has one in flight */
    ck_assert_int_eq(pick(u, "m", &p3), 1); /* one each: the weight */
    relay_upstreams_done(u, &p1, RELAY_UP_OK, 0, 500, NULL);
    relay_upstreams_done(u, &p2, RELAY_UP_OK, 0, 100, NULL);
    relay_upstreams_done(u, &p3, RELAY_UP_OK, 0, 500, NULL);
    ck_assert_int_eq(pick(u, "m", &p1), 0); /* a: 100 tokens, b: 1000 */
    relay_upstreams_done(u, &p1, RELAY_UP_OK, 0, 0, NULL);
    relay_upstreams_free(u);
}
END_TEST

START_TEST(a_failed_upstream_waits_out_its_back_off)
{
    struct relay_upstreams *u = list("http://a:1\nhttp://b:2");
    struct relay_up_state s[2];
    struct relay_pick p;

    ck_assert_int_eq(pick(u, "m", &p), 0);
    relay_upstreams_done(u, &p, RELAY_UP_FAILED, 0, 0, "refused");
    ck_assert_int_eq(pick(u, "m", &p), 1);
    relay_upstreams_done(u, &p, RELAY_UP_OK, 0, 0, NULL);
    ck_assert_int_eq(relay_upstreams_state(u, s, 2), 2);
    ck_assert(!s[0].healthy && s[0].down_ms > 0 && s[0].down_ms <= 2000);
    ck_assert_str_eq(s[0].why, "refused");
    ck_assert(s[1].healthy);
    /* Skipped for this request, the other is all there is. */
    ck_assert(relay_upstreams_pick(u, "m", 2u, &p) && p.idx == 0);
    relay_upstreams_done(u, &p, RELAY_UP_OK, 0, 0, NULL);
    ck_assert(!relay_upstreams_pick(u, "m", 3u, &p));
    relay_upstreams_free(u);
}
END_TEST

START_TEST(a_rejected_key_goes_to_the_penalty_box)
{
    char dir[] = "/tmp/tg-ups-XXXXXX", file[64], text[128];
    struct relay_upstreams *u;
    struct relay_up_state s;
    struct relay_pick p;
    FILE *f;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(file, sizeof(file), "%s/keys", dir);
    f = fopen(file, "w");
    fputs("# two keys\nkey-one-0123456789abcdef\n\nkey-two-0123456789abcdef\n",
          f);
    fclose(f);
    snprintf(text, sizeof(text), "http://a:1 key_file=%s", file);
    u = list(text);
    ck_assert_int_eq(pick(u, "m", &p), 0);
    ck_assert_str_eq(p.auth, "Authorization: Bearer key-one-0123456789abcdef");
    ck_assert(strstr(p.key_hint, "0123") == NULL); /* masked */
    relay_upstreams_done(u, &p, RELAY_UP_REJECTED, 120, 0, "HTTP 429");
    ck_assert_int_eq(pick(u, "m", &p), 0);
    ck_assert_str_eq(p.auth, "Authorization: Bearer key-two-0123456789abcdef");
    relay_upstreams_done(u, &p, RELAY_UP_REJECTED, 0, 0, "HTTP 401");
    /* Both boxed: nothing to pick, and the upstream counts as down. */
    ck_assert_int_eq(pick(u, "m", &p), -1);
    ck_assert_int_eq(relay_upstreams_state(u, &s, 1), 1);
    ck_assert(!s.healthy);
    ck_assert(s.keys[0].penalty_ms > 100000 && s.keys[0].penalty_ms <= 120000);
    ck_assert(s.keys[1].penalty_ms > 0 && s.keys[1].penalty_ms <= 1000);
    relay_upstreams_free(u);
    unlink(file);
    rmdir(dir);
}
END_TEST

START_TEST(the_table_replaces_the_file_and_keeps_state)
{
    struct relay_upstreams *u = list("http://a:1");
    struct relay_up_state s[2];
    struct relay_pick p;

    ck_assert_int_eq(pick(u, "m", &p), 0);
    relay_upstreams_refresh(u, "http://b:2,http://a:1 models=x");
    ck_assert_int_eq(relay_upstreams_state(u, s, 2), 2);
    ck_assert_int_eq(s[1].in_flight, 1); /* a's request still counts */
    relay_upstreams_done(u, &p, RELAY_UP_OK, 0, 7, NULL);
    ck_assert_int_eq(relay_upstreams_state(u, s, 2), 2);
    ck_assert_int_eq(s[1].in_flight, 0);
    ck_assert_int_eq(s[1].tokens_2h, 7);
    ck_assert_int_eq(pick(u, "y", &p), 0); /* a serves only x */
    relay_upstreams_done(u, &p, RELAY_UP_OK, 0, 0, NULL);
    relay_upstreams_refresh(u, "not a list"); /* kept: logged */
    relay_upstreams_refresh(u, "");           /* the file's again */
    ck_assert_int_eq(relay_upstreams_state(u, s, 2), 1);
    ck_assert_str_eq(s[0].spec.url, "http://a:1");
    relay_upstreams_free(u);
}
END_TEST

static Suite *
upstreams_suite(void)
{
    Suite *s = suite_create("upstreams");

    TG_TCASE(s, "fewest in flight, then fewest tokens, then weight",
             fewest_in_flight_then_fewest_tokens_then_weight);
    TG_TCASE(s, "a failed upstream waits out its back-off",
             a_failed_upstream_waits_out_its_back_off);
    TG_TCASE(s, "a rejected key goes to the penalty box",
             a_rejected_key_goes_to_the_penalty_box);
    TG_TCASE(s, "the table replaces the file and keeps state",
             the_table_replaces_the_file_and_keeps_state);
    return s;
}

TG_CHECK_MAIN(upstreams_suite)
