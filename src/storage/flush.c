/*
 * Durability without blocking the event loop (docs/storage-format.md, "Durability").
 *
 * log_flush_prepare (loop thread) records the paths of every segment that may hold data
 * not yet durable (those with offsets >= the durable offset), of the pending producer
 * snapshot and, if files were created, renamed or deleted since the last directory
 * sync, of the directory; it captures the log end offset. log_flush_execute (any
 * thread) opens each file, fdatasyncs (or fsyncs) it and closes it again.
 * log_flush_complete (loop thread) raises the durable offset.
 *
 * Why paths and not descriptors: segment files are open only while the open-file cache
 * keeps them (fcache.c), and a round of group commit can cover every partition of the
 * broker. Dup'd descriptors held from prepare to complete would cost one per log in the
 * round, beyond any bound; by path a sync thread holds one descriptor at a time, and it
 * never touches the cache. fsync works on the inode, whichever descriptor asks, and
 * since Linux 4.16 a write-back error nobody has seen yet is reported to a descriptor
 * opened after it happened, so syncing through a fresh descriptor reports what a
 * long-lived one would.
 *
 * The syncer is the helper thread that executes rounds of jobs (group commit: every
 * produce waiting for acks=all in a round shares one sync per log) and wakes the loop
 * through an eventfd. A manual syncer (deterministic tests) has no thread: rounds wait
 * until the test runs them, on its own thread, and complete through the same eventfd
 * and reap.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage_internal.h"

static bool seg_needs_sync(const struct log *l, const struct segment *s)
{
    return s->next_offset > l->durable_offset || s->base_offset >= l->durable_offset;
}

static void job_free_paths(struct log_flush_job *job)
{
    for (size_t i = 0; i < job->n_paths; i++)
        free(job->paths[i]);
    free(job->paths);
    job->paths = NULL;
    job->n_paths = 0;
    free(job->dir);
    job->dir = NULL;
    free(job->parent);
    job->parent = NULL;
}

int log_flush_prepare(struct log *l, struct log_flush_job *job)
{
    void *user = job->user;
    *job = (struct log_flush_job){.log = l, .user = user};
    storage_read_turn_end();
    if (l->failed)
        return STORAGE_ERR_LOG_FAILED;
    job->snapshot_offset = -1;
    size_t n = 1 + txnidx_unsynced_count(l); /* room for the producer snapshot */
    for (size_t i = 0; i < l->n_segs; i++)
        n += seg_needs_sync(l, l->segs[i]);
    job->paths = xmalloc(n * sizeof(char *));
    char *snap_path;
    int rc = producers_flush_prepare(l, &snap_path, &job->snapshot_offset);
    if (rc != 0) {
        job_free_paths(job);
        return rc;
    }
    if (snap_path)
        job->paths[job->n_paths++] = snap_path;
    job->n_paths += txnidx_flush_prepare(l, job->paths + job->n_paths);
    for (size_t i = 0; i < l->n_segs; i++) {
        if (seg_needs_sync(l, l->segs[i]))
            job->paths[job->n_paths++] = xstrdup(l->segs[i]->path);
    }
    if (l->dir_gen != l->dir_synced_gen)
        job->dir = xstrdup(l->dir);
    if (l->parent_unsynced) {
        char *copy = xstrdup(l->dir);
        job->parent = xstrdup(dirname(copy));
        free(copy);
    }
    job->durable_offset = l->log_end_offset;
    job->appended_messages = l->appended_messages;
    job->dir_gen = l->dir_gen;
    job->trunc_gen = l->trunc_gen;
    return 0;
}

/* Opens path (a directory with O_DIRECTORY), syncs and closes it. A missing file is no
 * error: it was deleted after prepare (retention, truncation, compaction, or its whole
 * directory by a topic deletion), and its data with it. */
static void sync_path(struct log_flush_job *job, const char *path, int flags, bool data_only)
{
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC | flags);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int err = -errno;
        if (err == -ENOENT)
            return;
        say_error_ratelimited(SUBSYS, "cannot open %s to sync it: %s", path, storage_strerror(err));
        if (job->err == 0)
            job->err = err;
        return;
    }
    if ((data_only ? fdatasync(fd) : fsync(fd)) != 0) {
        if (job->err == 0 || !job->sync_failed)
            job->err = -errno;
        job->sync_failed = true;
    }
    close(fd);
}

