/* Unit tests for the delay timing wheel (delay.h): order, equal due times, far future,
 * big jumps, refills as time moves, cancels, a clock stepped back; and a seeded random
 * comparison with a plain reference model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "delay/delay.h"

#define T0 1796638500000LL
#define MAX_OUT 200000

/* What an advance handed out. */
struct out {
    struct delay_entry e[MAX_OUT];
    size_t n;
};

static void collect(void *arg, const struct delay_entry *e)
{
    struct out *o = arg;
    assert_true(o->n < MAX_OUT);
    o->e[o->n++] = *e;
}

static struct out out;

static size_t advance(struct delay_wheel *w, int64_t now)
{
    out.n = 0;
    size_t n = delay_wheel_advance(w, now, collect, &out);
    assert_int_equal(n, out.n);
    return n;
}

static void add(struct delay_wheel *w, int64_t due, uint64_t seq, int64_t ref)
{
    struct delay_entry e = {due, seq, ref};
    delay_wheel_add(w, &e);
}

static void test_order_within_and_across_levels(void **state)
{
    (void)state;
    struct delay_wheel *w = delay_wheel_new(T0);
    /* Due in 1 ms, 300 ms (level 1), 70 s (level 2), 5 h (level 3), added out of order. */
    add(w, T0 + 5 * 3600 * 1000LL, 1, 10);
    add(w, T0 + 70000, 2, 11);
    add(w, T0 + 1, 3, 12);
    add(w, T0 + 300, 4, 13);
    assert_int_equal(delay_wheel_count(w), 4);
    assert_int_equal(delay_wheel_next_due(w), T0 + 1);
    assert_int_equal(advance(w, T0), 0);
    assert_int_equal(advance(w, T0 + 1), 1);
    assert_int_equal(out.e[0].ref, 12);
    assert_int_equal(advance(w, T0 + 299), 0);
    assert_true(delay_wheel_next_due(w) <= T0 + 300);
    assert_int_equal(advance(w, T0 + 300), 1);
    assert_int_equal(out.e[0].ref, 13);
    assert_int_equal(advance(w, T0 + 69999), 0);
    assert_int_equal(advance(w, T0 + 70000), 1);
    assert_int_equal(out.e[0].ref, 11);
    assert_int_equal(advance(w, T0 + 5 * 3600 * 1000LL - 1), 0); /* a big jump: rebuilt */
    assert_int_equal(delay_wheel_next_due(w), T0 + 5 * 3600 * 1000LL);
    assert_int_equal(advance(w, T0 + 5 * 3600 * 1000LL), 1);
    assert_int_equal(out.e[0].ref, 10);
    assert_int_equal(delay_wheel_count(w), 0);
    assert_int_equal(delay_wheel_next_due(w), INT64_MAX);
    delay_wheel_free(w);
}

/* Entries due in the same millisecond come out in arrival order, whichever level and
 * whenever they were added. */
static void test_equal_due_times_keep_arrival_order(void **state)
{
    (void)state;
    struct delay_wheel *w = delay_wheel_new(T0);
    int64_t due = T0 + 100000; /* level 2 when added now */
    add(w, due, 1, 1);
    add(w, due, 3, 3);
    advance(w, due - 500); /* now at level 1 */
    add(w, due, 2, 2);
    advance(w, due - 10); /* now at level 0 */
    add(w, due, 5, 5);
    add(w, due, 4, 4);
    assert_int_equal(advance(w, due + 3), 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(out.e[i].seq, i + 1);
        assert_int_equal(out.e[i].due_ms, due);
    }
    delay_wheel_free(w);
}

/* Beyond the last level's span (49.7 days): a year ahead, by small steps near the end and
 * by jumps. */
