/* Unit tests for the replication quotas (replica.h, "Replication quotas"): the rate as
 * Kafka's ReplicationQuotaManager measures it (a burst is measured over one sample's
 * length, samples dropped after samples × window, the bound itself still acceptable),
 * how long a throttled sender waits, that a sender that checks before it sends gets the
 * bound over a long run and is never starved, and the sets of throttled partitions. A
 * fake clock throughout: times are arguments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/base.h"
#include "replica/replica.h"

static void test_unbounded_never_exceeded(void **state)
{
    (void)state;
    struct repl_quota q;
    repl_quota_init(&q, REPL_QUOTA_UNBOUNDED, 11, 1000);
    for (int64_t t = 0; t < 100; t++)
        repl_quota_record(&q, INT32_MAX, t);
    assert_false(repl_quota_exceeded(&q, 100));
    assert_int_equal(repl_quota_wait_ms(&q, 100), 0);
    assert_int_equal(q.used, 0); /* nothing kept: no rate to enforce */
}

static void test_rate_over_one_sample_at_least(void **state)
{
    (void)state;
    struct repl_quota q;
    repl_quota_init(&q, 1000, 11, 1000);
    assert_false(repl_quota_exceeded(&q, 0));
    /* 1000 bytes at once: measured over one window (1 s), not over 0 ms: at the bound,
     * which is still acceptable (Kafka's Quota.acceptable is value <= bound). */
    repl_quota_record(&q, 1000, 5000);
    assert_true(repl_quota_rate(&q, 5000) == 1000.0);
    assert_false(repl_quota_exceeded(&q, 5000));
    repl_quota_record(&q, 1, 5000);
    assert_true(repl_quota_exceeded(&q, 5000));
    /* 1001 bytes over 1.001 s is the bound again; the wait says so. */
    assert_int_equal(repl_quota_wait_ms(&q, 5000), 1002);
    assert_true(repl_quota_exceeded(&q, 5000 + 1000));
    assert_false(repl_quota_exceeded(&q, 5000 + 1002));
    /* Later samples: the rate is over the time since the oldest one started. */
    repl_quota_record(&q, 2000, 7000); /* 3001 bytes over 2 s */
    assert_true(repl_quota_exceeded(&q, 7000));
    assert_int_equal(repl_quota_wait_ms(&q, 7000), 1002); /* 3001 bytes need 3.001 s */
    assert_false(repl_quota_exceeded(&q, 8002));
}

static void test_samples_dropped_after_the_window(void **state)
{
    (void)state;
    struct repl_quota q;
    repl_quota_init(&q, 1000, 2, 1000); /* a 2 s window */
    repl_quota_record(&q, 50000, 0);
    /* 50 s at the bound, were the bytes kept; they go after 2 s of quiet. */
    assert_int_equal(repl_quota_wait_ms(&q, 0), 2000);
    assert_true(repl_quota_exceeded(&q, 1999));
    assert_false(repl_quota_exceeded(&q, 2000));
    assert_true(repl_quota_rate(&q, 2000) == 0.0);
    /* A sample stays while bytes keep arriving in it (its last one counts), and the
     * ring reuses the oldest sample when a new one starts: at most samples + 1 live. */
    for (int64_t t = 10000; t < 20000; t += 100)
        repl_quota_record(&q, 10, t);
    assert_true(q.used <= 3);
    double r = repl_quota_rate(&q, 20000);
    assert_true(r >= 90.0 && r <= 110.0); /* 100 B/s */
}

/* A sender that checks before each batch and sleeps the wait when over. Over a long run
 * it gets at least the bound, and at most the bound plus one batch per window span
 * (samples × window): the check lets a batch through whenever the rate is at or under
 * the bound, and a batch bigger than the span's allowance goes whole once the span has
 * forgotten the last one — Kafka's quota does the same, which is why a low rate wants a
 * small replica.fetch.max.bytes or a long window. Waits never exceed the span: no
 * sender is held back for good. */
static void run_sender(int64_t bound, int32_t samples, int64_t batch, int64_t run_ms)
{
    struct repl_quota q;
    repl_quota_init(&q, bound, samples, 1000);
    int64_t now = 0, sent = 0;
    while (now < run_ms) {
        if (!repl_quota_exceeded(&q, now)) {
            repl_quota_record(&q, batch, now);
            sent += batch;
            now += 1; /* sending takes a moment */
            continue;
        }
        int64_t w = repl_quota_wait_ms(&q, now);
        assert_true(w >= 1 && w <= samples * 1000);
        now += w;
    }
    double seconds = (double)run_ms / 1000.0;
    double most = (double)bound + (double)batch / (double)samples;
    assert_true((double)sent >= (double)bound * seconds * 0.95);
    assert_true((double)sent <= most * seconds * 1.05 + (double)batch);
}

static void test_sender_gets_the_bound(void **state)
{
    (void)state;
    run_sender(100000, 11, 1000, 120000);    /* small batches, Kafka's window */
    run_sender(100000, 11, 64000, 120000);   /* batches of most of a second's bytes */
    run_sender(100000, 2, 1048576, 300000);  /* a batch 10 s worth: goes, then a wait */
    run_sender(1000000, 1, 100000, 60000);   /* the shortest window */
    run_sender(5000000, 11, 1048576, 60000); /* a follower's usual fetch size */
}

static void test_zero_bound_still_lets_a_batch_through(void **state)
{
    (void)state;
    struct repl_quota q;
    repl_quota_init(&q, 0, 11, 1000);
    assert_false(repl_quota_exceeded(&q, 0)); /* nothing recorded: rate 0, not above 0 */
    repl_quota_record(&q, 1, 0);
    assert_true(repl_quota_exceeded(&q, 0));
    assert_int_equal(repl_quota_wait_ms(&q, 0), 11000);
    assert_false(repl_quota_exceeded(&q, 11000));
}

static void test_throttled_partitions(void **state)
{
    (void)state;
    struct throttled_partitions t = {0};
    assert_false(throttled_has(&t, 0));
    const int32_t ids[] = {7, 3, 7, 0, 3, 12};
    throttled_set(&t, false, ids, ARRAY_LEN(ids));
    assert_int_equal(t.count, 4);
    for (int32_t p = -1; p < 14; p++)
        assert_int_equal(throttled_has(&t, p), p == 0 || p == 3 || p == 7 || p == 12);
    throttled_set(&t, true, NULL, 0);
    assert_true(throttled_has(&t, 0) && throttled_has(&t, 99));
    throttled_set(&t, false, NULL, 0);
    assert_false(throttled_has(&t, 0));
    assert_null(t.ids);
    throttled_set(&t, false, ids, 1);
    throttled_free(&t);
    assert_false(throttled_has(&t, 7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unbounded_never_exceeded),
        cmocka_unit_test(test_rate_over_one_sample_at_least),
        cmocka_unit_test(test_samples_dropped_after_the_window),
        cmocka_unit_test(test_sender_gets_the_bound),
        cmocka_unit_test(test_zero_bound_still_lets_a_batch_through),
        cmocka_unit_test(test_throttled_partitions),
    };
    return cmocka_run_group_tests_name("throttle", tests, NULL, NULL);
}
