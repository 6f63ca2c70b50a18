/* Unit tests for the purgatory (replica.h): completion at add, notify and run in arrival
 * order, duplicate and shared keys, deadlines, cancel, forget, complete_all, each, complete
 * callbacks that re-enter the purgatory and free their op (ASan checks the "never touched
 * after complete" promise), and a randomized run against a reference model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "replica/replica.h"

/* ---- a test operation ---- */

struct top {
    struct delayed_op op; /* first: callbacks cast back */
    int id;
    bool ready;      /* what try_complete answers */
    int tries;       /* try_complete calls */
    int completions; /* complete calls; more than one is a bug */
    enum delayed_outcome how;
    bool free_on_complete;              /* heap-allocated; complete frees it */
    void (*on_complete)(struct top *t); /* runs inside complete, before any free */
};

/* Completion order, by id, across a test. */
#define MAX_DONE 256
static int done_ids[MAX_DONE];
static enum delayed_outcome done_how[MAX_DONE];
static size_t done_count;

static bool top_try(struct delayed_op *op)
{
    struct top *t = (struct top *)op;
    t->tries++;
    return t->ready;
}

static void top_complete(struct delayed_op *op, enum delayed_outcome how)
{
    struct top *t = (struct top *)op;
    assert_false(op->waiting);
    assert_int_equal(op->watch_count, 0);
    assert_true(op->heap_index == SIZE_MAX);
    t->completions++;
    t->how = how;
    assert_true(done_count < MAX_DONE);
    done_ids[done_count] = t->id;
    done_how[done_count] = how;
    done_count++;
    if (t->on_complete)
        t->on_complete(t);
    if (t->free_on_complete)
        free(t);
}

static void top_init(struct top *t, int id, bool ready)
{
    memset(t, 0, sizeof *t);
    t->op.try_complete = top_try;
    t->op.complete = top_complete;
    t->id = id;
    t->ready = ready;
}

static struct top *top_new(int id, bool ready)
{
    struct top *t = malloc(sizeof *t);
    assert_non_null(t);
    top_init(t, id, ready);
    t->free_on_complete = true;
    return t;
}

/* Objects keys point at; only their addresses matter. */
static char objects[8];
#define KEY(i, k) ((struct purgatory_key){&objects[i], (k)})

static int reset(void **state)
{
    (void)state;
    done_count = 0;
    return 0;
}

