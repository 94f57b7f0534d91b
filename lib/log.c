/* Logging to stderr or syslog. Timestamps are UTC with milliseconds so lines
 * from the authorizer, the relay and the web server sort together. */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "codec.h"
#include "log.h"

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *log_prog = "tollgate";
static enum tg_log_level log_level = TG_LOG_INFO;
static bool use_syslog;

enum tg_code
tg_log_open(const char *prog, const char *level, const char *target,
            struct tg_err *err)
{
    size_t i;

    log_prog = prog;
    for (i = 0; i < 4; i++)
        if (strcmp(level, level_names[i]) == 0)
            break;
    if (i == 4)
        return tg_err_set(err, TG_E_CONFIG,
                          "log_level '%.16s': use error, warn, info or debug",
                          level);
    log_level = (enum tg_log_level)i;
    if (strcmp(target, "syslog") == 0) {
        use_syslog = true;
        openlog(prog, LOG_PID, LOG_DAEMON);
    } else if (strcmp(target, "stderr") != 0) {
        return tg_err_set(err, TG_E_CONFIG,
                          "log_target '%.16s': use stderr or syslog", target);
    }
    return TG_OK;
}

bool
tg_log_enabled(enum tg_log_level level)
{
    return level <= log_level;
}

void
tg_log(enum tg_log_level level, const char *rid, const char *fmt, ...)
{
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    char line[TG_LOG_LINE_MAX], msg[TG_LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int n;

    if (!tg_log_enabled(level))
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line),
                 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s rid=%s ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_names[level],
                 log_prog, rid != NULL ? rid : "-");
    if (n < 0 || (size_t)n >= sizeof(line) - 1)
        return;
    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        msg[0] = '\0';
    va_end(ap);
    /* One line, and no byte a client sent can move a terminal's cursor:
     * control bytes are escaped (truncated if need be, still one line). */
    n += (int)tg_err_clean(line + n, sizeof(line) - (size_t)n - 1, msg, false);
    if (use_syslog) {
        line[n] = '\0';
        syslog(prio[level], "%s", line + 25); /* syslog stamps its own time */
        return;
    }
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return; /* nowhere left to report it */
}

static bool
rid_ok(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++) {
        char c = s[n];

        if (n >= TG_RID_MAX ||
            !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

void
tg_log_rid(const char *from_server, char out[TG_RID_MAX + 1])
{
    unsigned char r[TG_RID_LEN / 2];

    if (rid_ok(from_server)) {
        memcpy(out, from_server, strlen(from_server) + 1);
        return;
    }
    if (RAND_bytes(r, sizeof(r)) != 1)
        memset(r, 0, sizeof(r));
    tg_hex_encode(r, sizeof(r), out);
}
