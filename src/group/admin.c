/*
 * Administrative group APIs: DescribeGroups, ListGroups and DeleteGroups. Deletion
 * takes an Empty group out of memory at once (so no new member can join the dying
 * group) and answers once the tombstones for its metadata and offsets are durable.
 */
#include "group/group_int.h"

#include <stdlib.h>
#include <string.h>

static const struct slice EMPTY = {(const uint8_t *)"", 0};

static struct slice cstr(const char *s)
{
    return (struct slice){(const uint8_t *)s, strlen(s)};
}

/* ---- DescribeGroups ---- */

static struct slice member_metadata_for(const struct grp_member *m, struct slice protocol)
{
    for (size_t i = 0; i < m->n_protocols; i++)
        if (slice_eq(grp__bs(m->protocols[i].name), protocol))
            return grp__bs(m->protocols[i].metadata);
    return EMPTY;
}

void grp_describe(struct grp_coordinator *c, int64_t now_ms, const struct grp_describe_req *req,
                  void *ctx)
{
    ASSERT(!c->in_callback);
    (void)now_ms;
    struct arena *a = &c->resp;
    struct grp_describe_group *out =
        arena_alloc(a, (req->n_groups ? req->n_groups : 1) * sizeof(*out));
    for (size_t i = 0; i < req->n_groups; i++) {
        struct grp_describe_group *d = &out[i];
        struct slice id = req->group_ids[i];
        d->group_id = id.ptr ? id : EMPTY;
        d->protocol_type = EMPTY;
        d->protocol = EMPTY;
        d->state = EMPTY;
        d->error = grp__validate_group(c, id, true);
        if (d->error)
            continue;
        struct grp_group *g = grp__get(c, id);
        if (!g) {
            d->state = cstr(grp_state_name(GRP_STATE_DEAD));
            continue;
        }
        d->state = cstr(grp_state_name(g->state));
        d->protocol_type = g->protocol_type.ptr ? grp__bs(g->protocol_type) : EMPTY;
        bool stable = g->state == GRP_STATE_STABLE;
        if (stable && g->protocol.ptr)
            d->protocol = grp__bs(g->protocol);
        struct grp_describe_member *ms =
            arena_alloc(a, (g->n_members ? g->n_members : 1) * sizeof(*ms));
        for (size_t k = 0; k < g->n_members; k++) {
            const struct grp_member *m = g->members[k];
            ms[k] = (struct grp_describe_member){
                .member_id = grp__bs(m->id),
                .group_instance_id = grp__bs(m->instance_id),
                .client_id = grp__bs(m->client_id),
                .client_host = grp__bs(m->client_host),
                .metadata = stable ? member_metadata_for(m, grp__bs(g->protocol)) : EMPTY,
                .assignment = stable && m->assignment.ptr ? grp__bs(m->assignment) : EMPTY,
            };
        }
        d->members = ms;
        d->n_members = g->n_members;
    }
    struct grp_describe_resp r = {out, req->n_groups};
    GRP_CALLBACK(c, on_describe_done, ctx, &r);
    arena_free(a);
}

/* ---- ListGroups ---- */

static int cmp_list(const void *a, const void *b)
{
    const struct grp_list_group *x = a, *y = b;
    size_t n = MIN(x->group_id.len, y->group_id.len);
    int r = n ? memcmp(x->group_id.ptr, y->group_id.ptr, n) : 0;
    if (r)
        return r;
    return (x->group_id.len > y->group_id.len) - (x->group_id.len < y->group_id.len);
}

void grp_list(struct grp_coordinator *c, int64_t now_ms, const struct grp_list_req *req, void *ctx)
{
    ASSERT(!c->in_callback);
    (void)now_ms;
    struct grp_list_resp r = {0};
    for (int32_t p = 0; p < c->cfg.offsets_num_partitions; p++)
        if (c->partitions[p] == GRP_PART_LOADING)
            r.error = GRP_ERR_COORDINATOR_LOAD_IN_PROGRESS;
    /* A filter naming no known state matches nothing, as in Kafka. */
    bool want[GRP_STATE_DEAD + 1] = {0};
    for (size_t i = 0; i < req->n_states_filter; i++) {
        int s = grp_state_parse(req->states_filter[i]);
        if (s >= 0)
            want[s] = true;
    }
    struct grp_list_group *gs =
        arena_alloc(&c->resp, (c->groups.count ? c->groups.count : 1) * sizeof(*gs));
    size_t n = 0;
    struct slice k;
    void *v;
    for (size_t it = 0; hmap_next(&c->groups, &it, &k, &v);) {
        struct grp_group *g = v;
        if (c->partitions[g->partition] != GRP_PART_OWNED)
            continue;
        if (req->n_states_filter > 0 && !want[g->state])
            continue;
        gs[n++] = (struct grp_list_group){
            .group_id = grp__bs(g->id),
            .protocol_type = g->protocol_type.ptr ? grp__bs(g->protocol_type) : EMPTY,
            .state = cstr(grp_state_name(g->state)),
        };
    }
    qsort(gs, n, sizeof(*gs), cmp_list);
    r.groups = gs;
    r.n_groups = n;
    GRP_CALLBACK(c, on_list_done, ctx, &r);
    arena_free(&c->resp);
}

