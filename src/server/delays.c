/* Delayed delivery (issue #16; docs/architecture.md, "Delayed delivery"): the delay store
 * in __samsa_delay, and the mover that delivers due records into their partitions.
 *
 * A produced batch whose records carry a delivery header goes, whole, to the delay
 * store instead of its partition (server_delay_produce): an envelope per record (delay.h)
 * in the delay partition of its target, appended here on the loop in one batch, so that
 * each envelope's key can name its own offset. The produce is answered with the delay
 * store's offset, as durable as its acks asked. A cancel appends the tombstone of the
 * envelope it names.
 *
 * Each delay partition this node leads keeps in memory only its records due within a
 * window (samsa.delay.window.ms, rounded up to a whole window): a list in offset order
 * (24 bytes a record) and a timing wheel. The rest wait on disk, in the due-time index
 * (delay.h: a file per window of due time, rebuilt from the log at every load), and
 * are taken into memory a window at a time as time moves on. As the wheel hands out due
 * records, the mover delivers them, in due order, one round at a time per delay
 * partition:
 *   1. it waits until their envelopes are durable, so that nothing a producer was not
 *      told about is delivered;
 *   2. reads them back and appends them to their targets, written by this delay
 *      partition's idempotent producer (DELAY_PRODUCER_ID_BASE + the delay partition,
 *      epoch 0), numbered from the next sequence number of each target: the count of
 *      earlier deliveries there;
 *   3. once the targets have them (as acks=all), writes the marks: a tombstone per
 *      envelope and each target's new count.
 * A crash between 2 and 3 leaves the envelopes pending and the counts behind: after the
 * restart the mover finds those sequence numbers in the target's producer state (rebuilt
 * from the target's log) and skips them, so each record is delivered exactly once.
 *
 * An idempotent producer's delayed batch uses up its sequence numbers in the target
 * partition, although its records are elsewhere: the target's producer state records it
 * (log_producer_record), so that its next batch continues from there, and a retry of it
 * is answered as a duplicate. Memory only: loading the delay store records it again.
 *
 * In a cluster the target's leader and the delay partition's may be different brokers:
 * the produce's records go to the store's leader in a SamsaDelayStore request
 * (forward_items, answered by server_delay_store), and the mover delivers to targets led
 * elsewhere with DescribeProducers and Produce (remote_start). docs/architecture.md
 * ("Delayed delivery", "In a cluster") has why. */
#include "delay/delay.h"
#include "server/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Delay partitions: records for one target share one, which keeps their order. */
#define DELAY_PARTITIONS 8
/* The most an existing store may have (its count is kept when it exists). */
#define DELAY_PARTITIONS_MAX 65536
/* The mover's producer ids: far above any the controller hands out (blocks of 1,000
 * from 0), one per delay partition, the same on every broker that ever leads it. */
#define DELAY_PRODUCER_ID_BASE (INT64_C(0x7fff000000000000))
/* Records delivered per round of one delay partition. */
#define ROUND_MAX 8192
/* A target that cannot take deliveries now (not led here, opening) is tried again. */
#define RETRY_MS 200
/* Delivered this much after its due time or later: counted as late. */
#define LATE_MS 1000

static const struct config_entry delay_topic_configs[] = {
    {"cleanup.policy", "compact"},
    {"segment.bytes", "104857600"},
    /* A delivered envelope stays a day after its mark, so that a restart can still tell
     * the target partition about an idempotent producer's delayed batch (as long as
     * producer.id.expiration.ms, by default, remembers the producer there). */
    {"min.compaction.lag.ms", "86400000"},
};

/* A target partition of one delay partition (its index is the tag of its records in the
 * due-time index: both live as long as the delay partition's load). */
struct target {
    uint32_t index; /* in its delay partition's targets */
    char *topic;
    int32_t partition;
    int32_t next_sequence; /* the mover's next sequence number there */
};

/* Where a pending record within the window is, on its way out. */
enum pending_state {
    PENDING_WHEEL,  /* in the wheel */
    PENDING_READY,  /* due: in the ready queue */
    PENDING_MOVING, /* in the mover's round: a cancel is too late */
};

/* A record waiting in the delay store, due within the window: 24 bytes. */
struct pending {
    int64_t offset; /* its envelope's */
    int64_t due_ms;
    uint32_t target; /* index into the delay partition's targets */
    uint8_t state;   /* enum pending_state */
    bool done;       /* delivered or cancelled: a hole until the list is compacted */
    bool old_key;    /* its envelope has the 9-byte key (delay.h): its tombstone too */
};

/* A delay partition's pending records in offset order (envelopes are appended in that
 * order, and loaded in it), found by binary search: no allocation per record. Holes
 * left by deliveries are dropped from the front as they come, and the whole list is
 * compacted when they are more than the records. */
struct pending_list {
    struct pending *v;
    size_t head, len, cap; /* entries v[head, len) */
    size_t live;           /* not done */
};

/* One delay partition: loaded while this node leads it. */
struct dpart {
    bool loaded;
    struct delay_wheel *wheel;
    struct pending_list pending; /* those due before window_end */
    struct hmap targets;         /* the 'S' key -> struct target */
    struct target **tv;          /* the same by index */
    uint32_t tn, tcap;
    /* Records due before window_end are in the pending list and the wheel; the rest
     * are in the index only, and come into memory as the window moves (refill). NULL
     * index: everything is in memory (window_end INT64_MAX), after the index failed. */
    struct delay_index *index;
    int64_t window_end;
    /* Records beyond the window cancelled since they were indexed: envelope offset (8
     * bytes) -> its due time (int64_t, allocated), passed over by the refill. */
    struct hmap cancelled;
    /* Per target and idempotent producer, the last batch stored (struct stored_batch):
     * a produce sent again by a target's leader that got no answer (a timeout, a lost
     * connection) is answered as stored, not stored twice. */
    struct hmap stored_batches;
    /* Offsets the wheel handed out, in due order, for the mover. */
    int64_t *ready;
    size_t ready_head, ready_len, ready_cap;
    struct round *round;        /* the mover's round in flight, NULL: none */
    int64_t retry_at_ms;        /* a target was unavailable: the next round not before */
    struct delay_counts counts; /* as its last 'C' record says, and since */
};

struct delays {
    struct server *srv;
    /* Added to the wall clock for due times (SAMSA_TEST_DELAY_CLOCK_OFFSET_MS): lets a
     * test see an hour-long delay come due without waiting an hour. 0 otherwise. */
    int64_t clock_offset_ms;
    /* A test's crash point: kill -9 of the broker before the marks of round N (0: none;
     * SAMSA_TEST_DELAY_CRASH_BEFORE_MARKS). */
    int64_t crash_before_marks;
    struct itopic_host *host;
    int32_t partitions;
    struct dpart *parts;
    bool *no_index; /* per delay partition: its index failed; all in memory from then on */
};

/* The clock due times are read against: the broker's wall clock (plus a test's offset).
 * Timestamps of records written are the wall clock's. */
static int64_t delays_now(const struct delays *dl)
{
    return time_wall_ms() + dl->clock_offset_ms;
}

/* The delay partition of a target, among the store's count. */
static int32_t delay_partition_of(int32_t count, struct slice topic, int32_t partition)
{
    uint64_t h = hash_bytes(topic.ptr, topic.len) * 31 + (uint64_t)(uint32_t)partition;
    return (int32_t)(h % (uint64_t)count);
}

/* The end of the window that starts at now: a whole window after now, rounded up to a
 * multiple of it (the index's bucket boundaries), so that the window moves on a bucket
 * at a time. */
static int64_t window_after(int64_t now, int64_t window_ms)
{
    int64_t t = now + window_ms;
    return t - (t % window_ms + window_ms) % window_ms + window_ms;
}

/* The target (topic, partition) of d if it has one; NULL if not. */
static struct target *target_find(struct dpart *d, struct slice topic, int32_t partition)
{
    struct buf key;
    buf_init(&key);
    delay_key_sequence(&key, topic, partition);
    struct target *t = hmap_get(&d->targets, (struct slice){key.data, key.len});
    buf_free(&key);
    return t;
}

/* The target (topic, partition) of d, added if new. */
static struct target *target_get(struct dpart *d, struct slice topic, int32_t partition)
{
    struct target *t = target_find(d, topic, partition);
    if (!t) {
        struct buf key;
        buf_init(&key);
        delay_key_sequence(&key, topic, partition);
        t = xcalloc(1, sizeof *t);
        t->topic = slice_to_cstr(topic);
        t->partition = partition;
        hmap_put(&d->targets, (struct slice){key.data, key.len}, t);
        buf_free(&key);
        if (d->tn == d->tcap) {
            d->tcap = d->tcap ? d->tcap * 2 : 16;
            d->tv = xrealloc(d->tv, d->tcap * sizeof *d->tv);
        }
        t->index = d->tn;
        d->tv[d->tn++] = t;
    }
    return t;
}

/* ---- pending records ---- */

static struct pending *pending_find(struct dpart *d, int64_t offset)
{
    struct pending_list *l = &d->pending;
    size_t lo = l->head, hi = l->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->v[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < l->len && l->v[lo].offset == offset && !l->v[lo].done ? &l->v[lo] : NULL;
}

/* Takes a record due within the window into the pending list and the wheel. */
static void pending_add(struct dpart *d, int64_t offset, int64_t due_ms, uint32_t target,
                        bool old_key)
{
    struct pending_list *l = &d->pending;
    if (l->len > l->head && l->v[l->len - 1].offset >= offset)
        return; /* not after the last: the same envelope again cannot be; keep the first */
    if (l->len == l->cap) {
        if (l->head > l->len / 2) {
            memmove(l->v, l->v + l->head, (l->len - l->head) * sizeof *l->v);
            l->len -= l->head;
            l->head = 0;
        } else {
            l->cap = l->cap ? l->cap * 2 : 1024;
            l->v = xrealloc(l->v, l->cap * sizeof *l->v);
        }
    }
    l->v[l->len++] = (struct pending){.offset = offset,
                                      .due_ms = due_ms,
                                      .target = target,
                                      .state = PENDING_WHEEL,
                                      .old_key = old_key};
    l->live++;
    delay_wheel_add(d->wheel, &(struct delay_entry){due_ms, (uint64_t)offset, offset});
}

/* Forgets a pending record (delivered, cancelled); false if it was not pending.
 * Invalidates pointers pending_find gave. */
static bool pending_remove(struct dpart *d, int64_t offset)
{
    struct pending_list *l = &d->pending;
    struct pending *pe = pending_find(d, offset);
    if (!pe)
        return false;
    pe->done = true; /* its wheel entry, if it still has one, is passed over when due */
    l->live--;
    while (l->head < l->len && l->v[l->head].done)
        l->head++;
    if (l->len - l->head > 2 * l->live + 1024) {
        size_t n = 0;
        for (size_t i = l->head; i < l->len; i++)
            if (!l->v[i].done)
                l->v[n++] = l->v[i];
        l->head = 0;
        l->len = n;
    }
    return true;
}

static void ready_push(struct dpart *d, int64_t offset)
{
    if (d->ready_head + d->ready_len == d->ready_cap) {
        if (d->ready_head > 0) {
            memmove(d->ready, d->ready + d->ready_head, d->ready_len * sizeof *d->ready);
            d->ready_head = 0;
        } else {
            d->ready_cap = d->ready_cap ? d->ready_cap * 2 : 256;
            d->ready = xrealloc(d->ready, d->ready_cap * sizeof *d->ready);
        }
    }
    d->ready[d->ready_head + d->ready_len++] = offset;
}

/* Puts offsets back at the front of the ready queue, in their order. */
static void ready_unshift(struct dpart *d, const int64_t *offsets, size_t n)
{
    if (n == 0)
        return;
    if (d->ready_head < n) {
        size_t cap = d->ready_len + n + 256;
        int64_t *fresh = xcalloc(cap, sizeof *fresh);
        memcpy(fresh + n, d->ready + d->ready_head, d->ready_len * sizeof *fresh);
        free(d->ready);
        d->ready = fresh;
        d->ready_cap = cap;
        d->ready_head = n;
    }
    d->ready_head -= n;
    d->ready_len += n;
    memcpy(d->ready + d->ready_head, offsets, n * sizeof *offsets);
}

static void on_due(void *arg, const struct delay_entry *e)
{
    struct dpart *d = arg;
    struct pending *pe = pending_find(d, e->ref);
    if (pe && pe->state == PENDING_WHEEL) { /* not cancelled meanwhile */
        pe->state = PENDING_READY;
        ready_push(d, e->ref);
    }
}

/* ---- the last batch of each idempotent producer, per target ---- */

struct stored_batch {
    int16_t epoch;
    int32_t first_sequence, last_sequence;
    int64_t base_offset; /* its first envelope's */
    int64_t timestamp;   /* its records', for expiry */
};

static void stored_batch_key(uint8_t out[12], const struct target *t, int64_t producer_id)
{
    be32_write(out, t->index);
    be64_write(out + 4, (uint64_t)producer_id);
}

/* The envelope at offset is of an idempotent producer's batch: the first of that batch
 * seen for its target becomes the producer's last there. */
static void batch_stored(struct dpart *d, const struct target *t, const struct delay_envelope *e,
                         int64_t offset)
{
    if (e->producer_id < 0)
        return;
    uint8_t k[12];
    stored_batch_key(k, t, e->producer_id);
    struct slice key = {k, sizeof k};
    struct stored_batch *b = hmap_get(&d->stored_batches, key);
    if (!b) {
        b = xcalloc(1, sizeof *b);
        hmap_put(&d->stored_batches, key, b);
    } else if (b->epoch == e->producer_epoch && b->first_sequence == e->first_sequence) {
        return; /* a later record of the same batch */
    }
    *b = (struct stored_batch){e->producer_epoch, e->first_sequence, e->last_sequence, offset,
                               e->timestamp};
}

/* The offset the batch was stored at if it is the producer's last for t; else -1. */
static int64_t batch_stored_at(struct dpart *d, const struct target *t,
                               const struct delay_envelope *e)
{
    uint8_t k[12];
    stored_batch_key(k, t, e->producer_id);
    struct stored_batch *b = hmap_get(&d->stored_batches, (struct slice){k, sizeof k});
    return b && b->epoch == e->producer_epoch && b->first_sequence == e->first_sequence
               ? b->base_offset
               : -1;
}

/* Forgets producers whose last batch is older than before_ms (producer.id.expiration.ms,
 * as a partition forgets them). */
static void stored_batches_prune(struct dpart *d, int64_t before_ms)
{
    size_t n = 0, cap = 0, it = 0;
    uint8_t(*gone)[12] = NULL;
    struct slice k;
    void *v;
    while (hmap_next(&d->stored_batches, &it, &k, &v)) {
        if (((struct stored_batch *)v)->timestamp >= before_ms)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            gone = xrealloc(gone, cap * sizeof *gone);
        }
        memcpy(gone[n++], k.ptr, 12);
    }
    for (size_t i = 0; i < n; i++)
        free(hmap_remove(&d->stored_batches, (struct slice){gone[i], 12}));
    free(gone);
}

