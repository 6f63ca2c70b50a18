/* Clocks: wall time for record timestamps, monotonic time for timers and timeouts; and
 * the fake clock deterministic tests set instead (base.h). */
#include "base/base.h"

#include <stdatomic.h>
#include <time.h>

/* The fake clock: read in every thread, set by the test's thread. */
static atomic_bool fake_on;
static _Atomic int64_t fake_mono_ms, fake_wall_ms;

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t time_wall_ms(void)
{
    if (atomic_load_explicit(&fake_on, memory_order_relaxed))
        return atomic_load(&fake_wall_ms);
    return clock_ns(CLOCK_REALTIME) / 1000000;
}
int64_t time_mono_ms(void)
{
    if (atomic_load_explicit(&fake_on, memory_order_relaxed))
        return atomic_load(&fake_mono_ms);
    return clock_ns(CLOCK_MONOTONIC) / 1000000;
}
int64_t time_mono_ns(void)
{
    if (atomic_load_explicit(&fake_on, memory_order_relaxed))
        return atomic_load(&fake_mono_ms) * 1000000;
    return clock_ns(CLOCK_MONOTONIC);
}

void time_set_fake(int64_t mono_ms, int64_t wall_ms)
{
    atomic_store(&fake_mono_ms, mono_ms);
    atomic_store(&fake_wall_ms, wall_ms);
    atomic_store(&fake_on, true);
}

void time_advance_fake(int64_t ms)
{
    ASSERT(atomic_load(&fake_on) && ms >= 0);
    atomic_fetch_add(&fake_mono_ms, ms);
    atomic_fetch_add(&fake_wall_ms, ms);
}

void time_clear_fake(void)
{
    atomic_store(&fake_on, false);
}