static void test_far_future(void **state)
{
    (void)state;
    struct delay_wheel *w = delay_wheel_new(T0);
    int64_t year = 365LL * 24 * 3600 * 1000;
    add(w, T0 + year, 1, 1);
    add(w, T0 + 2 * year, 2, 2);
    for (int64_t t = T0; t < T0 + year - 2000; t += 3LL * 24 * 3600 * 1000)
        assert_int_equal(advance(w, t), 0);
    assert_int_equal(advance(w, T0 + year - 2000), 0);
    assert_int_equal(advance(w, T0 + year - 1), 0); /* millisecond steps from here */
    assert_int_equal(advance(w, T0 + year), 1);
    assert_int_equal(out.e[0].ref, 1);
    assert_int_equal(advance(w, T0 + 3 * year), 1); /* past it by a year: at once */
    assert_int_equal(out.e[0].ref, 2);
    delay_wheel_free(w);
}

static void test_cancel(void **state)
{
    (void)state;
    struct delay_wheel *w = delay_wheel_new(T0);
    for (int i = 0; i < 100; i++)
        add(w, T0 + 10 * i, (uint64_t)i, i);
    assert_true(delay_wheel_cancel(w, 50));
    assert_false(delay_wheel_cancel(w, 50));
    assert_false(delay_wheel_cancel(w, 1000));
    assert_true(delay_wheel_cancel(w, 0)); /* already due: in the list of due ones */
    assert_int_equal(delay_wheel_count(w), 98);
    assert_int_equal(advance(w, T0 + 1000), 98);
    for (size_t i = 0; i < out.n; i++)
        assert_true(out.e[i].ref != 50 && out.e[i].ref != 0);
    assert_false(delay_wheel_cancel(w, 7)); /* handed out */
    /* A ref handed out may be used again. */
    add(w, T0 + 2000, 1, 7);
    assert_true(delay_wheel_cancel(w, 7));
    delay_wheel_free(w);
}

/* A clock stepped back moves nothing back; entries added due meanwhile still come out. */
static void test_clock_stepped_back(void **state)
{
    (void)state;
    struct delay_wheel *w = delay_wheel_new(T0);
    add(w, T0 + 10, 1, 1);
    assert_int_equal(advance(w, T0 + 10), 1);
    add(w, T0 + 5, 2, 2);  /* already due */
    add(w, T0 + 20, 3, 3); /* not yet */
    assert_int_equal(advance(w, T0 - 60000), 1);
    assert_int_equal(out.e[0].ref, 2);
    assert_int_equal(delay_wheel_now(w), T0 + 10);
    assert_int_equal(advance(w, T0 + 19), 0);
    assert_int_equal(advance(w, T0 + 20), 1);
    delay_wheel_free(w);
}

/* The store refills the wheel with what comes into its window as time moves: entries
 * added at every step, each due soon after, all come out in order at their time. */
static void test_refill_as_time_moves(void **state)
{
    (void)state;
    struct delay_wheel *w = delay_wheel_new(T0);
    uint64_t seq = 0;
    int64_t last_due = INT64_MIN, handed = 0;
    for (int64_t t = T0; t < T0 + 200000; t += 97) {
        for (int k = 0; k < 3; k++, seq++)
            add(w, t + 1 + (int64_t)((seq * 7919) % 5000), seq, (int64_t)seq);
        advance(w, t);
        for (size_t i = 0; i < out.n; i++) {
            assert_true(out.e[i].due_ms <= t);
            assert_true(out.e[i].due_ms >= last_due);
            assert_true(out.e[i].due_ms > t - 97); /* not late: due after the last step */
            last_due = out.e[i].due_ms;
        }
        handed += (int64_t)out.n;
    }
    advance(w, T0 + 300000);
    handed += (int64_t)out.n;
    assert_int_equal(handed, (int64_t)seq);
    assert_int_equal(delay_wheel_count(w), 0);
    delay_wheel_free(w);
}

/* ---- random comparison with a reference ---- */

struct ref_entry {
    struct delay_entry e;
    bool added_due; /* due at or before the wheel's time when added */
    bool live;
};