static void assert_done(const int *ids, size_t n)
{
    assert_int_equal(done_count, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(done_ids[i], ids[i]);
}

/* ---- tests ---- */

static void test_add_completes_at_once(void **state)
{
    (void)state;
    struct purgatory *pg = purgatory_new();
    struct top a;
    top_init(&a, 1, true);
    struct purgatory_key k = KEY(0, PURGATORY_DATA);
    assert_true(purgatory_add(pg, &a.op, &k, 1, 100));
    assert_int_equal(a.completions, 1);
    assert_int_equal(a.how, DELAYED_READY);
    assert_int_equal(a.tries, 1);
    assert_int_equal(purgatory_size(pg), 0);
    assert_true(purgatory_next_deadline(pg) == INT64_MAX);
    /* Nothing watches the key: notify and run find nothing. */
    purgatory_notify(pg, k);
    assert_int_equal(purgatory_run(pg), 0);
    assert_int_equal(purgatory_expire(pg, 1000), 0);
    assert_int_equal(a.tries, 1);
    assert_int_equal(a.completions, 1);
    purgatory_free(pg);
}

static void test_notify_run_arrival_order(void **state)
{
    (void)state;
    struct purgatory *pg = purgatory_new();
    struct top a, b, c, d;
    top_init(&a, 1, false);
    top_init(&b, 2, false);
    top_init(&c, 3, false);
    top_init(&d, 4, false);
    struct purgatory_key p1 = KEY(1, PURGATORY_DATA), p2 = KEY(2, PURGATORY_DATA);
    struct purgatory_key both[] = {p2, p1};
    assert_false(purgatory_add(pg, &a.op, &p1, 1, INT64_MAX));
    assert_false(purgatory_add(pg, &b.op, &p2, 1, INT64_MAX));
    assert_false(purgatory_add(pg, &c.op, both, 2, INT64_MAX));
    assert_false(purgatory_add(pg, &d.op, &p2, 1, INT64_MAX));
    assert_int_equal(purgatory_size(pg), 4);

    /* Not notified: run tries nobody. */
    a.ready = b.ready = c.ready = true;
    assert_int_equal(purgatory_run(pg), 0);
    assert_int_equal(a.tries + b.tries + c.tries + d.tries, 4);

    /* Notified p2 first, then p1 (three times): still tried oldest first, each once. */
    purgatory_notify(pg, p2);
    purgatory_notify(pg, p1);
    purgatory_notify(pg, p1);
    purgatory_notify(pg, p1);
    assert_int_equal(purgatory_run(pg), 3);
    int order[] = {1, 2, 3};
    assert_done(order, 3);
    assert_int_equal(a.tries, 2);
    assert_int_equal(b.tries, 2);
    assert_int_equal(c.tries, 2);
    assert_int_equal(d.tries, 2); /* tried, not ready, still waiting */
    assert_int_equal(d.completions, 0);
    assert_true(d.op.waiting);
    assert_int_equal(purgatory_size(pg), 1);

    /* A not-ready operation is not requeued by itself. */
    assert_int_equal(purgatory_run(pg), 0);
    assert_int_equal(d.tries, 2);
    d.ready = true;
    purgatory_notify(pg, p2);
    assert_int_equal(purgatory_run(pg), 1);
    assert_int_equal(d.how, DELAYED_READY);
    assert_int_equal(purgatory_size(pg), 0);
    purgatory_free(pg);
}

static void test_notify_unwatched_key(void **state)
{
    (void)state;
    struct purgatory *pg = purgatory_new();
    struct top a;
    top_init(&a, 1, false);
    struct purgatory_key k = KEY(1, PURGATORY_DATA);
    assert_false(purgatory_add(pg, &a.op, &k, 1, INT64_MAX));
    a.ready = true;
    /* Same object, other kind; other object, same kind; a key never seen. */
    purgatory_notify(pg, KEY(1, PURGATORY_DURABLE));
    purgatory_notify(pg, KEY(2, PURGATORY_DATA));
    purgatory_notify(pg, KEY(7, PURGATORY_HIGH_WATERMARK));
    assert_int_equal(purgatory_run(pg), 0);
    assert_int_equal(a.tries, 1);
    purgatory_notify(pg, k);
    assert_int_equal(purgatory_run(pg), 1);
    assert_int_equal(a.completions, 1);
    purgatory_free(pg);
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    struct purgatory *pg = purgatory_new();
    struct top a, b;
    top_init(&a, 1, false);
    top_init(&b, 2, false);
    struct purgatory_key p1 = KEY(1, PURGATORY_DATA), p2 = KEY(2, PURGATORY_DATA);
    struct purgatory_key keys[] = {p1, p1, p2, p1, p2};
    assert_false(purgatory_add(pg, &a.op, keys, ARRAY_LEN(keys), INT64_MAX));
    assert_int_equal(a.op.watch_count, 2);
    struct purgatory_key bk[] = {p2, p2};
    assert_false(purgatory_add(pg, &b.op, bk, 2, INT64_MAX));
    assert_int_equal(b.op.watch_count, 1);
    purgatory_notify(pg, p1);
    purgatory_notify(pg, p2);
    assert_int_equal(purgatory_run(pg), 0);
    assert_int_equal(a.tries, 2);
    assert_int_equal(b.tries, 2);
    /* Forgetting p1 leaves a watching p2 only, once. */
    purgatory_forget(pg, p1);
    assert_int_equal(a.op.watch_count, 1);
    a.ready = true;
    assert_int_equal(purgatory_run(pg), 1);
    assert_int_equal(a.completions, 1);
    purgatory_cancel(pg, &b.op);
    assert_int_equal(purgatory_size(pg), 0);
    purgatory_free(pg);
}

static void test_many_keys_complete_once(void **state)
{
    (void)state;
    struct purgatory *pg = purgatory_new();
    struct top a;
    top_init(&a, 1, false);
    struct purgatory_key keys[] = {KEY(1, PURGATORY_DATA), KEY(2, PURGATORY_DATA),
                                   KEY(2, PURGATORY_DURABLE), KEY(3, PURGATORY_HIGH_WATERMARK)};
    assert_false(purgatory_add(pg, &a.op, keys, ARRAY_LEN(keys), 50));
    a.ready = true;
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        purgatory_notify(pg, keys[i]);
    assert_int_equal(purgatory_run(pg), 1);
    assert_int_equal(a.tries, 2);
    assert_int_equal(a.completions, 1);
    /* Gone from every key and from the deadline heap. */
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        purgatory_notify(pg, keys[i]);
    assert_int_equal(purgatory_run(pg), 0);
    assert_true(purgatory_next_deadline(pg) == INT64_MAX);
    assert_int_equal(purgatory_expire(pg, 100), 0);
    assert_int_equal(a.completions, 1);
    purgatory_free(pg);
}

static void test_expire_order(void **state)
{
    (void)state;
    struct purgatory *pg = purgatory_new();
    struct top t[6];
    int64_t deadlines[] = {300, 100, 200, 100, INT64_MAX, 200};
    struct purgatory_key k = KEY(1, PURGATORY_DURABLE);
    assert_true(purgatory_next_deadline(pg) == INT64_MAX);
    for (int i = 0; i < 6; i++) {
        top_init(&t[i], i, false);
        assert_false(purgatory_add(pg, &t[i].op, &k, 1, deadlines[i]));
    }
    assert_int_equal(purgatory_next_deadline(pg), 100);
    assert_int_equal(purgatory_expire(pg, 99), 0);
    assert_int_equal(purgatory_expire(pg, 100), 2);
    int first[] = {1, 3};
    assert_done(first, 2);
    assert_int_equal(purgatory_next_deadline(pg), 200);
    /* Cancelling the heap's top moves the next deadline on. */
    purgatory_cancel(pg, &t[2].op);
    assert_int_equal(purgatory_next_deadline(pg), 200);
    purgatory_cancel(pg, &t[5].op);
    assert_int_equal(purgatory_next_deadline(pg), 300);
    assert_int_equal(purgatory_expire(pg, 1000000), 1);
    int all[] = {1, 3, 0};
    assert_done(all, 3);
    for (size_t i = 0; i < done_count; i++)
        assert_int_equal(done_how[i], DELAYED_EXPIRED);
    /* The op without a deadline stays. */
    assert_true(purgatory_next_deadline(pg) == INT64_MAX);
    assert_int_equal(purgatory_size(pg), 1);
    assert_true(t[4].op.waiting);
    purgatory_cancel(pg, &t[4].op);
    assert_int_equal(purgatory_size(pg), 0);
    purgatory_free(pg);
}

static void test_cancel(void **state)
{
    (void)state;
    struct purgatory *pg = purgatory_new();
    struct top a, b, never;
    top_init(&a, 1, false);
    top_init(&b, 2, false);
    top_init(&never, 3, false);
    struct purgatory_key p1 = KEY(1, PURGATORY_DATA);
    assert_false(purgatory_add(pg, &a.op, &p1, 1, 100));
    assert_false(purgatory_add(pg, &b.op, &p1, 1, 200));
    purgatory_notify(pg, p1); /* both queued */
    a.ready = b.ready = true;
    purgatory_cancel(pg, &a.op);
    assert_false(a.op.waiting);
    assert_false(a.op.queued);
    assert_null(a.op.watches);
    assert_int_equal(purgatory_size(pg), 1);
    assert_int_equal(purgatory_next_deadline(pg), 200);
    /* The queued cancel is skipped; b still runs. */
    assert_int_equal(purgatory_run(pg), 1);
    assert_int_equal(a.tries, 1);
    assert_int_equal(a.completions, 0);
    assert_int_equal(b.completions, 1);
    /* Cancel is a no-op on a completed, a cancelled and a never-added op. */
    purgatory_cancel(pg, &a.op);
    purgatory_cancel(pg, &b.op);
    purgatory_cancel(pg, &never.op);
    purgatory_notify(pg, p1);
    assert_int_equal(purgatory_run(pg), 0);
    assert_int_equal(purgatory_expire(pg, 1000), 0);
    assert_int_equal(a.completions, 0);
    /* A cancelled op may be added again and completes normally. */
    a.ready = false;
    assert_false(purgatory_add(pg, &a.op, &p1, 1, 300));
    assert_int_equal(purgatory_expire(pg, 300), 1);
    assert_int_equal(a.completions, 1);
    assert_int_equal(a.how, DELAYED_EXPIRED);
    purgatory_free(pg);
}

/* ---- re-entrancy: complete callbacks that free their op and drive the purgatory ---- */

static struct purgatory *re_pg;
static struct top *re_cancel; /* cancelled (and freed) by the hook */
static struct top *re_added;  /* added by the hook */
static struct purgatory_key re_notify;

static void hook_reenter(struct top *t)
{
    (void)t;
    if (re_cancel) {
        purgatory_cancel(re_pg, &re_cancel->op);
        free(re_cancel);
        re_cancel = NULL;
    }
    re_added = top_new(100, false);
    struct purgatory_key k = KEY(1, PURGATORY_DATA);
    assert_false(purgatory_add(re_pg, &re_added->op, &k, 1, 500));
    purgatory_notify(re_pg, re_notify);
}

static void test_reentrant_complete(void **state)
{
    (void)state;
    struct purgatory *pg = re_pg = purgatory_new();
    struct purgatory_key k1 = KEY(1, PURGATORY_DATA), k2 = KEY(2, PURGATORY_DATA);
    struct top *a = top_new(1, false), *b = top_new(2, false), *c = top_new(3, false);
    a->on_complete = hook_reenter;
    re_cancel = c;
    re_notify = k2;
    assert_false(purgatory_add(pg, &a->op, &k1, 1, 100));
    assert_false(purgatory_add(pg, &b->op, &k2, 1, 100));
    assert_false(purgatory_add(pg, &c->op, &k1, 1, 100));
    a->ready = b->ready = c->ready = true;
    /* a runs first, and inside its complete: cancels c (queued, freed), adds an op on k1
     * (after the notify, so not queued) and notifies k2, which queues b in this run. */
    purgatory_notify(pg, k1);
    assert_int_equal(purgatory_run(pg), 2);
    int order[] = {1, 2};
    assert_done(order, 2);
    assert_int_equal(purgatory_size(pg), 1);
    assert_int_equal(purgatory_next_deadline(pg), 500);
    assert_int_equal(re_added->tries, 1);

    /* Expire, re-entered: e1's complete cancels e2 (in the heap, freed) and adds a second
     * op with deadline 500, already due, so the same expire call takes it after the first
     * added op (same deadline, later arrival). */
    struct top *e1 = top_new(5, false), *e2 = top_new(6, false);
    assert_false(purgatory_add(pg, &e1->op, &k1, 1, 400));
    assert_false(purgatory_add(pg, &e2->op, &k2, 1, 450));
    e1->on_complete = hook_reenter;
    re_cancel = e2;
    assert_int_equal(purgatory_expire(pg, 500), 3);
    int order2[] = {1, 2, 5, 100, 100};
    assert_done(order2, 5);
    assert_null(re_cancel);
    assert_int_equal(purgatory_size(pg), 0);
    assert_true(purgatory_next_deadline(pg) == INT64_MAX);
    purgatory_free(pg);
}

static void test_forget(void **state)
{
    (void)state;
    struct purgatory *pg = purgatory_new();
    struct top a, b, c;
    top_init(&a, 1, false);
    top_init(&b, 2, false);
    top_init(&c, 3, false);
    struct purgatory_key p1 = KEY(1, PURGATORY_DATA), p2 = KEY(2, PURGATORY_DATA);
    struct purgatory_key ak[] = {p1, p2}, ck[] = {p2};
    assert_false(purgatory_add(pg, &a.op, ak, 2, INT64_MAX));
    assert_false(purgatory_add(pg, &b.op, &p1, 1, INT64_MAX));
    assert_false(purgatory_add(pg, &c.op, ck, 1, INT64_MAX));
    purgatory_forget(pg, KEY(5, PURGATORY_DATA)); /* unknown: nothing */
    assert_int_equal(purgatory_run(pg), 0);
    purgatory_forget(pg, p1);
    assert_true(a.op.queued && b.op.queued && !c.op.queued);
    assert_int_equal(a.op.watch_count, 1);
    assert_int_equal(b.op.watch_count, 0);
    b.ready = true;
    assert_int_equal(purgatory_run(pg), 1);
    assert_int_equal(a.tries, 2);
    assert_int_equal(b.completions, 1);
    assert_int_equal(c.tries, 1);
    /* p1 is gone: notifying it wakes nobody; a still watches p2. */
    purgatory_notify(pg, p1);
    assert_int_equal(purgatory_run(pg), 0);
    assert_int_equal(a.tries, 2);
    purgatory_notify(pg, p2);
    assert_int_equal(purgatory_run(pg), 0);
    assert_int_equal(a.tries, 3);
    assert_int_equal(c.tries, 2);
    /* A key forgotten and then watched again works as new. */
    struct top d;
    top_init(&d, 4, false);
    assert_false(purgatory_add(pg, &d.op, &p1, 1, INT64_MAX));
    d.ready = true;
    purgatory_notify(pg, p1);
    assert_int_equal(purgatory_run(pg), 1);
    assert_int_equal(d.completions, 1);
    purgatory_cancel(pg, &a.op);
    purgatory_cancel(pg, &c.op);
    purgatory_free(pg);
}

static struct top *all_added;

static void hook_add_one(struct top *t)
{
    (void)t;
    all_added = top_new(50, false);
    assert_false(purgatory_add(re_pg, &all_added->op, NULL, 0, INT64_MAX));
}

static void test_complete_all(void **state)
{
    (void)state;
    struct purgatory *pg = re_pg = purgatory_new();
    struct purgatory_key p1 = KEY(1, PURGATORY_DATA);
    struct top *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = top_new(i, false);
    assert_false(purgatory_add(pg, &t[0]->op, &p1, 1, 300));
    assert_false(purgatory_add(pg, &t[1]->op, NULL, 0, INT64_MAX)); /* waits for nothing */
    assert_false(purgatory_add(pg, &t[2]->op, &p1, 1, 100));
    assert_false(purgatory_add(pg, &t[3]->op, &p1, 1, INT64_MAX));
    t[1]->on_complete = hook_add_one; /* adds op 50, which is forced too */
    purgatory_notify(pg, p1);         /* queued seqs left behind must be harmless */
    purgatory_complete_all(pg);
    int order[] = {0, 1, 2, 3, 50};
    assert_done(order, 5);
    for (size_t i = 0; i < done_count; i++)
        assert_int_equal(done_how[i], DELAYED_FORCED);
    assert_int_equal(purgatory_size(pg), 0);
    assert_true(purgatory_next_deadline(pg) == INT64_MAX);
    assert_int_equal(purgatory_run(pg), 0);
    purgatory_complete_all(pg); /* empty: nothing */
    assert_int_equal(done_count, 5);
    purgatory_free(pg);
}

/* each: cancel (and free) every op with an even id. */
static int each_seen[16];
static size_t each_count;

static void each_cancel_even(void *arg, struct delayed_op *op)
{
    struct purgatory *pg = arg;
    struct top *t = (struct top *)op;
    each_seen[each_count++] = t->id;
    if (t->id % 2 == 0) {
        purgatory_cancel(pg, op);
        free(t);
    }
}

static void test_each_cancel(void **state)
{
    (void)state;
    struct purgatory *pg = purgatory_new();
    struct purgatory_key p1 = KEY(1, PURGATORY_DATA);
    struct top *t[8];
    for (int i = 0; i < 8; i++) {
        t[i] = top_new(i, false);
        assert_false(purgatory_add(pg, &t[i]->op, &p1, 1, 1000 - i));
    }
    each_count = 0;
    purgatory_each(pg, each_cancel_even, pg);
    assert_int_equal(each_count, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(each_seen[i], i);
    assert_int_equal(purgatory_size(pg), 4);
    assert_int_equal(purgatory_next_deadline(pg), 1000 - 7);
    /* The survivors, still in arrival order. */
    each_count = 0;
    purgatory_each(pg, each_cancel_even, pg);
    int odd[] = {1, 3, 5, 7};
    assert_int_equal(each_count, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(each_seen[i], odd[i]);
    assert_int_equal(purgatory_expire(pg, 1000), 4);
    int order[] = {7, 5, 3, 1};
    assert_done(order, 4);
    purgatory_free(pg);
}

/* Many operations queued and cancelled between runs leave stale seqs in the queue;
 * dropping them must keep the live ones, in arrival order. */
static void test_stale_queue(void **state)
{
    (void)state;
    struct purgatory *pg = purgatory_new();
    struct purgatory_key k1 = KEY(1, PURGATORY_DATA), k2 = KEY(2, PURGATORY_DATA);
    struct top a, c, b;
    top_init(&a, 1, false);
    top_init(&c, 3, false);
    assert_false(purgatory_add(pg, &a.op, &k1, 1, INT64_MAX));
    assert_false(purgatory_add(pg, &c.op, &k2, 1, INT64_MAX));
    for (int i = 0; i < 1000; i++) {
        top_init(&b, 2, false);
        assert_false(purgatory_add(pg, &b.op, &k1, 1, INT64_MAX));
        purgatory_notify(pg, k1);
        purgatory_notify(pg, k2);
        purgatory_cancel(pg, &b.op);
    }
    a.ready = c.ready = true;
    assert_int_equal(purgatory_run(pg), 2);
    int order[] = {1, 3};
    assert_done(order, 2);
    assert_int_equal(a.tries, 2);
    assert_int_equal(c.tries, 2);
    assert_int_equal(b.tries, 1);
    purgatory_free(pg);
}

/* Freeing a purgatory with operations still waiting lets go of them without a callback
 * and releases what it held for them (ASan's leak check is the assertion). */
static void test_free_with_waiting(void **state)
{
    (void)state;
    struct purgatory *pg = purgatory_new();
    struct top a, b;
    top_init(&a, 1, false);
    top_init(&b, 2, false);
    struct purgatory_key keys[] = {KEY(1, PURGATORY_DATA), KEY(2, PURGATORY_HIGH_WATERMARK)};
    assert_false(purgatory_add(pg, &a.op, keys, 2, 100));
    assert_false(purgatory_add(pg, &b.op, keys, 1, INT64_MAX));
    purgatory_notify(pg, keys[0]);
    purgatory_free(pg);
    assert_int_equal(done_count, 0);
    assert_false(a.op.waiting);
    assert_false(b.op.waiting);
    assert_null(a.op.watches);
}

/* ---- randomized test against a reference model ---- */

#define R_OPS 48
#define R_KEYS 6 /* 3 objects x 2 kinds */
#define R_STEPS 4000

struct model_op {
    bool waiting;
    bool queued;
    uint64_t seq;
    int64_t deadline_ms;
    bool watches[R_KEYS];
};

static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static size_t rnd(size_t n)
{
    return (size_t)(rng() % n);
}

static struct purgatory_key r_key(size_t i)
{
    return KEY(i / 2, i % 2 ? PURGATORY_DURABLE : PURGATORY_DATA);
}

/* What the model says should complete, in order, appended here and compared with the
 * purgatory's done_ids after each step. */
static int want_ids[MAX_DONE];
static enum delayed_outcome want_how[MAX_DONE];
static size_t want_count;

static void model_complete(struct model_op *m, int id, enum delayed_outcome how)
{
    m->waiting = false;
    m->queued = false;
    assert_true(want_count < MAX_DONE);
    want_ids[want_count] = id;
    want_how[want_count] = how;
    want_count++;
}

/* The waiting op with the lowest seq satisfying the filter, or -1. */
static int model_oldest(const struct model_op *m, bool queued_only)
{
    int best = -1;
    for (int i = 0; i < R_OPS; i++)
        if (m[i].waiting && (!queued_only || m[i].queued) && (best < 0 || m[i].seq < m[best].seq))
            best = i;
    return best;
}

static void check_step(struct purgatory *pg, const struct model_op *m, const struct top *t)
{
    assert_int_equal(done_count, want_count);
    for (size_t i = 0; i < done_count; i++) {
        assert_int_equal(done_ids[i], want_ids[i]);
        assert_int_equal(done_how[i], want_how[i]);
    }
    done_count = want_count = 0;
    size_t n = 0;
    int64_t next = INT64_MAX;
    for (int i = 0; i < R_OPS; i++) {
        assert_int_equal(t[i].op.waiting, m[i].waiting);
        /* Each add is one life: it ends in at most one completion. */
        assert_true(t[i].completions <= 1);
        if (m[i].waiting) {
            n++;
            next = MIN(next, m[i].deadline_ms);
            assert_int_equal(t[i].completions, 0);
        }
    }
    assert_int_equal(purgatory_size(pg), n);
    assert_true(purgatory_next_deadline(pg) == next);
}

static int r_each_ids[R_OPS];
static size_t r_each_count;
static void r_each(void *arg, struct delayed_op *op)
{
    (void)arg;
    r_each_ids[r_each_count++] = ((struct top *)op)->id;
}

static void test_randomized(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        rng_state = seed * 0x9e3779b97f4a7c15ULL;
        struct purgatory *pg = purgatory_new();
        struct top t[R_OPS];
        struct model_op m[R_OPS];
        memset(m, 0, sizeof m);
        for (int i = 0; i < R_OPS; i++)
            top_init(&t[i], i, false);
        uint64_t seq = 0;
        int64_t now = 0;
        done_count = want_count = 0;
        for (int step = 0; step < R_STEPS; step++) {
            size_t i = rnd(R_OPS);
            switch (rnd(10)) {
            case 0:
            case 1: { /* add an idle op: 0..4 keys (maybe repeated), maybe a deadline */
                if (m[i].waiting)
                    break;
                struct purgatory_key keys[4];
                size_t n = rnd(5);
                memset(m[i].watches, 0, sizeof m[i].watches);
                for (size_t k = 0; k < n; k++) {
                    size_t ki = rnd(R_KEYS);
                    keys[k] = r_key(ki);
                    m[i].watches[ki] = true;
                }
                int64_t deadline = rnd(4) == 0 ? INT64_MAX : now + (int64_t)rnd(50);
                t[i].ready = rnd(5) == 0;
                t[i].completions = 0;
                bool done = purgatory_add(pg, &t[i].op, keys, n, deadline);
                assert_int_equal(done, t[i].ready);
                if (t[i].ready) {
                    model_complete(&m[i], (int)i, DELAYED_READY);
                } else {
                    m[i].waiting = true;
                    m[i].queued = false;
                    m[i].seq = ++seq;
                    m[i].deadline_ms = deadline;
                }
                break;
            }
            case 2: /* flip what try_complete will say */ t[i].ready = !t[i].ready; break;
            case 3:
            case 4: { /* notify */
                size_t ki = rnd(R_KEYS);
                purgatory_notify(pg, r_key(ki));
                for (int j = 0; j < R_OPS; j++)
                    if (m[j].waiting && m[j].watches[ki])
                        m[j].queued = true;
                break;
            }
            case 5: { /* run: oldest queued first, until none */
                size_t want = 0;
                int j;
                while ((j = model_oldest(m, true)) >= 0) {
                    m[j].queued = false;
                    if (t[j].ready) {
                        model_complete(&m[j], j, DELAYED_READY);
                        want++;
                    }
                }
                assert_int_equal(purgatory_run(pg), want);
                break;
            }
            case 6: { /* time passes, deadlines expire (earliest, then oldest) */
                now += (int64_t)rnd(20);
                size_t want = 0;
                for (;;) {
                    int best = -1;
                    for (int j = 0; j < R_OPS; j++)
                        if (m[j].waiting && m[j].deadline_ms <= now &&
                            (best < 0 || m[j].deadline_ms < m[best].deadline_ms ||
                             (m[j].deadline_ms == m[best].deadline_ms && m[j].seq < m[best].seq)))
                            best = j;
                    if (best < 0)
                        break;
                    model_complete(&m[best], best, DELAYED_EXPIRED);
                    want++;
                }
                assert_int_equal(purgatory_expire(pg, now), want);
                break;
            }
            case 7: /* cancel */
                purgatory_cancel(pg, &t[i].op);
                m[i].waiting = m[i].queued = false;
                break;
            case 8: { /* forget a key */
                size_t ki = rnd(R_KEYS);
                purgatory_forget(pg, r_key(ki));
                for (int j = 0; j < R_OPS; j++)
                    if (m[j].waiting && m[j].watches[ki]) {
                        m[j].watches[ki] = false;
                        m[j].queued = true;
                    }
                break;
            }
            case 9: { /* each visits the waiting ops in arrival order; rarely, force all */
                r_each_count = 0;
                purgatory_each(pg, r_each, NULL);
                struct model_op copy[R_OPS];
                memcpy(copy, m, sizeof copy);
                for (size_t e = 0; e < r_each_count; e++) {
                    int j = model_oldest(copy, false);
                    assert_int_equal(r_each_ids[e], j);
                    copy[j].waiting = false;
                }
                assert_int_equal(model_oldest(copy, false), -1);
                if (rnd(20) == 0) {
                    int j;
                    while ((j = model_oldest(m, false)) >= 0)
                        model_complete(&m[j], j, DELAYED_FORCED);
                    purgatory_complete_all(pg);
                }
                break;
            }
            }
            check_step(pg, m, t);
        }
        /* The end: everything still waiting is forced, exactly once. */
        int j;
        while ((j = model_oldest(m, false)) >= 0)
            model_complete(&m[j], j, DELAYED_FORCED);
        purgatory_complete_all(pg);
        check_step(pg, m, t);
        assert_int_equal(purgatory_size(pg), 0);
        purgatory_free(pg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_add_completes_at_once, reset),
        cmocka_unit_test_setup(test_notify_run_arrival_order, reset),
        cmocka_unit_test_setup(test_notify_unwatched_key, reset),
        cmocka_unit_test_setup(test_duplicate_keys, reset),
        cmocka_unit_test_setup(test_many_keys_complete_once, reset),
        cmocka_unit_test_setup(test_expire_order, reset),
        cmocka_unit_test_setup(test_cancel, reset),
        cmocka_unit_test_setup(test_reentrant_complete, reset),
        cmocka_unit_test_setup(test_forget, reset),
        cmocka_unit_test_setup(test_complete_all, reset),
        cmocka_unit_test_setup(test_each_cancel, reset),
        cmocka_unit_test_setup(test_stale_queue, reset),
        cmocka_unit_test_setup(test_free_with_waiting, reset),
        cmocka_unit_test_setup(test_randomized, reset),
    };
    return cmocka_run_group_tests_name("purgatory", tests, NULL, NULL);
}