/* ---- records beyond the window: the due-time index ---- */

/* The index of delay partition i failed (a write error, damage found): from now on that
 * delay partition keeps everything in memory, loaded again from the log to get back what
 * only the index held. Logged. */
static void index_failed(struct delays *dl, int32_t i, int rc, const char *what)
{
    say_error("server",
              "%s-%d: the due-time index of delayed records failed (%s: %s); keeping all "
              "of its pending records in memory until the broker restarts",
              DELAY_TOPIC, i, what, rc ? strerror(-rc) : "damaged entries");
    dl->no_index[i] = true;
    itopic_host_reload(dl->host, i);
}

/* A pending record, loaded or just stored: into memory when due within the window (or
 * when it has an old key, or there is no index), else into the index. */
static void hold(struct delays *dl, int32_t i, int64_t offset, int64_t due_ms, struct target *t,
                 bool old_key)
{
    struct dpart *d = &dl->parts[i];
    if (due_ms < d->window_end || old_key || !d->index || dl->no_index[i]) {
        pending_add(d, offset, due_ms, t->index, old_key);
        return;
    }
    int rc = delay_index_add(d->index, due_ms, offset, t->index);
    if (rc != 0)
        index_failed(dl, i, rc, "writing");
}

static bool cancelled_has(struct dpart *d, int64_t offset)
{
    uint8_t k[8];
    be64_write(k, (uint64_t)offset);
    return hmap_get(&d->cancelled, (struct slice){k, 8}) != NULL;
}

/* false if it was cancelled already */
static bool cancelled_add(struct dpart *d, int64_t offset, int64_t due_ms)
{
    uint8_t k[8];
    be64_write(k, (uint64_t)offset);
    struct slice key = {k, 8};
    if (hmap_get(&d->cancelled, key))
        return false;
    int64_t *due = xmalloc(sizeof *due);
    *due = due_ms;
    hmap_put(&d->cancelled, key, due);
    return true;
}

/* Forgets the cancels of records due before end: the refill has passed them. */
static void cancelled_prune(struct dpart *d, int64_t end)
{
    size_t n = 0, cap = 0;
    int64_t *gone = NULL;
    size_t it = 0;
    struct slice k;
    void *v;
    while (hmap_next(&d->cancelled, &it, &k, &v)) {
        if (*(int64_t *)v >= end)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            gone = xrealloc(gone, cap * sizeof *gone);
        }
        gone[n++] = (int64_t)be64_read(k.ptr);
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t key[8];
        be64_write(key, (uint64_t)gone[i]);
        free(hmap_remove(&d->cancelled, (struct slice){key, 8}));
    }
    free(gone);
}

/* Forgets a pending record (delivered or cancelled) whose envelope's key said it was due
 * at due_ms: false if it was not pending (that is known only within the window). */
static bool forget(struct dpart *d, int64_t offset, int64_t due_ms)
{
    if (pending_remove(d, offset))
        return true;
    return d->index && due_ms != DELAY_DUE_UNKNOWN && due_ms >= d->window_end &&
           cancelled_add(d, offset, due_ms);
}

struct refill {
    struct dpart *d;
    struct pending *v;
    size_t n, cap;
};

static void refill_take(void *arg, int64_t due_ms, int64_t offset, uint32_t target)
{
    struct refill *r = arg;
    if (target >= r->d->tn || cancelled_has(r->d, offset))
        return;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 1024;
        r->v = xrealloc(r->v, r->cap * sizeof *r->v);
    }
    r->v[r->n++] = (struct pending){offset, due_ms, target, PENDING_WHEEL, false, false};
}

