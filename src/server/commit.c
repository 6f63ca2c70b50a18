/* Group commit: acks=all producers are answered only after their batches are
 * fdatasync'd, and many producers share each sync.
 *
 * Appends go to the page cache and mark their partition `sync_wanted`. Once per event
 * loop iteration (the idle hook), if no sync round is in flight, one round is submitted
 * to the syncer thread with a flush job for every partition that wants one. Requests
 * arriving while a round runs wait for the next round, so under load each round covers
 * everything that arrived during the previous one: the sync rate adapts to the disk.
 * A produce (or internal write) waits in the durable purgatory (s->durable_waits),
 * watching PURGATORY_DURABLE of its partitions. When a round returns, it notifies the
 * partitions it synced and runs the purgatory: every wait whose partitions are now
 * durable up to its offsets is answered, in arrival order.
 *
 * The flush policy (log.flush.interval.messages / .ms, or the topic's flush.messages /
 * flush.ms) uses the same rounds for acks=0/1 data. */
#include "server/internal.h"

#include <stdlib.h>
#include <string.h>

struct wait_item {
    struct partition *partition; /* NULL once the partition failed or went away */
    int64_t offset;              /* durable offset needed (last offset + 1) */
    int16_t *error_slot;         /* where to report a failed sync */
    bool replicated;             /* the high watermark must pass offset too (acks=all) */
};

/* A delayed operation in s->durable_waits, watching PURGATORY_DURABLE of its
 * partitions. */
struct durable_wait {
    struct delayed_op op; /* first: the purgatory hands back &op */
    void (*done)(void *arg);
    void *arg;
    struct wait_item *items;
    size_t count, cap;
};

struct durable_wait *durable_wait_new(void (*done)(void *arg), void *arg)
{
    struct durable_wait *w = xcalloc(1, sizeof *w);
    w->done = done;
    w->arg = arg;
    return w;
}

static void add_item(struct durable_wait *w, struct wait_item item)
{
    if (w->count == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 4;
        w->items = xrealloc(w->items, w->cap * sizeof *w->items);
    }
    w->items[w->count++] = item;
}

void durable_wait_add(struct durable_wait *w, struct partition *p, int64_t offset,
                      int16_t *error_slot)
{
    add_item(w, (struct wait_item){p, offset, error_slot, false});
}

void durable_wait_add_acked(struct durable_wait *w, struct partition *p, int64_t offset,
                            int16_t *error_slot)
{
    add_item(w, (struct wait_item){p, offset, error_slot, partition_replicated(p)});
}

static struct purgatory_key durable_key(const struct partition *p)
{
    return (struct purgatory_key){p, PURGATORY_DURABLE};
}

static struct purgatory_key high_watermark_key(const struct partition *p)
{
    return (struct purgatory_key){p, PURGATORY_HIGH_WATERMARK};
}

static bool item_done(const struct wait_item *it)
{
    return !it->partition ||
           (log_durable_offset(it->partition->log) >= it->offset &&
            (!it->replicated || partition_high_watermark(it->partition) >= it->offset));
}

/* True when every partition of w is durable far enough (or failed). */
static bool wait_done(struct delayed_op *op)
{
    struct durable_wait *w = (struct durable_wait *)op;
    for (size_t i = 0; i < w->count; i++)
        if (!item_done(&w->items[i]))
            return false;
    return true;
}

/* Never forced or expired: a durable wait has no deadline, and shutdown waits for the
 * sync rounds in flight instead. */
static void wait_finish(struct delayed_op *op, enum delayed_outcome how)
{
    struct durable_wait *w = (struct durable_wait *)op;
    /* The acks=all promise: answered without an error only once durable. */
    ASSERT(how == DELAYED_READY);
    for (size_t i = 0; i < w->count; i++) {
        const struct wait_item *it = &w->items[i];
        ASSERT(item_done(it));
        /* The high watermark passed the records, but with fewer in-sync replicas than
         * min.insync.replicas they are not safe enough to acknowledge (Kafka's rule). */
        if (it->partition && it->replicated &&
            it->partition->isr_count < it->partition->settings->min_insync_replicas &&
            *it->error_slot == KERR_NONE)
            *it->error_slot = KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
    }
    w->done(w->arg);
    free(w->items);
    free(w);
}