/* ---- DeleteGroups ---- */

struct grp_delete_batch {
    void *ctx;
    struct arena arena;
    struct grp_delete_group_result *results;
    size_t n_results;
    size_t outstanding; /* appends not yet done */
};

static void delete_batch_reply(struct grp_coordinator *c, struct grp_delete_batch *b)
{
    struct grp_delete_groups_resp r = {b->results, b->n_results};
    GRP_CALLBACK(c, on_delete_groups_done, b->ctx, &r);
    arena_free(&b->arena);
    free(b);
}

/* Tombstones for every committed offset, every commit still in flight (its record
 * precedes ours in the log), and the group metadata. */
static void append_group_tombstones(struct grp_coordinator *c, struct grp_group *g,
                                    struct grp_pending_op *op)
{
    size_t cap = g->offsets.count;
    for (struct grp_pending_op *o = c->ops; o; o = o->next)
        if (o->kind == GRP_OP_COMMIT && o->group == g)
            cap += o->n_entries;
    struct slice *topics = xcalloc(cap ? cap : 1, sizeof(*topics));
    int32_t *partitions = xcalloc(cap ? cap : 1, sizeof(*partitions));
    size_t n = 0;
    struct slice k;
    void *v;
    for (size_t it = 0; hmap_next(&g->offsets, &it, &k, &v);) {
        const struct grp_offset_entry *e = v;
        topics[n] = grp__bs(e->topic);
        partitions[n++] = e->partition;
    }
    for (struct grp_pending_op *o = c->ops; o; o = o->next) {
        if (o->kind != GRP_OP_COMMIT || o->group != g)
            continue;
        for (size_t i = 0; i < o->n_entries; i++) {
            topics[n] = grp__bs(o->entries[i].topic);
            partitions[n++] = o->entries[i].partition;
        }
    }
    ASSERT(n == cap);
    grp__append_offset_tombstones(c, g, topics, partitions, n, true, op);
    free(partitions);
    free(topics);
}

void grp_delete_groups(struct grp_coordinator *c, int64_t now_ms,
                       const struct grp_delete_groups_req *req, void *ctx)
{
    ASSERT(!c->in_callback);
    (void)now_ms;
    struct grp_delete_batch *b = xcalloc(1, sizeof(*b));
    arena_init(&b->arena);
    b->ctx = ctx;
    b->n_results = req->n_groups;
    b->results = arena_alloc(&b->arena, (req->n_groups ? req->n_groups : 1) * sizeof(*b->results));
    struct grp_pending_op **ops = xcalloc(req->n_groups ? req->n_groups : 1, sizeof(*ops));
    size_t n_ops = 0;
    for (size_t i = 0; i < req->n_groups; i++) {
        struct slice id = req->group_ids[i];
        struct grp_delete_group_result *res = &b->results[i];
        res->group_id = id.ptr ? grp__arena_slice(&b->arena, id) : EMPTY;
        res->error = grp__validate_group(c, id, true);
        if (res->error)
            continue;
        struct grp_group *g = grp__get(c, id);
        if (!g || g->state == GRP_STATE_DEAD) {
            res->error = GRP_ERR_GROUP_ID_NOT_FOUND;
        } else if (g->state != GRP_STATE_EMPTY) {
            res->error = GRP_ERR_NON_EMPTY_GROUP;
        } else {
            struct grp_pending_op *op = grp__op_new(c, GRP_OP_DELETE_GROUPS, g, NULL);
            op->batch = b;
            op->batch_index = i;
            b->outstanding++;
            ops[n_ops++] = op;
            say_info("group", "deleting group %.*s (%zu committed offsets)", (int)g->id.len,
                     g->id.ptr, g->offsets.count);
            grp__remove_from_map(c, g); /* alive while op holds its ref */
        }
    }
    /* Appends are issued after all lookups so a repeated id in the request sees the
     * group already gone (GROUP_ID_NOT_FOUND) instead of deleting it twice. */
    for (size_t i = 0; i < n_ops; i++)
        append_group_tombstones(c, ops[i]->group, ops[i]);
    free(ops);
    if (b->outstanding == 0)
        delete_batch_reply(c, b);
}

void grp__delete_groups_done(struct grp_coordinator *c, struct grp_pending_op *op, int16_t error)
{
    struct grp_delete_batch *b = op->batch;
    if (error) {
        /* The group is already gone from memory; it would come back on reload. */
        say_warn("group", "failed to append deletion tombstones for group %.*s: error %d",
                 (int)op->group->id.len, op->group->id.ptr, error);
        b->results[op->batch_index].error = grp__map_append_error(error);
    }
    ASSERT(b->outstanding > 0);
    if (--b->outstanding == 0)
        delete_batch_reply(c, b);
}
