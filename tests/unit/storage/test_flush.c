/* Flush jobs (prepare / execute / complete) and the syncer thread. */
#include <pthread.h>
#include <errno.h>
#include <poll.h>

#include "helpers.h"

static void test_flush_job(void **state)
{
    (void)state;
    char *dir;
    char *root = th_tmpdir(&dir);
    struct log_config cfg;
    th_small_cfg(&cfg);
    cfg.segment_bytes = 4096;
    struct log *l;
    assert_int_equal(log_open(dir, &cfg, -1, &l), 0);
    assert_int_equal(log_durable_offset(l), 0);
    for (int i = 0; i < 5; i++)
        th_append(l, 2, 1000, 900, 0, 1000); /* rolls every 2 batches */
    assert_int_equal(log_unflushed_messages(l), 10);
    assert_int_equal(log_segment_count(l), 3);
    struct log_flush_job job = {0};
    assert_int_equal(log_flush_prepare(l, &job), 0);
    assert_int_equal(job.n_paths, 3);
    assert_non_null(job.dir);
    assert_non_null(job.parent); /* the log dir was created: its entry is synced too */
    assert_int_equal(job.durable_offset, 10);
    /* appends between prepare and complete are not covered */
    th_append(l, 2, 1000, 10, 0, 1000);
    log_flush_execute(&job);
    assert_int_equal(job.err, 0);
    assert_int_equal(log_flush_complete(l, &job), 0);
    assert_int_equal(log_durable_offset(l), 10);
    assert_int_equal(log_unflushed_messages(l), 2);
    /* next job only needs the active segment, no directory */
    assert_int_equal(log_flush_prepare(l, &job), 0);
    assert_int_equal(job.n_paths, 1);
    assert_null(job.dir);
    assert_null(job.parent);
    log_flush_execute(&job);
    assert_int_equal(log_flush_complete(l, &job), 0);
    assert_int_equal(log_durable_offset(l), 12);
    assert_int_equal(log_unflushed_messages(l), 0);
    /* a failed open (out of descriptors) is reported and retried; the log stays usable */
    th_append(l, 2, 1000, 10, 0, 1000);
    assert_int_equal(log_flush_prepare(l, &job), 0);
    job.err = -EMFILE;
    assert_int_equal(log_flush_complete(l, &job), -EMFILE);
    assert_int_equal(log_durable_offset(l), 12);
    th_append(l, 2, 1000, 10, 0, 1000);
    assert_int_equal(log_flush_prepare(l, &job), 0);
    log_flush_execute(&job);
    assert_int_equal(log_flush_complete(l, &job), 0);
    assert_int_equal(log_durable_offset(l), 16);
    /* a failed sync marks the log failed */
    assert_int_equal(log_flush_prepare(l, &job), 0);
    job.err = -EIO;
    job.sync_failed = true;
    assert_int_equal(log_flush_complete(l, &job), -EIO);
    struct buf b;
    buf_init(&b);
    th_batch(&b, 1, 1, 1, 'x');
    assert_int_equal(log_append(l, b.data, b.len, 0, 1, NULL), STORAGE_ERR_LOG_FAILED);
    buf_free(&b);
    log_close(l);
    th_rmrf(root);
    free(root);
    free(dir);
}

struct round_rec {
    int order[16];
    int n;
    int jobs_seen;
};

static void on_done(void *arg, struct log_flush_job **jobs, size_t n)
{
    struct round_rec *rec = arg;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(jobs[i]->err, 0);
        assert_int_equal(log_flush_complete(jobs[i]->log, jobs[i]), 0);
        rec->order[rec->n] = (int)(intptr_t)jobs[i]->user;
    }
    rec->jobs_seen += (int)n;
    rec->n++;
}

/* Rounds of several logs, queued back to back: every round's callback runs once, in
 * order, and afterwards each log is durable to its end; with syncfs_min set, rounds
 * that large are made durable by one syncfs instead (same outcome). */
