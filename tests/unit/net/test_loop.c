/* Unit tests for the net event loop: timers (order, cancel, re-arm), idle hooks, fd
 * watchers, stop, and signal delivery through signalfd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net.h"

/* ---- timers ---- */

static int fired[64];
static size_t fired_len;

static void record_cb(struct net_loop *loop, void *arg)
{
    ASSERT(fired_len < ARRAY_LEN(fired));
    fired[fired_len++] = (int)(intptr_t)arg;
}

static void stop_cb(struct net_loop *loop, void *arg)
{
    net_loop_stop(loop);
}

static void test_timers_fire_in_order(void **state)
{
    struct net_loop *loop;
    assert_int_equal(net_loop_create(&loop), 0);
    fired_len = 0;
    /* Deadlines out of insertion order; equal deadlines keep insertion order. */
    int delays[] = {30, 10, 20, 10, 0, 40, 20};
    for (size_t i = 0; i < ARRAY_LEN(delays); i++)
        assert_true(net_timer_add(loop, delays[i], record_cb, (void *)(intptr_t)i) != 0);
    net_timer_add(loop, 60, stop_cb, NULL);
    assert_int_equal(net_loop_run(loop), 0);
    int expect[] = {4, 1, 3, 2, 6, 0, 5};
    assert_int_equal(fired_len, ARRAY_LEN(expect));
    for (size_t i = 0; i < ARRAY_LEN(expect); i++)
        assert_int_equal(fired[i], expect[i]);
    net_loop_destroy(loop);
}

