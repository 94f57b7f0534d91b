/* Configuration: one table of name, type, field, default and bounds, so a
 * new setting is one line and every setting is validated the same way. */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

enum kind { K_STR, K_INT, K_YESNO, K_LIST };

struct param {
    const char *name;
    enum kind kind;
    size_t off;
    size_t size; /* K_STR: the field's capacity */
    const char *def;
    int64_t min, max; /* K_INT bounds */
    size_t count_off; /* K_LIST: the int counting lines read */
};

#define STR(f, d)                                                              \
    {                                                                          \
#f, K_STR, offsetof(struct tg_conf, f),                                \
            sizeof(((struct tg_conf *)0)->f), d, 0, 0, 0                       \
    }
#define YESNO(f, d)                                                            \
    {                                                                          \
#f, K_YESNO, offsetof(struct tg_conf, f),                              \
            sizeof(((struct tg_conf *)0)->f), d, 0, 0, 0                       \
    }
/* Repeatable: the first line replaces the default, later ones add to it. */
#define LIST(f, d)                                                             \
    {                                                                          \
#f, K_LIST, offsetof(struct tg_conf, f),                               \
            sizeof(((struct tg_conf *)0)->f), d, 0, 0,                         \
            offsetof(struct tg_conf, f##_lines)                                \
    }
#define INT(f, d, lo, hi)                                                      \
    {                                                                          \
#f, K_INT, offsetof(struct tg_conf, f), 0, #d, lo, hi, 0               \
    }

static const struct param params[] = {
    STR(db, "dbname=tollgate"),
    STR(secret_file, "/etc/tollgate/secret"),
    STR(time_zone, "UTC"),
    STR(key_prefix, "sk-tg-"),
    STR(log_level, "info"),
    STR(log_target, "stderr"),
    STR(sql_dir, "/usr/local/share/tollgate/sql"),
    LIST(upstream, "http://127.0.0.1:11434"),
    STR(authz_listen, "127.0.0.1:9001"),
    STR(relay_listen, "/run/tollgate/relay.sock"),
    STR(socket_group, ""),
    STR(spool_dir, "/var/lib/tollgate/spool"),
    YESNO(trust_remote_user, "no"),
    YESNO(passthrough_unknown, "no"),
    YESNO(accept_body_key, "no"),
    STR(cors_origins, ""),
    STR(admin_password_file, "/etc/tollgate/admin_password"),
    STR(master_key_file, ""),
    STR(metrics_allow, "127.0.0.1"),
    INT(threads, 32, 1, 1024),
    INT(reservation_tokens, 2048, 1, 100000000),
    INT(output_cap, 0, 0, 100000000),
    INT(reservation_ttl, 900, 10, 86400),
    INT(claim_ttl, 90, 2, 3600),
    INT(max_body_bytes, 10485760, 1024, 1073741824),
    INT(upstream_timeout, 600, 1, 86400),
    INT(connect_timeout, 10, 1, 600),
    INT(db_connect_timeout, 5, 1, 600),
    INT(statement_timeout, 5000, 0, 3600000),
    INT(db_pool_size, 8, 1, 256),
    INT(db_pool_wait, 10000, 100, 600000),
    INT(usage_retention_days, 0, 0, 36500),
    INT(admin_session_ttl, 43200, 60, 604800),
    INT(upstream_tries, 3, 1, 32),
    INT(ip_trust_ttl, 0, 0, 2592000),
    INT(body_timeout, 60, 1, 3600),
    INT(body_min_rate, 1024, 0, 1073741824),
    INT(body_reads_per_key, 4, 1, 1024),
    INT(body_reads_keyless, 4, 1, 1024),
};

enum tg_code
tg_conf_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    long long v;

    if (s == NULL || !isdigit((unsigned char)s[0]))
        return TG_E_USAGE; /* no sign, no blanks: "-1" and " 1" are typos */
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return TG_E_USAGE;
    *out = v;
    return TG_OK;
}

static enum tg_code
add_line(struct tg_conf *c, const struct param *p, const char *val,
         const char *where, struct tg_err *err)
{
    char *field = (char *)c + p->off;
    int *lines = (int *)(void *)((char *)c + p->count_off);
    size_t have = *lines > 0 ? strlen(field) : 0, n = strlen(val);

    if (have + n + 2 > p->size)
        return tg_err_set(err, TG_E_CONFIG,
                          "%s: %s: the lines add up to more than %zu bytes",
                          where, p->name, p->size - 2);
    if (have > 0)
        field[have++] = '\n';
    memcpy(field + have, val, n + 1);
    if (strcmp(where, "default") != 0)
        (*lines)++;
    return TG_OK;
}

