/*
 * Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete and the expiry of old
 * offsets (KIP-211). A commit is answered only after its records are durable in
 * __consumer_offsets; the in-memory offsets change at that moment, so a fetch never
 * returns an offset that a crash could take back.
 */
#include "group/group_int.h"

#include <stdlib.h>
#include <string.h>

static const struct slice EMPTY = {(const uint8_t *)"", 0};

struct slice grp__offset_key(struct buf *b, struct slice topic, int32_t partition)
{
    buf_reset(b);
    buf_put_i32(b, partition);
    buf_append(b, topic.ptr, topic.len);
    return (struct slice){b->data, b->len};
}

void grp__offset_entry_free(struct grp_offset_entry *e)
{
    grp__bytes_free(&e->topic);
    grp__bytes_free(&e->metadata);
    free(e);
}

void grp__offsets_clear(struct grp_group *g)
{
    struct slice k;
    void *v;
    for (size_t it = 0; hmap_next(&g->offsets, &it, &k, &v);)
        grp__offset_entry_free(v);
    hmap_free(&g->offsets);
    hmap_init(&g->offsets);
}

void grp__set_offset(struct grp_group *g, const struct grp_offset_entry *src)
{
    struct buf kb;
    buf_init(&kb);
    struct slice key = grp__offset_key(&kb, grp__bs(src->topic), src->partition);
    struct grp_offset_entry *e = hmap_get(&g->offsets, key);
    if (!e) {
        e = xcalloc(1, sizeof(*e));
        e->topic = grp__bytes_dup(grp__bs(src->topic).ptr ? grp__bs(src->topic) : EMPTY);
        e->partition = src->partition;
        hmap_put(&g->offsets, key, e);
    }
    e->offset = src->offset;
    e->leader_epoch = src->leader_epoch;
    grp__bytes_free(&e->metadata);
    e->metadata = grp__bytes_dup(grp__bs(src->metadata).ptr ? grp__bs(src->metadata) : EMPTY);
    e->commit_ts_ms = src->commit_ts_ms;
    e->expire_ts_ms = src->expire_ts_ms;
    buf_free(&kb);
}

static void remove_offset(struct grp_group *g, struct slice topic, int32_t partition)
{
    struct buf kb;
    buf_init(&kb);
    struct grp_offset_entry *e = hmap_remove(&g->offsets, grp__offset_key(&kb, topic, partition));
    if (e)
        grp__offset_entry_free(e);
    buf_free(&kb);
}

static struct grp_offset_entry *find_offset(const struct grp_group *g, struct buf *kb,
                                            struct slice topic, int32_t partition)
{
    return hmap_get(&g->offsets, grp__offset_key(kb, topic, partition));
}

/* ---- OffsetCommit ---- */

/* Kafka's ClassicGroup.validateOffsetCommit. Generation -1 marks a commit from outside
 * group management (a simple consumer, an admin client): an Empty group takes it
 * whatever member or instance id it carries, since there is no member to protect. */
static int16_t validate_commit(const struct grp_group *g, const struct grp_commit_req *req)
{
    if (g->state == GRP_STATE_DEAD)
        return GRP_ERR_COORDINATOR_NOT_AVAILABLE;
    if (req->generation_id < 0 && g->state == GRP_STATE_EMPTY)
        return GRP_ERR_NONE;
    if (req->generation_id >= 0 || req->member_id.len > 0 || req->group_instance_id.ptr) {
        if (req->group_instance_id.ptr) {
            const struct grp_member *s = grp__static_member(g, req->group_instance_id);
            if (!s)
                return GRP_ERR_UNKNOWN_MEMBER_ID;
            if (!slice_eq(grp__bs(s->id), req->member_id))
                return GRP_ERR_FENCED_INSTANCE_ID;
        }
        if (!grp__member(g, req->member_id))
            return GRP_ERR_UNKNOWN_MEMBER_ID;
        if (req->generation_id != g->generation)
            return GRP_ERR_ILLEGAL_GENERATION;
        return GRP_ERR_NONE;
    }
    /* A simple (non-member) commit is only allowed while nobody else owns the group. */
    return g->state == GRP_STATE_EMPTY ? GRP_ERR_NONE : GRP_ERR_UNKNOWN_MEMBER_ID;
}

