/* Histograms, payloads and /proc CPU readings for `samsa bench`; see bench_stats.h for
 * the formats. */
#include "bench_stats.h"

#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void hist_merge(struct hist *into, const struct hist *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        into->bucket[i] += from->bucket[i];
    }
    into->count += from->count;
    if (from->max_ns > into->max_ns) {
        into->max_ns = from->max_ns;
    }
}

/* Largest value that maps to bucket i: the inverse of hist_index. */
static uint64_t bucket_upper(unsigned i)
{
    if (i < HIST_SUB) {
        return i;
    }
    unsigned msb = i / HIST_SUB + HIST_SUB_BITS - 1;
    uint64_t sub = i % HIST_SUB;
    uint64_t lower = (HIST_SUB + sub) << (msb - HIST_SUB_BITS);
    uint64_t width = UINT64_C(1) << (msb - HIST_SUB_BITS);
    return lower + (width - 1);
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (h->count == 0) {
        return 0;
    }
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    rank = rank < 1 ? 1 : rank > h->count ? h->count : rank;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t v = bucket_upper(i);
            return v < h->max_ns ? v : h->max_ns;
        }
    }
    return h->max_ns; /* unreachable while count matches the buckets */
}

/* ---- payloads ---- */

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

int bench_pool_init(struct bench_pool *p, size_t record_bytes, bool compressible)
{
    p->body_bytes = record_bytes - BENCH_HEADER_BYTES;
    size_t n = BENCH_POOL_BYTES + p->body_bytes;
    p->bytes = malloc(n);
    if (p->bytes == NULL) {
        return -1;
    }
    if (compressible) {
        /* Text with a little variation (a counter) so codecs have real work but reach
         * ratios typical of logs, rather than the degenerate all-zero case. */
        size_t off = 0;
        for (unsigned line = 0; off < n; line++) {
            char buf[96];
            int len = snprintf(buf, sizeof buf,
                               "level=info subsystem=bench msg=\"record written\" line=%u\n",
                               line % 1000);
            size_t take = (size_t)len < n - off ? (size_t)len : n - off;
            memcpy(p->bytes + off, buf, take);
            off += take;
        }
        return 0;
    }
    /* xorshift64: a constant seed makes the bodies reproducible for --verify. */
    uint64_t x = UINT64_C(0x9E3779B97F4A7C15);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p->bytes + i, &x, 8);
    }
    for (; i < n; i++) {
        p->bytes[i] = (unsigned char)(x >> (8 * (i % 8)));
    }
    return 0;
}

void bench_pool_free(struct bench_pool *p)
{
    free(p->bytes);
    p->bytes = NULL;
}

static const unsigned char *body_of(const struct bench_pool *p, uint64_t seq)
{
    /* Reduce first so the product stays far below 2^64 (both factors < 2^25). */
    return p->bytes + (seq % BENCH_POOL_BYTES) * (uint64_t)p->body_bytes % BENCH_POOL_BYTES;
}

void bench_payload_fill(const struct bench_pool *p, unsigned char *dst, uint64_t send_ns,
                        uint64_t producer, uint64_t seq)
{
    put_be64(dst, send_ns);
    put_be64(dst + 8, producer << BENCH_SEQ_BITS | (seq & BENCH_SEQ_MASK));
    memcpy(dst + BENCH_HEADER_BYTES, body_of(p, seq), p->body_bytes);
}

uint64_t bench_payload_send_ns(const void *value)
{
    return get_be64(value);
}

uint64_t bench_payload_seq_word(const void *value)
{
    return get_be64((const unsigned char *)value + 8);
}

bool bench_payload_body_ok(const struct bench_pool *p, const void *value, uint64_t seq)
{
    return memcmp((const unsigned char *)value + BENCH_HEADER_BYTES, body_of(p, seq),
                  p->body_bytes) == 0;
}

/* ---- /proc ---- */

int bench_proc_cpu_seconds(pid_t pid, double *seconds)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        cli_err("broker pid %d: cannot read %s: %s", (int)pid, path, strerror(errno));
        return -1;
    }
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) is in parentheses and may contain spaces or ')', so
     * parse from the last ')': then state is field 3, utime 14 and stime 15. */
    char *p = strrchr(buf, ')');
    unsigned long long utime, stime;
    if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                            &stime) != 2) {
        cli_err("broker pid %d: cannot parse %s", (int)pid, path);
        return -1;
    }
    long ticks = sysconf(_SC_CLK_TCK);
    *seconds = (double)(utime + stime) / (double)(ticks > 0 ? ticks : 100);
    return 0;
}
