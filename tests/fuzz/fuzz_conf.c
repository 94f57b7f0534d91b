/* The config parser, one line at a time as tg_conf_load feeds it. A line
 * that fails leaves the configuration as it was; one that passes can be
 * applied again to the same effect (a repeatable key's line adds itself
 * once more, or fails for want of room); every field stays terminated and
 * every number within its bounds whatever was accepted. */
#include <config.h>

#include <string.h>

#include "conf.h"
#include "fuzz.h"

#define STR_OK(c, f) CHECK(memchr((c)->f, '\0', sizeof((c)->f)) != NULL)
#define INT_OK(c, f, lo, hi) CHECK((c)->f >= (lo) && (c)->f <= (hi))

/* The bounds of lib/conf.c's table, written out again on purpose. */
static void
conf_ok(const struct tg_conf *c)
{
    STR_OK(c, db);
    STR_OK(c, secret_file);
    STR_OK(c, time_zone);
    STR_OK(c, key_prefix);
    STR_OK(c, log_level);
    STR_OK(c, log_target);
    STR_OK(c, sql_dir);
    STR_OK(c, upstream);
    STR_OK(c, authz_listen);
    STR_OK(c, relay_listen);
    STR_OK(c, socket_group);
    STR_OK(c, metrics_allow);
    CHECK(c->upstream_lines >= 0);
    INT_OK(c, threads, 1, 1024);
    INT_OK(c, reservation_tokens, 1, 100000000);
    INT_OK(c, reservation_ttl, 10, 86400);
    INT_OK(c, claim_ttl, 2, 3600);
    INT_OK(c, max_body_bytes, 1024, 1073741824);
    INT_OK(c, upstream_timeout, 1, 86400);
    INT_OK(c, connect_timeout, 1, 600);
    INT_OK(c, db_connect_timeout, 1, 600);
    INT_OK(c, statement_timeout, 0, 3600000);
    INT_OK(c, upstream_tries, 1, 32);
    INT_OK(c, ip_trust_ttl, 0, 2592000);
}

/* Applying an accepted line again: the same, unless it was an `upstream`
 * line, which may only add to that list. */
static void
again(struct tg_conf *c, const char *line)
{
    struct tg_conf after = *c, rest;
    struct tg_err err = {0};
    enum tg_code rc = tg_conf_set_line(c, line, "fuzz:1", &err);

    conf_ok(c);
    if (c->upstream_lines == after.upstream_lines) {
        CHECK(rc == TG_OK || strstr(err.msg, "add up") != NULL);
        CHECK(memcmp(&after, c, sizeof(after)) == 0);
        return;
    }
    CHECK(rc == TG_OK && c->upstream_lines == after.upstream_lines + 1);
    CHECK(strncmp(c->upstream, after.upstream, strlen(after.upstream)) == 0);
    rest = *c;
    memcpy(rest.upstream, after.upstream, sizeof(rest.upstream));
    rest.upstream_lines = after.upstream_lines;
    CHECK(memcmp(&after, &rest, sizeof(after)) == 0);
}

static void
check_line(struct tg_conf *c, const char *line)
{
    struct tg_conf before = *c;
    struct tg_err err = {0};
    enum tg_code rc = tg_conf_set_line(c, line, "fuzz:1", &err);
    int64_t v;

    conf_ok(c);
    if (rc != TG_OK) {
        CHECK(rc == TG_E_CONFIG && err.code == TG_E_CONFIG);
        CHECK(strncmp(err.msg, "fuzz:1: ", 8) == 0);
        CHECK(strpbrk(err.msg, "\n\r") == NULL); /* one log line */
        CHECK(memcmp(&before, c, sizeof(before)) == 0);
    } else {
        again(c, line);
    }
    if (tg_conf_parse_int(line, 0, 86400, &v) == TG_OK)
        CHECK(v >= 0 && v <= 86400);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *line, *nl;
    struct tg_conf c;

    CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    memset(&c, 0, sizeof(c)); /* padding too: the struct is compared whole */
    tg_conf_defaults(&c);
    conf_ok(&c);
    for (line = text; line != NULL; line = nl) {
        nl = strchr(line, '\n');
        if (nl != NULL)
            *nl++ = '\0';
        check_line(&c, line);
    }
    free(text);
    return 0;
}