static void reply_commit(struct grp_coordinator *c, void *ctx, struct grp_commit_resp_topic *topics,
                         size_t n_topics)
{
    struct grp_commit_resp r = {topics, n_topics};
    GRP_CALLBACK(c, on_commit_done, ctx, &r);
}

/* Whether the commit has a partition to store (one not refused for its metadata). */
static bool stores_something(const struct grp_coordinator *c, const struct grp_commit_req *req)
{
    for (size_t t = 0; t < req->n_topics; t++)
        for (size_t i = 0; i < req->topics[t].n_partitions; i++)
            if (req->topics[t].partitions[i].metadata.len <=
                (size_t)c->cfg.max_offset_metadata_bytes)
                return true;
    return false;
}

static void commit_impl(struct grp_coordinator *c, int64_t now_ms, const struct grp_commit_req *req,
                        int64_t txn_producer_id, int16_t txn_producer_epoch, void *ctx)
{
    ASSERT(!c->in_callback);
    int16_t err = grp__validate_group(c, req->group_id, true);
    struct grp_group *g = err ? NULL : grp__get(c, req->group_id);
    if (!err && !g) {
        /* No group: a simple consumer using Kafka only for offsets, or a member of a
         * group that no longer exists (which gets no group made for it). Kafka makes
         * the simple consumer's group in the write that stores its offsets, so a
         * commit that stores nothing (all metadata too large) makes none either; it
         * needs no validation, as a new group would be Empty, which takes every
         * commit with generation -1. */
        if (req->generation_id >= 0)
            err = req->missing_group_not_found ? GRP_ERR_GROUP_ID_NOT_FOUND
                                               : GRP_ERR_ILLEGAL_GENERATION;
        else if (stores_something(c, req))
            g = grp__create(c, req->group_id, now_ms);
    }
    if (!err && g)
        err = validate_commit(g, req);
    if (!err && g) {
        switch (g->state) {
        case GRP_STATE_EMPTY: break;
        case GRP_STATE_STABLE:
        case GRP_STATE_PREPARING_REBALANCE: {
            /* Commits count as liveness; during PreparingRebalance the heartbeat tells the
             * member to rejoin. */
            struct grp_member *m = grp__member(g, req->member_id);
            if (m)
                grp__schedule_heartbeat(c, m, now_ms);
            break;
        }
        default: err = GRP_ERR_REBALANCE_IN_PROGRESS; break;
        }
    }

    struct grp_pending_op *op = grp__op_new(c, GRP_OP_COMMIT, err ? NULL : g, ctx);
    op->txn_producer_id = txn_producer_id;
    op->txn_producer_epoch = txn_producer_epoch;
    struct arena *a = &op->arena;
    size_t total = 0;
    for (size_t t = 0; t < req->n_topics; t++)
        total += req->topics[t].n_partitions;
    op->topics = arena_alloc(a, (req->n_topics ? req->n_topics : 1) * sizeof(*op->topics));
    op->n_topics = req->n_topics;
    op->entries = arena_alloc(a, (total ? total : 1) * sizeof(*op->entries));
    op->entry_error = arena_alloc(a, (total ? total : 1) * sizeof(*op->entry_error));
    for (size_t t = 0; t < req->n_topics; t++) {
        const struct grp_commit_topic *rt = &req->topics[t];
        struct grp_commit_resp_partition *ps =
            arena_alloc(a, (rt->n_partitions ? rt->n_partitions : 1) * sizeof(*ps));
        op->topics[t].name = grp__arena_slice(a, rt->name.ptr ? rt->name : EMPTY);
        op->topics[t].partitions = ps;
        op->topics[t].n_partitions = rt->n_partitions;
        for (size_t i = 0; i < rt->n_partitions; i++) {
            const struct grp_commit_partition *rp = &rt->partitions[i];
            ps[i].partition = rp->partition;
            ps[i].error = err;
            if (err)
                continue;
            if (rp->metadata.len > (size_t)c->cfg.max_offset_metadata_bytes) {
                ps[i].error = GRP_ERR_OFFSET_METADATA_TOO_LARGE;
                continue;
            }
            struct grp_offset_entry *e = &op->entries[op->n_entries];
            op->entry_error[op->n_entries++] = &ps[i].error;
            e->topic.ptr = (uint8_t *)op->topics[t].name.ptr;
            e->topic.len = op->topics[t].name.len;
            e->partition = rp->partition;
            e->offset = rp->offset;
            e->leader_epoch = rp->leader_epoch;
            struct slice md = grp__arena_slice(a, rp->metadata.ptr ? rp->metadata : EMPTY);
            e->metadata.ptr = (uint8_t *)md.ptr;
            e->metadata.len = md.len;
            e->commit_ts_ms = now_ms;
            e->expire_ts_ms = -1;
        }
    }
    ASSERT(g || op->n_entries == 0);
    if (op->n_entries == 0) {
        reply_commit(c, ctx, op->topics, op->n_topics);
        grp__op_free(c, op);
        return;
    }
    struct grp_record *recs = arena_alloc(a, op->n_entries * sizeof(*recs));
    struct buf b;
    buf_init(&b);
    size_t *cut = arena_alloc(a, (2 * op->n_entries + 1) * sizeof(*cut));
    for (size_t i = 0; i < op->n_entries; i++) {
        const struct grp_offset_entry *e = &op->entries[i];
        cut[2 * i] = b.len;
        grp_offset_key_encode(&b, grp__bs(g->id), grp__bs(e->topic), e->partition);
        cut[2 * i + 1] = b.len;
        struct grp_offset_value v = {e->offset, e->leader_epoch, grp__bs(e->metadata),
                                     e->commit_ts_ms, -1};
        grp_offset_value_encode(&b, &v);
    }
    cut[2 * op->n_entries] = b.len;
    for (size_t i = 0; i < op->n_entries; i++) {
        recs[i].key = (struct slice){b.data + cut[2 * i], cut[2 * i + 1] - cut[2 * i]};
        recs[i].value = (struct slice){b.data + cut[2 * i + 1], cut[2 * i + 2] - cut[2 * i + 1]};
    }
    grp__append_records(c, g->partition, recs, op->n_entries, op);
    buf_free(&b);
}