static int by_offset(const void *a, const void *b)
{
    const struct pending *x = a, *y = b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* Merges records taken from the index (sorted by offset) into the pending list. */
static void pending_merge(struct dpart *d, const struct pending *in, size_t n)
{
    struct pending_list *l = &d->pending;
    size_t cap = MAX(l->live + n, 1024);
    struct pending *v = xcalloc(cap, sizeof *v);
    size_t out = 0, j = 0;
    for (size_t i = l->head; i < l->len; i++) {
        if (l->v[i].done)
            continue;
        while (j < n && in[j].offset < l->v[i].offset)
            v[out++] = in[j++];
        v[out++] = l->v[i];
    }
    while (j < n)
        v[out++] = in[j++];
    free(l->v);
    *l = (struct pending_list){v, 0, out, cap, out};
}

/* Moves delay partition i's window on when a whole window is left of it: the records the
 * index holds for the next stretch come into memory, their bucket files go. */
static void window_refill(struct delays *dl, int32_t i, int64_t now)
{
    struct dpart *d = &dl->parts[i];
    int64_t window_ms = dl->srv->cfg->delay_window_ms;
    if (!d->index || now + window_ms < d->window_end)
        return;
    int64_t end = window_after(now, window_ms);
    struct refill r = {d, NULL, 0, 0};
    size_t damaged = 0;
    int rc = delay_index_scan(d->index, d->window_end, end, refill_take, &r, &damaged);
    if (rc != 0 || damaged > 0) {
        free(r.v);
        index_failed(dl, i, rc, "reading");
        return;
    }
    size_t n = 0; /* an entry found twice is the same record */
    if (r.n > 0) {
        qsort(r.v, r.n, sizeof *r.v, by_offset);
        for (size_t k = 0; k < r.n; k++)
            if (n == 0 || r.v[n - 1].offset != r.v[k].offset)
                r.v[n++] = r.v[k];
        pending_merge(d, r.v, n);
    }
    for (size_t k = 0; k < n; k++)
        delay_wheel_add(
            d->wheel, &(struct delay_entry){r.v[k].due_ms, (uint64_t)r.v[k].offset, r.v[k].offset});
    free(r.v);
    d->window_end = end;
    cancelled_prune(d, end);
    stored_batches_prune(d, now - dl->srv->cfg->producer_id_expiration_ms);
    rc = delay_index_drop_before(d->index, end);
    if (rc != 0)
        say_warn("server", "%s-%d: removing due-time index files: %s", DELAY_TOPIC, i,
                 strerror(-rc));
}

/* When the window next moves on: when a whole window is left before the next stretch
 * the index holds. INT64_MAX: never (it holds nothing beyond). */
static int64_t window_deadline(const struct dpart *d, int64_t window_ms)
{
    if (!d->index)
        return INT64_MAX;
    int64_t next = delay_index_next_bucket(d->index, d->window_end);
    return next == INT64_MAX ? next : MAX(next, d->window_end) - window_ms;
}

static void round_orphan(struct round *r);
static void learn_queue(struct server *s, char *topic, int32_t partition, int tries);
static void learn_send(struct server *s);

static void dpart_unload(struct dpart *d)
{
    free(d->pending.v);
    free(d->tv);
    size_t it = 0;
    struct slice k;
    void *v;
    while (hmap_next(&d->targets, &it, &k, &v)) {
        struct target *t = v;
        free(t->topic);
        free(t);
    }
    hmap_free(&d->targets);
    it = 0;
    while (hmap_next(&d->cancelled, &it, &k, &v))
        free(v);
    hmap_free(&d->cancelled);
    it = 0;
    while (hmap_next(&d->stored_batches, &it, &k, &v))
        free(v);
    hmap_free(&d->stored_batches);
    delay_index_close(d->index);
    delay_wheel_free(d->wheel);
    free(d->ready);
    if (d->round)
        round_orphan(d->round);
    memset(d, 0, sizeof *d);
}

/* ---- reading envelopes back ---- */

/* Bytes read from a delay partition's log: whole batches, so that the envelopes of one
 * produce, delivered together, are read once; and a cursor into them, since a round
 * mostly asks for ascending offsets (records due in produce order). */
struct chunk {
    struct buf data;
    int64_t first, end; /* offsets it holds: [first, end) */
    bool cursor;        /* ri/info hold the batch of the last record found */
    struct batch_info info;
    struct record_iter ri;
    int64_t cursor_offset; /* the last record found */
};

static bool chunk_find(struct chunk *c, int64_t offset, struct record *out)
{
    if (offset < c->first || offset >= c->end)
        return false;
    if (c->cursor && offset > c->cursor_offset && offset <= batch_last_offset(&c->info)) {
        while (record_iter_next(&c->ri, out) > 0)
            if (out->offset >= offset) {
                c->cursor_offset = out->offset;
                return out->offset == offset;
            }
        c->cursor = false;
        return false;
    }
    c->cursor = false;
    struct batch_iter it;
    batch_iter_init(&it, c->data.data, c->data.len);
    while (batch_iter_next(&it, &c->info, false) > 0) {
        if (batch_last_offset(&c->info) < offset)
            continue;
        if (c->info.base_offset > offset || batch_compression(&c->info) != 0 ||
            (c->info.attributes & BATCH_ATTR_CONTROL))
            return false;
        record_iter_init(&c->ri, c->data.data + it.batch_pos, &c->info);
        while (record_iter_next(&c->ri, out) > 0)
            if (out->offset >= offset) {
                c->cursor = true;
                c->cursor_offset = out->offset;
                return out->offset == offset;
            }
        return false;
    }
    return false;
}

/* The record at offset of p (a delay partition), its bytes in c: 0, or -1 when it cannot
 * be read or is not there (logged if log_missing). */
static int read_record(struct partition *p, int64_t offset, struct chunk *c, struct record *out,
                       bool log_missing)
{
    if (chunk_find(c, offset, out))
        return 0;
    struct log_read_result rr;
    int rc = log_read(p->log, offset, 1 << 20, log_end_offset(p->log), &rr);
    if (rc == 0 && rr.len > 0) {
        buf_reset(&c->data);
        c->cursor = false;
        rc = pread_exact(rr.fd, buf_extend(&c->data, (size_t)rr.len), (size_t)rr.len, rr.file_pos);
        c->first = rr.first_batch_offset;
        c->end = rc == 0 ? rr.next_offset : c->first;
    }
    storage_read_turn_end();
    if (rc == 0 && chunk_find(c, offset, out))
        return 0;
    if (rc == 0 && !log_missing)
        return -1;
    say_error("server", "%s-%d: the envelope at offset %lld cannot be read (%s)", p->topic,
              p->index, (long long)offset, rc ? storage_strerror(rc) : "not found");
    return -1;
}

/* ---- the mover ---- */

/* The records a round delivers to one target, copied out of the envelopes (whose bytes
 * go when the next chunk is read), then encoded as the mover's batches. */
struct outgoing {
    struct buf bytes; /* keys, values and header sections */
    struct outgoing_record {
        size_t key_at, value_at, headers_at, headers_len;
        int32_t key_len, value_len; /* -1: null */
        int32_t header_count;
    } * recs;
    size_t n, cap;
    int32_t first_sequence; /* of recs[0] */
};

struct delivery {
    int64_t offset;
    int64_t key_due_ms; /* the due time its envelope's key holds (DELAY_DUE_UNKNOWN: old) */
    struct target *target;
    uint32_t rt; /* its target's index in the round's targets */
    int32_t sequence;
    bool dropped; /* its partition was deleted: marked, not delivered */
};

struct round_target {
    struct target *target;
    struct partition *partition; /* led here; NULL: led by node */
    int32_t node;
    bool sent;              /* led by node: its records went there in a Produce */
    int32_t first_sequence; /* the target's next sequence before this round */
    int16_t error;
};

struct round {
    /* NULL once its delay partition was unloaded (or the delays stopped): the round only
     * frees itself. */
    struct delays *dl;
    int32_t part;
    struct delivery *items;
    size_t n;
    struct round_target *targets;
    size_t target_count;
    struct outgoing *outs; /* per round target: its records, until they are sent */
    int16_t envelopes_error;
    int waiting; /* steps of delivery not done: the local targets' wait, each node's */
};

/* Its delay partition is unloaded: its waits still complete, and it frees itself then. */
static void round_orphan(struct round *r)
{
    r->dl = NULL;
}

static void outgoing_free(struct outgoing *o);

static void round_forget(struct round *r)
{
    for (size_t i = 0; r->outs && i < r->target_count; i++)
        outgoing_free(&r->outs[i]);
    free(r->outs);
    free(r->items);
    free(r->targets);
    free(r);
}

/* A step of a round resumes: the round's delay partition, or NULL, the round freed,
 * when that was unloaded (or everything stopped) since. */
static struct dpart *round_resume(struct round *r)
{
    if (r->dl)
        return &r->dl->parts[r->part];
    round_forget(r);
    return NULL;
}

static struct partition *delay_partition(struct delays *dl, int32_t i)
{
    struct partition *p = server_partition(dl->srv, slice_from_cstr(DELAY_TOPIC), i);
    return p && partition_check_leader(p, -1) == KERR_NONE ? p : NULL;
}

/* Ends a round: entries not delivered go back to the front of the ready queue. */
static void round_end(struct round *r, struct dpart *d, bool retry_later)
{
    int64_t *back = xcalloc(r->n ? r->n : 1, sizeof *back);
    size_t nb = 0;
    for (size_t i = 0; i < r->n; i++) {
        struct pending *pe = pending_find(d, r->items[i].offset);
        if (pe) {
            pe->state = PENDING_READY;
            back[nb++] = r->items[i].offset;
        }
    }
    ready_unshift(d, back, nb);
    free(back);
    if (retry_later && nb > 0)
        d->retry_at_ms = delays_now(r->dl) + RETRY_MS;
    d->round = NULL;
    struct delays *dl = r->dl;
    round_forget(r);
    itopic_host_called(dl->host); /* the next round, from the timer */
}

/* Step 3: the targets have their records; marks for those delivered. */
static void round_delivered(void *arg)
{
    struct round *r = arg;
    struct dpart *d = round_resume(r);
    if (!d)
        return;
    struct delays *dl = r->dl;
    struct partition *p = delay_partition(dl, r->part);
    if (dl->crash_before_marks > 0 && --dl->crash_before_marks == 0) {
        /* A test's crash point (SAMSA_TEST_DELAY_CRASH_BEFORE_MARKS): the targets have
         * the records, the store has no marks. */
        say_warn("server", "delayed delivery: crashing before the marks, as the test asked");
        raise(SIGKILL);
    }
    struct record_in *marks = xcalloc(r->n + r->target_count + 1, sizeof *marks);
    uint8_t(*keys)[DELAY_ENVELOPE_KEY_BYTES] = xcalloc(r->n ? r->n : 1, sizeof *keys);
    struct buf *skeys = xcalloc(r->target_count ? r->target_count : 1, sizeof *skeys);
    uint8_t(*svals)[4] = xcalloc(r->target_count ? r->target_count : 1, sizeof *svals);
    size_t nm = 0;
    int64_t now = delays_now(dl);
    for (size_t i = 0; i < r->n; i++) {
        struct delivery *it = &r->items[i];
        struct round_target *rt = &r->targets[it->rt];
        if (rt->error != KERR_NONE && !it->dropped)
            continue;
        struct pending *pe = pending_find(d, it->offset);
        if (it->dropped)
            d->counts.dropped++;
        else if (pe && now - pe->due_ms >= LATE_MS)
            d->counts.late++;
        d->counts.delivered += !it->dropped;
        pending_remove(d, it->offset);
        size_t klen = delay_key_envelope(keys[i], it->offset, it->key_due_ms);
        marks[nm++] = (struct record_in){{keys[i], klen}, SLICE_NULL};
    }
    for (size_t i = 0; i < r->target_count; i++) {
        struct round_target *rt = &r->targets[i];
        buf_init(&skeys[i]);
        if (rt->error != KERR_NONE) {
            /* Nothing of this round reached it for sure: the same sequence numbers go
             * again (any that did reach it are skipped then). */
            rt->target->next_sequence = rt->first_sequence;
            continue;
        }
        delay_key_sequence(&skeys[i], slice_from_cstr(rt->target->topic), rt->target->partition);
        be32_write(svals[i], (uint32_t)rt->target->next_sequence);
        marks[nm++] = (struct record_in){{skeys[i].data, skeys[i].len}, {svals[i], 4}};
    }
    uint8_t counts[DELAY_COUNTS_BYTES];
    delay_counts_encode(counts, &d->counts);
    if (nm > 0)
        marks[nm++] =
            (struct record_in){slice_from_cstr(DELAY_COUNTS_KEY), {counts, DELAY_COUNTS_BYTES}};
    if (nm > 0 && p) {
        /* Not waited for: a mark lost in a crash means a delivery found again in the
         * target, and skipped. */
        struct buf batch;
        buf_init(&batch);
        batch_encode(&batch, marks, nm, time_wall_ms());
        struct log_append_result res;
        int rc = partition_append_as_leader(p, batch.data, batch.len, time_wall_ms(), &res);
        buf_free(&batch);
        if (rc < 0)
            say_error("server", "%s-%d: writing delivery marks failed: %s", p->topic, p->index,
                      storage_strerror(rc));
        else
            server_after_append(dl->srv, p, false);
    }
    for (size_t i = 0; i < r->target_count; i++)
        buf_free(&skeys[i]);
    free(skeys);
    free(svals);
    free(keys);
    free(marks);
    bool failed = false;
    for (size_t i = 0; i < r->target_count; i++)
        failed |= r->targets[i].error != KERR_NONE;
    round_end(r, d, failed);
}

static size_t copy_field(struct buf *b, struct slice s, int32_t *len)
{
    size_t at = b->len;
    *len = s.ptr ? (int32_t)s.len : -1;
    if (s.len)
        buf_append(b, s.ptr, s.len);
    return at;
}

/* Adds a record to o: its key, value and headers, and samsa.delay.id naming its
 * envelope. */
static void outgoing_add(struct outgoing *o, const struct delay_envelope *e, int64_t offset,
                         int32_t sequence)
{
    if (o->n == 0)
        o->first_sequence = sequence;
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 16;
        o->recs = xrealloc(o->recs, o->cap * sizeof *o->recs);
    }
    struct outgoing_record *r = &o->recs[o->n++];
    r->key_at = copy_field(&o->bytes, e->key, &r->key_len);
    r->value_at = copy_field(&o->bytes, e->value, &r->value_len);
    r->headers_at = o->bytes.len;
    if (e->headers.len)
        buf_append(&o->bytes, e->headers.ptr, e->headers.len);
    char id[24];
    int idlen = snprintf(id, sizeof id, "%" PRId64, offset);
    buf_put_varint(&o->bytes, (int32_t)strlen(DELAY_HEADER_ID));
    buf_append(&o->bytes, DELAY_HEADER_ID, strlen(DELAY_HEADER_ID));
    buf_put_varint(&o->bytes, idlen);
    buf_append(&o->bytes, id, (size_t)idlen);
    r->headers_len = o->bytes.len - r->headers_at;
    r->header_count = e->header_count + 1;
}

/* The records of o from the skip-th on as the mover's batches (consecutive sequence
 * numbers), each at most about max_bytes of records. */
static void outgoing_encode(const struct outgoing *o, size_t skip, int64_t producer_id,
                            int64_t max_bytes, int64_t now, struct buf *out)
{
    struct record_out *recs = xcalloc(o->n ? o->n : 1, sizeof *recs);
    for (size_t i = 0; i < o->n; i++) {
        const struct outgoing_record *r = &o->recs[i];
        const uint8_t *base = o->bytes.data;
        recs[i] = (struct record_out){
            .key =
                r->key_len < 0 ? SLICE_NULL : (struct slice){base + r->key_at, (size_t)r->key_len},
            .value = r->value_len < 0 ? SLICE_NULL
                                      : (struct slice){base + r->value_at, (size_t)r->value_len},
            .header_count = r->header_count,
            .headers = {base + r->headers_at, r->headers_len}};
    }
    size_t first = skip;
    int32_t sequence = pstate_seq_add(o->first_sequence, (int32_t)skip);
    while (first < o->n) {
        size_t end = first, bytes = 0;
        while (end < o->n && (end == first || bytes < (size_t)max_bytes)) {
            bytes += recs[end].key.len + recs[end].value.len + recs[end].headers.len + 32;
            end++;
        }
        struct batch_producer prod = {producer_id, 0, sequence};
        batch_encode_records(out, recs + first, end - first, now, &prod);
        sequence = pstate_seq_add(sequence, (int32_t)(end - first));
        first = end;
    }
    free(recs);
}

static void outgoing_free(struct outgoing *o)
{
    buf_free(&o->bytes);
    free(o->recs);
}

/* Whether the mover's record of this sequence number is in a target already, by the
 * target's producer state for the mover (epoch 0): delivered before a crash whose marks
 * were lost. */
static bool already_there(const struct pstate_batch *last, int32_t sequence)
{
    return last->epoch == 0 && sequence <= last->last_seq &&
           last->last_seq - sequence < INT32_MAX / 2;
}

/* A step of the round's delivery is done: after the last, the marks. */
static void round_step_done(void *arg)
{
    struct round *r = arg;
    if (--r->waiting == 0)
        round_delivered(r);
}

/* ---- deliveries to targets another broker leads ----
 * Per broker, two requests: DescribeProducers (what it has of the mover's sequence
 * numbers: after a crash between delivery and marks, or when another broker led the
 * delay partition before, some may be there), then Produce (acks=all) with the rest, as
 * the delay partition's idempotent producer. Any failure leaves those targets' records
 * pending for the next round, which asks again. */
#define REMOTE_TIMEOUT_MS 30000

struct remote {
    struct round *r;
    int32_t node;
};

static bool remote_target(const struct round *r, size_t i, int32_t node)
{
    return !r->targets[i].partition && r->targets[i].node == node;
}

/* The step for m's broker is over: targets still without an answer get error. */
static void remote_done(struct remote *m, int16_t error)
{
    struct round *r = m->r;
    for (size_t i = 0; i < r->target_count; i++)
        if (remote_target(r, i, m->node) && r->targets[i].error == KERR_NONE)
            r->targets[i].error = error;
    free(m);
    round_step_done(r);
}

