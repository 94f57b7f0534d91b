/* One monotonic clock in milliseconds for every program. */
#include <config.h>

#include <time.h>

#include "clock.h"

int64_t
tg_clock_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}
