/*
 * Producer state: one partition's memory of idempotent producers (Kafka's
 * ProducerStateManager / ProducerAppendInfo). For each producer id it keeps the epoch and
 * the metadata of the newest PSTATE_MAX_BATCHES batches, which is what a broker needs to
 * tell a new batch from a retry (duplicate), a gap (out of order) or a fenced producer
 * (old epoch). Five batches because an idempotent client has at most five requests in
 * flight: any retry it can send is among them.
 *
 * A pure data structure: the log (producer_snapshots.c) feeds it batches, decides when to
 * snapshot it and does the file I/O. The snapshot body is Kafka's ProducerSnapshot
 * version 1 (layout in storage.h), holding only each producer's newest batch, as Kafka's
 * does: after a restart only a retry of the newest batch is recognised as a duplicate.
 */
#include "storage/storage.h"

#include <stdlib.h>
#include <string.h>

#define SNAPSHOT_VERSION 1
#define SNAPSHOT_CRC_AT 2        /* after Version */
#define SNAPSHOT_CRC_FROM 6      /* the CRC covers everything after itself */
#define SNAPSHOT_HEADER_BYTES 10 /* Version int16, Crc uint32, Count int32 */
#define SNAPSHOT_ENTRY_BYTES 46  /* 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8 */

/* One producer. Every remembered batch carries the producer's current epoch: a new epoch
 * drops the older batches, so the epoch is that of batches[n - 1]. A producer whose
 * epoch a transaction marker set, and which has written nothing since, remembers one
 * placeholder batch of that epoch with sequence -1 and offsets -1 (Kafka's entry with no
 * batch metadata): its next batch starts at sequence 0, and no batch duplicates it. */
struct producer {
    int n;                                           /* 1..PSTATE_MAX_BATCHES */
    struct pstate_batch batches[PSTATE_MAX_BATCHES]; /* oldest first */
    int64_t txn_first_offset;                        /* its open transaction's, -1 none */
    int32_t coordinator_epoch;                       /* of its last marker, -1 none */
};

/* An open transaction: the producer's first offset in it. */
struct open_txn {
    int64_t first_offset;
    int64_t producer_id;
};

struct producer_state {
    struct hmap by_id; /* 8 bytes of the producer id (host order) -> struct producer * (owned) */
    /* Open transactions, ascending first offset (at most one per producer): [0] is what
     * holds the last stable offset back. Transactions open in offset order, so adding
     * is an append; few are open at once, so ending one is a short search. */
    struct open_txn *open;
    size_t n_open, cap_open;
};

static struct slice id_key(const int64_t *producer_id)
{
    return (struct slice){(const uint8_t *)producer_id, sizeof *producer_id};
}

static struct producer *find(const struct producer_state *ps, int64_t producer_id)
{
    return hmap_get(&ps->by_id, id_key(&producer_id));
}

static const struct pstate_batch *newest(const struct producer *p)
{
    return &p->batches[p->n - 1];
}

static struct producer *new_producer(struct producer_state *ps, int64_t producer_id)
{
    struct producer *p = xcalloc(1, sizeof *p);
    p->txn_first_offset = -1;
    p->coordinator_epoch = -1;
    hmap_put(&ps->by_id, id_key(&producer_id), p);
    return p;
}

/* The newest batch, with the producer's transaction state (what callers are given). */
static struct pstate_batch described(const struct producer *p)
{
    struct pstate_batch b = *newest(p);
    b.transactional = p->txn_first_offset >= 0;
    b.txn_first_offset = p->txn_first_offset;
    b.coordinator_epoch = p->coordinator_epoch;
    return b;
}

struct producer_state *pstate_new(void)
{
    struct producer_state *ps = xcalloc(1, sizeof *ps);
    hmap_init(&ps->by_id);
    return ps;
}

static void open_txn_add(struct producer_state *ps, int64_t producer_id, int64_t first_offset)
{
    if (ps->n_open == ps->cap_open) {
        ps->cap_open = ps->cap_open ? 2 * ps->cap_open : 8;
        ps->open = xrealloc(ps->open, ps->cap_open * sizeof *ps->open);
    }
    size_t i = ps->n_open++;
    /* Insertion from the end: a replayed snapshot may list them in producer id order. */
    for (; i > 0 && ps->open[i - 1].first_offset > first_offset; i--)
        ps->open[i] = ps->open[i - 1];
    ps->open[i] = (struct open_txn){first_offset, producer_id};
}

static void open_txn_remove(struct producer_state *ps, int64_t producer_id)
{
    for (size_t i = 0; i < ps->n_open; i++) {
        if (ps->open[i].producer_id == producer_id) {
            memmove(&ps->open[i], &ps->open[i + 1], (ps->n_open - i - 1) * sizeof *ps->open);
            ps->n_open--;
            return;
        }
    }
    ASSERT(!"an open transaction is in the list");
}