static int16_t remote_error(int err)
{
    return err == -ETIMEDOUT ? KERR_REQUEST_TIMED_OUT : KERR_NOT_LEADER_OR_FOLLOWER;
}

/* The round target of node that a response's (topic, partition) names; NULL if none. */
static struct round_target *remote_find(struct round *r, int32_t node, struct slice topic,
                                        int32_t partition)
{
    for (size_t i = 0; i < r->target_count; i++)
        if (remote_target(r, i, node) && r->targets[i].target->partition == partition &&
            slice_eq_cstr(topic, r->targets[i].target->topic))
            return &r->targets[i];
    return NULL;
}

static void remote_produced(void *arg, int err, struct reader *body)
{
    struct remote *m = arg;
    struct round *r = m->r;
    if (err != 0 || !r->dl) {
        remote_done(m, remote_error(err));
        return;
    }
    struct arena a;
    arena_init(&a);
    struct produce_response resp;
    if (produce_response_decode(body, 8, &a, &resp) != 0) {
        arena_free(&a);
        remote_done(m, KERR_CORRUPT_MESSAGE);
        return;
    }
    /* Each target sent to is delivered once its partition's answer says so (a duplicate:
     * it was there already), and not if the answer does not name it. */
    for (size_t i = 0; i < r->target_count; i++)
        if (remote_target(r, i, m->node) && r->targets[i].sent)
            r->targets[i].error = KERR_UNKNOWN_SERVER_ERROR;
    for (int32_t ti = 0; ti < resp.responses_count; ti++) {
        const struct produce_response_responses *t = &resp.responses[ti];
        for (int32_t pi = 0; pi < t->partition_responses_count; pi++) {
            const struct produce_response_responses_partition_responses *pr =
                &t->partition_responses[pi];
            struct round_target *rt = remote_find(r, m->node, t->name, pr->index);
            if (rt && rt->sent)
                rt->error =
                    pr->error_code == KERR_DUPLICATE_SEQUENCE_NUMBER ? KERR_NONE : pr->error_code;
        }
    }
    arena_free(&a);
    remote_done(m, KERR_NONE);
}

static void outgoing_encode(const struct outgoing *o, size_t skip, int64_t producer_id,
                            int64_t max_bytes, int64_t now, struct buf *out);

/* What m's broker has of the mover's sequence numbers: the records it has are skipped,
 * the rest sent. */
static void remote_described(void *arg, int err, struct reader *body)
{
    struct remote *m = arg;
    struct round *r = m->r;
    if (err != 0 || !r->dl) {
        remote_done(m, remote_error(err));
        return;
    }
    int64_t producer_id = DELAY_PRODUCER_ID_BASE + r->part;
    struct arena a;
    arena_init(&a);
    struct describe_producers_response resp;
    if (describe_producers_response_decode(body, 0, &a, &resp) != 0) {
        arena_free(&a);
        remote_done(m, KERR_CORRUPT_MESSAGE);
        return;
    }
    size_t *skip = xcalloc(r->target_count + 1, sizeof *skip), skipped = 0;
    /* A target the answer does not name is not sent to this round. */
    bool *described = xcalloc(r->target_count + 1, sizeof *described);
    for (int32_t ti = 0; ti < resp.topics_count; ti++) {
        const struct describe_producers_response_topics *t = &resp.topics[ti];
        for (int32_t pi = 0; pi < t->partitions_count; pi++) {
            const struct describe_producers_response_topics_partitions *pp = &t->partitions[pi];
            struct round_target *rt = remote_find(r, m->node, t->name, pp->partition_index);
            if (!rt || rt->error != KERR_NONE)
                continue;
            size_t i = (size_t)(rt - r->targets);
            described[i] = true;
            if (pp->error_code != KERR_NONE) {
                rt->error = pp->error_code;
                continue;
            }
            for (int32_t k = 0; k < pp->active_producers_count; k++) {
                const struct describe_producers_response_topics_partitions_active_producers *ap =
                    &pp->active_producers[k];
                struct pstate_batch last = {.epoch = (int16_t)ap->producer_epoch,
                                            .last_seq = ap->last_sequence};
                while (ap->producer_id == producer_id && skip[i] < r->outs[i].n &&
                       already_there(&last,
                                     pstate_seq_add(r->outs[i].first_sequence, (int32_t)skip[i])))
                    skip[i]++;
            }
            skipped += skip[i];
        }
    }
    for (size_t i = 0; i < r->target_count; i++)
        if (remote_target(r, i, m->node) && r->targets[i].error == KERR_NONE && !described[i])
            r->targets[i].error = KERR_UNKNOWN_SERVER_ERROR;
    free(described);
    arena_free(&a);
    if (skipped > 0)
        say_info("server",
                 "%s-%d: %zu due records are in their partitions on node %d already (delivered "
                 "before, whose marks were lost): not delivered again",
                 DELAY_TOPIC, r->part, skipped, m->node);
    /* The rest, in one Produce. */
    int64_t now = time_wall_ms();
    struct produce_request_topic_data *tds = xcalloc(r->target_count + 1, sizeof *tds);
    struct produce_request_topic_data_partition_data *pds =
        xcalloc(r->target_count + 1, sizeof *pds);
    struct buf *batches = xcalloc(r->target_count + 1, sizeof *batches);
    int32_t ntd = 0;
    for (size_t i = 0; i < r->target_count; i++) {
        struct round_target *rt = &r->targets[i];
        buf_init(&batches[i]);
        if (!remote_target(r, i, m->node) || rt->error != KERR_NONE || skip[i] >= r->outs[i].n)
            continue;
        outgoing_encode(&r->outs[i], skip[i], producer_id, 1 << 20, now, &batches[i]);
        rt->sent = true;
        produce_request_topic_data_init(&tds[ntd]);
        produce_request_topic_data_partition_data_init(&pds[ntd]);
        pds[ntd].index = rt->target->partition;
        pds[ntd].records = (struct slice){batches[i].data, batches[i].len};
        tds[ntd].name = slice_from_cstr(rt->target->topic);
        tds[ntd].partition_data = &pds[ntd];
        tds[ntd].partition_data_count = 1;
        ntd++;
    }
    free(skip);
    int rc = 0;
    if (ntd > 0) {
        struct produce_request req;
        produce_request_init(&req);
        req.acks = -1;
        req.timeout_ms = REMOTE_TIMEOUT_MS;
        req.topic_data = tds;
        req.topic_data_count = ntd;
        struct buf frame;
        buf_init(&frame);
        proto_request_header_encode(
            &frame, &(struct request_header){.api_key = API_KEY_PRODUCE,
                                             .api_version = 8,
                                             .client_id = slice_from_cstr("samsa")});
        produce_request_encode(&frame, 8, &req);
        rc = server_peer_send(r->dl->srv, m->node, &frame, REMOTE_TIMEOUT_MS + 5000,
                              remote_produced, m);
        buf_free(&frame);
    }
    for (size_t i = 0; i < r->target_count; i++)
        buf_free(&batches[i]);
    free(batches);
    free(pds);
    free(tds);
    if (ntd == 0 || rc != 0)
        remote_done(m, ntd == 0 ? KERR_NONE : remote_error(rc));
}

/* Starts the deliveries to the targets node leads. */
static void remote_start(struct round *r, int32_t node)
{
    struct remote *m = xcalloc(1, sizeof *m);
    *m = (struct remote){r, node};
    r->waiting++;
    struct describe_producers_request req;
    describe_producers_request_init(&req);
    req.topics = xcalloc(r->target_count + 1, sizeof *req.topics);
    req.topics_count = 0;
    for (size_t i = 0; i < r->target_count; i++) {
        if (!remote_target(r, i, node) || r->targets[i].error != KERR_NONE)
            continue;
        struct describe_producers_request_topics *t = &req.topics[req.topics_count++];
        describe_producers_request_topics_init(t);
        t->name = slice_from_cstr(r->targets[i].target->topic);
        t->partition_indexes = &r->targets[i].target->partition;
        t->partition_indexes_count = 1;
    }
    struct buf frame;
    buf_init(&frame);
    proto_request_header_encode(&frame,
                                &(struct request_header){.api_key = API_KEY_DESCRIBE_PRODUCERS,
                                                         .api_version = 0,
                                                         .client_id = slice_from_cstr("samsa")});
    describe_producers_request_encode(&frame, 0, &req);
    int rc = server_peer_send(r->dl->srv, node, &frame, REMOTE_TIMEOUT_MS, remote_described, m);
    buf_free(&frame);
    free(req.topics);
    if (rc != 0) {
        say_warn_ratelimited("server", "%s-%d: cannot reach node %d to deliver there: %s",
                             DELAY_TOPIC, r->part, node, strerror(-rc));
        remote_done(m, KERR_NOT_LEADER_OR_FOLLOWER);
    }
}

/* Step 2: the envelopes are durable; append the records to their targets. */
static void round_envelopes_durable(void *arg)
{
    struct round *r = arg;
    struct dpart *d = round_resume(r);
    if (!d)
        return;
    struct delays *dl = r->dl;
    struct server *s = dl->srv;
    struct partition *p = delay_partition(dl, r->part);
    if (r->envelopes_error != KERR_NONE || !p) {
        round_end(r, d, true);
        return;
    }
    int64_t producer_id = DELAY_PRODUCER_ID_BASE + r->part;
    int64_t now = time_wall_ms();
    struct chunk c = {.first = 0, .end = 0};
    buf_init(&c.data);
    struct outgoing *outs = xcalloc(r->n ? r->n : 1, sizeof *outs);
    size_t skipped = 0;
    r->targets = xcalloc(r->n ? r->n : 1, sizeof *r->targets);
    /* The targets, in order of first appearance (slot: a target's index in the delay
     * partition -> 1 + its index in the round), and each record's sequence number. */
    uint32_t *slot = xcalloc(d->tn ? d->tn : 1, sizeof *slot);
    for (size_t i = 0; i < r->n; i++) {
        struct delivery *it = &r->items[i];
        struct round_target *rt;
        if (slot[it->target->index]) {
            it->rt = slot[it->target->index] - 1;
            rt = &r->targets[it->rt];
        } else {
            it->rt = (uint32_t)r->target_count;
            slot[it->target->index] = it->rt + 1;
            rt = &r->targets[r->target_count];
            buf_init(&outs[r->target_count].bytes);
            r->target_count++;
            rt->target = it->target;
            rt->first_sequence = it->target->next_sequence;
            struct slice topic = slice_from_cstr(it->target->topic);
            struct partition *tp = server_partition(s, topic, it->target->partition);
            rt->partition = tp && partition_check_leader(tp, -1) == KERR_NONE ? tp : NULL;
            int32_t epoch;
            rt->node = -1;
            if (!rt->partition &&
                server_partition_leader(s, topic, it->target->partition, &rt->node, &epoch) &&
                rt->node == s->cfg->node_id)
                rt->node = -1; /* led here by the metadata, not open as leader yet */
            rt->error = rt->partition || rt->node >= 0 ? KERR_NONE : KERR_NOT_LEADER_OR_FOLLOWER;
        }
        struct record rec;
        struct delay_envelope env;
        if (read_record(p, it->offset, &c, &rec, true) != 0 || !rec.value.ptr ||
            delay_envelope_decode(rec.value, &env) != 0) {
            rt->error = KERR_CORRUPT_MESSAGE; /* logged; tried again later */
            continue;
        }
        /* Its topic was deleted (a topic of the same name since is another one). */
        const struct mtopic *mt = cluster_topic_find(s->cluster, env.topic);
        if (!mt || memcmp(mt->id, env.topic_id, sizeof mt->id) != 0 ||
            env.partition >= mt->partition_count) {
            say_warn_ratelimited("server",
                                 "%s-%d no longer exists: dropping the records pending "
                                 "delivery to it",
                                 it->target->topic, it->target->partition);
            it->dropped = true;
            continue;
        }
        if (rt->error != KERR_NONE)
            continue;
        it->sequence = it->target->next_sequence;
        it->target->next_sequence = pstate_seq_add(it->sequence, 1);
        struct pstate_batch last;
        if (rt->partition && log_producer_last(rt->partition->log, producer_id, &last) &&
            already_there(&last, it->sequence)) {
            skipped++; /* delivered before a crash; its mark was lost */
            continue;
        }
        /* A target led elsewhere: what it has already is asked before sending. */
        outgoing_add(&outs[it->rt], &env, it->offset, it->sequence);
    }
    buf_free(&c.data);
    free(slot);
    if (skipped > 0)
        say_info("server",
                 "%s-%d: %zu due records are in their partitions already (delivered before a "
                 "restart, whose marks were lost): not delivered again",
                 DELAY_TOPIC, r->part, skipped);
    r->outs = outs;
    r->waiting = 1; /* the local targets' wait */
    for (size_t i = 0; i < r->target_count; i++) {
        bool first = r->targets[i].error == KERR_NONE && !r->targets[i].partition;
        for (size_t j = 0; j < i && first; j++) /* started with an earlier one */
            first = !(remote_target(r, j, r->targets[i].node) && r->targets[j].error == KERR_NONE);
        if (first)
            remote_start(r, r->targets[i].node);
    }
    struct durable_wait *w = durable_wait_new(round_step_done, r);
    for (size_t i = 0; i < r->target_count; i++) {
        struct round_target *rt = &r->targets[i];
        if (!rt->partition)
            continue; /* led elsewhere: sent there */
        struct buf batches;
        buf_init(&batches);
        if (rt->error == KERR_NONE && outs[i].n > 0)
            outgoing_encode(&outs[i], 0, producer_id,
                            MIN(rt->partition->settings->max_message_bytes, 1 << 20), now,
                            &batches);
        if (batches.len > 0) {
            struct log_append_result res;
            int rc =
                partition_append_as_leader(rt->partition, batches.data, batches.len, now, &res);
            if (rc < 0) {
                say_error_ratelimited("server", "delivering to %s-%d failed: %s", rt->target->topic,
                                      rt->target->partition, storage_strerror(rc));
                rt->error = kerr_from_storage(rc);
            } else {
                server_after_append(s, rt->partition, true);
            }
        }
        if (rt->error == KERR_NONE)
            durable_wait_add_acked(w, rt->partition, log_end_offset(rt->partition->log),
                                   &rt->error);
        buf_free(&batches);
    }
    durable_wait_submit(s, w);
}

