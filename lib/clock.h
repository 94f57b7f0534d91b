/* Milliseconds on the monotonic clock: for durations, time-outs and
 * back-offs, which must not jump when the wall clock is set. */
#ifndef TG_CLOCK_H
#define TG_CLOCK_H

#include <stdint.h>

int64_t tg_clock_ms(void);

#endif