void log_flush_execute(struct log_flush_job *job)
{
    for (size_t i = 0; i < job->n_paths; i++)
        sync_path(job, job->paths[i], 0, true);
    if (job->dir)
        sync_path(job, job->dir, O_DIRECTORY, false);
    if (job->parent)
        sync_path(job, job->parent, O_DIRECTORY, false);
}

int log_flush_complete(struct log *l, struct log_flush_job *job)
{
    ASSERT(job->log == l);
    bool synced_dir = job->dir != NULL, synced_parent = job->parent != NULL;
    if (job->err != 0 && !job->sync_failed)
        txnidx_flush_not_done(l, job->paths, job->n_paths);
    job_free_paths(job);
    if (job->err != 0 && !job->sync_failed) {
        /* Only an open failed: no fsync ran, so no error was consumed and no page
         * dropped; the next job syncs the same data. */
        say_error_ratelimited(SUBSYS, "partition %s: flush not done: %s", l->name,
                              storage_strerror(job->err));
        return job->err;
    }
    if (job->err != 0) {
        /* After a failed fsync the kernel may have dropped the dirty pages and a later
         * fsync can report success: nothing written since the last good flush can be
         * trusted, so the log stops accepting writes (Kafka takes the dir offline). */
        say_error(SUBSYS, "partition %s: flush failed: %s; log marked failed", l->name,
                  storage_strerror(job->err));
        l->failed = true;
        return job->err;
    }
    if (job->trunc_gen == l->trunc_gen && job->durable_offset > l->durable_offset)
        l->durable_offset = MIN(job->durable_offset, l->log_end_offset);
    /* acks=all answers on this: it must never claim more than the log holds. */
    ASSERT(l->durable_offset <= l->log_end_offset);
    if (job->appended_messages > l->flushed_messages)
        l->flushed_messages = job->appended_messages;
    if (synced_dir && job->dir_gen > l->dir_synced_gen)
        l->dir_synced_gen = job->dir_gen;
    if (synced_parent)
        l->parent_unsynced = false;
    producers_flush_done(l, job->snapshot_offset, job->trunc_gen);
    l->last_flush_ms = time_mono_ms();
    return 0;
}

void log_flush_abandon(struct log_flush_job *job)
{
    job_free_paths(job);
}

int64_t log_unflushed_messages(const struct log *l)
{
    return l->appended_messages - l->flushed_messages;
}

int64_t log_last_flush_ms(const struct log *l)
{
    return l->last_flush_ms;
}

/* ---- syncer ---- */

struct sync_round {
    struct sync_round *next;
    struct log_flush_job **jobs;
    size_t n;
    void (*work)(void *arg); /* other blocking work instead of jobs, or NULL */
    syncer_done_fn done;
    void *arg;
};

#define SYNCER_MAX_THREADS 16

struct syncer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int efd;
    bool stopping;
    struct sync_round *todo_head, *todo_tail; /* guarded by mu */
    struct sync_round *done_head, *done_tail; /* guarded by mu */
    /* Helpers that share the jobs of one round with the main thread: fdatasyncs of
     * different files proceed at once, and the disk (or the file system's journal)
     * merges them, instead of a round costing the sum of its syncs. */
    int n_helpers;
    pthread_t helpers[SYNCER_MAX_THREADS];
    pthread_mutex_t work_mu;
    pthread_cond_t work_cv, done_cv;
    struct sync_round *current;  /* round being executed, guarded by work_mu */
    size_t next_job, jobs_done;  /* guarded by work_mu */
    bool helpers_stop;           /* guarded by work_mu */
    bool manual;                 /* no threads: rounds run in syncer_run_pending */
    size_t syncfs_min_jobs;      /* rounds of at least this many logs use syncfs; 0 never */
    atomic_size_t syncfs_rounds; /* rounds made durable by syncfs, for tests and logs */
};

static void *helper_main(void *arg)
{
    struct syncer *s = arg;
    pthread_mutex_lock(&s->work_mu);
    for (;;) {
        while (!s->helpers_stop && !(s->current && s->next_job < s->current->n))
            pthread_cond_wait(&s->work_cv, &s->work_mu);
        if (s->helpers_stop)
            break;
        struct sync_round *r = s->current;
        size_t i = s->next_job++;
        pthread_mutex_unlock(&s->work_mu);
        log_flush_execute(r->jobs[i]);
        pthread_mutex_lock(&s->work_mu);
        if (++s->jobs_done == r->n)
            pthread_cond_signal(&s->done_cv);
    }
    pthread_mutex_unlock(&s->work_mu);
    return NULL;
}