/* Starts a round of d if it has due records and none is in flight. */
static void round_start(struct delays *dl, int32_t i, int64_t now)
{
    struct dpart *d = &dl->parts[i];
    if (!d->loaded || d->round || d->ready_len == 0 || now < d->retry_at_ms)
        return;
    struct partition *p = delay_partition(dl, i);
    if (!p)
        return;
    struct round *r = xcalloc(1, sizeof *r);
    r->dl = dl;
    r->part = i;
    r->items = xcalloc(MIN(d->ready_len, ROUND_MAX), sizeof *r->items);
    int64_t max_offset = -1;
    while (d->ready_len > 0 && r->n < ROUND_MAX) {
        int64_t off = d->ready[d->ready_head++];
        d->ready_len--;
        struct pending *pe = pending_find(d, off);
        if (!pe)
            continue; /* cancelled while it waited */
        pe->state = PENDING_MOVING;
        r->items[r->n++] =
            (struct delivery){.offset = off,
                              .key_due_ms = pe->old_key ? DELAY_DUE_UNKNOWN : pe->due_ms,
                              .target = d->tv[pe->target]};
        max_offset = MAX(max_offset, off);
    }
    if (r->n == 0) {
        free(r->items);
        free(r);
        return;
    }
    d->round = r;
    d->retry_at_ms = 0;
    /* Envelopes recovered after a crash are durable once a sync round says so. */
    if (log_durable_offset(p->log) <= max_offset)
        server_after_append(dl->srv, p, true);
    struct durable_wait *w = durable_wait_new(round_envelopes_durable, r);
    durable_wait_add_acked(w, p, max_offset + 1, &r->envelopes_error);
    durable_wait_submit(dl->srv, w);
}

/* ---- the delays as the host's machine ---- */

