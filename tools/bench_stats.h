/* Measurement and payload pieces of `samsa bench` (tools/bench.c): a fixed-size latency
 * histogram, the record payload format and its check, and a process's CPU time.
 *
 * Kept apart from bench.c so the hot-path pieces (hist_record, bench_payload_fill,
 * bench_payload_check) can be read on their own: none of them allocates. */
#ifndef SAMSA_TOOLS_BENCH_STATS_H
#define SAMSA_TOOLS_BENCH_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- latency histogram ----
 *
 * HDR-style log-linear buckets over nanoseconds: values below 2^HIST_SUB_BITS get a
 * bucket each; above that, every power of two is split into 2^HIST_SUB_BITS equal
 * buckets, so a bucket is at most 1/32 (3.1%) wide relative to its values, from 1 ns to
 * 2^64 ns, in 15 KiB. One histogram per thread (each producer its own, the consumer its
 * own), merged after the threads are joined: no locks or atomics on the hot path. */
#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
    uint64_t count;
    uint64_t max_ns;
    uint64_t bucket[HIST_BUCKETS];
};

static inline unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB) {
        return (unsigned)v;
    }
    unsigned msb = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS here */
    unsigned sub = (unsigned)(v >> (msb - HIST_SUB_BITS)) & (HIST_SUB - 1);
    return (msb - HIST_SUB_BITS + 1) * HIST_SUB + sub;
}

static inline void hist_record(struct hist *h, uint64_t v_ns)
{
    h->bucket[hist_index(v_ns)]++;
    h->count++;
    if (v_ns > h->max_ns) {
        h->max_ns = v_ns;
    }
}

void hist_merge(struct hist *into, const struct hist *from);

/* The value at quantile q (0 < q <= 1) in ns: the upper bound of the bucket holding the
 * ceil(q * count)-th smallest value, capped at the largest value seen, so it never
 * under-reports by more than a bucket's width. 0 for an empty histogram. */
uint64_t hist_quantile(const struct hist *h, double q);

/* ---- record payloads ----
 *
 * Every record value is exactly record_bytes long (no key):
 *   bytes 0..7   send time, CLOCK_MONOTONIC ns, big-endian: end-to-end latency is
 *                measured by the consumer in the same process, so one clock serves both
 *   bytes 8..15  big-endian sequence word: producer number << 48 | record number
 *   bytes 16..   the body: the window of the pool at (record number * body length) mod
 *                BENCH_POOL_BYTES. Consecutive records are consecutive pool bytes, so
 *                a batch of random pool is as incompressible as the pool itself, and
 *                the consumer can recompute every body from the record number alone,
 *                which also lets `--verify` check records written by an earlier run.
 * The pool is seeded with a constant for that reason. */
#define BENCH_HEADER_BYTES 16
#define BENCH_POOL_BYTES (16u << 20)
#define BENCH_SEQ_BITS 48
#define BENCH_SEQ_MASK ((UINT64_C(1) << BENCH_SEQ_BITS) - 1)
/* Producer number of warm-up records: one per partition and producer, sent before the
 * clock starts so connections and leader look-ups are not measured; the consumer and
 * --verify skip them. */
#define BENCH_WARMUP_PRODUCER 0xFFFFu

struct bench_pool {
    unsigned char *bytes; /* BENCH_POOL_BYTES + body_bytes, owned */
    size_t body_bytes;    /* record_bytes - BENCH_HEADER_BYTES */
};

/* Fills the pool: xorshift output, or with `compressible` a repeated sentence that
 * compresses well (for measuring compression codecs). Returns 0 or -1 (out of memory). */
int bench_pool_init(struct bench_pool *p, size_t record_bytes, bool compressible);
void bench_pool_free(struct bench_pool *p);

/* Writes record `seq`'s value (record_bytes bytes) into dst. */
void bench_payload_fill(const struct bench_pool *p, unsigned char *dst, uint64_t send_ns,
                        uint64_t producer, uint64_t seq);

/* Reads the header of a value of at least BENCH_HEADER_BYTES. */
uint64_t bench_payload_send_ns(const void *value);
uint64_t bench_payload_seq_word(const void *value);

/* True when the body of `value` (record_bytes long) is the one record `seq` carries. */
bool bench_payload_body_ok(const struct bench_pool *p, const void *value, uint64_t seq);

/* ---- broker CPU ---- */

/* user + system CPU seconds process pid has used so far, from /proc/<pid>/stat; returns
 * 0 or -1 after printing why (no such process, not Linux). */
int bench_proc_cpu_seconds(pid_t pid, double *seconds);

/* CLOCK_MONOTONIC in ns. */
uint64_t bench_now_ns(void);

#endif
