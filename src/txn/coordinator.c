/*
 * The transaction coordinator (txn.h): transactional ids, their transitions through
 * __transaction_state, markers, timeouts and expiry. Semantics follow Kafka's
 * TransactionCoordinator / TransactionStateManager for transaction versions 1 and 2.
 *
 * Every transition goes the same way: the next metadata is built as a copy (struct op),
 * its record appended, and only when txn_append_done reports it durable is it applied
 * to the id and the request answered. While an op is in flight (t->pending) the id takes
 * no other transition: requests get CONCURRENT_TRANSACTIONS, with one exception: while
 * only a Complete state's record is in flight (the markers are durable), an
 * AddPartitionsToTxn that starts the next transaction is chained behind it (t->chained):
 * its record is appended at once, after the Complete one, and applied after it; it is
 * durable only if that one is (one log, appended in order), so nothing is answered
 * before what it rests on is durable, and the two records share a sync round instead
 * of taking one each. An op outlives its id when
 * the id's partition is unloaded meanwhile (op->t is then NULL): it is freed by its
 * completion, or by destroy.
 */
#include "txn/txn.h"

#include <stdlib.h>
#include <string.h>

enum partition_state { PART_UNLOADED = 0, PART_LOADING, PART_LOADED };

struct txn;

enum op_kind {
    OP_NEW_ID,  /* waiting for a producer id, then an append */
    OP_APPEND,  /* a record in flight */
    OP_MARKERS, /* markers being written */
};

/* What is applied to the id once its record is durable. */
enum after {
    AFTER_NOTHING,
    AFTER_MARKERS, /* a Prepare state: write the markers */
    AFTER_REMOVE,  /* a tombstone: forget the id */
};

struct op {
    struct op *prev, *next; /* c->ops: every live op, for destroy */
    struct txn *t;          /* NULL once the id is gone (unloaded) */
    enum op_kind kind;
    enum after after;
    bool completes;              /* a Complete state after durable markers (chainable) */
    enum txn_state ending;       /* OP_NEW_ID for an EndTxn's overflow: the Prepare state */
    struct txn_meta meta;        /* the next metadata (partitions owned: parts) */
    struct txn_partition *parts; /* owned, topics owned */
    bool has_ctx;
    void *ctx;             /* the request to answer, when has_ctx */
    struct txn_answer ans; /* its answer on success */
};

struct txn {
    char *id; /* owned, NUL-terminated copy; the hmap key */
    size_t id_len;
    int32_t partition;
    struct txn_meta meta;        /* durable state (transactional_id points at id) */
    struct txn_partition *parts; /* owned, topics owned */
    bool fresh;                  /* created by an InitProducerId not yet durable */
    bool markers_due;            /* a Prepare state whose markers must be (re)written */
    struct op *pending;
    struct op *chained; /* an add appended behind pending (a Complete state), or NULL */
};

struct txn_coordinator {
    struct txn_config cfg;
    struct hmap ids; /* transactional id -> struct txn * */
    uint8_t *parts_state;
    struct op ops; /* list head */
    int64_t next_tick_ms;
    bool in_callback; /* cfg calls must not re-enter */
};

const char *txn_state_name(enum txn_state s)
{
    static const char *const names[] = {"Empty",        "Ongoing",          "PrepareCommit",
                                        "PrepareAbort", "CompleteCommit",   "CompleteAbort",
                                        "Dead",         "PrepareEpochFence"};
    return (unsigned)s < ARRAY_LEN(names) ? names[s] : "Unknown";
}

/* ---- partitions of a transaction: sorted, topics owned ---- */