static void sm_load_begin(void *sm, int32_t partition, int64_t now_ms)
{
    struct delays *dl = sm;
    now_ms += dl->clock_offset_ms;
    struct dpart *d = &dl->parts[partition];
    if (d->loaded)
        dpart_unload(d);
    d->loaded = true;
    d->wheel = delay_wheel_new_no_cancel(now_ms);
    hmap_init(&d->targets);
    hmap_init(&d->cancelled);
    hmap_init(&d->stored_batches);
    int64_t window_ms = dl->srv->cfg->delay_window_ms;
    d->window_end = INT64_MAX;
    if (dl->no_index[partition])
        return;
    /* The index of those beyond the window: built afresh from the log being loaded. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/delay-index", dl->srv->cfg->log_dir);
    int rc = mkdir(dir, 0755) == 0 || errno == EEXIST ? 0 : -errno;
    snprintf(dir, sizeof dir, "%s/delay-index/%d", dl->srv->cfg->log_dir, partition);
    if (rc == 0)
        rc = delay_index_open(dir, window_ms, &d->index);
    if (rc != 0) {
        say_error("server",
                  "%s-%d: cannot open the due-time index in %s (%s): keeping all of its "
                  "pending records in memory",
                  DELAY_TOPIC, partition, dir, strerror(-rc));
        dl->no_index[partition] = true;
        return;
    }
    d->window_end = window_after(now_ms, window_ms);
}

/* An idempotent producer's delayed batch, told again to its target partition's producer
 * state after a restart (see the top of the file). */
static void replay_producer(struct delays *dl, const struct delay_envelope *e)
{
    if (e->producer_id < 0)
        return;
    const struct mtopic *mt = cluster_topic_find(dl->srv->cluster, e->topic);
    if (!mt || memcmp(mt->id, e->topic_id, sizeof mt->id) != 0)
        return; /* deleted since */
    struct partition *tp = server_partition(dl->srv, e->topic, e->partition);
    if (!tp)
        return;
    int64_t at = MAX(log_end_offset(tp->log) - 1, 0);
    struct pstate_batch b = {.producer_id = e->producer_id,
                             .epoch = e->producer_epoch,
                             .first_seq = e->first_sequence,
                             .last_seq = e->last_sequence,
                             .first_offset = at,
                             .last_offset = at,
                             .timestamp_ms = e->timestamp};
    if (log_producer_check(tp->log, &b, NULL) == PSTATE_APPEND)
        log_producer_record(tp->log, &b);
}

static int sm_load_record(void *sm, int32_t partition, int64_t offset, struct slice key,
                          struct slice value)
{
    struct delays *dl = sm;
    struct dpart *d = &dl->parts[partition];
    struct delay_key k;
    delay_key_decode(key, &k);
    switch (k.kind) {
    case DELAY_KEY_ENVELOPE: {
        if (!value.ptr) {
            forget(d, k.offset, k.due_ms);
            return 0;
        }
        struct delay_envelope e;
        if (k.offset != offset || delay_envelope_decode(value, &e) != 0 ||
            (k.due_ms != DELAY_DUE_UNKNOWN && k.due_ms != e.due_ms))
            return -1;
        struct target *t = target_get(d, e.topic, e.partition);
        hold(dl, partition, offset, e.due_ms, t, k.due_ms == DELAY_DUE_UNKNOWN);
        batch_stored(d, t, &e, offset);
        replay_producer(dl, &e);
        return 0;
    }
    case DELAY_KEY_SEQUENCE: {
        if (!value.ptr)
            return 0;
        if (value.len != 4)
            return -1;
        target_get(d, k.topic, k.partition)->next_sequence = (int32_t)be32_read(value.ptr);
        return 0;
    }
    case DELAY_KEY_COUNTS: return value.ptr ? delay_counts_decode(value, &d->counts) : 0;
    case DELAY_KEY_UNKNOWN: break;
    }
    return -1;
}

static void sm_load_end(void *sm, int32_t partition, int64_t now_ms)
{
    struct delays *dl = sm;
    now_ms += dl->clock_offset_ms;
    struct dpart *d = &dl->parts[partition];
    int64_t overdue = 0;
    for (size_t i = d->pending.head; i < d->pending.len; i++)
        overdue += !d->pending.v[i].done && d->pending.v[i].due_ms <= now_ms;
    if (d->pending.live > 0)
        say_info("server",
                 "%s-%d: %zu records pending delivery within the window, %lld of them due "
                 "already (delivered now, in due order)",
                 DELAY_TOPIC, partition, d->pending.live, (long long)overdue);
}

static void sm_unload(void *sm, int32_t partition)
{
    struct delays *dl = sm;
    dpart_unload(&dl->parts[partition]);
}

static void sm_append_done(void *sm, int64_t now_ms, void *token, int16_t error)
{
    (void)sm, (void)now_ms, (void)token, (void)error; /* appends are made here, not by the host */
}

static void sm_tick(void *sm, int64_t now_ms)
{
    struct delays *dl = sm;
    now_ms += dl->clock_offset_ms;
    for (int32_t i = 0; i < dl->partitions; i++) {
        struct dpart *d = &dl->parts[i];
        if (!d->loaded)
            continue;
        window_refill(dl, i, now_ms);
        delay_wheel_advance(d->wheel, now_ms, on_due, d);
        round_start(dl, i, now_ms);
    }
}

static int64_t sm_next_deadline(void *sm)
{
    struct delays *dl = sm;
    int64_t next = INT64_MAX;
    for (int32_t i = 0; i < dl->partitions; i++) {
        struct dpart *d = &dl->parts[i];
        if (!d->loaded)
            continue;
        next = MIN(next, delay_wheel_next_due(d->wheel));
        if (d->ready_len > 0 && !d->round)
            next = MIN(next, d->retry_at_ms);
        next = MIN(next, window_deadline(d, dl->srv->cfg->delay_window_ms));
    }
    return next == INT64_MAX ? next : next - dl->clock_offset_ms; /* the host's clock */
}

static void sm_destroy(void *sm)
{
    struct delays *dl = sm;
    for (int32_t i = 0; i < dl->partitions; i++)
        if (dl->parts[i].loaded)
            dpart_unload(&dl->parts[i]);
    free(dl->parts);
    free(dl->no_index);
    free(dl);
}

int server_delays_start(struct server *s)
{
    if (s->delays)
        return 0;
    struct itopic_host *host;
    if (itopic_host_open(s, DELAY_TOPIC, DELAY_PARTITIONS, delay_topic_configs,
                         ARRAY_LEN(delay_topic_configs), &host) != 0)
        return -1;
    struct delays *dl = xcalloc(1, sizeof *dl);
    dl->srv = s;
    dl->host = host;
    const char *crash = getenv("SAMSA_TEST_DELAY_CRASH_BEFORE_MARKS");
    if (crash && *crash)
        dl->crash_before_marks = strtoll(crash, NULL, 10);
    const char *offset = getenv("SAMSA_TEST_DELAY_CLOCK_OFFSET_MS");
    if (offset && *offset) {
        dl->clock_offset_ms = strtoll(offset, NULL, 10);
        say_warn("server",
                 "delayed delivery: due times are read %lld ms ahead of the clock "
                 "(SAMSA_TEST_DELAY_CLOCK_OFFSET_MS, for tests)",
                 (long long)dl->clock_offset_ms);
    }
    dl->partitions = itopic_host_partitions(host);
    dl->parts = xcalloc((size_t)dl->partitions, sizeof *dl->parts);
    dl->no_index = xcalloc((size_t)dl->partitions, sizeof *dl->no_index);
    const struct itopic_machine m = {
        .sm = dl,
        .what = "delayed delivery",
        .load_begin = sm_load_begin,
        .load_record = sm_load_record,
        .load_end = sm_load_end,
        .unload = sm_unload,
        .append_done = sm_append_done,
        .tick = sm_tick,
        .next_deadline = sm_next_deadline,
        .destroy = sm_destroy,
    };
    s->delays = dl;
    struct itopic_load_stats st;
    if (itopic_host_load(host, &m, &st) != 0) {
        server_delays_stop(s);
        return -1;
    }
    size_t pending = 0;
    for (int32_t i = 0; i < dl->partitions; i++)
        if (dl->parts[i].loaded)
            pending += dl->parts[i].pending.live;
    say_info("server",
             "delayed delivery loaded %zu records in %lld ms: %zu pending within the window "
             "(the rest wait in the due-time index)",
             st.records, (long long)st.elapsed_ms, pending);
    return 0;
}

static void learning_free(struct delay_learning *l);

void server_delays_stop(struct server *s)
{
    learning_free(s->delay_learning);
    s->delay_learning = NULL;
    if (!s->delays)
        return;
    struct itopic_host *host = s->delays->host;
    s->delays = NULL;
    itopic_host_stop(host); /* destroys the delays */
}

void server_delays_poll(struct server *s)
{
    if (s->delays || s->stopping || !s->cfg->broker ||
        !cluster_topic_find(s->cluster, slice_from_cstr(DELAY_TOPIC)))
        return;
    struct topic_state *ts = server_topic(s, slice_from_cstr(DELAY_TOPIC));
    if (ts && ts->partition_count == ts->target_count && server_delays_start(s) != 0)
        say_error("server", "delayed delivery could not start; trying again");
}

void server_delays_idle(struct server *s)
{
    if (s->delays)
        itopic_host_idle(s->delays->host);
    learn_send(s);
}

void server_delays_leadership(struct server *s, const char *topic, int32_t partition)
{
    if (strcmp(topic, DELAY_TOPIC) == 0) {
        if (s->delays)
            itopic_host_leadership(s->delays->host, partition);
        return;
    }
    /* A target partition led here now: its producers' delayed batches are learned. */
    if (broker_config_alone(s->cfg) ||
        !cluster_topic_find(s->cluster, slice_from_cstr(DELAY_TOPIC)))
        return;
    struct partition *p = server_partition(s, slice_from_cstr(topic), partition);
    if (p && p->role == PARTITION_LEADER)
        learn_queue(s, xstrdup(topic), partition, 0);
}

/* ---- the produce path ---- */

/* One record of a produced batch, as the delay store will take it. */
struct incoming {
    struct delay_request want;
    struct record rec;
    int32_t first_sequence, last_sequence; /* its batch's */
    int64_t producer_id;
    int16_t producer_epoch;
};

/* Reads every record's delivery headers: the records (in *recs, n of them) and whether
 * any asks for delay; KERR_NONE or the refusal (out->error_message set). plain keeps
 * the decompressed batches the records point into. */
static int16_t read_incoming(struct request *req, struct partition *p, struct slice records,
                             int64_t now, struct buf *plain, struct incoming **recs, size_t *n,
                             bool *delayed,
                             struct produce_response_responses_partition_responses *out)
{
    const struct topic_settings *cfg = p->settings;
    /* Decompressed batches first, into one buffer (pointers into it are taken after),
     * with their headers as batch_decompress gives them (uncompressed). */
    struct batch_iter it;
    struct batch_info info;
    size_t total = 0, batches = 0;
    batch_iter_init(&it, records.ptr, records.len);
    while (batch_iter_next(&it, &info, false) > 0) {
        total += (size_t)MAX(info.records_count, 0);
        batches++;
    }
    struct batch_info *plain_infos = REQ_ALLOC(req, struct batch_info, batches);
    size_t *plain_at = REQ_ALLOC(req, size_t, batches);
    size_t bi = 0;
    batch_iter_init(&it, records.ptr, records.len);
    for (; batch_iter_next(&it, &info, false) > 0; bi++) {
        if (batch_compression(&info) == 0)
            continue;
        struct buf one;
        buf_init(&one);
        int rc = batch_decompress(records.ptr + it.batch_pos, &info,
                                  compress_decompressed_bound(cfg->max_message_bytes), &one,
                                  &plain_infos[bi]);
        plain_at[bi] = plain->len;
        if (rc == 0)
            buf_append(plain, one.data, one.len);
        buf_free(&one);
        if (rc != 0)
            return KERR_CORRUPT_MESSAGE;
    }
    struct incoming *all = REQ_ALLOC(req, struct incoming, total ? total : 1);
    size_t count = 0;
    char why[256];
    batch_iter_init(&it, records.ptr, records.len);
    for (bi = 0; batch_iter_next(&it, &info, false) > 0; bi++) {
        const uint8_t *batch = records.ptr + it.batch_pos;
        struct batch_info rinfo = info;
        if (batch_compression(&info) != 0) {
            batch = plain->data + plain_at[bi];
            rinfo = plain_infos[bi];
        }
        struct record_iter ri;
        record_iter_init(&ri, batch, &rinfo);
        int got;
        int32_t index = 0;
        while (count < total && (got = record_iter_next(&ri, &all[count].rec)) > 0) {
            struct incoming *in = &all[count];
            struct delay_header *hs = REQ_ALLOC(req, struct delay_header,
                                                in->rec.header_count ? in->rec.header_count : 1);
            if (delay_headers_read(in->rec.headers, in->rec.header_count, hs,
                                   (size_t)in->rec.header_count) < 0)
                return KERR_CORRUPT_MESSAGE;
            if (delay_parse(hs, (size_t)in->rec.header_count, now, cfg->delay_max_ms, &in->want,
                            why, sizeof why) != 0) {
                out->error_message =
                    slice_from_cstr(arena_printf(&req->arena, "record %d of the batch to %s-%d: %s",
                                                 index, p->topic, p->index, why));
                return KERR_INVALID_RECORD;
            }
            *delayed |= in->want.kind != DELAY_NONE;
            in->producer_id = info.producer_id;
            in->producer_epoch = info.producer_epoch;
            in->first_sequence = info.base_sequence;
            in->last_sequence = pstate_seq_add(info.base_sequence, info.last_offset_delta);
            count++;
            index++;
        }
    }
    *recs = all;
    *n = count;
    return KERR_NONE;
}

/* Whether the batches are deliveries of a mover on another broker (its idempotent
 * producer ids, which the controller never hands out). */
static bool from_a_mover(struct slice records)
{
    struct batch_iter it;
    struct batch_info info;
    bool any = false, all = true;
    batch_iter_init(&it, records.ptr, records.len);
    while (batch_iter_next(&it, &info, false) > 0) {
        any = true;
        all &= info.producer_id >= DELAY_PRODUCER_ID_BASE &&
               info.producer_id < DELAY_PRODUCER_ID_BASE + DELAY_PARTITIONS_MAX;
    }
    return any && all;
}

/* A cancel's id: an offset, as decimal digits. 0, or -1. */
static int parse_id(struct slice id, int64_t *out)
{
    char text[24];
    if (id.len == 0 || id.len >= sizeof text)
        return -1;
    memcpy(text, id.ptr, id.len);
    text[id.len] = '\0';
    return parse_i64(text, out) == 0 && *out >= 0 ? 0 : -1;
}

/* Whether record id of delay partition i (dp) is pending delivery to p and can still be
 * cancelled; *key_due_ms is the due time its envelope's key holds, *far whether it waits
 * beyond the window. A record beyond the window is read from the log: cancels are rare,
 * and memory holds nothing of it. */
static bool cancellable(struct delays *dl, int32_t i, struct partition *dp, int64_t id,
                        struct slice topic, int32_t partition, int64_t *key_due_ms, bool *far)
{
    struct dpart *d = &dl->parts[i];
    struct pending *pe = pending_find(d, id);
    if (pe) {
        *far = false;
        *key_due_ms = pe->old_key ? DELAY_DUE_UNKNOWN : pe->due_ms;
        return pe->state != PENDING_MOVING && slice_eq_cstr(topic, d->tv[pe->target]->topic) &&
               d->tv[pe->target]->partition == partition;
    }
    if (!d->index || id < log_start_offset(dp->log) || id >= log_end_offset(dp->log) ||
        cancelled_has(d, id))
        return false;
    struct chunk c = {.first = 0, .end = 0};
    buf_init(&c.data);
    struct record rec;
    struct delay_key k = {.kind = DELAY_KEY_UNKNOWN};
    struct delay_envelope e;
    bool ok = read_record(dp, id, &c, &rec, false) == 0 && rec.key.ptr && rec.value.ptr;
    if (ok)
        delay_key_decode(rec.key, &k);
    /* Due before the window's end and not in memory: delivered or cancelled already. */
    ok = ok && k.kind == DELAY_KEY_ENVELOPE && k.offset == id && k.due_ms != DELAY_DUE_UNKNOWN &&
         k.due_ms >= d->window_end && delay_envelope_decode(rec.value, &e) == 0 &&
         slice_eq(e.topic, topic) && e.partition == partition;
    buf_free(&c.data);
    *far = true;
    *key_due_ms = k.due_ms;
    return ok;
}

/* What a produce asks the delay store to keep of one record. */
struct store_item {
    int64_t cancel_id;     /* >= 0: the record cancels this pending one; else: */
    int64_t due_ms;        /* when it is due */
    struct slice envelope; /* its envelope (delay.h) */
};

/* Appends items, the records of a produce to target (topic, partition), to delay
 * partition i, which this node leads: each envelope keyed by the offset it gets, each
 * cancel as the tombstone of the record it names (checked: pending delivery to that
 * same target), and the new counts when there are cancels; then takes them into memory
 * or the index. KERR_NONE with *base_offset and *appended (the delay partition, to
 * wait on as acks ask), or the refusal, with *why (in a) when there is more to say. */
static int16_t store_append(struct delays *dl, int32_t i, int16_t acks, struct slice topic,
                            int32_t partition, const struct store_item *items, size_t n,
                            struct arena *a, int64_t *base_offset, struct slice *why,
                            struct partition **appended)
{
    struct partition *dp = delay_partition(dl, i);
    struct dpart *d = &dl->parts[i];
    if (!dp || !d->loaded) {
        *why = slice_from_cstr(
            arena_printf(a, "the delay store's partition %s-%d is not available", DELAY_TOPIC, i));
        return KERR_NOT_ENOUGH_REPLICAS;
    }
    /* acks=all needs min.insync.replicas of the delay partition in sync, as a produce to
     * it would. */
    if (acks == -1 && MAX(dp->isr_count, 1) < dp->settings->min_insync_replicas)
        return KERR_NOT_ENOUGH_REPLICAS;
    /* A batch of an idempotent producer stored already (sent again after an answer was
     * lost): answered with where it is. */
    struct target *target = target_get(d, topic, partition);
    struct delay_envelope first;
    if (n > 0 && items[0].cancel_id < 0 && items[0].envelope.ptr &&
        delay_envelope_decode(items[0].envelope, &first) == 0 && first.producer_id >= 0) {
        int64_t at = batch_stored_at(d, target, &first);
        if (at >= 0) {
            *base_offset = at;
            *appended = dp; /* answered once durable, as the first time */
            return KERR_NONE;
        }
    } else {
        first.producer_id = -1;
    }
    int64_t base = log_end_offset(dp->log);
    struct record_in *stored = arena_alloc(a, (n + 1) * sizeof *stored); /* + the counts */
    uint8_t *keys = arena_alloc(a, n * DELAY_ENVELOPE_KEY_BYTES + 1);
    int64_t *key_due = arena_alloc(a, n * sizeof *key_due + 1);
    bool *far = arena_alloc(a, n * sizeof *far + 1);
    size_t ncancels = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t *key = keys + k * DELAY_ENVELOPE_KEY_BYTES;
        if (items[k].cancel_id < 0) {
            if (!items[k].envelope.ptr)
                return KERR_INVALID_RECORD;
            delay_key_envelope(key, base + (int64_t)k, items[k].due_ms);
            stored[k] = (struct record_in){{key, DELAY_ENVELOPE_KEY_BYTES}, items[k].envelope};
            continue;
        }
        if (!cancellable(dl, i, dp, items[k].cancel_id, topic, partition, &key_due[k], &far[k])) {
            *why = slice_from_cstr(arena_printf(
                a, "%s: no record %lld is pending delivery to %.*s-%d", DELAY_HEADER_CANCEL,
                (long long)items[k].cancel_id, (int)topic.len, (const char *)topic.ptr, partition));
            return KERR_INVALID_RECORD;
        }
        ncancels++;
        size_t klen = delay_key_envelope(key, items[k].cancel_id, key_due[k]);
        stored[k] = (struct record_in){{key, klen}, SLICE_NULL};
    }
    /* Cancels change the counts: the new ones go in the same batch, after them. */
    struct delay_counts counts = d->counts;
    counts.cancelled += (int64_t)ncancels;
    uint8_t counts_value[DELAY_COUNTS_BYTES];
    delay_counts_encode(counts_value, &counts);
    if (ncancels > 0)
        stored[n] = (struct record_in){slice_from_cstr(DELAY_COUNTS_KEY),
                                       {counts_value, DELAY_COUNTS_BYTES}};
    size_t bytes = 128;
    for (size_t k = 0; k < n; k++)
        bytes += items[k].envelope.len + DELAY_ENVELOPE_KEY_BYTES + 24;
    struct buf batch;
    buf_init(&batch);
    buf_reserve(&batch, bytes);
    batch_encode(&batch, stored, n + (ncancels > 0), time_wall_ms());
    struct log_append_result res;
    int rc = partition_append_as_leader(dp, batch.data, batch.len, time_wall_ms(), &res);
    buf_free(&batch);
    if (rc < 0) {
        say_error_ratelimited("server", "append to %s-%d failed: %s", dp->topic, dp->index,
                              storage_strerror(rc));
        return kerr_from_storage(rc);
    }
    ASSERT(res.base_offset == base);
    if (first.producer_id >= 0)
        batch_stored(d, target, &first, base);
    for (size_t k = 0; k < n; k++) {
        if (items[k].cancel_id < 0)
            hold(dl, i, base + (int64_t)k, items[k].due_ms, target, false);
        else if (far[k] ? cancelled_add(d, items[k].cancel_id, key_due[k])
                        : pending_remove(d, items[k].cancel_id))
            d->counts.cancelled++;
    }
    *base_offset = base;
    *appended = dp;
    itopic_host_called(dl->host);
    return KERR_NONE;
}