/* A file on the file system every job of r syncs on, or NULL if they span several (or
 * have nothing to sync). */
static const char *common_fs_path(const struct sync_round *r)
{
    const char *path = NULL;
    dev_t dev = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct log_flush_job *job = r->jobs[i];
        const char *p = job->dir ? job->dir : job->parent;
        if (!p && job->n_paths)
            p = job->paths[0];
        if (!p)
            continue;
        struct stat st;
        if (stat(p, &st) != 0)
            return NULL;
        if (path && st.st_dev != dev)
            return NULL;
        if (!path) {
            path = p;
            dev = st.st_dev;
        }
    }
    return path;
}

/* One syncfs(2) makes everything written on the file system durable (data, inodes,
 * directories) behind a single device flush, where one fdatasync per log costs a
 * flush (and, in a VM, an exit to the host) each: with many partitions per round that
 * is most of the sync cost. It also writes other dirty files of that file system, so
 * it is for data dirs that hold mostly Samsa's logs. Since Linux 5.8 it reports
 * writeback errors of the file system; a failure fails every log of the round. */
static bool run_jobs_syncfs(struct syncer *s, struct sync_round *r)
{
    if (s->syncfs_min_jobs == 0 || r->n < s->syncfs_min_jobs)
        return false;
    const char *path = common_fs_path(r);
    if (!path)
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false; /* deleted meanwhile: sync file by file */
    int err = syncfs(fd) == 0 ? 0 : -errno;
    close(fd);
    for (size_t i = 0; i < r->n; i++) {
        r->jobs[i]->err = err;
        r->jobs[i]->sync_failed = err != 0;
    }
    atomic_fetch_add(&s->syncfs_rounds, 1);
    return true;
}

/* Executes a round's jobs: one syncfs, or fdatasyncs with the helpers when there are
 * several. */
static void run_jobs(struct syncer *s, struct sync_round *r)
{
    if (run_jobs_syncfs(s, r))
        return;
    if (s->n_helpers == 0 || r->n < 2) {
        for (size_t i = 0; i < r->n; i++)
            log_flush_execute(r->jobs[i]);
        return;
    }
    pthread_mutex_lock(&s->work_mu);
    s->current = r;
    s->next_job = 0;
    s->jobs_done = 0;
    pthread_cond_broadcast(&s->work_cv);
    while (s->next_job < r->n) {
        size_t i = s->next_job++;
        pthread_mutex_unlock(&s->work_mu);
        log_flush_execute(r->jobs[i]);
        pthread_mutex_lock(&s->work_mu);
        s->jobs_done++;
    }
    while (s->jobs_done < r->n)
        pthread_cond_wait(&s->done_cv, &s->work_mu);
    s->current = NULL;
    pthread_mutex_unlock(&s->work_mu);
}

/* Runs r (taken off the todo list) on the calling thread, then queues it for reaping
 * and wakes the loop. */
static void run_round(struct syncer *s, struct sync_round *r)
{
    if (r->work)
        r->work(r->arg);
    run_jobs(s, r);
    pthread_mutex_lock(&s->mu);
    r->next = NULL;
    if (s->done_tail)
        s->done_tail->next = r;
    else
        s->done_head = r;
    s->done_tail = r;
    uint64_t one = 1;
    ssize_t w = write(s->efd, &one, sizeof(one));
    (void)w; /* eventfd write only fails on counter overflow; reap drains anyway */
    pthread_mutex_unlock(&s->mu);
}

/* The first queued round, taken off the list; NULL if none. Called with mu held. */
static struct sync_round *take_locked(struct syncer *s)
{
    struct sync_round *r = s->todo_head;
    if (r) {
        s->todo_head = r->next;
        if (!s->todo_head)
            s->todo_tail = NULL;
    }
    return r;
}

