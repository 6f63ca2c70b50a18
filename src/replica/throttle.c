/*
 * Replication quotas (replica.h, "Replication quotas"; KIP-73): the byte rate of
 * throttled replication as Kafka measures it, and the sets of throttled partitions.
 *
 * The rate is Kafka's SimpleRate over a SampledStat, so that a throttle set for Kafka
 * lets through what it would there: samples of window_ms, a ring of samples + 1 of them
 * (Kafka keeps one extra, so that the current sample can start while the oldest one
 * still counts), samples dropped once nothing was recorded in them for samples ×
 * window_ms, and a rate of sum / max(now - oldest start, window_ms). Kafka checks the
 * quota before it sends and records after, and so does the host: the check decides
 * whether throttled data goes at all, never how much of it, so whole batches go and a
 * burst over the bound is paid for by waiting afterwards.
 */
#include "replica/replica.h"

#include "base/base.h"

#include <stdlib.h>
#include <string.h>

/* ---- throttled partitions ---- */

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

void throttled_set(struct throttled_partitions *t, bool all, const int32_t *ids, size_t n)
{
    ASSERT(n <= INT32_MAX);
    free(t->ids);
    *t = (struct throttled_partitions){.all = all};
    if (all || n == 0)
        return;
    t->ids = xmalloc(n * sizeof *t->ids);
    memcpy(t->ids, ids, n * sizeof *ids);
    qsort(t->ids, n, sizeof *t->ids, cmp_i32);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (kept == 0 || t->ids[kept - 1] != t->ids[i])
            t->ids[kept++] = t->ids[i];
    t->count = (int32_t)kept;
}

void throttled_free(struct throttled_partitions *t)
{
    free(t->ids);
    *t = (struct throttled_partitions){0};
}

bool throttled_listed(const struct throttled_partitions *t, int32_t partition)
{
    int32_t lo = 0, hi = t->count;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (t->ids[mid] == partition)
            return true;
        if (t->ids[mid] < partition)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* ---- the rate ---- */

void repl_quota_init(struct repl_quota *q, int64_t bound, int32_t samples, int64_t window_ms)
{
    ASSERT(bound >= 0 && samples >= 1 && samples <= REPL_QUOTA_MAX_SAMPLES && window_ms >= 1);
    memset(q, 0, sizeof *q);
    q->bound = bound;
    q->samples = samples;
    q->window_ms = window_ms;
}

static void sample_reset(struct repl_quota_sample *s, int64_t now_ms)
{
    *s = (struct repl_quota_sample){now_ms, now_ms, 0};
}

/* Kafka's purgeObsoleteSamples: a sample with nothing recorded for samples × window_ms
 * starts afresh now (so it no longer stretches the window back). */
static void purge(struct repl_quota *q, int64_t now_ms)
{
    int64_t expire_ms = (int64_t)q->samples * q->window_ms;
    for (int32_t i = 0; i < q->used; i++)
        if (now_ms - q->s[i].last_ms >= expire_ms)
            sample_reset(&q->s[i], now_ms);
}

void repl_quota_record(struct repl_quota *q, int64_t bytes, int64_t now_ms)
{
    ASSERT(bytes >= 0);
    if (q->bound == REPL_QUOTA_UNBOUNDED)
        return; /* nothing reads the rate */
    if (q->used == 0) {
        sample_reset(&q->s[0], now_ms);
        q->used = 1;
        q->current = 0;
    }
    struct repl_quota_sample *cur = &q->s[q->current];
    if (now_ms - cur->start_ms >= q->window_ms) { /* complete: the next one, in the ring */
        q->current = (q->current + 1) % (q->samples + 1);
        if (q->current == q->used)
            q->used++;
        cur = &q->s[q->current];
        sample_reset(cur, now_ms);
    }
    ASSERT(q->used <= q->samples + 1);
    cur->bytes += bytes;
    cur->last_ms = now_ms;
}

/* The live samples' total and the oldest one's start (now_ms if none). */
static int64_t measure(struct repl_quota *q, int64_t now_ms, int64_t *oldest_ms)
{
    purge(q, now_ms);
    int64_t total = 0;
    *oldest_ms = now_ms;
    for (int32_t i = 0; i < q->used; i++) {
        total += q->s[i].bytes;
        *oldest_ms = MIN(*oldest_ms, q->s[i].start_ms);
    }
    return total;
}

double repl_quota_rate(struct repl_quota *q, int64_t now_ms)
{
    int64_t oldest_ms;
    int64_t total = measure(q, now_ms, &oldest_ms);
    int64_t window_ms = MAX(now_ms - oldest_ms, q->window_ms);
    return (double)total * 1000.0 / (double)window_ms;
}

bool repl_quota_exceeded(struct repl_quota *q, int64_t now_ms)
{
    return q->bound != REPL_QUOTA_UNBOUNDED && repl_quota_rate(q, now_ms) > (double)q->bound;
}

int64_t repl_quota_wait_ms(struct repl_quota *q, int64_t now_ms)
{
    if (!repl_quota_exceeded(q, now_ms))
        return 0;
    int64_t oldest_ms;
    int64_t total = measure(q, now_ms, &oldest_ms);
    int64_t newest_ms = oldest_ms;
    for (int32_t i = 0; i < q->used; i++)
        newest_ms = MAX(newest_ms, q->s[i].last_ms);
    /* By then every sample has been dropped and the rate is 0. */
    int64_t wait_ms = (int64_t)q->samples * q->window_ms - (now_ms - newest_ms);
    if (q->bound > 0) {
        /* total / (elapsed + wait) <= bound, the window being longer than window_ms by
         * then (the rate now is above the bound over at least window_ms). Samples
         * dropped meanwhile change the answer: the caller asks again when it wakes. */
        double needed_ms = (double)total * 1000.0 / (double)q->bound;
        wait_ms = MIN(wait_ms, (int64_t)needed_ms + 1 - (now_ms - oldest_ms));
    }
    return MAX(wait_ms, 1);
}