/* The producer's batches, checked against the target's producer state as an append
 * there would be: KERR_NONE, a refusal, or KERR_DUPLICATE_SEQUENCE_NUMBER for a retry of
 * a batch already stored (answered as a success). */
static int16_t check_producer(struct partition *p, const struct incoming *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct incoming *in = &recs[i];
        if (in->producer_id < 0 || (i > 0 && in->first_sequence == recs[i - 1].first_sequence &&
                                    in->producer_id == recs[i - 1].producer_id))
            continue;
        struct pstate_batch b = {.producer_id = in->producer_id,
                                 .epoch = in->producer_epoch,
                                 .first_seq = in->first_sequence,
                                 .last_seq = in->last_sequence,
                                 .timestamp_ms = in->rec.timestamp};
        switch (log_producer_check(p->log, &b, NULL)) {
        case PSTATE_APPEND: break;
        case PSTATE_DUPLICATE: return KERR_DUPLICATE_SEQUENCE_NUMBER;
        case PSTATE_BAD_EPOCH: return KERR_INVALID_PRODUCER_EPOCH;
        case PSTATE_BAD_SEQUENCE: return KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
        case PSTATE_BAD_TXN_STATE: return KERR_INVALID_TXN_STATE;
        case PSTATE_BAD_COORDINATOR_EPOCH: return KERR_UNKNOWN_SERVER_ERROR; /* markers only */
        }
    }
    return KERR_NONE;
}

static void record_producer(struct partition *p, const struct incoming *recs, size_t n, int64_t now)
{
    int64_t at = MAX(log_end_offset(p->log) - 1, 0);
    for (size_t i = 0; i < n; i++) {
        const struct incoming *in = &recs[i];
        if (in->producer_id < 0 || (i > 0 && in->first_sequence == recs[i - 1].first_sequence &&
                                    in->producer_id == recs[i - 1].producer_id))
            continue;
        struct pstate_batch b = {.producer_id = in->producer_id,
                                 .epoch = in->producer_epoch,
                                 .first_seq = in->first_sequence,
                                 .last_seq = in->last_sequence,
                                 .first_offset = at,
                                 .last_offset = at,
                                 .timestamp_ms = now};
        log_producer_record(p->log, &b);
    }
}

/* Where the records of a delayed produce to target (topic, partition) go: KERR_NONE with
 * the delay partition and its leader (this node: it is loaded here), or why not now
 * (retriable: NOT_ENOUGH_REPLICAS, with a message). The store is created on the first
 * delayed produce (a broker whose producers never delay keeps no such topic). */
static int16_t store_route(struct server *s, struct slice topic, int32_t partition, int32_t *di,
                           int32_t *leader,
                           struct produce_response_responses_partition_responses *out)
{
    bool alone = broker_config_alone(s->cfg); /* the whole cluster: it creates topics itself */
    const struct mtopic *t = cluster_topic_find(s->cluster, slice_from_cstr(DELAY_TOPIC));
    if (!t) {
        if (alone)
            cluster_create_topic(s->cluster, slice_from_cstr(DELAY_TOPIC), DELAY_PARTITIONS, 1,
                                 delay_topic_configs, ARRAY_LEN(delay_topic_configs), false, NULL,
                                 NULL);
        else
            server_ask_for_topic(s, DELAY_TOPIC, DELAY_PARTITIONS,
                                 server_internal_replication_factor(s), delay_topic_configs,
                                 ARRAY_LEN(delay_topic_configs), &s->delay_topic_asked);
        out->error_message = slice_from_cstr("the delay store is being created; try again");
        return KERR_NOT_ENOUGH_REPLICAS; /* retriable: producers send again */
    }
    *di = delay_partition_of(t->partition_count, topic, partition);
    int32_t epoch;
    if (!server_partition_leader(s, slice_from_cstr(DELAY_TOPIC), *di, leader, &epoch)) {
        out->error_message = slice_from_cstr("the delay store's partition has no leader now");
        return KERR_NOT_ENOUGH_REPLICAS;
    }
    if (*leader != s->cfg->node_id)
        return KERR_NONE;
    if (!s->delays && alone) {
        struct topic_state *ts = server_topic(s, slice_from_cstr(DELAY_TOPIC));
        if (ts && ts->partition_count == ts->target_count)
            server_delays_start(s);
    }
    if (!s->delays || *di >= s->delays->partitions || !s->delays->parts[*di].loaded) {
        out->error_message = slice_from_cstr("the delay store is starting; try again");
        return KERR_NOT_ENOUGH_REPLICAS;
    }
    return KERR_NONE;
}

/* A forwarded produce's records, on their way to the delay store on another broker. */
struct forward {
    struct request *req;
    struct produce_response_responses_partition_responses *out;
    char *topic; /* the target */
    int32_t partition;
    struct incoming *recs; /* in req's arena */
    size_t n;
    int64_t now;
};

static void forward_answered(void *arg, int err, struct reader *body)
{
    struct forward *f = arg;
    struct request *req = f->req;
    struct samsa_delay_store_response resp;
    if (err != 0) {
        f->out->error_code = err == -ETIMEDOUT ? KERR_REQUEST_TIMED_OUT : KERR_NOT_ENOUGH_REPLICAS;
        f->out->error_message = slice_from_cstr(
            arena_printf(&req->arena, "the delay store did not answer: %s", strerror(-err)));
    } else if (samsa_delay_store_response_decode(body, 0, &req->arena, &resp) != 0) {
        f->out->error_code = KERR_NOT_ENOUGH_REPLICAS;
        f->out->error_message = slice_from_cstr("the delay store's answer was malformed");
    } else {
        f->out->error_code = resp.error_code;
        if (resp.error_message.ptr) /* borrowed from the answer: copied */
            f->out->error_message = slice_from_cstr(arena_strndup(
                &req->arena, (const char *)resp.error_message.ptr, resp.error_message.len));
        if (resp.error_code == KERR_NONE) {
            f->out->base_offset = resp.base_offset;
            f->out->log_append_time_ms = -1;
            /* The producer's batch is stored: its partition's producer state says so, if
             * this node still leads it. */
            struct partition *p =
                server_partition(req->srv, slice_from_cstr(f->topic), f->partition);
            if (p && partition_check_leader(p, -1) == KERR_NONE)
                record_producer(p, f->recs, f->n, f->now);
        }
    }
    free(f->topic);
    free(f);
    produce_answer_arrived(req);
}

/* Sends a produce's items to the leader of delay partition di: the partition's answer
 * (out) comes with the store's. KERR_NONE, or why it could not be sent. */
static int16_t forward_items(struct request *req, struct partition *p, int16_t acks,
                             int32_t timeout_ms, int32_t di, int32_t leader,
                             const struct store_item *items, struct incoming *recs, size_t n,
                             int64_t now,
                             struct produce_response_responses_partition_responses *out)
{
    struct samsa_delay_store_request fr;
    samsa_delay_store_request_init(&fr);
    fr.acks = acks == 0 ? 1 : acks; /* the target still needs the answer */
    fr.timeout_ms = timeout_ms;
    fr.delay_partition = di;
    fr.topic = slice_from_cstr(p->topic);
    fr.partition = p->index;
    fr.items_count = (int32_t)n;
    fr.items = REQ_ALLOC(req, struct samsa_delay_store_request_items, n + 1);
    for (size_t k = 0; k < n; k++) {
        samsa_delay_store_request_items_init(&fr.items[k]);
        fr.items[k].cancel_id = items[k].cancel_id;
        fr.items[k].due_ms = items[k].due_ms;
        fr.items[k].envelope = items[k].cancel_id < 0 ? items[k].envelope : SLICE_NULL;
    }
    struct buf frame;
    buf_init(&frame);
    proto_request_header_encode(&frame,
                                &(struct request_header){.api_key = API_KEY_SAMSA_DELAY_STORE,
                                                         .api_version = 0,
                                                         .client_id = slice_from_cstr("samsa")});
    samsa_delay_store_request_encode(&frame, 0, &fr);
    struct forward *f = xcalloc(1, sizeof *f);
    *f = (struct forward){req, out, xstrdup(p->topic), p->index, recs, n, now};
    /* A little longer than the store's own wait, so that its answer, not this timeout,
     * says what happened. */
    int rc = server_peer_send(req->srv, leader, &frame, (int64_t)MAX(timeout_ms, 0) + 5000,
                              forward_answered, f);
    buf_free(&frame);
    if (rc != 0) {
        free(f->topic);
        free(f);
        out->error_message = slice_from_cstr(
            arena_printf(&req->arena, "the delay store's leader (node %d) cannot be reached: %s",
                         leader, strerror(-rc)));
        return KERR_NOT_ENOUGH_REPLICAS;
    }
    produce_answer_pending(req);
    return KERR_NONE;
}