static void *syncer_main(void *arg)
{
    struct syncer *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->todo_head && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);
        struct sync_round *r = take_locked(s);
        if (!r)
            break; /* stopping and drained */
        pthread_mutex_unlock(&s->mu);
        run_round(s, r);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static struct syncer *syncer_alloc(int *err)
{
    struct syncer *s = xcalloc(1, sizeof(*s));
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) {
        *err = -errno;
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->work_mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    return s;
}

static void syncer_free(struct syncer *s)
{
    close(s->efd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->work_mu);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->done_cv);
    free(s);
}

int syncer_create(struct syncer **out, int threads)
{
    ASSERT(threads >= 1 && threads <= SYNCER_MAX_THREADS);
    int rc = 0;
    struct syncer *s = syncer_alloc(&rc);
    if (!s)
        return rc;
    rc = pthread_create(&s->thread, NULL, syncer_main, s);
    if (rc != 0) {
        syncer_free(s);
        return -rc;
    }
    for (int i = 0; rc == 0 && i < threads - 1; i++) {
        rc = pthread_create(&s->helpers[i], NULL, helper_main, s);
        if (rc == 0)
            s->n_helpers++;
    }
    if (rc != 0) {
        syncer_destroy(s);
        return -rc;
    }
    *out = s;
    return 0;
}

int syncer_create_manual(struct syncer **out)
{
    int rc = 0;
    struct syncer *s = syncer_alloc(&rc);
    if (!s)
        return rc;
    s->manual = true;
    *out = s;
    return 0;
}

size_t syncer_pending(struct syncer *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = 0;
    for (struct sync_round *r = s->todo_head; r; r = r->next)
        n++;
    pthread_mutex_unlock(&s->mu);
    return n;
}

size_t syncer_run_pending(struct syncer *s, size_t max)
{
    ASSERT(s->manual);
    size_t ran = 0;
    while (ran < max) {
        pthread_mutex_lock(&s->mu);
        struct sync_round *r = take_locked(s);
        pthread_mutex_unlock(&s->mu);
        if (!r)
            break;
        run_round(s, r);
        ran++;
    }
    return ran;
}

int syncer_event_fd(struct syncer *s)
{
    return s->efd;
}

void syncer_set_syncfs(struct syncer *s, size_t min_jobs)
{
    s->syncfs_min_jobs = min_jobs;
}

size_t syncer_syncfs_rounds(struct syncer *s)
{
    return atomic_load(&s->syncfs_rounds);
}

static void enqueue(struct syncer *s, struct sync_round *r)
{
    pthread_mutex_lock(&s->mu);
    ASSERT(!s->stopping);
    if (s->todo_tail)
        s->todo_tail->next = r;
    else
        s->todo_head = r;
    s->todo_tail = r;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void syncer_submit_work(struct syncer *s, void (*work)(void *arg), syncer_done_fn done, void *arg)
{
    struct sync_round *r = xcalloc(1, sizeof(*r));
    r->work = work;
    r->done = done;
    r->arg = arg;
    enqueue(s, r);
}

void syncer_submit(struct syncer *s, struct log_flush_job **jobs, size_t n, syncer_done_fn done,
                   void *arg)
{
    struct sync_round *r = xcalloc(1, sizeof(*r));
    r->jobs = n ? xmalloc(n * sizeof(*jobs)) : NULL;
    if (n)
        memcpy(r->jobs, jobs, n * sizeof(*jobs));
    r->n = n;
    r->done = done;
    r->arg = arg;
    enqueue(s, r);
}

void syncer_reap(struct syncer *s)
{
    uint64_t v;
    while (read(s->efd, &v, sizeof(v)) > 0) {
    }
    pthread_mutex_lock(&s->mu);
    struct sync_round *r = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (r) {
        struct sync_round *next = r->next;
        if (r->done)
            r->done(r->arg, r->jobs, r->n);
        free(r->jobs);
        free(r);
        r = next;
    }
}

void syncer_destroy(struct syncer *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->manual) {
        syncer_run_pending(s, SIZE_MAX); /* what a thread would have finished */
    } else {
        pthread_join(s->thread, NULL);
        pthread_mutex_lock(&s->work_mu);
        s->helpers_stop = true;
        pthread_cond_broadcast(&s->work_cv);
        pthread_mutex_unlock(&s->work_mu);
        for (int i = 0; i < s->n_helpers; i++)
            pthread_join(s->helpers[i], NULL);
    }
    syncer_reap(s);
    syncer_free(s);
}