static int cmp_part(const void *a, const void *b)
{
    const struct txn_partition *x = a, *y = b;
    size_t n = MIN(x->topic.len, y->topic.len);
    int c = memcmp(x->topic.ptr, y->topic.ptr, n);
    if (c != 0)
        return c;
    if (x->topic.len != y->topic.len)
        return x->topic.len < y->topic.len ? -1 : 1;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

static struct slice own(struct slice s)
{
    uint8_t *p = xmalloc(s.len ? s.len : 1);
    if (s.len)
        memcpy(p, s.ptr, s.len);
    return (struct slice){p, s.len};
}

static void free_parts(struct txn_partition *parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((void *)parts[i].topic.ptr);
    free(parts);
}

/* The union of a (n) and b (m), sorted and without duplicates, every topic owned. */
static struct txn_partition *merge_parts(const struct txn_partition *a, size_t n,
                                         const struct txn_partition *b, size_t m, size_t *out_n)
{
    struct txn_partition *all = xmalloc((n + m + 1) * sizeof *all);
    if (n)
        memcpy(all, a, n * sizeof *all);
    if (m)
        memcpy(all + n, b, m * sizeof *all);
    qsort(all, n + m, sizeof *all, cmp_part);
    size_t k = 0;
    for (size_t i = 0; i < n + m; i++) {
        if (k > 0 && cmp_part(&all[k - 1], &all[i]) == 0)
            continue;
        all[k] = all[i];
        all[k].topic = own(all[i].topic);
        k++;
    }
    *out_n = k;
    return all;
}

static bool has_all(const struct txn *t, const struct txn_partition *b, size_t m)
{
    for (size_t i = 0; i < m; i++)
        if (!bsearch(&b[i], t->parts, t->meta.n_partitions, sizeof *t->parts, cmp_part))
            return false;
    return true;
}

/* ---- ids ---- */

static struct txn *find(const struct txn_coordinator *c, struct slice id)
{
    return hmap_get(&c->ids, id);
}

static struct txn *create(struct txn_coordinator *c, struct slice id, int32_t partition)
{
    struct txn *t = xcalloc(1, sizeof *t);
    t->id = xstrndup((const char *)id.ptr, id.len);
    t->id_len = id.len;
    t->partition = partition;
    t->meta = (struct txn_meta){.producer_id = -1,
                                .producer_epoch = -1,
                                .start_ms = -1,
                                .prev_producer_id = -1,
                                .next_producer_id = -1};
    t->meta.transactional_id = (struct slice){(const uint8_t *)t->id, t->id_len};
    hmap_put(&c->ids, t->meta.transactional_id, t);
    return t;
}

static void destroy_txn(struct txn_coordinator *c, struct txn *t)
{
    hmap_remove(&c->ids, t->meta.transactional_id);
    free_parts(t->parts, t->meta.n_partitions);
    free(t->id);
    free(t);
}

void *txn_coordinator_arg(const struct txn_coordinator *c)
{
    return c->cfg.arg;
}

int32_t txn_partition_for(const struct txn_coordinator *c, struct slice transactional_id)
{
    return kafka_partition_for(transactional_id, c->cfg.partitions);
}

/* ---- answers and ops ---- */

static void answer(struct txn_coordinator *c, void *ctx, int16_t error, int64_t pid, int16_t epoch)
{
    struct txn_answer a = {.error = error, .producer_id = pid, .producer_epoch = epoch};
    ASSERT(!c->in_callback);
    c->in_callback = true;
    c->cfg.answer(ctx, &a);
    c->in_callback = false;
}

/* An op of t, linked into c->ops (not yet t's pending one). */
static struct op *op_alloc(struct txn_coordinator *c, struct txn *t, enum op_kind kind)
{
    struct op *op = xcalloc(1, sizeof *op);
    op->t = t;
    op->kind = kind;
    op->ans = (struct txn_answer){.producer_id = -1, .producer_epoch = -1};
    op->next = c->ops.next;
    op->prev = &c->ops;
    c->ops.next->prev = op;
    c->ops.next = op;
    return op;
}

static struct op *op_new(struct txn_coordinator *c, struct txn *t, enum op_kind kind)
{
    ASSERT(!t->pending);
    struct op *op = op_alloc(c, t, kind);
    t->pending = op;
    return op;
}

static void op_free(struct op *op)
{
    op->prev->next = op->next;
    op->next->prev = op->prev;
    free_parts(op->parts, op->meta.n_partitions);
    free(op);
}

/* The next metadata starts as a copy of the current one (partitions copied). */
static void op_start_from(struct op *op, const struct txn *t, int64_t now_ms)
{
    op->meta = t->meta;
    size_t n;
    op->parts = merge_parts(t->parts, t->meta.n_partitions, NULL, 0, &n);
    op->meta.partitions = op->parts;
    op->meta.n_partitions = n;
    op->meta.last_update_ms = now_ms;
}

static void op_clear_parts(struct op *op)
{
    free_parts(op->parts, op->meta.n_partitions);
    op->parts = NULL;
    op->meta.partitions = NULL;
    op->meta.n_partitions = 0;
}

static void append_op(struct txn_coordinator *c, struct op *op)
{
    struct buf key, value;
    buf_init(&key);
    buf_init(&value);
    op->kind = OP_APPEND;
    txn_record_encode(&key, &value, &op->meta);
    struct slice v = {value.data, value.len};
    if (op->after == AFTER_REMOVE)
        v = (struct slice){NULL, 0};
    ASSERT(!c->in_callback);
    c->in_callback = true;
    c->cfg.append(c->cfg.arg, op->t->partition, (struct slice){key.data, key.len}, v, op);
    c->in_callback = false;
    buf_free(&key);
    buf_free(&value);
}

static void write_markers(struct txn_coordinator *c, struct txn *t)
{
    struct op *op = op_new(c, t, OP_MARKERS);
    t->markers_due = false;
    ASSERT(!c->in_callback);
    c->in_callback = true;
    c->cfg.write_markers(c->cfg.arg, t->partition, t->meta.producer_id, t->meta.producer_epoch,
                         t->meta.state == TXN_PREPARE_COMMIT, t->meta.client_version, t->parts,
                         t->meta.n_partitions, op);
    c->in_callback = false;
}

/* Aborts t's Ongoing transaction with its epoch bumped, fencing the producer (a timeout,
 * or a new InitProducerId of the same id). */
static void fence_and_abort(struct txn_coordinator *c, struct txn *t, int64_t now_ms)
{
    struct op *op = op_new(c, t, OP_APPEND);
    op_start_from(op, t, now_ms);
    if (op->meta.producer_epoch < INT16_MAX)
        op->meta.producer_epoch++;
    op->meta.state = TXN_PREPARE_ABORT;
    op->after = AFTER_MARKERS;
    append_op(c, op);
}

/* ---- lifecycle ---- */

struct txn_coordinator *txn_coordinator_new(const struct txn_config *cfg)
{
    ASSERT(cfg->partitions > 0 && cfg->answer && cfg->append && cfg->write_markers &&
           cfg->new_producer_id);
    struct txn_coordinator *c = xcalloc(1, sizeof *c);
    c->cfg = *cfg;
    hmap_init(&c->ids);
    c->parts_state = xcalloc((size_t)cfg->partitions, 1);
    c->ops.next = c->ops.prev = &c->ops;
    c->next_tick_ms = INT64_MAX;
    return c;
}

void txn_unload(struct txn_coordinator *c, int32_t partition)
{
    ASSERT(partition >= 0 && partition < c->cfg.partitions);
    c->parts_state[partition] = PART_UNLOADED;
    struct slice k;
    void *v;
    for (size_t i = 0; hmap_next(&c->ids, &i, &k, &v);) {
        struct txn *t = v;
        if (t->partition != partition)
            continue;
        struct op *ops[2] = {t->pending, t->chained};
        for (size_t j = 0; j < 2; j++) {
            struct op *op = ops[j];
            if (!op)
                continue;
            op->t = NULL;
            if (op->has_ctx) {
                op->has_ctx = false;
                answer(c, op->ctx, TXN_ERR_NOT_COORDINATOR, -1, -1);
            }
        }
        destroy_txn(c, t);
    }
}

void txn_coordinator_destroy(struct txn_coordinator *c)
{
    if (!c)
        return;
    for (int32_t p = 0; p < c->cfg.partitions; p++)
        txn_unload(c, p);
    while (c->ops.next != &c->ops)
        op_free(c->ops.next);
    hmap_free(&c->ids);
    free(c->parts_state);
    free(c);
}

/* NONE when requests for the id can be served here, else why not. */
static int16_t serving(const struct txn_coordinator *c, struct slice id, int32_t *partition)
{
    *partition = txn_partition_for(c, id);
    switch (c->parts_state[*partition]) {
    case PART_LOADED: return TXN_ERR_NONE;
    case PART_LOADING: return TXN_ERR_COORDINATOR_LOAD_IN_PROGRESS;
    default: return TXN_ERR_NOT_COORDINATOR;
    }
}

/* The id's metadata for a request of producer (id, epoch), which must be the id's:
 * TXN_ERR_NONE with *out set, or the error to answer (not served here; then the mapping,
 * then the epoch). */
static int16_t producer_txn(const struct txn_coordinator *c, struct slice transactional_id,
                            int64_t producer_id, int16_t epoch, struct txn **out)
{
    int32_t partition;
    int16_t err = serving(c, transactional_id, &partition);
    if (err != TXN_ERR_NONE)
        return err;
    struct txn *t = find(c, transactional_id);
    if (!t || t->fresh || t->meta.producer_id != producer_id)
        return TXN_ERR_INVALID_PRODUCER_ID_MAPPING;
    if (t->meta.producer_epoch != epoch)
        return TXN_ERR_PRODUCER_FENCED;
    *out = t;
    return TXN_ERR_NONE;
}

static void arm_tick(struct txn_coordinator *c, int64_t now_ms)
{
    int64_t interval = MIN(c->cfg.abort_check_interval_ms, c->cfg.expiration_check_interval_ms);
    if (c->next_tick_ms == INT64_MAX)
        c->next_tick_ms = now_ms + interval;
}

/* ---- InitProducerId ---- */

/* The Empty state with a producer id and epoch, for t (an op already pending). */
static void init_with(struct txn_coordinator *c, struct op *op, int64_t now_ms, int64_t pid,
                      int16_t epoch, int32_t timeout_ms)
{
    struct txn *t = op->t;
    op_start_from(op, t, now_ms);
    op_clear_parts(op);
    if (t->meta.producer_id >= 0 && t->meta.producer_id != pid)
        op->meta.prev_producer_id = t->meta.producer_id; /* for a retry that missed this */
    op->meta.producer_id = pid;
    op->meta.producer_epoch = epoch;
    op->meta.timeout_ms = timeout_ms;
    op->meta.state = TXN_EMPTY;
    op->meta.start_ms = -1;
    op->ans = (struct txn_answer){.producer_id = pid, .producer_epoch = epoch};
    append_op(c, op);
}

void txn_init_producer_id(struct txn_coordinator *c, int64_t now_ms, const struct txn_init_req *r,
                          void *ctx)
{
    int32_t partition;
    int16_t err = TXN_ERR_NONE;
    if (r->transactional_id.len == 0)
        err = TXN_ERR_INVALID_REQUEST;
    else if (r->timeout_ms <= 0 || r->timeout_ms > c->cfg.max_timeout_ms)
        err = TXN_ERR_INVALID_TRANSACTION_TIMEOUT;
    else
        err = serving(c, r->transactional_id, &partition);
    if (err != TXN_ERR_NONE) {
        answer(c, ctx, err, -1, -1);
        return;
    }
    arm_tick(c, now_ms);
    struct txn *t = find(c, r->transactional_id);
    if (!t) {
        t = create(c, r->transactional_id, partition);
        t->fresh = true;
        struct op *op = op_new(c, t, OP_NEW_ID);
        op->has_ctx = true;
        op->ctx = ctx;
        op->meta.timeout_ms = r->timeout_ms;
        ASSERT(!c->in_callback);
        c->in_callback = true;
        c->cfg.new_producer_id(c->cfg.arg, op);
        c->in_callback = false;
        return;
    }
    if (t->pending) {
        answer(c, ctx, TXN_ERR_CONCURRENT_TRANSACTIONS, -1, -1);
        return;
    }
    /* KIP-360: a producer that names itself must be the current one (or the one before
     * an epoch overflow it did not hear of). */
    bool previous = r->producer_id == t->meta.prev_producer_id && r->producer_id >= 0 &&
                    r->producer_epoch >= INT16_MAX - 1;
    if (r->producer_id >= 0 && !previous &&
        (r->producer_id != t->meta.producer_id || r->producer_epoch != t->meta.producer_epoch)) {
        answer(c, ctx, TXN_ERR_PRODUCER_FENCED, -1, -1);
        return;
    }
    switch (t->meta.state) {
    case TXN_ONGOING:
        /* A new instance of the producer: the old one's transaction is aborted and it is
         * fenced; this one retries until that is complete. */
        fence_and_abort(c, t, now_ms);
        answer(c, ctx, TXN_ERR_CONCURRENT_TRANSACTIONS, -1, -1);
        return;
    case TXN_EMPTY:
    case TXN_COMPLETE_COMMIT:
    case TXN_COMPLETE_ABORT: break;
    default: answer(c, ctx, TXN_ERR_CONCURRENT_TRANSACTIONS, -1, -1); return;
    }
    struct op *op = op_new(c, t, OP_APPEND);
    op->has_ctx = true;
    op->ctx = ctx;
    if (t->meta.producer_epoch >= INT16_MAX - 1) {
        /* Epochs exhausted: a new producer id, epoch 0 (Kafka's rule). */
        op->kind = OP_NEW_ID;
        op->meta.timeout_ms = r->timeout_ms;
        c->in_callback = true;
        c->cfg.new_producer_id(c->cfg.arg, op);
        c->in_callback = false;
        return;
    }
    init_with(c, op, now_ms, t->meta.producer_id, (int16_t)(t->meta.producer_epoch + 1),
              r->timeout_ms);
}

static void prepare_end(struct txn_coordinator *c, struct op *op, int64_t now_ms, int64_t next_pid);

void txn_producer_id_done(struct txn_coordinator *c, int64_t now_ms, void *token, int16_t error,
                          int64_t producer_id)
{
    struct op *op = token;
    ASSERT(op->kind == OP_NEW_ID);
    struct txn *t = op->t;
    if (!t) {
        op_free(op);
        return;
    }
    if (error != TXN_ERR_NONE || producer_id < 0) {
        t->pending = NULL;
        if (t->fresh)
            destroy_txn(c, t);
        if (op->has_ctx)
            answer(c, op->ctx, error != TXN_ERR_NONE ? error : TXN_ERR_COORDINATOR_NOT_AVAILABLE,
                   -1, -1);
        op_free(op);
        return;
    }
    if (op->ending != TXN_EMPTY)
        prepare_end(c, op, now_ms, producer_id);
    else
        init_with(c, op, now_ms, producer_id, 0, op->meta.timeout_ms);
}

/* ---- AddPartitionsToTxn ---- */

/* Makes op the Ongoing state that follows base (the id's metadata, or a Complete state
 * still in flight) with r's partitions added, to base's own when base is Ongoing, and
 * appends it; ctx is answered when it is durable. */
static void append_ongoing(struct txn_coordinator *c, struct op *op, const struct txn_meta *base,
                           const struct txn_add_req *r, void *ctx, int64_t now_ms)
{
    op->has_ctx = true;
    op->ctx = ctx;
    op->meta = *base;
    op->meta.last_update_ms = now_ms;
    size_t n;
    bool continuing = base->state == TXN_ONGOING;
    op->parts =
        merge_parts(continuing ? base->partitions : NULL, continuing ? base->n_partitions : 0,
                    r->partitions, r->n_partitions, &n);
    op->meta.partitions = op->parts;
    op->meta.n_partitions = n;
    op->meta.state = TXN_ONGOING;
    if (!continuing)
        op->meta.start_ms = now_ms;
    op->meta.client_version = r->client_version; /* its markers will carry it (Kafka's) */
    append_op(c, op);
}

void txn_add_partitions(struct txn_coordinator *c, int64_t now_ms, const struct txn_add_req *r,
                        void *ctx)
{
    /* A transition in flight first (Kafka's order): one that moves the id to a new
     * producer id (an epoch overflow) has already handed that id to the client. */
    int32_t partition;
    struct txn *t = find(c, r->transactional_id);
    int16_t err = serving(c, r->transactional_id, &partition);
    bool chain = false; /* behind a Complete state in flight */
    if (err == TXN_ERR_NONE && t && !t->fresh && t->pending) {
        if (t->pending->completes && !t->chained)
            chain = true;
        else
            err = TXN_ERR_CONCURRENT_TRANSACTIONS;
    }
    if (err == TXN_ERR_NONE && chain) {
        const struct txn_meta *next = &t->pending->meta; /* the id once it is applied */
        if (next->producer_id != r->producer_id)
            err = TXN_ERR_INVALID_PRODUCER_ID_MAPPING;
        else if (next->producer_epoch != r->producer_epoch)
            err = TXN_ERR_PRODUCER_FENCED;
        if (err == TXN_ERR_NONE) {
            t->chained = op_alloc(c, t, OP_APPEND);
            append_ongoing(c, t->chained, next, r, ctx, now_ms);
            return;
        }
    }
    if (err == TXN_ERR_NONE && !chain)
        err = producer_txn(c, r->transactional_id, r->producer_id, r->producer_epoch, &t);
    if (err == TXN_ERR_NONE) {
        switch (t->meta.state) {
        case TXN_EMPTY:
        case TXN_ONGOING:
        case TXN_COMPLETE_COMMIT:
        case TXN_COMPLETE_ABORT: break;
        default: err = TXN_ERR_CONCURRENT_TRANSACTIONS; break;
        }
    }
    if (err != TXN_ERR_NONE) {
        answer(c, ctx, err, -1, -1);
        return;
    }
    if (t->meta.state == TXN_ONGOING && has_all(t, r->partitions, r->n_partitions)) {
        answer(c, ctx, TXN_ERR_NONE, -1, -1);
        return;
    }
    append_ongoing(c, op_new(c, t, OP_APPEND), &t->meta, r, ctx, now_ms);
}

/* ---- EndTxn ---- */

static void end_v2(struct txn_coordinator *c, int64_t now_ms, const struct txn_end_req *r,
                   void *ctx);

void txn_end(struct txn_coordinator *c, int64_t now_ms, const struct txn_end_req *r, void *ctx)
{
    if (r->client_version >= 2) {
        end_v2(c, now_ms, r, ctx);
        return;
    }
    struct txn *t = NULL;
    int16_t err = producer_txn(c, r->transactional_id, r->producer_id, r->producer_epoch, &t);
    if (err == TXN_ERR_NONE && t->pending)
        err = TXN_ERR_CONCURRENT_TRANSACTIONS;
    if (err != TXN_ERR_NONE) {
        answer(c, ctx, err, -1, -1);
        return;
    }
    enum txn_state same_done = r->commit ? TXN_COMPLETE_COMMIT : TXN_COMPLETE_ABORT;
    enum txn_state same_prep = r->commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT;
    if (t->meta.state == same_done) { /* a retry of an EndTxn that completed */
        answer(c, ctx, TXN_ERR_NONE, -1, -1);
        return;
    }
    if (t->meta.state == same_prep) {
        answer(c, ctx, TXN_ERR_CONCURRENT_TRANSACTIONS, -1, -1);
        return;
    }
    if (t->meta.state != TXN_ONGOING) {
        answer(c, ctx, TXN_ERR_INVALID_TXN_STATE, -1, -1);
        return;
    }
    struct op *op = op_new(c, t, OP_APPEND);
    op->has_ctx = true;
    op->ctx = ctx;
    op_start_from(op, t, now_ms);
    op->meta.state = same_prep;
    op->meta.client_version = r->client_version; /* version 1 markers: no bumped epoch */
    op->after = AFTER_MARKERS;
    append_op(c, op);
}

/* Transaction version 2: the Prepare state of op's id with its epoch bumped (at 32766,
 * the id moves to next_pid, which the caller got: the Prepare state carries epoch 32767
 * and next_pid). An id with no Ongoing transaction ends an empty one (an abort). */
static void prepare_end(struct txn_coordinator *c, struct op *op, int64_t now_ms, int64_t next_pid)
{
    struct txn *t = op->t;
    op_start_from(op, t, now_ms);
    if (t->meta.state != TXN_ONGOING) {
        op_clear_parts(op);
        op->meta.start_ms = now_ms;
    }
    op->meta.client_version = 2;
    /* 32767 has no successor: a Prepare state from it keeps it (its markers are let
     * through at 32767) and moves to next_pid. */
    op->meta.producer_epoch =
        t->meta.producer_epoch < INT16_MAX ? (int16_t)(t->meta.producer_epoch + 1) : INT16_MAX;
    op->meta.next_producer_id = next_pid;
    op->meta.state = op->ending;
    op->after = AFTER_MARKERS;
    op->ans = next_pid >= 0 ? (struct txn_answer){.producer_id = next_pid, .producer_epoch = 0}
                            : (struct txn_answer){.producer_id = t->meta.producer_id,
                                                  .producer_epoch = op->meta.producer_epoch};
    op->kind = OP_APPEND;
    append_op(c, op);
}

/* EndTxn v5+ (Kafka's TransactionCoordinator.endTransaction for transaction version 2).
 * A request is "current" with the id's producer and epoch, a "retry" with the epoch
 * before the last bump (or the producer id and epoch before an overflow). */
static void end_v2(struct txn_coordinator *c, int64_t now_ms, const struct txn_end_req *r,
                   void *ctx)
{
    int32_t partition;
    int16_t err = serving(c, r->transactional_id, &partition);
    struct txn *t = err == TXN_ERR_NONE ? find(c, r->transactional_id) : NULL;
    if (err == TXN_ERR_NONE && (!t || t->fresh))
        err = TXN_ERR_INVALID_PRODUCER_ID_MAPPING;
    if (err == TXN_ERR_NONE && t->pending)
        err = TXN_ERR_CONCURRENT_TRANSACTIONS;
    if (err != TXN_ERR_NONE) {
        answer(c, ctx, err, -1, -1);
        return;
    }
    const struct txn_meta *m = &t->meta;
    bool retry_overflow = r->producer_id == m->prev_producer_id && r->producer_id >= 0 &&
                          r->producer_epoch == INT16_MAX - 1 && m->producer_epoch == 0;
    if (r->producer_id != m->producer_id && !retry_overflow) {
        answer(c, ctx, TXN_ERR_INVALID_PRODUCER_ID_MAPPING, -1, -1);
        return;
    }
    bool current = r->producer_id == m->producer_id && r->producer_epoch == m->producer_epoch;
    bool retry = retry_overflow ||
                 (r->producer_id == m->producer_id && m->producer_epoch == r->producer_epoch + 1);
    enum txn_state prep = r->commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT;
    enum txn_state done = r->commit ? TXN_COMPLETE_COMMIT : TXN_COMPLETE_ABORT;
    bool start = false; /* a Prepare state to write */
    switch (m->state) {
    case TXN_ONGOING:
        err = current ? TXN_ERR_NONE : TXN_ERR_PRODUCER_FENCED;
        start = current;
        break;
    case TXN_PREPARE_COMMIT:
    case TXN_PREPARE_ABORT:
        err = !retry             ? TXN_ERR_PRODUCER_FENCED
              : m->state == prep ? TXN_ERR_CONCURRENT_TRANSACTIONS
                                 : TXN_ERR_INVALID_TXN_STATE;
        break;
    case TXN_EMPTY:
    case TXN_COMPLETE_COMMIT:
    case TXN_COMPLETE_ABORT:
        if (!current && (!retry || m->state == TXN_EMPTY))
            err = TXN_ERR_PRODUCER_FENCED;
        else if (retry && m->state == done) {
            answer(c, ctx, TXN_ERR_NONE, m->producer_id, m->producer_epoch);
            return;
        } else if (current && !r->commit)
            start = true; /* an abort with nothing Ongoing: a new epoch */
        else
            err = TXN_ERR_INVALID_TXN_STATE;
        break;
    default: err = TXN_ERR_INVALID_TXN_STATE; break;
    }
    if (!start) {
        answer(c, ctx, err, -1, -1);
        return;
    }
    struct op *op = op_new(c, t, OP_APPEND);
    op->has_ctx = true;
    op->ctx = ctx;
    op->ending = prep;
    if (m->producer_epoch >= INT16_MAX - 1) {
        op->kind = OP_NEW_ID; /* txn_producer_id_done goes on with prepare_end */
        ASSERT(!c->in_callback);
        c->in_callback = true;
        c->cfg.new_producer_id(c->cfg.arg, op);
        c->in_callback = false;
        return;
    }
    prepare_end(c, op, now_ms, -1);
}

/* ---- completions ---- */

void txn_append_done(struct txn_coordinator *c, int64_t now_ms, void *token, int16_t error)
{
    struct op *op = token;
    ASSERT(op->kind == OP_APPEND);
    struct txn *t = op->t;
    if (!t) { /* unloaded meanwhile: answered then */
        op_free(op);
        return;
    }
    if (op == t->chained) {
        /* Completed before the op it follows: appends of one partition complete in
         * order, so this does not happen; were it to, the client asks again. */
        t->chained = NULL;
        if (op->has_ctx)
            answer(c, op->ctx, TXN_ERR_COORDINATOR_NOT_AVAILABLE, -1, -1);
        op_free(op);
        return;
    }
    t->pending = NULL;
    struct op *chained = t->chained;
    t->chained = NULL;
    if (error != TXN_ERR_NONE) {
        /* Kafka's mapping of a failed append: the client finds the coordinator again or
         * retries. */
        int16_t answer_error = error == TXN_ERR_NOT_COORDINATOR || error == 6 /* NOT_LEADER */
                                   ? TXN_ERR_NOT_COORDINATOR
                                   : TXN_ERR_COORDINATOR_NOT_AVAILABLE;
        if (chained) { /* it rested on this one: refused, whatever its own append does */
            chained->t = NULL;
            if (chained->has_ctx) {
                chained->has_ctx = false;
                answer(c, chained->ctx, answer_error, -1, -1);
            }
        }
        if (t->fresh)
            destroy_txn(c, t);
        else if (t->meta.state == TXN_PREPARE_COMMIT || t->meta.state == TXN_PREPARE_ABORT)
            t->markers_due = true; /* its Complete record failed: the tick tries again */
        if (op->has_ctx)
            answer(c, op->ctx, answer_error, -1, -1);
        op_free(op);
        return;
    }
    if (op->after == AFTER_REMOVE) {
        destroy_txn(c, t);
        op_free(op);
        return;
    }
    /* Apply: t takes the op's partitions. */
    free_parts(t->parts, t->meta.n_partitions);
    t->parts = op->parts;
    t->meta = op->meta;
    t->meta.transactional_id = (struct slice){(const uint8_t *)t->id, t->id_len};
    t->meta.partitions = t->parts;
    t->fresh = false;
    op->parts = NULL;
    op->meta.n_partitions = 0;
    bool markers = op->after == AFTER_MARKERS;
    if (op->has_ctx)
        answer(c, op->ctx, TXN_ERR_NONE, op->ans.producer_id, op->ans.producer_epoch);
    op_free(op);
    if (chained) {
        ASSERT(!markers);
        t->pending = chained; /* its record follows; its completion applies it */
    }
    if (markers)
        write_markers(c, t);
    (void)now_ms;
}

void txn_markers_done(struct txn_coordinator *c, int64_t now_ms, void *token)
{
    struct op *op = token;
    ASSERT(op->kind == OP_MARKERS);
    struct txn *t = op->t;
    if (!t) {
        op_free(op);
        return;
    }
    t->pending = NULL;
    op_free(op);
    struct op *done = op_new(c, t, OP_APPEND);
    done->completes = true;
    op_start_from(done, t, now_ms);
    op_clear_parts(done);
    done->meta.state =
        t->meta.state == TXN_PREPARE_COMMIT ? TXN_COMPLETE_COMMIT : TXN_COMPLETE_ABORT;
    if (t->meta.next_producer_id >= 0) { /* the epoch overflowed: the new producer id */
        done->meta.prev_producer_id = t->meta.producer_id;
        done->meta.producer_id = t->meta.next_producer_id;
        done->meta.producer_epoch = 0;
        done->meta.next_producer_id = -1;
    }
    append_op(c, done);
}

/* ---- loading ---- */

void txn_load_begin(struct txn_coordinator *c, int32_t partition)
{
    ASSERT(partition >= 0 && partition < c->cfg.partitions);
    txn_unload(c, partition);
    c->parts_state[partition] = PART_LOADING;
}

int txn_load_record(struct txn_coordinator *c, int32_t partition, struct slice key,
                    struct slice value)
{
    struct slice id;
    if (txn_record_decode_key(key, &id) != 0 || id.len == 0)
        return -1;
    if (txn_partition_for(c, id) != partition)
        return -1; /* not this partition's: written by something else */
    struct txn *t = find(c, id);
    if (!value.ptr) {
        if (t)
            destroy_txn(c, t);
        return 0;
    }
    struct txn_meta m;
    struct txn_partition *parts;
    if (txn_record_decode_value(value, &m, &parts) != 0)
        return -1;
    if (!t)
        t = create(c, id, partition);
    size_t n;
    struct txn_partition *owned = merge_parts(parts, m.n_partitions, NULL, 0, &n);
    free(parts);
    free_parts(t->parts, t->meta.n_partitions);
    t->parts = owned;
    t->meta = m;
    t->meta.transactional_id = (struct slice){(const uint8_t *)t->id, t->id_len};
    t->meta.partitions = owned;
    t->meta.n_partitions = n;
    return 0;
}

void txn_load_end(struct txn_coordinator *c, int64_t now_ms, int32_t partition)
{
    c->parts_state[partition] = PART_LOADED;
    arm_tick(c, now_ms);
    struct slice k;
    void *v;
    for (size_t i = 0; hmap_next(&c->ids, &i, &k, &v);) {
        struct txn *t = v;
        if (t->partition != partition)
            continue;
        if (t->meta.state == TXN_PREPARE_EPOCH_FENCE)
            t->meta.state = TXN_ONGOING; /* never written by us; Kafka's is transient too */
        /* A commit or abort decided before the restart: its markers again. */
        if (t->meta.state == TXN_PREPARE_COMMIT || t->meta.state == TXN_PREPARE_ABORT)
            write_markers(c, t);
    }
}

/* ---- time ---- */

void txn_tick(struct txn_coordinator *c, int64_t now_ms)
{
    if (now_ms < c->next_tick_ms)
        return;
    c->next_tick_ms = INT64_MAX;
    /* Collected first: starting a transition may not change the map while iterating
     * (a failed append could remove an id), so act on a list. */
    size_t n = 0, cap = c->ids.count ? c->ids.count : 1;
    struct txn **due = xmalloc(cap * sizeof *due);
    struct slice k;
    void *v;
    for (size_t i = 0; hmap_next(&c->ids, &i, &k, &v);) {
        struct txn *t = v;
        if (t->pending || c->parts_state[t->partition] != PART_LOADED)
            continue;
        bool expired_txn = t->meta.state == TXN_ONGOING &&
                           now_ms - t->meta.start_ms >= (int64_t)t->meta.timeout_ms;
        bool idle = (t->meta.state == TXN_EMPTY || t->meta.state == TXN_COMPLETE_COMMIT ||
                     t->meta.state == TXN_COMPLETE_ABORT) &&
                    now_ms - t->meta.last_update_ms >= c->cfg.id_expiration_ms;
        if (expired_txn || idle || t->markers_due)
            due[n++] = t;
    }
    for (size_t i = 0; i < n; i++) {
        struct txn *t = due[i];
        if (t->markers_due) {
            write_markers(c, t);
        } else if (t->meta.state == TXN_ONGOING) {
            fence_and_abort(c, t, now_ms);
        } else {
            struct op *op = op_new(c, t, OP_APPEND);
            op_start_from(op, t, now_ms);
            op->after = AFTER_REMOVE;
            append_op(c, op);
        }
    }
    free(due);
    if (c->ids.count > 0)
        arm_tick(c, now_ms);
}

int64_t txn_next_deadline(const struct txn_coordinator *c)
{
    return c->next_tick_ms;
}

/* ---- verification ---- */

int16_t txn_verify(const struct txn_coordinator *c, struct slice transactional_id,
                   int64_t producer_id, int16_t producer_epoch, struct txn_partition partition)
{
    struct txn *t = NULL;
    int16_t err = producer_txn(c, transactional_id, producer_id, producer_epoch, &t);
    if (err != TXN_ERR_NONE)
        return err;
    if (t->meta.state != TXN_ONGOING || !has_all(t, &partition, 1))
        return TXN_ERR_INVALID_TXN_STATE;
    return TXN_ERR_NONE;
}

/* ---- inspection ---- */

int16_t txn_describe(const struct txn_coordinator *c, struct slice transactional_id,
                     struct txn_meta *out)
{
    int32_t partition;
    int16_t err = serving(c, transactional_id, &partition);
    if (err != TXN_ERR_NONE)
        return err;
    const struct txn *t = find(c, transactional_id);
    if (!t || t->fresh)
        return TXN_ERR_TRANSACTIONAL_ID_NOT_FOUND;
    *out = t->meta;
    return TXN_ERR_NONE;
}

void txn_each(const struct txn_coordinator *c, void (*fn)(void *arg, const struct txn_meta *m),
              void *arg)
{
    struct slice k;
    void *v;
    for (size_t i = 0; hmap_next(&c->ids, &i, &k, &v);) {
        const struct txn *t = v;
        if (!t->fresh && c->parts_state[t->partition] == PART_LOADED)
            fn(arg, &t->meta);
    }
}