bool server_delay_produce(struct request *req, struct partition *p, int16_t acks,
                          int32_t timeout_ms, struct slice records,
                          struct produce_response_responses_partition_responses *out,
                          struct partition **appended, int16_t *error)
{
    struct server *s = req->srv;
    /* The mover's own deliveries, sent from another broker: records that carried the
     * headers once, delivered now. */
    if (from_a_mover(records))
        return false;
    /* Due times are the delays' clock; before they start there is nothing to offset. */
    int64_t now = s->delays ? delays_now(s->delays) : time_wall_ms();
    struct buf plain;
    buf_init(&plain);
    struct incoming *recs = NULL;
    size_t n = 0;
    bool delayed = false;
    int16_t err = read_incoming(req, p, records, now, &plain, &recs, &n, &delayed, out);
    if (err == KERR_NONE && !delayed) {
        buf_free(&plain);
        return false; /* an ordinary produce */
    }
    int32_t di = -1, leader = -1;
    if (err == KERR_NONE)
        err = store_route(s, slice_from_cstr(p->topic), p->index, &di, &leader, out);
    if (err == KERR_NONE)
        err = check_producer(p, recs, n);
    if (err == KERR_DUPLICATE_SEQUENCE_NUMBER) {
        /* A retry of a delayed batch already stored: a success, as Kafka answers a
         * duplicate, without the stored offset (not kept). */
        buf_free(&plain);
        out->base_offset = -1;
        *error = KERR_NONE;
        *appended = NULL;
        return true;
    }
    if (err != KERR_NONE) {
        buf_free(&plain);
        *error = err;
        return true;
    }
    const struct mtopic *mt = cluster_topic_find(s->cluster, slice_from_cstr(p->topic));
    ASSERT(mt); /* p is open: its topic exists */
    /* What the store keeps of each record: its envelope, or the id of the record it
     * cancels. */
    struct store_item *items = REQ_ALLOC(req, struct store_item, n);
    struct buf values;
    buf_init(&values);
    buf_reserve(&values, records.len + n * 64 + strlen(p->topic) * n); /* about what comes */
    size_t *value_at = REQ_ALLOC(req, size_t, n);
    for (size_t i = 0; i < n && err == KERR_NONE; i++) {
        struct incoming *in = &recs[i];
        items[i].cancel_id = -1;
        if (in->want.kind == DELAY_CANCEL) {
            if (parse_id(in->want.cancel_id, &items[i].cancel_id) != 0) {
                out->error_message = slice_from_cstr(
                    arena_printf(&req->arena, "%s: %.*s is not the id of a record pending delivery",
                                 DELAY_HEADER_CANCEL, (int)in->want.cancel_id.len,
                                 (const char *)in->want.cancel_id.ptr));
                err = KERR_INVALID_RECORD;
            }
            continue;
        }
        struct delay_envelope e = {
            .due_ms = in->want.kind == DELAY_DELIVER ? in->want.due_ms : now,
            .topic = slice_from_cstr(p->topic),
            .topic_id = mt->id,
            .partition = p->index,
            .producer_id = in->producer_id,
            .producer_epoch = in->producer_epoch,
            .first_sequence = in->first_sequence,
            .last_sequence = in->last_sequence,
            .timestamp = in->rec.timestamp,
            .key = in->rec.key,
            .value = in->rec.value,
            .header_count = in->rec.header_count,
            .headers = in->rec.headers,
        };
        value_at[i] = values.len;
        items[i].due_ms = e.due_ms;
        delay_envelope_encode(&values, &e);
    }
    /* The values were encoded one after another: each ends where the next begins. */
    size_t end = values.len;
    for (size_t i = n; err == KERR_NONE && i-- > 0;)
        if (items[i].cancel_id < 0) {
            items[i].envelope = (struct slice){values.data + value_at[i], end - value_at[i]};
            end = value_at[i];
        }
    if (err == KERR_NONE && leader != s->cfg->node_id) {
        err = forward_items(req, p, acks, timeout_ms, di, leader, items, recs, n, now, out);
        *appended = NULL; /* the answer comes with the store's */
    } else if (err == KERR_NONE) {
        struct slice why = SLICE_NULL;
        int64_t base = -1;
        err = store_append(s->delays, di, acks, slice_from_cstr(p->topic), p->index, items, n,
                           &req->arena, &base, &why, appended);
        if (err == KERR_NONE) {
            record_producer(p, recs, n, now);
            out->base_offset = base;
            out->log_append_time_ms = -1;
        } else {
            out->error_message = why;
        }
    }
    buf_free(&values);
    buf_free(&plain);
    *error = err;
    return true;
}

int16_t server_delay_store(struct request *req, const struct samsa_delay_store_request *in,
                           int64_t *base_offset, struct slice *why, struct partition **appended)
{
    struct delays *dl = req->srv->delays;
    if (!dl || in->delay_partition < 0 || in->delay_partition >= dl->partitions) {
        *why = slice_from_cstr("the delay store is not available here");
        return KERR_NOT_ENOUGH_REPLICAS;
    }
    int32_t n = MAX(in->items_count, 0);
    struct store_item *items = REQ_ALLOC(req, struct store_item, n + 1);
    for (int32_t k = 0; k < n; k++) {
        const struct samsa_delay_store_request_items *it = &in->items[k];
        items[k] = (struct store_item){it->cancel_id, it->due_ms, it->envelope};
        /* The envelope must be one for this target, due when it says. */
        struct delay_envelope e;
        if (it->cancel_id < 0 &&
            (!it->envelope.ptr || delay_envelope_decode(it->envelope, &e) != 0 ||
             e.due_ms != it->due_ms || !slice_eq(e.topic, in->topic) ||
             e.partition != in->partition))
            return KERR_CORRUPT_MESSAGE;
    }
    return store_append(dl, in->delay_partition, in->acks, in->topic, in->partition, items,
                        (size_t)n, &req->arena, base_offset, why, appended);
}

/* ---- a target's new leader learns its producers' delayed batches ----
 * An idempotent producer's delayed batch uses sequence numbers of its target partition
 * that are not in the target's log: the target's leader records them in memory when the
 * batch is stored (record_producer), and a broker loading the delay store records them
 * for the targets it leads (replay_producer). A broker that becomes a target's leader in
 * a cluster asks the leader of the target's delay partition (SamsaDelayProducers) for
 * each producer's last delayed batch there, and records those that continue what its
 * log has, so that the producer's next batch is not refused as a gap. Asked again a few
 * times while that answer cannot come (the delay partition may be moving too). */
#define LEARN_TRIES 20
#define LEARN_RETRY_MS 500

struct learn_target {
    char *topic;
    int32_t partition;
    int tries;
};

struct delay_learning {
    struct learn_target *v; /* to ask about */
    size_t n, cap;
    int64_t not_before_ms; /* after a failure: the next asking */
};

static void learn_queue(struct server *s, char *topic, int32_t partition, int tries)
{
    if (!s->delay_learning)
        s->delay_learning = xcalloc(1, sizeof *s->delay_learning);
    struct delay_learning *l = s->delay_learning;
    /* Not looked for among those queued (a burst of leadership changes would make that
     * quadratic): one asked twice is recorded once. */
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = (struct learn_target){topic, partition, tries};
}

/* Asks again later about targets not answered (or gives up on them after LEARN_TRIES). */
static void learn_again(struct server *s, struct learn_target *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!v[i].topic)
            continue;
        if (s->stopping || v[i].tries + 1 >= LEARN_TRIES) {
            say_warn("server",
                     "%s-%d: could not learn its producers' delayed batches; an idempotent "
                     "producer's next batch there may be refused as out of order",
                     v[i].topic, v[i].partition);
            free(v[i].topic);
            continue;
        }
        learn_queue(s, v[i].topic, v[i].partition, v[i].tries + 1);
        s->delay_learning->not_before_ms = time_mono_ms() + LEARN_RETRY_MS;
    }
}

static void learning_free(struct delay_learning *l)
{
    for (size_t i = 0; l && i < l->n; i++)
        free(l->v[i].topic);
    if (l)
        free(l->v);
    free(l);
}

struct learn_ask {
    struct server *s;
    struct learn_target *v; /* asked of one broker; topic NULL once answered */
    size_t n;
};

static void learn_answered(void *arg, int err, struct reader *body)
{
    struct learn_ask *a = arg;
    struct arena ar;
    arena_init(&ar);
    struct samsa_delay_producers_response resp;
    if (err == 0 && samsa_delay_producers_response_decode(body, 0, &ar, &resp) == 0) {
        for (int32_t ti = 0; ti < resp.topics_count; ti++) {
            const struct samsa_delay_producers_response_topics *t = &resp.topics[ti];
            for (int32_t pi = 0; pi < t->partitions_count; pi++) {
                const struct samsa_delay_producers_response_topics_partitions *pp =
                    &t->partitions[pi];
                struct learn_target *lt = NULL;
                for (size_t i = 0; i < a->n && !lt; i++)
                    if (a->v[i].topic && a->v[i].partition == pp->index &&
                        slice_eq_cstr(t->name, a->v[i].topic))
                        lt = &a->v[i];
                if (!lt || pp->error_code != KERR_NONE)
                    continue; /* asked again */
                struct partition *p = server_partition(a->s, t->name, pp->index);
                for (int32_t k = 0;
                     p && partition_check_leader(p, -1) == KERR_NONE && k < pp->producers_count;
                     k++) {
                    const struct samsa_delay_producers_response_topics_partitions_producers *pr =
                        &pp->producers[k];
                    int64_t at = MAX(log_end_offset(p->log) - 1, 0);
                    struct pstate_batch b = {.producer_id = pr->producer_id,
                                             .epoch = pr->producer_epoch,
                                             .first_seq = pr->first_sequence,
                                             .last_seq = pr->last_sequence,
                                             .first_offset = at,
                                             .last_offset = at,
                                             .timestamp_ms = pr->timestamp};
                    if (log_producer_check(p->log, &b, NULL) == PSTATE_APPEND)
                        log_producer_record(p->log, &b);
                }
                free(lt->topic);
                lt->topic = NULL;
            }
        }
    }
    arena_free(&ar);
    learn_again(a->s, a->v, a->n);
    free(a->v);
    free(a);
}

/* From the idle hook: asks the delay partitions' leaders about the targets queued, one
 * request per broker. */
static void learn_send(struct server *s)
{
    struct delay_learning *l = s->delay_learning;
    if (!l || l->n == 0 || time_mono_ms() < l->not_before_ms || s->stopping)
        return;
    const struct mtopic *store = cluster_topic_find(s->cluster, slice_from_cstr(DELAY_TOPIC));
    struct learn_target *v = l->v;
    size_t n = l->n;
    l->v = NULL;
    l->n = l->cap = 0;
    int32_t *leader = xcalloc(n, sizeof *leader);
    for (size_t i = 0; i < n; i++) {
        int32_t epoch;
        leader[i] = -1;
        if (store)
            server_partition_leader(s, slice_from_cstr(DELAY_TOPIC),
                                    delay_partition_of(store->partition_count,
                                                       slice_from_cstr(v[i].topic), v[i].partition),
                                    &leader[i], &epoch);
    }
    for (size_t i = 0; i < n; i++) {
        if (!v[i].topic || leader[i] < 0)
            continue;
        /* This broker's targets, taken out of v. */
        struct learn_ask *a = xcalloc(1, sizeof *a);
        a->s = s;
        a->v = xcalloc(n, sizeof *a->v);
        struct samsa_delay_producers_request req;
        samsa_delay_producers_request_init(&req);
        req.topics = xcalloc(n, sizeof *req.topics);
        req.topics_count = 0;
        for (size_t j = i; j < n; j++) {
            if (!v[j].topic || leader[j] != leader[i])
                continue;
            struct samsa_delay_producers_request_topics *t = &req.topics[req.topics_count++];
            samsa_delay_producers_request_topics_init(t);
            a->v[a->n] = v[j];
            t->name = slice_from_cstr(a->v[a->n].topic);
            t->partitions = &a->v[a->n].partition;
            t->partitions_count = 1;
            a->n++;
            v[j].topic = NULL;
        }
        struct buf frame;
        buf_init(&frame);
        proto_request_header_encode(
            &frame, &(struct request_header){.api_key = API_KEY_SAMSA_DELAY_PRODUCERS,
                                             .api_version = 0,
                                             .client_id = slice_from_cstr("samsa")});
        samsa_delay_producers_request_encode(&frame, 0, &req);
        free(req.topics);
        int rc = server_peer_send(s, leader[i], &frame, 10000, learn_answered, a);
        buf_free(&frame);
        if (rc != 0) {
            learn_again(s, a->v, a->n);
            free(a->v);
            free(a);
        }
    }
    learn_again(s, v, n); /* those whose delay partition has no leader now */
    free(leader);
    free(v);
}

void server_delay_producers(struct request *req, struct slice topic,
                            struct samsa_delay_producers_response_topics_partitions *out)
{
    struct delays *dl = req->srv->delays;
    const struct mtopic *store =
        cluster_topic_find(req->srv->cluster, slice_from_cstr(DELAY_TOPIC));
    int32_t i = store ? delay_partition_of(store->partition_count, topic, out->index) : -1;
    if (!dl || i < 0 || i >= dl->partitions || !dl->parts[i].loaded || !delay_partition(dl, i)) {
        out->error_code = KERR_NOT_LEADER_OR_FOLLOWER;
        return;
    }
    struct dpart *d = &dl->parts[i];
    struct target *t = target_find(d, topic, out->index);
    size_t it = 0, n = 0;
    struct slice k;
    void *v;
    out->producers =
        REQ_ALLOC(req, struct samsa_delay_producers_response_topics_partitions_producers,
                  t ? d->stored_batches.count + 1 : 1);
    while (t && hmap_next(&d->stored_batches, &it, &k, &v)) {
        if (be32_read(k.ptr) != t->index)
            continue;
        const struct stored_batch *b = v;
        struct samsa_delay_producers_response_topics_partitions_producers *pr =
            &out->producers[n++];
        samsa_delay_producers_response_topics_partitions_producers_init(pr);
        pr->producer_id = (int64_t)be64_read(k.ptr + 4);
        pr->producer_epoch = b->epoch;
        pr->first_sequence = b->first_sequence;
        pr->last_sequence = b->last_sequence;
        pr->timestamp = b->timestamp;
    }
    out->producers_count = (int32_t)n;
}