void pstate_clear(struct producer_state *ps)
{
    struct slice k;
    void *v;
    for (size_t i = 0; hmap_next(&ps->by_id, &i, &k, &v);)
        free(v);
    hmap_free(&ps->by_id); /* and its memory: a rebuild may find far fewer producers */
    hmap_init(&ps->by_id);
    free(ps->open);
    ps->open = NULL;
    ps->n_open = ps->cap_open = 0;
}

void pstate_free(struct producer_state *ps)
{
    if (!ps)
        return;
    pstate_clear(ps);
    free(ps);
}

size_t pstate_count(const struct producer_state *ps)
{
    return ps->by_id.count;
}

int32_t pstate_seq_add(int32_t seq, int32_t delta)
{
    ASSERT(delta >= 0);
    int64_t r = (int64_t)seq + delta;
    if (r > INT32_MAX)
        r -= (int64_t)INT32_MAX + 1; /* Kafka's sequences continue at 0, not at INT32_MIN */
    return (int32_t)r;
}

/* The inverse of pstate_seq_add: the s with pstate_seq_add(s, delta) == last. Two exist
 * when 0 <= last < delta (a wrapped batch, or one starting at a negative sequence); the
 * wrapped one is what a producer sends, and what Kafka's decrementSequence picks. False
 * when there is none (last < 0 and delta too large). */
static bool seq_sub(int32_t last, int32_t delta, int32_t *out)
{
    int64_t s = (int64_t)last - delta;
    if (last >= 0 && s < 0)
        s += (int64_t)INT32_MAX + 1;
    if (s < INT32_MIN)
        return false;
    *out = (int32_t)s;
    return true;
}

enum pstate_verdict pstate_check(const struct producer_state *ps, const struct pstate_batch *b,
                                 struct pstate_batch *dup)
{
    ASSERT(b->producer_id >= 0);
    const struct producer *p = find(ps, b->producer_id);
    /* No state (new, or expired): Kafka accepts whatever sequence the producer is at. */
    if (!p)
        return PSTATE_APPEND;
    const struct pstate_batch *last = newest(p);
    if (b->epoch < last->epoch)
        return PSTATE_BAD_EPOCH;
    if (b->epoch > last->epoch) { /* a bumped epoch restarts the sequence */
        if (b->first_seq != 0)
            return PSTATE_BAD_SEQUENCE;
        return p->txn_first_offset >= 0 && !b->transactional ? PSTATE_BAD_TXN_STATE : PSTATE_APPEND;
    }
    for (int i = 0; i < p->n; i++) {
        if (p->batches[i].first_seq == b->first_seq && p->batches[i].last_seq == b->last_seq) {
            if (dup)
                *dup = p->batches[i];
            return PSTATE_DUPLICATE;
        }
    }
    /* Also rejects a retry older than the remembered batches: it cannot be told apart
     * from a gap, and appending it again would duplicate it. */
    if (b->first_seq != pstate_seq_add(last->last_seq, 1))
        return PSTATE_BAD_SEQUENCE;
    /* A producer in a transaction writes only transactional batches until it ends. */
    if (p->txn_first_offset >= 0 && !b->transactional)
        return PSTATE_BAD_TXN_STATE;
    return PSTATE_APPEND;
}

void pstate_update(struct producer_state *ps, const struct pstate_batch *b)
{
    ASSERT(b->producer_id >= 0);
    /* One batch: the snapshot stores last - first offset as an int32. Unsigned arithmetic
     * because the difference of two arbitrary int64 may overflow. */
    ASSERT(b->first_offset <= b->last_offset &&
           (uint64_t)b->last_offset - (uint64_t)b->first_offset <= INT32_MAX);
    struct producer *p = find(ps, b->producer_id);
    if (!p) {
        p = new_producer(ps, b->producer_id);
    } else if (newest(p)->epoch != b->epoch) {
        /* Kafka resets on any epoch change: after a check only a newer epoch gets here,
         * but a replayed or replicated log is taken as it is. */
        p->n = 0;
    }
    if (p->n == PSTATE_MAX_BATCHES) {
        memmove(&p->batches[0], &p->batches[1], (PSTATE_MAX_BATCHES - 1) * sizeof p->batches[0]);
        p->n--;
    }
    p->batches[p->n++] = *b;
    if (b->transactional && p->txn_first_offset < 0) {
        p->txn_first_offset = b->first_offset;
        open_txn_add(ps, b->producer_id, b->first_offset);
    }
}