static int cmp_due_seq(const void *a, const void *b)
{
    const struct delay_entry *x = a, *y = b;
    if (x->due_ms != y->due_ms)
        return x->due_ms < y->due_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

#define MODEL_MAX 20000

/* Seeded random adds (due from the past to months ahead), cancels (on every other seed)
 * and advances (back,
 * by a millisecond, by up to hours): every advance hands out exactly what the reference
 * says, in its order (those added already due first, then the rest by due and arrival),
 * and next_due never passes the earliest due time. */
static void test_random_against_reference(void **state)
{
    (void)state;
    static struct ref_entry model[MODEL_MAX];
    static struct delay_entry want[MODEL_MAX];
    for (uint64_t seed = 1; seed <= 40; seed++) {
        rng_state = seed * 0x9E3779B97F4A7C15ull;
        int64_t now = T0 + (int64_t)(rnd() % 1000000);
        /* Odd seeds: a wheel without cancel, which must hand out the same. */
        bool cancels = seed % 2 == 0;
        struct delay_wheel *w = cancels ? delay_wheel_new(now) : delay_wheel_new_no_cancel(now);
        size_t n = 0;
        uint64_t seq = 0;
        for (int step = 0; step < 3000; step++) {
            uint64_t r = rnd() % 100;
            if (r < 55 && n < MODEL_MAX) {
                static const int64_t ranges[] = {5, 300, 70000, 20000000, 10000000000LL};
                int64_t range = ranges[rnd() % 5];
                int64_t due = now - 50 + (int64_t)(rnd() % (uint64_t)range);
                if (rnd() % 4 == 0 && n > 0)
                    due = model[rnd() % n].e.due_ms; /* a due time some entry has */
                model[n] = (struct ref_entry){{due, seq++, (int64_t)n}, due <= now, true};
                delay_wheel_add(w, &model[n].e);
                n++;
            } else if (r < 65 && n > 0 && cancels) {
                size_t i = rnd() % n;
                assert_int_equal(delay_wheel_cancel(w, model[i].e.ref), model[i].live);
                model[i].live = false;
            } else {
                int64_t to = now;
                uint64_t how = rnd() % 10;
                to += how == 0  ? -(int64_t)(rnd() % 5000)
                      : how < 5 ? (int64_t)(rnd() % 3)
                      : how < 9 ? (int64_t)(rnd() % 100000)
                                : (int64_t)(rnd() % 30000000000LL);
                int64_t next = delay_wheel_next_due(w);
                int64_t earliest = INT64_MAX;
                for (size_t i = 0; i < n; i++)
                    if (model[i].live && model[i].e.due_ms < earliest)
                        earliest = model[i].e.due_ms;
                assert_true(next <= MAX(earliest, now));
                int64_t new_now = MAX(now, to);
                size_t k = 0, first_rest;
                for (size_t i = 0; i < n; i++)
                    if (model[i].live && model[i].added_due)
                        want[k++] = model[i].e;
                qsort(want, k, sizeof *want, cmp_due_seq);
                first_rest = k;
                for (size_t i = 0; i < n; i++)
                    if (model[i].live && !model[i].added_due && model[i].e.due_ms <= new_now)
                        want[k++] = model[i].e;
                qsort(want + first_rest, k - first_rest, sizeof *want, cmp_due_seq);
                assert_int_equal(advance(w, to), k);
                for (size_t i = 0; i < k; i++) {
                    assert_int_equal(out.e[i].ref, want[i].ref);
                    model[want[i].ref].live = false;
                }
                now = new_now;
                assert_int_equal(delay_wheel_now(w), now);
            }
            size_t live = 0;
            for (size_t i = 0; i < n; i++)
                live += model[i].live;
            assert_int_equal(delay_wheel_count(w), live);
        }
        delay_wheel_free(w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_within_and_across_levels),
        cmocka_unit_test(test_equal_due_times_keep_arrival_order),
        cmocka_unit_test(test_far_future),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_clock_stepped_back),
        cmocka_unit_test(test_refill_as_time_moves),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