void grp_commit(struct grp_coordinator *c, int64_t now_ms, const struct grp_commit_req *req,
                void *ctx)
{
    commit_impl(c, now_ms, req, -1, -1, ctx);
}

void grp_txn_commit(struct grp_coordinator *c, int64_t now_ms, const struct grp_commit_req *req,
                    int64_t producer_id, int16_t producer_epoch, void *ctx)
{
    ASSERT(producer_id >= 0 && c->cfg.append_txn);
    commit_impl(c, now_ms, req, producer_id, producer_epoch, ctx);
}

/* ---- offsets pending in transactions ---- */

static bool same_partition(const struct grp_offset_entry *a, const struct grp_offset_entry *b)
{
    return a->partition == b->partition && slice_eq(grp__bs(a->topic), grp__bs(b->topic));
}

/* Records src (copied) as pending in producer_id's transaction; a later commit of the
 * same partition in the same transaction replaces it. */
void grp__txn_offset_put(struct grp_group *g, int64_t producer_id,
                         const struct grp_offset_entry *src)
{
    struct grp_offset_entry *e = xcalloc(1, sizeof *e);
    e->topic = grp__bytes_dup(grp__bs(src->topic).ptr ? grp__bs(src->topic) : EMPTY);
    e->partition = src->partition;
    e->offset = src->offset;
    e->leader_epoch = src->leader_epoch;
    e->metadata = grp__bytes_dup(grp__bs(src->metadata).ptr ? grp__bs(src->metadata) : EMPTY);
    e->commit_ts_ms = src->commit_ts_ms;
    e->expire_ts_ms = src->expire_ts_ms;
    for (size_t i = 0; i < g->n_txn_offsets; i++) {
        struct grp_txn_offset *t = &g->txn_offsets[i];
        if (t->producer_id == producer_id && same_partition(t->e, e)) {
            grp__offset_entry_free(t->e);
            t->e = e;
            return;
        }
    }
    if (g->n_txn_offsets == g->cap_txn_offsets) {
        g->cap_txn_offsets = g->cap_txn_offsets ? 2 * g->cap_txn_offsets : 4;
        g->txn_offsets = xrealloc(g->txn_offsets, g->cap_txn_offsets * sizeof *g->txn_offsets);
    }
    g->txn_offsets[g->n_txn_offsets++] = (struct grp_txn_offset){producer_id, e};
}

