/* Runs the log cleaner for compacted topics (cleanup.policy=compact), off the event
 * loop: every log.cleaner.backoff.ms the loop looks for one partition that needs
 * cleaning (storage decides: dirty ratio, compaction lag, tombstones due), a helper
 * thread rewrites its closed segments, and the loop swaps them in. One partition at a
 * time, like Kafka with log.cleaner.threads=1. The thread is its own, so a long clean
 * never delays the group-commit syncs. */
#include "server/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct clean_run {
    struct server *srv;
    struct partition *p;
    struct log_clean_job job;
};

static void schedule(struct server *s);

static void run_job(void *arg)
{
    struct clean_run *r = arg;
    log_clean_execute(&r->job);
}

static void job_done(void *arg, struct log_flush_job **jobs, size_t n)
{
    (void)jobs;
    (void)n;
    struct clean_run *r = arg;
    struct server *s = r->srv;
    struct partition *p = r->p;
    if (!partition_release(p)) {
        log_clean_abandon(NULL, &r->job); /* p was closed meanwhile */
    } else {
        struct log_clean_stats st = r->job.stats;
        int rc = log_clean_complete(p->log, &r->job);
        if (rc == 0)
            say_info("server",
                     "cleaned %s-%d: %lld of %lld records removed (%lld tombstones, %lld "
                     "batches of aborted transactions, %lld markers), %lld -> %lld bytes, %d -> "
                     "%d segments",
                     p->topic, p->index, (long long)st.records_removed, (long long)st.records_read,
                     (long long)st.tombstones_removed, (long long)st.aborted_batches_removed,
                     (long long)st.markers_removed, (long long)st.bytes_read,
                     (long long)st.bytes_written, st.segments_in, st.segments_out);
        else if (rc == STORAGE_ERR_CLEAN_ABORTED)
            say_info("server", "cleaning %s-%d was abandoned: its segments changed meanwhile",
                     p->topic, p->index);
        else
            say_error("server", "cleaning %s-%d failed: %s", p->topic, p->index,
                      storage_strerror(rc));
    }
    free(r);
    s->clean_in_flight = false;
    schedule(s);
}

/* Starts cleaning one partition that needs it; true if one was started. Partitions are
 * tried round-robin from where the last search stopped, so one partition that is always
 * dirty again (written continuously) cannot starve the others. */
static bool start_one(struct server *s)
{
    size_t n = 0, cap = 16;
    struct partition **cands = xcalloc(cap, sizeof *cands);
    size_t it = 0;
    struct slice k;
    void *v;
    while (hmap_next(&s->topics, &it, &k, &v)) {
        struct topic_state *ts = v;
        if (!ts->settings.compacted)
            continue;
        for (int32_t i = 0; i < ts->partition_count; i++) {
            if (!ts->partitions[i])
                continue; /* another broker's */
            if (n == cap) {
                cap *= 2;
                cands = xrealloc(cands, cap * sizeof *cands);
            }
            cands[n++] = ts->partitions[i];
        }
    }
    bool started = false;
    int64_t now = time_wall_ms();
    for (size_t tried = 0; tried < n && !started; tried++) {
        struct partition *p = cands[(s->clean_cursor + tried) % n];
        struct clean_run *r = xcalloc(1, sizeof *r);
        int rc = log_clean_prepare(p->log, now, partition_high_watermark(p), &r->job);
        if (rc != 0 || !r->job.ready) {
            if (rc != 0 && rc != -EBUSY)
                say_warn("server", "cannot plan cleaning of %s-%d: %s", p->topic, p->index,
                         storage_strerror(rc));
            free(r);
            continue;
        }
        s->clean_cursor = (s->clean_cursor + tried + 1) % n;
        r->srv = s;
        r->p = p;
        partition_hold(p);
        s->clean_in_flight = true;
        say_info("server", "cleaning %s-%d (dirty ratio %.2f)", p->topic, p->index,
                 r->job.dirty_ratio);
        syncer_submit_work(s->cleaner, run_job, job_done, r);
        started = true;
    }
    free(cands);
    return started;
}

static void on_tick(struct net_loop *loop, void *arg)
{
    (void)loop;
    struct server *s = arg;
    s->cleaner_timer = 0;
    if (!s->clean_in_flight && !start_one(s))
        schedule(s);
}

static void schedule(struct server *s)
{
    if (!s->cleaner || s->cleaner_timer || s->stopping)
        return;
    s->cleaner_timer = net_timer_add(s->loop, s->cfg->cleaner_backoff_ms, on_tick, s);
}

static void on_cleaner_event(struct net_loop *loop, int fd, uint32_t events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    struct server *s = arg;
    syncer_reap(s->cleaner);
}

int server_cleaner_start(struct server *s)
{
    if (!s->cfg->cleaner_enable) {
        say_warn("server", "log.cleaner.enable=false: compacted topics grow without cleaning");
        return 0;
    }
    int rc = server_syncer_create(s, 1, &s->cleaner);
    if (rc != 0) {
        say_error("server", "cannot start the log cleaner thread: %s", storage_strerror(rc));
        return -1;
    }
    net_watch(s->loop, syncer_event_fd(s->cleaner), NET_READABLE, on_cleaner_event, s);
    schedule(s);
    return 0;
}

void server_cleaner_stop(struct server *s)
{
    if (!s->cleaner)
        return;
    if (s->cleaner_timer)
        net_timer_cancel(s->loop, s->cleaner_timer);
    s->cleaner_timer = 0;
    s->stopping = true; /* no rescheduling from the last job's completion */
    net_unwatch(s->loop, syncer_event_fd(s->cleaner));
    syncer_destroy(s->cleaner); /* finishes the job in flight; its completion swaps it in */
    s->cleaner = NULL;
}
