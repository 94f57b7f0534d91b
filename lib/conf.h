/* The one configuration file: `key = value` lines, `#` comments. Every
 * program and the CLI read the same file, so one table lists every key. */
#ifndef TG_CONF_H
#define TG_CONF_H

#include <stdint.h>

#include "err.h"

#define TG_CONF_DEFAULT_PATH "/etc/tollgate/tollgate.conf"
#define TG_CONF_LINE_MAX 4096 /* a longer line is an error, not truncated */
#define TG_CONF_STR_MAX 1024
#define TG_CONF_LIST_MAX 8192 /* a repeatable key's lines, '\n'-joined */

struct tg_conf {
    char db[TG_CONF_STR_MAX];          /* libpq conninfo */
    char secret_file[TG_CONF_STR_MAX]; /* HMAC key for key hashes, tickets */
    char time_zone[64];                /* IANA name for quota periods */
    char key_prefix[17];               /* shown at the start of every key */
    char log_level[8];                 /* error, warn, info, debug */
    char log_target[8];                /* stderr or syslog */
    char sql_dir[TG_CONF_STR_MAX];     /* migrations for `tollgate migrate` */
    /* Ollama base URLs with options, one `upstream` line each (upspec.h);
     * the settings table's upstream_url, when not empty, replaces them. */
    char upstream[TG_CONF_LIST_MAX];
    int upstream_lines;                 /* `upstream` lines read so far */
    char authz_listen[TG_CONF_STR_MAX]; /* host:port or unix socket path */
    char relay_listen[TG_CONF_STR_MAX];
    char socket_group[64]; /* group of the unix sockets (0660); "": own */
    char spool_dir[TG_CONF_STR_MAX]; /* settlements awaiting the database */
    char trust_remote_user[4];       /* yes: the web server logs in */
    char passthrough_unknown[4];     /* yes: any key may call other paths */
    char accept_body_key[4];         /* yes: "api_key" in the JSON body too */
    char cors_origins[TG_CONF_STR_MAX]; /* comma list or *; empty: no CORS */
    char admin_password_file[TG_CONF_STR_MAX]; /* PBKDF2 hash of it */
    char master_key_file[TG_CONF_STR_MAX];     /* Bearer for the admin API */
    char metrics_allow[TG_CONF_STR_MAX];       /* addresses /metrics answers */
    int64_t threads;              /* FastCGI worker threads per program */
    int64_t reservation_tokens;   /* default R per request */
    int64_t output_cap;           /* default output cap per request, 0: none */
    int64_t reservation_ttl;      /* seconds a claimed reservation lives */
    int64_t claim_ttl;            /* seconds a ticket is good for */
    int64_t max_body_bytes;       /* request body limit at the relay */
    int64_t upstream_timeout;     /* seconds without upstream data: 504 */
    int64_t connect_timeout;      /* seconds to connect to the upstream */
    int64_t db_connect_timeout;   /* seconds to connect to PostgreSQL */
    int64_t statement_timeout;    /* milliseconds per SQL statement */
    int64_t db_pool_wait;         /* ms to wait for a free connection: 503 */
    int64_t db_pool_size;         /* PostgreSQL connections per program */
    int64_t usage_retention_days; /* sweep deletes older events; 0 keeps */
    int64_t admin_session_ttl;    /* seconds an admin login lasts */
    int64_t upstream_tries;       /* upstreams (and keys) tried per request */
    int64_t ip_trust_ttl;  /* seconds POST /auth trusts an address; 0: off */
    int64_t body_timeout;  /* seconds for a whole request body: 408 */
    int64_t body_min_rate; /* bytes/s a body must keep up; 0: any */
    int64_t body_reads_per_key; /* slow body reads at once per key: 429 */
    int64_t body_reads_keyless; /* ... of keys in the body, all together */
};

/* Fills every field with its default. */
void tg_conf_defaults(struct tg_conf *c);

/* The file to read: `explicit` if not NULL, else $TOLLGATE_CONFIG, else the
 * default path. Borrowed: valid while the environment is unchanged. */
const char *tg_conf_path(const char *explicit_path);

/* Defaults, then the file. An unknown key, a value out of range, a missing
 * file or an overlong line is an error naming `file:line`. */
enum tg_code tg_conf_load(struct tg_conf *c, const char *path,
                          struct tg_err *err) TG_MUSTCHECK;

/* Parses one `key = value` line (comments and blanks are fine). */
enum tg_code tg_conf_set_line(struct tg_conf *c, const char *line,
                              const char *where,
                              struct tg_err *err) TG_MUSTCHECK;

/* Bounded decimal parse: the whole string, no sign games, within [min,max]. */
enum tg_code tg_conf_parse_int(const char *s, int64_t min, int64_t max,
                               int64_t *out);

#endif