enum pstate_verdict pstate_check_marker(const struct producer_state *ps,
                                        const struct pstate_marker *m)
{
    ASSERT(m->producer_id >= 0);
    const struct producer *p = find(ps, m->producer_id);
    if (!p)
        return PSTATE_APPEND; /* a transaction that wrote nothing here, or expired */
    if (m->epoch < newest(p)->epoch)
        return PSTATE_BAD_EPOCH;
    if (m->coordinator_epoch < p->coordinator_epoch)
        return PSTATE_BAD_COORDINATOR_EPOCH;
    return PSTATE_APPEND;
}

bool pstate_end_txn(struct producer_state *ps, const struct pstate_marker *m,
                    struct pstate_txn *ended)
{
    ASSERT(m->producer_id >= 0);
    struct producer *p = find(ps, m->producer_id);
    if (!p)
        p = new_producer(ps, m->producer_id);
    if (p->n == 0 || newest(p)->epoch != m->epoch) {
        /* The marker sets the epoch (a fenced producer's transaction is aborted with the
         * bumped one): the producer starts over at sequence 0. */
        p->n = 1;
        p->batches[0] = (struct pstate_batch){.producer_id = m->producer_id,
                                              .epoch = m->epoch,
                                              .first_seq = -1,
                                              .last_seq = -1,
                                              .first_offset = -1,
                                              .last_offset = -1,
                                              .timestamp_ms = m->timestamp_ms};
    } else {
        struct pstate_batch *last = &p->batches[p->n - 1];
        last->timestamp_ms = MAX(last->timestamp_ms, m->timestamp_ms); /* for expiry */
    }
    p->coordinator_epoch = m->coordinator_epoch;
    if (p->txn_first_offset < 0)
        return false;
    ended->producer_id = m->producer_id;
    ended->first_offset = p->txn_first_offset;
    ended->last_offset = m->offset;
    open_txn_remove(ps, m->producer_id);
    p->txn_first_offset = -1;
    /* Kafka's lastStableOffset(completedTxn): where the next open transaction starts,
     * else just past this one's marker. */
    ended->last_stable_offset = ps->n_open > 0 ? ps->open[0].first_offset : m->offset + 1;
    return true;
}

int64_t pstate_first_unstable_offset(const struct producer_state *ps)
{
    return ps->n_open > 0 ? ps->open[0].first_offset : -1;
}

size_t pstate_open_txns(const struct producer_state *ps, struct pstate_txn *out, size_t max)
{
    for (size_t i = 0; i < ps->n_open && i < max; i++)
        out[i] = (struct pstate_txn){.producer_id = ps->open[i].producer_id,
                                     .first_offset = ps->open[i].first_offset,
                                     .last_offset = -1,
                                     .last_stable_offset = -1};
    return ps->n_open;
}

bool pstate_last(const struct producer_state *ps, int64_t producer_id, struct pstate_batch *out)
{
    const struct producer *p = find(ps, producer_id);
    if (!p)
        return false;
    *out = described(p);
    return true;
}

size_t pstate_expire(struct producer_state *ps, int64_t now_ms, int64_t expiration_ms)
{
    ASSERT(expiration_ms >= 0);
    int64_t cutoff_ms;
    if (__builtin_sub_overflow(now_ms, expiration_ms, &cutoff_ms))
        return 0; /* the cutoff is before any representable timestamp */
    size_t expired = 0;
    struct slice k;
    void *v;
    /* hmap_remove leaves a tombstone in place, so iterating on while removing is safe. */
    for (size_t i = 0; hmap_next(&ps->by_id, &i, &k, &v);) {
        struct producer *p = v;
        /* One in a transaction stays: its transaction holds the stable offset. */
        if (newest(p)->timestamp_ms >= cutoff_ms || p->txn_first_offset >= 0)
            continue;
        int64_t id = newest(p)->producer_id; /* k points into the slot remove frees */
        hmap_remove(&ps->by_id, id_key(&id));
        free(p);
        expired++;
    }
    return expired;
}

static int cmp_producer_id(const void *a, const void *b)
{
    int64_t x = newest(*(struct producer *const *)a)->producer_id;
    int64_t y = newest(*(struct producer *const *)b)->producer_id;
    return (x > y) - (x < y);
}

/* Every producer, ascending producer id (malloc'd; caller frees). */
static struct producer **sorted_producers(const struct producer_state *ps)
{
    size_t n = ps->by_id.count;
    struct producer **sorted = xmalloc((n ? n : 1) * sizeof *sorted);
    size_t got = 0;
    struct slice k;
    void *v;
    for (size_t i = 0; hmap_next(&ps->by_id, &i, &k, &v);)
        sorted[got++] = v;
    ASSERT(got == n);
    qsort(sorted, n, sizeof *sorted, cmp_producer_id);
    return sorted;
}