static void run_syncer(size_t syncfs_min)
{
    char *dir;
    char *root = th_tmpdir(&dir);
    struct log_config cfg;
    th_small_cfg(&cfg);
    enum { NLOGS = 4, ROUNDS = 5 };
    struct log *logs[NLOGS];
    char *dirs[NLOGS];
    for (int i = 0; i < NLOGS; i++) {
        dirs[i] = malloc(strlen(root) + 16);
        sprintf(dirs[i], "%s/t-%d", root, i);
        assert_int_equal(log_open(dirs[i], &cfg, 0, &logs[i]), 0);
    }
    struct syncer *s;
    assert_int_equal(syncer_create(&s, 3), 0);
    syncer_set_syncfs(s, syncfs_min);
    struct log_flush_job jobs[ROUNDS][NLOGS];
    struct round_rec rec = {0};
    for (int r = 0; r < ROUNDS; r++) {
        struct log_flush_job *ptrs[NLOGS];
        for (int i = 0; i < NLOGS; i++) {
            th_append(logs[i], 3, 1000, 100, 0, 1000);
            jobs[r][i] = (struct log_flush_job){.user = (void *)(intptr_t)r};
            assert_int_equal(log_flush_prepare(logs[i], &jobs[r][i]), 0);
            ptrs[i] = &jobs[r][i];
        }
        syncer_submit(s, ptrs, NLOGS, on_done, &rec);
    }
    while (rec.n < ROUNDS) {
        struct pollfd pfd = {.fd = syncer_event_fd(s), .events = POLLIN};
        assert_true(poll(&pfd, 1, 10000) > 0);
        syncer_reap(s);
    }
    for (int r = 0; r < ROUNDS; r++)
        assert_int_equal(rec.order[r], r);
    assert_int_equal(rec.jobs_seen, ROUNDS * NLOGS);
    for (int i = 0; i < NLOGS; i++)
        assert_int_equal(log_durable_offset(logs[i]), 3 * ROUNDS);
    assert_int_equal(syncer_syncfs_rounds(s), syncfs_min ? ROUNDS : 0);
    /* destroy finishes queued work and runs its callbacks */
    struct log_flush_job last = {.user = (void *)(intptr_t)99};
    th_append(logs[0], 1, 1000, 1, 0, 1000);
    assert_int_equal(log_flush_prepare(logs[0], &last), 0);
    struct log_flush_job *lp = &last;
    syncer_submit(s, &lp, 1, on_done, &rec);
    syncer_destroy(s);
    assert_int_equal(rec.n, ROUNDS + 1);
    assert_int_equal(log_durable_offset(logs[0]), 3 * ROUNDS + 1);
    for (int i = 0; i < NLOGS; i++) {
        log_close(logs[i]);
        free(dirs[i]);
    }
    th_rmrf(root);
    free(root);
    free(dir);
}

static void test_syncer(void **state)
{
    (void)state;
    run_syncer(0);
}

static void test_syncer_syncfs(void **state)
{
    (void)state;
    run_syncer(2);
}

/* Work items run on the sync thread in order with rounds; done runs on reap. */
struct work_rec {
    pthread_t ran_on;
    int order;
    int done_order;
};
static int work_seq;
static void work_fn(void *arg)
{
    struct work_rec *w = arg;
    w->ran_on = pthread_self();
    w->order = ++work_seq;
}
static void work_done(void *arg, struct log_flush_job **jobs, size_t n)
{
    struct work_rec *w = arg;
    assert_null(jobs);
    assert_int_equal(n, 0);
    w->done_order = ++work_seq;
}

static void test_syncer_work(void **state)
{
    (void)state;
    struct syncer *s;
    assert_int_equal(syncer_create(&s, 1), 0);
    struct work_rec a = {0}, b = {0};
    syncer_submit_work(s, work_fn, work_done, &a);
    syncer_submit_work(s, work_fn, work_done, &b);
    while (b.done_order == 0) {
        struct pollfd pfd = {.fd = syncer_event_fd(s), .events = POLLIN};
        assert_true(poll(&pfd, 1, 10000) > 0);
        syncer_reap(s);
    }
    assert_false(pthread_equal(a.ran_on, pthread_self()));
    assert_true(a.order < b.order);
    assert_true(a.done_order > 0 && a.done_order < b.done_order);
    syncer_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flush_job),
        cmocka_unit_test(test_syncer),
        cmocka_unit_test(test_syncer_syncfs),
        cmocka_unit_test(test_syncer_work),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