void durable_wait_submit(struct server *s, struct durable_wait *w)
{
    w->op.try_complete = wait_done;
    w->op.complete = wait_finish;
    /* purgatory_add copies the keys: most produces name few partitions, so they go on
     * the stack (no allocation per acks=all produce). */
    struct purgatory_key few[16] = {{0}};
    struct purgatory_key *keys = w->count <= 8 ? few : xcalloc(2 * w->count, sizeof *keys);
    size_t n = 0;
    for (size_t i = 0; i < w->count; i++) {
        keys[n++] = durable_key(w->items[i].partition);
        if (w->items[i].replicated)
            keys[n++] = high_watermark_key(w->items[i].partition);
    }
    purgatory_add(s->durable_waits, &w->op, keys, n, INT64_MAX);
    if (keys != few)
        free(keys);
}

struct failure {
    struct partition *partition;
    int16_t error;
};

static void fail_items(void *arg, struct delayed_op *op)
{
    const struct failure *f = arg;
    struct durable_wait *w = (struct durable_wait *)op;
    for (size_t i = 0; i < w->count; i++) {
        if (w->items[i].partition == f->partition) {
            w->items[i].partition = NULL;
            *w->items[i].error_slot = f->error;
        }
    }
}

/* Fails the waits on p (its sync failed, or it goes away) with error; they are answered
 * at the next purgatory_run. */
static void fail_waits_on(struct server *s, struct partition *p, int16_t error)
{
    struct failure f = {p, error};
    purgatory_each(s->durable_waits, fail_items, &f);
    purgatory_notify(s->durable_waits, durable_key(p));
}

void server_partition_forget(struct server *s, struct partition *p)
{
    for (size_t i = 0; i < s->sync_wanted_count; i++) {
        if (s->sync_wanted[i] == p) {
            s->sync_wanted[i] = s->sync_wanted[--s->sync_wanted_count];
            break;
        }
    }
    p->sync_wanted = false;
    fail_waits_on(s, p, KERR_UNKNOWN_TOPIC_OR_PARTITION);
    purgatory_forget(s->durable_waits, durable_key(p));
    purgatory_forget(s->durable_waits, high_watermark_key(p));
    purgatory_run(s->durable_waits);
}

void server_partition_demoted(struct server *s, struct partition *p)
{
    /* acks=all waits for the high watermark this node no longer moves: Kafka answers
     * them NOT_LEADER_OR_FOLLOWER and the producer retries with the new leader. */
    fail_waits_on(s, p, KERR_NOT_LEADER_OR_FOLLOWER);
    purgatory_notify(s->fetch_waits, (struct purgatory_key){p, PURGATORY_DATA});
}

void server_high_watermark_moved(struct server *s, struct partition *p)
{
    purgatory_notify(s->durable_waits, high_watermark_key(p));
    /* Consumers' long polls wait for visible data, which is what moved. */
    purgatory_notify(s->fetch_waits, (struct purgatory_key){p, PURGATORY_DATA});
}

/* Queues p for the next sync round (once, however often it is asked). */
static void want_sync(struct server *s, struct partition *p)
{
    if (p->sync_wanted)
        return;
    p->sync_wanted = true;
    if (s->sync_wanted_count == s->sync_wanted_cap) {
        s->sync_wanted_cap = s->sync_wanted_cap ? s->sync_wanted_cap * 2 : 64;
        s->sync_wanted = xrealloc(s->sync_wanted, s->sync_wanted_cap * sizeof *s->sync_wanted);
    }
    s->sync_wanted[s->sync_wanted_count++] = p;
}

void server_after_append(struct server *s, struct partition *p, bool sync_now)
{
    purgatory_notify(s->fetch_waits, (struct purgatory_key){p, PURGATORY_DATA});
    if (p->role == PARTITION_LEADER && partition_leader_appended(p))
        purgatory_notify(s->durable_waits, high_watermark_key(p));
    if (sync_now) {
        want_sync(s, p);
        return;
    }
    /* flush.messages policy, checked per append. */
    int64_t limit = p->settings->flush_messages;
    if (limit < INT64_MAX && log_unflushed_messages(p->log) >= limit)
        want_sync(s, p);
}