static enum tg_code
set_param(struct tg_conf *c, const struct param *p, const char *val,
          const char *where, struct tg_err *err)
{
    char *field = (char *)c + p->off;
    size_t n = strlen(val);

    if (p->kind == K_YESNO && strcmp(val, "yes") != 0 && strcmp(val, "no") != 0)
        return tg_err_set(err, TG_E_CONFIG, "%s: %s: use yes or no", where,
                          p->name);
    if (p->kind == K_LIST)
        return add_line(c, p, val, where, err);
    if (p->kind == K_STR || p->kind == K_YESNO) {
        if (n >= p->size)
            return tg_err_set(err, TG_E_CONFIG, "%s: %s: value longer than %zu",
                              where, p->name, p->size - 1);
        memcpy(field, val, n + 1);
        return TG_OK;
    }
    if (tg_conf_parse_int(val, p->min, p->max, (int64_t *)(void *)field) !=
        TG_OK)
        return tg_err_set(err, TG_E_CONFIG,
                          "%s: %s: want a whole number from %lld to %lld",
                          where, p->name, (long long)p->min, (long long)p->max);
    return TG_OK;
}

void
tg_conf_defaults(struct tg_conf *c)
{
    size_t i;

    memset(c, 0, sizeof(*c));
    for (i = 0; i < sizeof(params) / sizeof(params[0]); i++)
        if (set_param(c, &params[i], params[i].def, "default", NULL) != TG_OK)
            abort(); /* a default that does not fit is a build bug */
}

const char *
tg_conf_path(const char *explicit_path)
{
    const char *env = getenv("TOLLGATE_CONFIG");

    if (explicit_path != NULL)
        return explicit_path;
    if (env != NULL && env[0] != '\0')
        return env;
    return TG_CONF_DEFAULT_PATH;
}

static char *
trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

enum tg_code
tg_conf_set_line(struct tg_conf *c, const char *line, const char *where,
                 struct tg_err *err)
{
    char buf[TG_CONF_LINE_MAX + 1];
    char *key, *val, *eq;
    size_t i, n = strlen(line);

    if (n > TG_CONF_LINE_MAX)
        return tg_err_set(err, TG_E_CONFIG, "%s: line longer than %d bytes",
                          where, TG_CONF_LINE_MAX);
    memcpy(buf, line, n + 1);
    key = trim(buf);
    if (key[0] == '\0' || key[0] == '#')
        return TG_OK;
    eq = strchr(key, '=');
    if (eq == NULL)
        return tg_err_set(err, TG_E_CONFIG, "%s: expected `key = value`",
                          where);
    *eq = '\0';
    key = trim(key);
    val = trim(eq + 1);
    for (i = 0; i < sizeof(params) / sizeof(params[0]); i++)
        if (strcmp(params[i].name, key) == 0)
            return set_param(c, &params[i], val, where, err);
    return tg_err_set(err, TG_E_CONFIG, "%s: unknown key '%.64s'", where, key);
}

enum tg_code
tg_conf_load(struct tg_conf *c, const char *path, struct tg_err *err)
{
    enum tg_code rc = TG_E_IO;
    char line[TG_CONF_LINE_MAX + 2], where[TG_CONF_STR_MAX + 32];
    unsigned lineno = 0;
    FILE *f;

    tg_conf_defaults(c);
    f = fopen(path, "r");
    if (f == NULL)
        return tg_err_set(err, TG_E_CONFIG, "cannot read %s: %s", path,
                          strerror(errno));
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t n = strlen(line);

        lineno++;
        snprintf(where, sizeof(where), "%s:%u", path, lineno);
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        else if (!feof(f)) {
            rc = tg_err_set(err, TG_E_CONFIG, "%s: line longer than %d bytes",
                            where, TG_CONF_LINE_MAX);
            goto out;
        }
        rc = tg_conf_set_line(c, line, where, err);
        if (rc != TG_OK)
            goto out;
    }
    rc =
        ferror(f) ? tg_err_set(err, TG_E_IO, "reading %s failed", path) : TG_OK;
out:
    fclose(f);
    return rc;
}