static void test_timer_cancel(void **state)
{
    struct net_loop *loop;
    assert_int_equal(net_loop_create(&loop), 0);
    fired_len = 0;
    uint64_t ids[20];
    for (int i = 0; i < 20; i++)
        ids[i] = net_timer_add(loop, 5 + i, record_cb, (void *)(intptr_t)i);
    for (int i = 0; i < 20; i += 2) /* cancel the even ones, from the middle of the heap */
        net_timer_cancel(loop, ids[i]);
    net_timer_cancel(loop, ids[0]); /* twice: no-op */
    net_timer_cancel(loop, 0);
    assert_int_equal(net_timer_count(loop), 10);
    net_timer_add(loop, 50, stop_cb, NULL);
    assert_int_equal(net_loop_run(loop), 0);
    assert_int_equal(fired_len, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(fired[i], 2 * i + 1);
    /* A fired id whose slot has been reused must not cancel the new timer. */
    uint64_t fresh = net_timer_add(loop, 0, record_cb, (void *)(intptr_t)99);
    net_timer_cancel(loop, ids[1]);
    assert_int_equal(net_timer_count(loop), 1);
    net_timer_add(loop, 5, stop_cb, NULL);
    assert_int_equal(net_loop_run(loop), 0);
    assert_int_equal(fired[fired_len - 1], 99);
    (void)fresh;
    net_loop_destroy(loop);
}

/* Many timers with pseudo-random deadlines: fire times never go backwards. */
static int64_t last_deadline;
static int heap_fired;
struct deadline_timer {
    int64_t deadline;
};
static void deadline_cb(struct net_loop *loop, void *arg)
{
    struct deadline_timer *t = arg;
    assert_true(t->deadline >= last_deadline);
    assert_true(net_loop_now_ms(loop) >= t->deadline);
    last_deadline = t->deadline;
    heap_fired++;
}

static void test_timer_heap_many(void **state)
{
    struct net_loop *loop;
    assert_int_equal(net_loop_create(&loop), 0);
    enum { N = 2000 };
    static struct deadline_timer ts[N];
    uint64_t ids[N];
    uint32_t x = 12345;
    last_deadline = 0;
    heap_fired = 0;
    int64_t now = net_loop_now_ms(loop);
    for (int i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        int64_t d = (x >> 16) % 50;
        ts[i].deadline = now + d;
        ids[i] = net_timer_add(loop, d, deadline_cb, &ts[i]);
    }
    int cancelled = 0;
    for (int i = 0; i < N; i += 3, cancelled++)
        net_timer_cancel(loop, ids[i]);
    net_timer_add(loop, 80, stop_cb, NULL);
    assert_int_equal(net_loop_run(loop), 0);
    assert_int_equal(heap_fired, N - cancelled);
    net_loop_destroy(loop);
}

/* A timer that re-arms itself with delay 0 must not starve the rest of the loop. */
static int rearm_count;
static int idle_runs;
static void rearm_cb(struct net_loop *loop, void *arg)
{
    rearm_count++;
    net_timer_add(loop, 0, rearm_cb, arg);
}
static void idle_cb(struct net_loop *loop, void *arg)
{
    idle_runs++;
    if (idle_runs == 5)
        net_loop_stop(loop);
}

static void test_idle_hook_and_rearm(void **state)
{
    struct net_loop *loop;
    assert_int_equal(net_loop_create(&loop), 0);
    rearm_count = idle_runs = 0;
    net_timer_add(loop, 0, rearm_cb, NULL);
    net_loop_on_idle(loop, idle_cb, NULL);
    assert_int_equal(net_loop_run(loop), 0);
    assert_int_equal(idle_runs, 5);
    assert_int_equal(rearm_count, 5); /* one firing per iteration */
    net_loop_destroy(loop);
}

/* ---- fd watchers ---- */

static int pipe_reads;
static void pipe_cb(struct net_loop *loop, int fd, uint32_t events, void *arg)
{
    assert_true(events & NET_READABLE);
    char c;
    assert_int_equal(read(fd, &c, 1), 1);
    assert_int_equal(c, 'x');
    pipe_reads++;
    net_unwatch(loop, fd);
    net_loop_stop(loop);
}
static void write_pipe_cb(struct net_loop *loop, void *arg)
{
    int fd = (int)(intptr_t)arg;
    assert_int_equal(write(fd, "x", 1), 1);
}

static void test_watch_pipe(void **state)
{
    struct net_loop *loop;
    assert_int_equal(net_loop_create(&loop), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pipe_reads = 0;
    assert_int_equal(net_watch(loop, p[0], NET_READABLE, pipe_cb, NULL), 0);
    net_timer_add(loop, 10, write_pipe_cb, (void *)(intptr_t)p[1]);
    net_timer_add(loop, 5000, stop_cb, NULL); /* safety net */
    assert_int_equal(net_loop_run(loop), 0);
    assert_int_equal(pipe_reads, 1);
    close(p[0]);
    close(p[1]);
    net_loop_destroy(loop);
}

/* ---- signals ---- */

static int got_signal;
static void signal_cb(struct net_loop *loop, int signo, void *arg)
{
    got_signal = signo;
    net_loop_stop(loop);
}
static void raise_cb(struct net_loop *loop, void *arg)
{
    raise(SIGTERM);
}

static void test_signals(void **state)
{
    struct net_loop *loop;
    assert_int_equal(net_loop_create(&loop), 0);
    got_signal = 0;
    assert_int_equal(net_loop_handle_signals(loop, signal_cb, NULL), 0);
    net_timer_add(loop, 5, raise_cb, NULL);
    net_timer_add(loop, 5000, stop_cb, NULL);
    assert_int_equal(net_loop_run(loop), 0);
    assert_int_equal(got_signal, SIGTERM);
    net_loop_destroy(loop);
}

/* Without a callback, SIGINT stops the loop. */
static void raise_int_cb(struct net_loop *loop, void *arg)
{
    raise(SIGINT);
}

static void test_signals_default_stop(void **state)
{
    struct net_loop *loop;
    assert_int_equal(net_loop_create(&loop), 0);
    assert_int_equal(net_loop_handle_signals(loop, NULL, NULL), 0);
    fired_len = 0;
    net_timer_add(loop, 5, raise_int_cb, NULL);
    net_timer_add(loop, 5000, record_cb, (void *)(intptr_t)1); /* must not fire */
    net_timer_add(loop, 5001, stop_cb, NULL);
    assert_int_equal(net_loop_run(loop), 0);
    assert_int_equal(fired_len, 0);
    net_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_fire_in_order), cmocka_unit_test(test_timer_cancel),
        cmocka_unit_test(test_timer_heap_many),      cmocka_unit_test(test_idle_hook_and_rearm),
        cmocka_unit_test(test_watch_pipe),           cmocka_unit_test(test_signals),
        cmocka_unit_test(test_signals_default_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
