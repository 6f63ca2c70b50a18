/* Clocks: wall time for record timestamps, monotonic time for timers and timeouts. */
#include "base/base.h"

#include <time.h>

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t time_wall_ms(void)
{
    return clock_ns(CLOCK_REALTIME) / 1000000;
}
int64_t time_mono_ms(void)
{
    return clock_ns(CLOCK_MONOTONIC) / 1000000;
}
int64_t time_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}