size_t pstate_list(const struct producer_state *ps, struct pstate_batch *out, size_t max)
{
    size_t n = ps->by_id.count;
    struct producer **sorted = sorted_producers(ps);
    for (size_t i = 0; i < n && i < max; i++)
        out[i] = described(sorted[i]);
    free(sorted);
    return n;
}

void pstate_encode_snapshot(const struct producer_state *ps, struct buf *out)
{
    size_t n = ps->by_id.count;
    ASSERT(n <= INT32_MAX);
    struct producer **sorted = sorted_producers(ps);

    size_t start = out->len;
    buf_put_i16(out, SNAPSHOT_VERSION);
    buf_put_u32(out, 0); /* CRC, patched below */
    buf_put_i32(out, (int32_t)n);
    for (size_t i = 0; i < n; i++) {
        const struct pstate_batch *b = newest(sorted[i]);
        buf_put_i64(out, b->producer_id);
        buf_put_i16(out, b->epoch);
        buf_put_i32(out, b->last_seq);
        buf_put_i64(out, b->last_offset);
        buf_put_i32(out, (int32_t)(b->last_offset - b->first_offset)); /* fits: update */
        buf_put_i64(out, b->timestamp_ms);
        buf_put_i32(out, sorted[i]->coordinator_epoch);
        buf_put_i64(out, sorted[i]->txn_first_offset);
    }
    free(sorted);
    uint32_t crc =
        crc32c(0, out->data + start + SNAPSHOT_CRC_FROM, out->len - start - SNAPSHOT_CRC_FROM);
    be32_write(out->data + start + SNAPSHOT_CRC_AT, crc);
}

/* Decodes into an empty ps; the caller clears it on failure. */
static int decode(struct producer_state *ps, const uint8_t *p, size_t len)
{
    if (len < SNAPSHOT_HEADER_BYTES)
        return STORAGE_ERR_CORRUPT;
    if ((int16_t)be16_read(p) != SNAPSHOT_VERSION)
        return STORAGE_ERR_CORRUPT;
    if (be32_read(p + SNAPSHOT_CRC_AT) != crc32c(0, p + SNAPSHOT_CRC_FROM, len - SNAPSHOT_CRC_FROM))
        return STORAGE_ERR_CORRUPT;
    int32_t count = (int32_t)be32_read(p + SNAPSHOT_CRC_FROM);
    size_t body = len - SNAPSHOT_HEADER_BYTES;
    /* Exactly count entries: no truncation, no trailing bytes. */
    if (count < 0 || body % SNAPSHOT_ENTRY_BYTES != 0 ||
        body / SNAPSHOT_ENTRY_BYTES != (size_t)count)
        return STORAGE_ERR_CORRUPT;
    struct reader r;
    rd_init(&r, p + SNAPSHOT_HEADER_BYTES, body);
    for (int32_t i = 0; i < count; i++) {
        struct pstate_batch b = {0};
        b.producer_id = rd_i64(&r);
        b.epoch = rd_i16(&r);
        b.last_seq = rd_i32(&r);
        b.last_offset = rd_i64(&r);
        int32_t offset_delta = rd_i32(&r);
        b.timestamp_ms = rd_i64(&r);
        int32_t coordinator_epoch = rd_i32(&r);
        int64_t txn_first_offset = rd_i64(&r);
        /* The CRC matched, so these come from a broken writer, not from the disk; they
         * would break the invariants pstate_update asserts or make the state ambiguous. */
        if (r.err || b.producer_id < 0 || offset_delta < 0 || find(ps, b.producer_id) != NULL ||
            !seq_sub(b.last_seq, offset_delta, &b.first_seq) ||
            __builtin_sub_overflow(b.last_offset, (int64_t)offset_delta, &b.first_offset) ||
            txn_first_offset < -1 || coordinator_epoch < -1)
            return STORAGE_ERR_CORRUPT;
        pstate_update(ps, &b);
        struct producer *pr = find(ps, b.producer_id);
        pr->coordinator_epoch = coordinator_epoch;
        if (txn_first_offset >= 0) {
            pr->txn_first_offset = txn_first_offset;
            open_txn_add(ps, b.producer_id, txn_first_offset);
        }
    }
    ASSERT(rd_remaining(&r) == 0);
    return 0;
}

int pstate_decode_snapshot(struct producer_state *ps, const uint8_t *p, size_t len)
{
    pstate_clear(ps);
    int rc = decode(ps, p, len);
    if (rc != 0)
        pstate_clear(ps);
    return rc;
}