static void txn_offsets_complete(struct grp_group *g, int64_t producer_id, bool commit)
{
    size_t keep = 0;
    for (size_t i = 0; i < g->n_txn_offsets; i++) {
        struct grp_txn_offset *t = &g->txn_offsets[i];
        if (t->producer_id != producer_id) {
            g->txn_offsets[keep++] = *t;
            continue;
        }
        if (commit)
            grp__set_offset(g, t->e);
        grp__offset_entry_free(t->e);
    }
    g->n_txn_offsets = keep;
}

static bool txn_offset_pending(const struct grp_group *g, struct slice topic, int32_t partition)
{
    for (size_t i = 0; i < g->n_txn_offsets; i++)
        if (g->txn_offsets[i].e->partition == partition &&
            slice_eq(grp__bs(g->txn_offsets[i].e->topic), topic))
            return true;
    return false;
}

void grp__txn_offsets_clear(struct grp_group *g)
{
    for (size_t i = 0; i < g->n_txn_offsets; i++)
        grp__offset_entry_free(g->txn_offsets[i].e);
    free(g->txn_offsets);
    g->txn_offsets = NULL;
    g->n_txn_offsets = g->cap_txn_offsets = 0;
}

void grp_txn_marker(struct grp_coordinator *c, int32_t partition, int64_t producer_id, bool commit)
{
    ASSERT(!c->in_callback);
    struct slice k;
    void *v;
    for (size_t it = 0; hmap_next(&c->groups, &it, &k, &v);) {
        struct grp_group *g = v;
        if (g->partition == partition && g->n_txn_offsets > 0)
            txn_offsets_complete(g, producer_id, commit);
    }
}

void grp__commit_done(struct grp_coordinator *c, struct grp_pending_op *op, int16_t error)
{
    int16_t mapped = error ? grp__map_append_error(error) : GRP_ERR_NONE;
    struct grp_group *g = op->group;
    for (size_t i = 0; i < op->n_entries; i++) {
        *op->entry_error[i] = mapped;
        /* A group deleted or unloaded meanwhile keeps nothing in memory; a deletion
         * wrote tombstones for these partitions after this commit's records. */
        if (!mapped && g && !g->removed && op->txn_producer_id >= 0)
            grp__txn_offset_put(g, op->txn_producer_id, &op->entries[i]);
        else if (!mapped && g && !g->removed)
            grp__set_offset(g, &op->entries[i]);
    }
    if (error)
        say_warn("group", "offset commit for group %.*s failed to append: error %d",
                 g ? (int)g->id.len : 0, g ? (const char *)g->id.ptr : "", error);
    reply_commit(c, op->ctx, op->topics, op->n_topics);
}