/* flush.ms policy: called from a periodic timer. */
void server_flush_policy_tick(struct server *s)
{
    int64_t now = time_mono_ms();
    size_t it = 0;
    struct slice k;
    void *v;
    while (hmap_next(&s->topics, &it, &k, &v)) {
        struct topic_state *ts = v;
        int64_t ms = ts->settings.flush_ms;
        if (ms == INT64_MAX)
            continue;
        for (int32_t i = 0; i < ts->partition_count; i++) {
            struct partition *p = ts->partitions[i];
            if (p && log_unflushed_messages(p->log) > 0 && now - log_last_flush_ms(p->log) >= ms)
                want_sync(s, p);
        }
    }
}

struct round {
    struct server *srv;
    struct log_flush_job *jobs;
    struct log_flush_job **ptrs;
    size_t n;
};

/* Runs on the loop thread when the syncer finished a round (syncer_reap). */
static void round_done(void *arg, struct log_flush_job **jobs, size_t n)
{
    (void)jobs;
    (void)n;
    struct round *r = arg;
    struct server *s = r->srv;
    /* Failed syncs first: their waiters get KAFKA_STORAGE_ERROR. */
    for (size_t i = 0; i < r->n; i++) {
        struct partition *p = r->jobs[i].user;
        if (!p->closed && r->jobs[i].err != 0)
            fail_waits_on(s, p, KERR_KAFKA_STORAGE_ERROR);
    }
    for (size_t i = 0; i < r->n; i++) {
        struct log_flush_job *job = &r->jobs[i];
        struct partition *p = job->user;
        if (!partition_release(p)) {
            log_flush_abandon(job); /* p was closed meanwhile */
            continue;
        }
        bool sync_failed = job->sync_failed; /* read before complete frees the job */
        int rc = log_flush_complete(p->log, job);
        purgatory_notify(s->durable_waits, durable_key(p));
        if (rc != 0 && sync_failed)
            say_error_ratelimited("server",
                                  "fdatasync of partition %s-%d failed: %s; the "
                                  "partition refuses writes until restart",
                                  p->topic, p->index, storage_strerror(rc));
        else if (rc != 0)
            say_error_ratelimited("server",
                                  "cannot sync partition %s-%d: %s; the next "
                                  "flush tries again",
                                  p->topic, p->index, storage_strerror(rc));
    }
    free(r->jobs);
    free(r->ptrs);
    free(r);
    s->round_in_flight = false;
    purgatory_run(s->durable_waits); /* answers, oldest first, what is now durable */
    net_loop_wake(s->loop);          /* the idle hook may start the next round */
}

void server_commit_idle(struct server *s)
{
    if (s->round_in_flight)
        return;
    size_t n = 0;
    struct round *r = NULL;
    if (s->sync_wanted_count > 0) {
        r = xcalloc(1, sizeof *r);
        r->jobs = xcalloc(s->sync_wanted_count, sizeof *r->jobs);
    }
    for (size_t i = 0; i < s->sync_wanted_count; i++) {
        struct partition *p = s->sync_wanted[i];
        p->sync_wanted = false;
        struct log_flush_job *job = &r->jobs[n];
        int rc = log_flush_prepare(p->log, job);
        if (rc != 0) {
            say_error_ratelimited("server", "cannot prepare a sync of %s-%d: %s", p->topic,
                                  p->index, storage_strerror(rc));
            fail_waits_on(s, p, KERR_KAFKA_STORAGE_ERROR);
            continue;
        }
        job->user = p;
        partition_hold(p);
        n++;
    }
    s->sync_wanted_count = 0;
    if (n == 0) {
        if (r) {
            free(r->jobs);
            free(r);
        }
        purgatory_run(s->durable_waits);
        return;
    }
    r->n = n;
    r->srv = s;
    r->ptrs = xcalloc(n, sizeof *r->ptrs);
    for (size_t i = 0; i < n; i++)
        r->ptrs[i] = &r->jobs[i];
    s->round_in_flight = true;
    syncer_submit(s->syncer, r->ptrs, n, round_done, r);
}
