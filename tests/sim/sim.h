/* What the deterministic simulators (raft_sim.c, metadata_sim.c) share: the one seeded
 * PRNG every decision comes from, the hash that digests states, and the trace and
 * first-failure recording. Each simulator includes it once; the state is its own. */
#ifndef SAMSA_TESTS_SIM_H
#define SAMSA_TESTS_SIM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

static bool trace;
static uint64_t rng_state; /* seeded per run: one seed replays a run exactly */

static inline uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}
static inline uint64_t rnd_n(uint64_t n)
{
    return n ? rnd() % n : 0;
}
static inline int64_t rnd_range(int64_t lo, int64_t hi) /* inclusive */
{
    return lo + (int64_t)rnd_n((uint64_t)(hi - lo + 1));
}
static inline bool chance(uint32_t per_mille)
{
    return rnd_n(1000) < per_mille;
}

static inline uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

/* A line of the trace, stamped with the simulated time; s is a simulator's state with
 * an int64 `now`. */
#define TRACE(s, ...)                                                                              \
    do {                                                                                           \
        if (trace) {                                                                               \
            printf("%6lld ", (long long)(s)->now);                                                 \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

/* Records the first failure of a run (s->fail, the text in s->fail_buf) and traces it. */
#define SIM_FAILF(s, ...)                                                                          \
    do {                                                                                           \
        if (!(s)->fail) {                                                                          \
            snprintf((s)->fail_buf, sizeof(s)->fail_buf, __VA_ARGS__);                             \
            (s)->fail = (s)->fail_buf;                                                             \
            TRACE(s, "FAIL: %s", (s)->fail_buf);                                                   \
        }                                                                                          \
    } while (0)

#endif