/* ---- OffsetFetch ---- */

static int cmp_entry(const void *a, const void *b)
{
    const struct grp_offset_entry *x = *(const struct grp_offset_entry *const *)a;
    const struct grp_offset_entry *y = *(const struct grp_offset_entry *const *)b;
    size_t n = MIN(x->topic.len, y->topic.len);
    int r = n ? memcmp(x->topic.ptr, y->topic.ptr, n) : 0;
    if (r)
        return r;
    if (x->topic.len != y->topic.len)
        return x->topic.len < y->topic.len ? -1 : 1;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

static void fetch_one(struct grp_coordinator *c, const struct grp_fetch_group *rg,
                      bool require_stable, struct grp_fetch_resp_group *out)
{
    struct arena *a = &c->resp;
    out->group_id = rg->group_id.ptr ? rg->group_id : EMPTY;
    out->error = grp__validate_group(c, rg->group_id, true);
    struct grp_group *g = out->error ? NULL : grp__get(c, rg->group_id);
    if (g && g->state == GRP_STATE_DEAD)
        g = NULL;
    if (!rg->topics) {
        if (!g || out->error)
            return;
        size_t n = g->offsets.count;
        if (n == 0)
            return;
        struct grp_offset_entry **all = arena_alloc(a, n * sizeof(*all));
        size_t k = 0;
        struct slice key;
        void *v;
        for (size_t it = 0; hmap_next(&g->offsets, &it, &key, &v);)
            all[k++] = v;
        qsort(all, n, sizeof(*all), cmp_entry);
        struct grp_fetch_resp_topic *topics = arena_alloc(a, n * sizeof(*topics));
        struct grp_fetch_resp_partition *parts = arena_alloc(a, n * sizeof(*parts));
        size_t nt = 0;
        for (size_t i = 0; i < n; i++) {
            const struct grp_offset_entry *e = all[i];
            if (nt == 0 || !slice_eq(topics[nt - 1].name, grp__bs(e->topic))) {
                topics[nt].name = grp__bs(e->topic);
                topics[nt].partitions = &parts[i];
                topics[nt].n_partitions = 0;
                nt++;
            }
            parts[i] = (struct grp_fetch_resp_partition){e->partition, e->offset, e->leader_epoch,
                                                         grp__bs(e->metadata), GRP_ERR_NONE};
            if (require_stable && txn_offset_pending(g, grp__bs(e->topic), e->partition))
                parts[i] = (struct grp_fetch_resp_partition){e->partition, -1, -1, EMPTY,
                                                             GRP_ERR_UNSTABLE_OFFSET_COMMIT};
            topics[nt - 1].n_partitions++;
        }
        out->topics = topics;
        out->n_topics = nt;
        return;
    }
    struct grp_fetch_resp_topic *topics =
        arena_alloc(a, (rg->n_topics ? rg->n_topics : 1) * sizeof(*topics));
    struct buf kb;
    buf_init(&kb);
    for (size_t t = 0; t < rg->n_topics; t++) {
        const struct grp_fetch_topic *rt = &rg->topics[t];
        struct grp_fetch_resp_partition *ps =
            arena_alloc(a, (rt->n_partitions ? rt->n_partitions : 1) * sizeof(*ps));
        topics[t].name = rt->name.ptr ? rt->name : EMPTY;
        topics[t].partitions = ps;
        topics[t].n_partitions = rt->n_partitions;
        for (size_t i = 0; i < rt->n_partitions; i++) {
            const struct grp_offset_entry *e =
                g ? find_offset(g, &kb, topics[t].name, rt->partitions[i]) : NULL;
            ps[i] =
                e ? (struct grp_fetch_resp_partition){e->partition, e->offset, e->leader_epoch,
                                                      grp__bs(e->metadata), out->error}
                  : (struct grp_fetch_resp_partition){rt->partitions[i], -1, -1, EMPTY, out->error};
            if (g && require_stable && txn_offset_pending(g, topics[t].name, rt->partitions[i]))
                ps[i] = (struct grp_fetch_resp_partition){rt->partitions[i], -1, -1, EMPTY,
                                                          GRP_ERR_UNSTABLE_OFFSET_COMMIT};
        }
    }
    buf_free(&kb);
    out->topics = topics;
    out->n_topics = rg->n_topics;
}

void grp_fetch(struct grp_coordinator *c, int64_t now_ms, const struct grp_fetch_req *req,
               void *ctx)
{
    ASSERT(!c->in_callback);
    (void)now_ms;
    struct grp_fetch_resp_group *groups =
        arena_alloc(&c->resp, (req->n_groups ? req->n_groups : 1) * sizeof(*groups));
    for (size_t i = 0; i < req->n_groups; i++)
        fetch_one(c, &req->groups[i], req->require_stable, &groups[i]);
    struct grp_fetch_resp r = {groups, req->n_groups};
    GRP_CALLBACK(c, on_fetch_done, ctx, &r);
    arena_free(&c->resp);
}

/* ---- OffsetDelete ---- */

static bool subscribed_to(const struct grp_group *g, struct slice topic)
{
    if (!g->subscriptions_known)
        return true; /* cannot tell: protect the offsets */
    for (size_t i = 0; i < g->n_subscribed_topics; i++)
        if (slice_eq(grp__bs(g->subscribed_topics[i]), topic))
            return true;
    return false;
}

static void reply_offset_delete(struct grp_coordinator *c, void *ctx, int16_t error,
                                struct grp_commit_resp_topic *topics, size_t n_topics)
{
    struct grp_offset_delete_resp r = {error, topics, n_topics};
    GRP_CALLBACK(c, on_offset_delete_done, ctx, &r);
}

/* One batch of tombstones; see group_int.h. */
void grp__append_offset_tombstones(struct grp_coordinator *c, struct grp_group *g,
                                   const struct slice *topics, const int32_t *partitions, size_t n,
                                   bool with_group_tombstone, struct grp_pending_op *op)
{
    struct buf b;
    buf_init(&b);
    size_t nrec = n + (with_group_tombstone ? 1 : 0);
    size_t *cut = xcalloc(nrec + 1, sizeof(*cut));
    for (size_t i = 0; i < n; i++) {
        cut[i] = b.len;
        grp_offset_key_encode(&b, grp__bs(g->id), topics[i], partitions[i]);
    }
    if (with_group_tombstone) {
        cut[n] = b.len;
        grp_group_key_encode(&b, grp__bs(g->id));
    }
    cut[nrec] = b.len;
    struct grp_record *recs = xcalloc(nrec ? nrec : 1, sizeof(*recs));
    for (size_t i = 0; i < nrec; i++)
        recs[i] = (struct grp_record){{b.data + cut[i], cut[i + 1] - cut[i]}, SLICE_NULL};
    grp__append_records(c, g->partition, recs, nrec, op);
    free(recs);
    free(cut);
    buf_free(&b);
}

void grp_offset_delete(struct grp_coordinator *c, int64_t now_ms,
                       const struct grp_offset_delete_req *req, void *ctx)
{
    ASSERT(!c->in_callback);
    (void)now_ms;
    int16_t err = grp__validate_group(c, req->group_id, false);
    struct grp_group *g = err ? NULL : grp__get(c, req->group_id);
    if (!err && (!g || g->state == GRP_STATE_DEAD))
        err = GRP_ERR_GROUP_ID_NOT_FOUND;
    bool check_subscriptions = false;
    if (!err && g->state != GRP_STATE_EMPTY) {
        if (slice_eq_cstr(grp__bs(g->protocol_type), "consumer"))
            check_subscriptions = true;
        else
            err = GRP_ERR_NON_EMPTY_GROUP;
    }
    if (err) {
        reply_offset_delete(c, ctx, err, NULL, 0);
        return;
    }
    struct grp_pending_op *op = grp__op_new(c, GRP_OP_OFFSET_DELETE, g, ctx);
    struct arena *a = &op->arena;
    size_t total = 0;
    for (size_t t = 0; t < req->n_topics; t++)
        total += req->topics[t].n_partitions;
    op->topics = arena_alloc(a, (req->n_topics ? req->n_topics : 1) * sizeof(*op->topics));
    op->n_topics = req->n_topics;
    op->entry_error = arena_alloc(a, (total ? total : 1) * sizeof(*op->entry_error));
    struct slice *del_topics = arena_alloc(a, (total ? total : 1) * sizeof(*del_topics));
    int32_t *del_parts = arena_alloc(a, (total ? total : 1) * sizeof(*del_parts));
    size_t n_del = 0;
    struct buf kb;
    buf_init(&kb);
    for (size_t t = 0; t < req->n_topics; t++) {
        const struct grp_fetch_topic *rt = &req->topics[t];
        struct slice name = grp__arena_slice(a, rt->name.ptr ? rt->name : EMPTY);
        struct grp_commit_resp_partition *ps =
            arena_alloc(a, (rt->n_partitions ? rt->n_partitions : 1) * sizeof(*ps));
        op->topics[t] = (struct grp_commit_resp_topic){name, ps, rt->n_partitions};
        bool used = check_subscriptions && subscribed_to(g, name);
        for (size_t i = 0; i < rt->n_partitions; i++) {
            ps[i].partition = rt->partitions[i];
            ps[i].error = used ? GRP_ERR_GROUP_SUBSCRIBED_TO_TOPIC : GRP_ERR_NONE;
            if (used)
                continue;
            op->entry_error[op->n_entries++] = &ps[i].error;
            if (find_offset(g, &kb, name, rt->partitions[i])) {
                remove_offset(g, name, rt->partitions[i]);
                del_topics[n_del] = name;
                del_parts[n_del++] = rt->partitions[i];
            }
        }
    }
    buf_free(&kb);
    if (n_del == 0) {
        reply_offset_delete(c, ctx, GRP_ERR_NONE, op->topics, op->n_topics);
        grp__op_free(c, op);
        return;
    }
    grp__append_offset_tombstones(c, g, del_topics, del_parts, n_del, false, op);
}

void grp__offset_delete_done(struct grp_coordinator *c, struct grp_pending_op *op, int16_t error)
{
    int16_t mapped = error ? grp__map_append_error(error) : GRP_ERR_NONE;
    for (size_t i = 0; i < op->n_entries; i++)
        *op->entry_error[i] = mapped;
    reply_offset_delete(c, op->ctx, GRP_ERR_NONE, op->topics, op->n_topics);
}

/* ---- expiry (KIP-211) ----
 * An Empty group's offsets expire offsets.retention.ms after the group became Empty
 * (or after their commit if that time is unknown); a Stable consumer group's offsets of
 * topics nobody subscribes to expire that long after their commit; offsets of simple
 * consumers (no protocol type) likewise. An Empty group left without offsets is
 * deleted. Groups with appends in flight wait for the next check, so no tombstone can
 * overtake a commit. */
void grp__expire_offsets(struct grp_coordinator *c, int64_t now_ms)
{
    int64_t retention = c->cfg.offsets_retention_ms;
    struct slice k;
    void *v;
    for (size_t it = 0; hmap_next(&c->groups, &it, &k, &v);) {
        struct grp_group *g = v;
        if (c->partitions[g->partition] != GRP_PART_OWNED || g->refs > 0)
            continue;
        enum { NONE, FROM_STATE, FROM_COMMIT, UNSUBSCRIBED } rule = NONE;
        if (g->protocol_type.ptr && g->state == GRP_STATE_EMPTY)
            rule = FROM_STATE;
        else if (slice_eq_cstr(grp__bs(g->protocol_type), "consumer") && g->subscriptions_known &&
                 g->state == GRP_STATE_STABLE)
            rule = UNSUBSCRIBED;
        else if (!g->protocol_type.ptr)
            rule = FROM_COMMIT;
        size_t n = g->offsets.count;
        struct slice *topics = xcalloc(n ? n : 1, sizeof(*topics));
        int32_t *parts = xcalloc(n ? n : 1, sizeof(*parts));
        size_t n_gone = 0;
        struct slice ok;
        void *ov;
        for (size_t oit = 0; rule != NONE && hmap_next(&g->offsets, &oit, &ok, &ov);) {
            struct grp_offset_entry *e = ov;
            if (rule == UNSUBSCRIBED && subscribed_to(g, grp__bs(e->topic)))
                continue;
            bool expired;
            if (e->expire_ts_ms >= 0) {
                expired = now_ms >= e->expire_ts_ms;
            } else {
                int64_t base =
                    rule == FROM_STATE && g->state_ts_ms >= 0 ? g->state_ts_ms : e->commit_ts_ms;
                expired = now_ms - base >= retention;
            }
            if (expired) {
                topics[n_gone] = grp__bs(e->topic);
                parts[n_gone++] = e->partition;
            }
        }
        bool drop_group = g->state == GRP_STATE_EMPTY && n_gone == g->offsets.count;
        if (n_gone > 0 || drop_group) {
            say_info("group", "expiring %zu offsets of group %.*s%s", n_gone, (int)g->id.len,
                     g->id.ptr, drop_group ? "; group is empty and is removed" : "");
            grp__append_offset_tombstones(c, g, topics, parts, n_gone, drop_group,
                                          grp__op_new(c, GRP_OP_TOMBSTONES, NULL, NULL));
            for (size_t i = 0; i < n_gone; i++)
                remove_offset(g, topics[i], parts[i]); /* frees the bytes of topics[i] */
        }
        free(topics);
        free(parts);
        if (drop_group)
            grp__remove_from_map(c, g);
    }
}

/* A deleted topic's committed offsets go too (Kafka's onPartitionsDeleted): otherwise a
 * consumer of a topic re-created under the same name would start at the old offsets and
 * silently skip records. A commit still in flight for the topic can put its offset back
 * in memory; its record precedes the tombstones in the log, so a restart drops it. */
void grp_topic_deleted(struct grp_coordinator *c, int64_t now_ms, struct slice topic)
{
    ASSERT(!c->in_callback);
    (void)now_ms;
    struct slice k;
    void *v;
    for (size_t it = 0; hmap_next(&c->groups, &it, &k, &v);) {
        struct grp_group *g = v;
        if (c->partitions[g->partition] != GRP_PART_OWNED)
            continue;
        size_t n = g->offsets.count;
        struct slice *topics = xcalloc(n ? n : 1, sizeof(*topics));
        int32_t *parts = xcalloc(n ? n : 1, sizeof(*parts));
        size_t n_gone = 0;
        struct slice ok;
        void *ov;
        for (size_t oit = 0; hmap_next(&g->offsets, &oit, &ok, &ov);) {
            struct grp_offset_entry *e = ov;
            if (slice_eq(grp__bs(e->topic), topic)) {
                topics[n_gone] = grp__bs(e->topic);
                parts[n_gone++] = e->partition;
            }
        }
        if (n_gone > 0) {
            say_info("group", "removing %zu offsets of deleted topic %.*s from group %.*s", n_gone,
                     (int)topic.len, topic.ptr, (int)g->id.len, g->id.ptr);
            grp__append_offset_tombstones(c, g, topics, parts, n_gone, false,
                                          grp__op_new(c, GRP_OP_TOMBSTONES, NULL, NULL));
            for (size_t i = 0; i < n_gone; i++)
                remove_offset(g, topics[i], parts[i]);
        }
        free(topics);
        free(parts);
    }
}
