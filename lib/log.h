/* One line per event, written with one write(2) so concurrent threads never
 * interleave. Lines carry a request id; keys are masked before they get here.
 */
#ifndef TG_LOG_H
#define TG_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

enum tg_log_level { TG_LOG_ERROR, TG_LOG_WARN, TG_LOG_INFO, TG_LOG_DEBUG };

#define TG_LOG_LINE_MAX 2048
#define TG_RID_LEN 16 /* our own ids: 8 random bytes in hex */
#define TG_RID_MAX 64

/* Sets the program name, threshold ("error".."debug") and target ("stderr"
 * or "syslog"). Call once, before threads start. */
enum tg_code tg_log_open(const char *prog, const char *level,
                         const char *target, struct tg_err *err) TG_MUSTCHECK;

bool tg_log_enabled(enum tg_log_level level);

/* rid may be NULL for lines that belong to no request. */
void tg_log(enum tg_log_level level, const char *rid, const char *fmt, ...)
    TG_PRINTF(3, 4);

/* The web server's X-Request-Id when it is 1-64 of [A-Za-z0-9._-], else a
 * fresh random id; out holds TG_RID_MAX + 1 bytes. */
void tg_log_rid(const char *from_server, char out[TG_RID_MAX + 1]);

#endif
