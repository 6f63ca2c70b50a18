/*
 * The membership APIs of the group coordinator: JoinGroup (with the MEMBER_ID_REQUIRED
 * handshake, protocol checks, group.max.size, and static members taking over their
 * old place), SyncGroup, Heartbeat and LeaveGroup. The state machine they drive lives
 * in coordinator.c.
 */
#include "group/group_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static const struct slice EMPTY = {(const uint8_t *)"", 0};

/* ---- JoinGroup ---- */

static struct grp_bytes new_member_id(struct grp_coordinator *c, struct slice prefix)
{
    /* Kafka uses prefix + "-" + a random UUID; ours is derived from the configured seed
     * (unique per process start) and a counter, so tests are deterministic. */
    uint64_t x = c->cfg.member_id_seed + 0x9E3779B97F4A7C15ULL * ++c->member_id_counter;
    uint64_t z[2];
    for (int k = 0; k < 2; k++) {
        x += 0x9E3779B97F4A7C15ULL;
        uint64_t y = x;
        y = (y ^ (y >> 30)) * 0xBF58476D1CE4E5B9ULL;
        y = (y ^ (y >> 27)) * 0x94D049BB133111EBULL;
        z[k] = y ^ (y >> 31);
    }
    char tail[40];
    int n = snprintf(tail, sizeof(tail), "-%08x-%04x-%04x-%04x-%012llx", (unsigned)(z[0] >> 32),
                     (unsigned)(z[0] >> 16) & 0xFFFF, (unsigned)z[0] & 0xFFFF,
                     (unsigned)(z[1] >> 48), (unsigned long long)(z[1] & 0xFFFFFFFFFFFFULL));
    ASSERT(n > 0 && (size_t)n < sizeof(tail));
    size_t plen = MIN(prefix.len, (size_t)255);
    struct grp_bytes b = {xmalloc(plen + (size_t)n), plen + (size_t)n};
    if (plen)
        memcpy(b.ptr, prefix.ptr, plen);
    memcpy(b.ptr + plen, tail, (size_t)n);
    return b;
}

static void member_set_join(struct grp_group *g, struct grp_member *m, void *ctx)
{
    ASSERT(!m->awaiting_join);
    m->awaiting_join = true;
    m->join_ctx = ctx;
    g->n_awaiting_join++;
}

static void add_member_and_rebalance(struct grp_coordinator *c, struct grp_group *g,
                                     struct grp_bytes id /* transferred */,
                                     const struct grp_join_req *req, void *ctx, int64_t now_ms)
{
    struct grp_member *m = grp__member_new(c);
    m->id = id;
    m->instance_id = grp__bytes_dup(req->group_instance_id);
    m->client_id = grp__bytes_dup(req->client_id.ptr ? req->client_id : EMPTY);
    m->client_host = grp__bytes_dup(req->client_host.ptr ? req->client_host : EMPTY);
    grp__set_protocols(m, req);
    m->assignment = grp__bytes_dup(EMPTY);
    m->is_new = true;
    if (g->state == GRP_STATE_PREPARING_REBALANCE && g->generation == 0)
        g->new_member_added = true;
    if (g->n_members == 0)
        grp__bytes_set(&g->protocol_type, req->protocol_type);
    if (g->n_members == g->cap_members) {
        g->cap_members = g->cap_members ? 2 * g->cap_members : 4;
        g->members = xrealloc(g->members, g->cap_members * sizeof(g->members[0]));
    }
    g->members[g->n_members++] = m;
    if (!g->leader.ptr)
        grp__bytes_set(&g->leader, grp__bs(m->id));
    member_set_join(g, m, ctx);
    /* A new member cannot heartbeat until its JoinGroup returns; expire the join if
     * the client went away (Kafka's NewMemberJoinTimeoutMs). */
    m->heartbeat_deadline_ms = now_ms + GRP_NEW_MEMBER_JOIN_TIMEOUT_MS;
    grp__note_deadline(c, m->heartbeat_deadline_ms);
    grp__maybe_prepare_rebalance(c, g, now_ms);
}

static void update_member_and_rebalance(struct grp_coordinator *c, struct grp_group *g,
                                        struct grp_member *m, const struct grp_join_req *req,
                                        void *ctx, int64_t now_ms)
{
    /* A duplicate JoinGroup replaces the waiting one, which is answered now. */
    grp__member_join_error(c, g, m, grp__bs(m->id), GRP_ERR_REBALANCE_IN_PROGRESS);
    grp__set_protocols(m, req);
    member_set_join(g, m, ctx);
    grp__maybe_prepare_rebalance(c, g, now_ms);
}

/* A static member (known instance id) rejoins with an unknown member id, e.g. after a
 * restart: it takes over the old member's place. In a Stable group whose protocol would
 * not change this needs no rebalance: persist the new member id, then answer with the
 * current generation so the SyncGroup returns the old assignment. */
static void update_static_member(struct grp_coordinator *c, struct grp_group *g,
                                 struct grp_member *m, struct grp_bytes new_id /* transferred */,
                                 const struct grp_join_req *req, void *ctx, int64_t now_ms)
{
    struct slice old_id = grp__bs(m->id);
    say_info("group",
             "static member %.*s of group %.*s rejoined with a new member id; "
             "replacing member %.*s in state %s",
             (int)req->group_instance_id.len, req->group_instance_id.ptr, (int)g->id.len, g->id.ptr,
             (int)old_id.len, old_id.ptr, grp_state_name(g->state));
    grp__member_join_error(c, g, m, old_id, GRP_ERR_FENCED_INSTANCE_ID);
    grp__complete_sync(c, g, m, GRP_ERR_FENCED_INSTANCE_ID);
    struct grp_pending_op *op = NULL;
    if (g->state == GRP_STATE_STABLE) {
        op = grp__op_new(c, GRP_OP_STATIC_STORE, g, NULL);
        op->old_member_id.ptr = arena_memdup(&op->arena, old_id.ptr, old_id.len ? old_id.len : 1);
        op->old_member_id.len = old_id.len;
        op->new_member_id.ptr = arena_memdup(&op->arena, new_id.ptr, new_id.len ? new_id.len : 1);
        op->new_member_id.len = new_id.len;
    }
    if (grp__is_leader(g, old_id))
        grp__bytes_set(&g->leader, grp__bs(new_id));
    grp__bytes_free(&m->id);
    m->id = new_id;
    grp__schedule_heartbeat(c, m, now_ms);
    struct grp_bytes selected = grp__bytes_dup(grp__bs(g->protocol));
    grp__set_protocols(m, req);
    member_set_join(g, m, ctx);
    switch (g->state) {
    case GRP_STATE_STABLE:
        if (slice_eq(grp__select_protocol(g), grp__bs(selected))) {
            grp__store_group(c, g, op, NULL, now_ms);
        } else {
            op->ctx = NULL;
            grp__op_free(c, op);
            grp__maybe_prepare_rebalance(c, g, now_ms);
        }
        break;
    case GRP_STATE_COMPLETING_REBALANCE:
        /* The leader may already assign to the old id: rebalance. */
        grp__prepare_rebalance(c, g, now_ms);
        break;
    case GRP_STATE_PREPARING_REBALANCE: grp__maybe_complete_join(c, g, now_ms); break;
    default: ASSERT(!"static member in an Empty or Dead group");
    }
    grp__bytes_free(&selected);
}

void grp__static_store_done(struct grp_coordinator *c, struct grp_pending_op *op, int16_t error,
                            int64_t now_ms)
{
    (void)now_ms;
    struct grp_group *g = op->group;
    if (g->removed)
        return; /* its waiters were answered when the group went away */
    struct grp_member *m = grp__member(g, op->new_member_id);
    if (!m)
        return;
    if (error) {
        /* Kafka reverts to the old member id so memory matches the log. */
        say_warn("group", "failed to persist static member replacement in group %.*s: error %d",
                 (int)g->id.len, g->id.ptr, error);
        grp__member_join_error(c, g, m, op->new_member_id, grp__map_append_error(error));
        if (g->state == GRP_STATE_STABLE) {
            if (grp__is_leader(g, op->new_member_id))
                grp__bytes_set(&g->leader, op->old_member_id);
            grp__bytes_set(&m->id, op->old_member_id);
        }
        return;
    }
    if (!m->awaiting_join || g->state != GRP_STATE_STABLE)
        return;
    /* KIP-814: a static leader rejoining a stable group learns it is leader but need
     * not assign (skip_assignment); others get the current leader. */
    grp__complete_join_ok(c, g, m, grp__is_leader(g, grp__bs(m->id)));
}

static bool accept_joining_member(const struct grp_coordinator *c, const struct grp_group *g,
                                  struct slice member_id)
{
    size_t max = (size_t)c->cfg.max_group_size;
    struct grp_member *m = member_id.len ? grp__member(g, member_id) : NULL;
    switch (g->state) {
    case GRP_STATE_EMPTY:
    case GRP_STATE_DEAD: return true;
    case GRP_STATE_PREPARING_REBALANCE: return (m && m->awaiting_join) || g->n_awaiting_join < max;
    default: return m || g->n_members < max;
    }
}

static bool protocols_within_bounds(const struct grp_coordinator *c, const struct grp_join_req *req)
{
    if (req->n_protocols > GRP_MAX_PROTOCOLS_PER_MEMBER)
        return false;
    size_t total = 0;
    for (size_t i = 0; i < req->n_protocols; i++)
        total += req->protocols[i].metadata.len + req->protocols[i].name.len;
    return total <= (size_t)c->cfg.max_metadata_bytes;
}

/* Whether the member metadata of every group stays within the broker-wide budget once
 * this join's protocols replace the joining member's current ones. A bound on memory,
 * not on any one group: 2,000 joins of 1 MB each from connections that then closed
 * held 3.9 GB before it. */
static bool within_member_budget(const struct grp_coordinator *c, const struct grp_group *g,
                                 const struct grp_join_req *req)
{
    size_t incoming = 0, replaced = 0;
    for (size_t i = 0; i < req->n_protocols; i++)
        incoming += req->protocols[i].metadata.len + req->protocols[i].name.len;
    const struct grp_member *m = g && req->member_id.len ? grp__member(g, req->member_id) : NULL;
    for (size_t i = 0; m && i < m->n_protocols; i++)
        replaced += m->protocols[i].name.len + m->protocols[i].metadata.len;
    return incoming <= replaced ||
           c->member_bytes + (incoming - replaced) <= (uint64_t)c->cfg.max_total_member_bytes;
}

void grp_join(struct grp_coordinator *c, int64_t now_ms, const struct grp_join_req *req, void *ctx)
{
    ASSERT(!c->in_callback);
    int16_t err = grp__validate_group(c, req->group_id, false);
    if (err) {
        grp__join_reply_error(c, ctx, req->member_id, err);
        return;
    }
    if (req->session_timeout_ms < c->cfg.min_session_timeout_ms ||
        req->session_timeout_ms > c->cfg.max_session_timeout_ms) {
        grp__join_reply_error(c, ctx, req->member_id, GRP_ERR_INVALID_SESSION_TIMEOUT);
        return;
    }
    if (!protocols_within_bounds(c, req) || req->rebalance_timeout_ms < 0) {
        say_warn("group",
                 "JoinGroup for group %.*s with %zu protocols or metadata over "
                 "%d bytes rejected",
                 (int)req->group_id.len, req->group_id.ptr, req->n_protocols,
                 c->cfg.max_metadata_bytes);
        grp__join_reply_error(c, ctx, req->member_id, GRP_ERR_INVALID_REQUEST);
        return;
    }
    bool unknown = req->member_id.len == 0;
    struct grp_group *g = grp__get(c, req->group_id);
    if (!within_member_budget(c, g, req)) {
        say_warn_ratelimited("group",
                             "JoinGroup for group %.*s refused: members of all groups "
                             "hold %zu bytes of metadata, the budget "
                             "(samsa.group.max.member.metadata.bytes) is %lld",
                             (int)req->group_id.len, req->group_id.ptr, c->member_bytes,
                             (long long)c->cfg.max_total_member_bytes);
        grp__join_reply_error(c, ctx, req->member_id, GRP_ERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    if (!g) {
        if (!unknown) {
            grp__join_reply_error(c, ctx, req->member_id, GRP_ERR_UNKNOWN_MEMBER_ID);
            return;
        }
        if (req->protocol_type.len == 0 || req->n_protocols == 0) {
            grp__join_reply_error(c, ctx, req->member_id, GRP_ERR_INCONSISTENT_GROUP_PROTOCOL);
            return;
        }
        g = grp__create(c, req->group_id, now_ms);
    }
    if (!accept_joining_member(c, g, req->member_id)) {
        struct grp_member *m = unknown ? NULL : grp__member(g, req->member_id);
        if (m) {
            grp__remove_member_and_update(c, g, m, now_ms);
        } else if (!unknown) {
            ssize_t pi = grp__pending_index(g, req->member_id);
            if (pi >= 0)
                grp__pending_remove_at(g, (size_t)pi);
        }
        say_info("group", "group %.*s is at group.max.size %d; member rejected", (int)g->id.len,
                 g->id.ptr, c->cfg.max_group_size);
        grp__join_reply_error(c, ctx, EMPTY, GRP_ERR_GROUP_MAX_SIZE_REACHED);
        grp__maybe_complete_join(c, g, now_ms);
        return;
    }
    if (g->state == GRP_STATE_DEAD) {
        grp__join_reply_error(c, ctx, req->member_id, GRP_ERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    if (!grp__supports_protocols(g, req->member_id, req)) {
        grp__join_reply_error(c, ctx, req->member_id, GRP_ERR_INCONSISTENT_GROUP_PROTOCOL);
        return;
    }
    if (unknown) {
        struct grp_bytes id =
            new_member_id(c, req->group_instance_id.ptr ? req->group_instance_id : req->client_id);
        struct grp_member *old = grp__static_member(g, req->group_instance_id);
        if (old) {
            update_static_member(c, g, old, id, req, ctx, now_ms);
        } else if (!req->group_instance_id.ptr && req->require_known_member_id) {
            /* KIP-394: hand out the id first; the member must rejoin with it. */
            if (g->n_pending == g->cap_pending) {
                g->cap_pending = g->cap_pending ? 2 * g->cap_pending : 4;
                g->pending = xrealloc(g->pending, g->cap_pending * sizeof(g->pending[0]));
            }
            g->pending[g->n_pending++] =
                (struct grp_pending_member){id, now_ms + req->session_timeout_ms};
            grp__note_deadline(c, now_ms + req->session_timeout_ms);
            grp__join_reply_error(c, ctx, grp__bs(id), GRP_ERR_MEMBER_ID_REQUIRED);
        } else {
            add_member_and_rebalance(c, g, id, req, ctx, now_ms);
        }
    } else {
        ssize_t pi = grp__pending_index(g, req->member_id);
        if (pi >= 0) {
            if (req->group_instance_id.ptr) {
                grp__join_reply_error(c, ctx, req->member_id, GRP_ERR_UNKNOWN_MEMBER_ID);
                return;
            }
            struct grp_bytes id = g->pending[pi].id;
            g->pending[pi].id = (struct grp_bytes){NULL, 0};
            grp__pending_remove_at(g, (size_t)pi);
            add_member_and_rebalance(c, g, id, req, ctx, now_ms);
        } else if (grp__static_fenced(g, req->group_instance_id, req->member_id)) {
            grp__join_reply_error(c, ctx, req->member_id, GRP_ERR_FENCED_INSTANCE_ID);
        } else {
            struct grp_member *m = grp__member(g, req->member_id);
            if (!m ||
                (req->group_instance_id.ptr && !grp__static_member(g, req->group_instance_id))) {
                grp__join_reply_error(c, ctx, req->member_id, GRP_ERR_UNKNOWN_MEMBER_ID);
                return;
            }
            switch (g->state) {
            case GRP_STATE_PREPARING_REBALANCE:
                update_member_and_rebalance(c, g, m, req, ctx, now_ms);
                break;
            case GRP_STATE_COMPLETING_REBALANCE:
                /* Same metadata: it probably lost the JoinGroup answer; repeat it. */
                if (grp__protocols_match(m, req))
                    grp__join_reply_current(c, g, m, ctx);
                else
                    update_member_and_rebalance(c, g, m, req, ctx, now_ms);
                break;
            case GRP_STATE_STABLE:
                /* The leader rejoining forces a rebalance (e.g. topic metadata changed). */
                if (grp__is_leader(g, req->member_id) || !grp__protocols_match(m, req))
                    update_member_and_rebalance(c, g, m, req, ctx, now_ms);
                else
                    grp__join_reply_current(c, g, m, ctx);
                break;
            default:
                grp__join_reply_error(c, ctx, req->member_id, GRP_ERR_UNKNOWN_MEMBER_ID);
                break;
            }
        }
    }
    /* g cannot have been freed: it has members or pending ids, or is Empty in the map. */
    grp__maybe_complete_join(c, g, now_ms);
}

/* ---- SyncGroup ---- */

/*
 * The checks SyncGroup and Heartbeat share, in Kafka's order: the group is served here
 * and alive, the caller is not a fenced static instance, is a member, and speaks for the
 * current generation. Returns 0 with *g_out and *m_out set (both borrowed from the
 * coordinator), else the Kafka error to answer with; on error *g_out and *m_out may be
 * NULL and must not be used.
 */
static int16_t find_generation_member(struct grp_coordinator *c, struct slice group_id,
                                      struct slice group_instance_id, struct slice member_id,
                                      int32_t generation_id, struct grp_group **g_out,
                                      struct grp_member **m_out)
{
    int16_t err = grp__validate_group(c, group_id, false);
    struct grp_group *g = err ? NULL : grp__get(c, group_id);
    struct grp_member *m = NULL;
    if (!err && !g)
        err = GRP_ERR_UNKNOWN_MEMBER_ID;
    else if (!err && g->state == GRP_STATE_DEAD)
        err = GRP_ERR_COORDINATOR_NOT_AVAILABLE;
    else if (!err && grp__static_fenced(g, group_instance_id, member_id))
        err = GRP_ERR_FENCED_INSTANCE_ID;
    else if (!err && !(m = grp__member(g, member_id)))
        err = GRP_ERR_UNKNOWN_MEMBER_ID;
    else if (!err && generation_id != g->generation)
        err = GRP_ERR_ILLEGAL_GENERATION;
    *g_out = g;
    *m_out = m;
    return err;
}

static void sync_reply_error(struct grp_coordinator *c, void *ctx, int16_t error)
{
    struct grp_sync_resp r = {.error = error, .assignment = EMPTY};
    GRP_CALLBACK(c, on_sync_done, ctx, &r);
    arena_free(&c->resp);
}

void grp_sync(struct grp_coordinator *c, int64_t now_ms, const struct grp_sync_req *req, void *ctx)
{
    ASSERT(!c->in_callback);
    struct grp_group *g;
    struct grp_member *m;
    int16_t err = find_generation_member(c, req->group_id, req->group_instance_id, req->member_id,
                                         req->generation_id, &g, &m);
    if (!err && ((req->protocol_type.ptr && !grp__bytes_eq(g->protocol_type, req->protocol_type)) ||
                 (req->protocol_name.ptr && !grp__bytes_eq(g->protocol, req->protocol_name))))
        err = GRP_ERR_INCONSISTENT_GROUP_PROTOCOL;
    if (!err) {
        for (size_t i = 0; i < req->n_assignments; i++)
            if (req->assignments[i].assignment.len > (size_t)c->cfg.max_metadata_bytes)
                err = GRP_ERR_INVALID_REQUEST;
    }
    if (err) {
        sync_reply_error(c, ctx, err);
        return;
    }
    switch (g->state) {
    case GRP_STATE_PREPARING_REBALANCE:
        sync_reply_error(c, ctx, GRP_ERR_REBALANCE_IN_PROGRESS);
        return;
    case GRP_STATE_STABLE:
        m->pending_sync = false;
        m->awaiting_sync = true;
        m->sync_ctx = ctx;
        grp__complete_sync(c, g, m, GRP_ERR_NONE);
        grp__schedule_heartbeat(c, m, now_ms);
        return;
    case GRP_STATE_COMPLETING_REBALANCE: break;
    default: sync_reply_error(c, ctx, GRP_ERR_UNKNOWN_MEMBER_ID); return;
    }
    grp__complete_sync(c, g, m, GRP_ERR_REBALANCE_IN_PROGRESS); /* a duplicate SyncGroup */
    m->awaiting_sync = true;
    m->sync_ctx = ctx;
    m->pending_sync = false;
    if (!grp__is_leader(g, req->member_id))
        return;
    /* The leader's assignment: persist it first (members missing from it get an empty
     * one), then hand each member its part and go Stable. */
    say_info("group", "assignment received from leader %.*s for group %.*s generation %d",
             (int)req->member_id.len, req->member_id.ptr, (int)g->id.len, g->id.ptr, g->generation);
    struct grp_pending_op *op = grp__op_new(c, GRP_OP_SYNC_STORE, g, NULL);
    op->n_assign = g->n_members;
    size_t n = g->n_members ? g->n_members : 1;
    op->assign_member = arena_alloc(&op->arena, n * sizeof(struct slice));
    op->assign_bytes = arena_alloc(&op->arena, n * sizeof(struct slice));
    for (size_t i = 0; i < g->n_members; i++) {
        struct slice id = grp__bs(g->members[i]->id);
        op->assign_member[i] = grp__arena_slice(&op->arena, id);
        struct slice a = EMPTY;
        for (size_t k = 0; k < req->n_assignments; k++)
            if (slice_eq(req->assignments[k].member_id, id) && req->assignments[k].assignment.ptr)
                a = req->assignments[k].assignment;
        op->assign_bytes[i] = grp__arena_slice(&op->arena, a);
    }
    grp__store_group(c, g, op, op->assign_bytes, now_ms);
}

void grp__sync_store_done(struct grp_coordinator *c, struct grp_pending_op *op, int16_t error,
                          int64_t now_ms)
{
    struct grp_group *g = op->group;
    /* Another member may have joined meanwhile; then the waiters were already told to
     * rejoin and this generation's assignment is moot. */
    if (g->removed || g->state != GRP_STATE_COMPLETING_REBALANCE || g->generation != op->generation)
        return;
    if (error) {
        say_warn("group", "failed to persist the assignment of group %.*s generation %d: error %d",
                 (int)g->id.len, g->id.ptr, g->generation, error);
        grp__reset_and_propagate_assignment_error(c, g, grp__map_append_error(error));
        grp__maybe_prepare_rebalance(c, g, now_ms);
        return;
    }
    for (size_t i = 0; i < g->n_members; i++) {
        struct grp_member *m = g->members[i];
        struct slice a = EMPTY;
        for (size_t k = 0; k < op->n_assign; k++)
            if (slice_eq(op->assign_member[k], grp__bs(m->id)))
                a = op->assign_bytes[k];
        grp__bytes_set(&m->assignment, a);
        grp__member_account(m);
    }
    grp__transition(g, GRP_STATE_STABLE, now_ms);
    for (size_t i = 0; i < g->n_members; i++) {
        grp__complete_sync(c, g, g->members[i], GRP_ERR_NONE);
        grp__schedule_heartbeat(c, g->members[i], now_ms);
    }
}

/* ---- Heartbeat ---- */

void grp_heartbeat(struct grp_coordinator *c, int64_t now_ms, const struct grp_heartbeat_req *req,
                   void *ctx)
{
    ASSERT(!c->in_callback);
    struct grp_group *g;
    struct grp_member *m;
    int16_t err = find_generation_member(c, req->group_id, req->group_instance_id, req->member_id,
                                         req->generation_id, &g, &m);
    if (!err) {
        grp__schedule_heartbeat(c, m, now_ms);
        if (g->state == GRP_STATE_PREPARING_REBALANCE)
            err = GRP_ERR_REBALANCE_IN_PROGRESS; /* the signal to rejoin */
        else if (g->state == GRP_STATE_EMPTY)
            err = GRP_ERR_UNKNOWN_MEMBER_ID;
    }
    struct grp_heartbeat_resp r = {.error = err};
    GRP_CALLBACK(c, on_heartbeat_done, ctx, &r);
}

/* ---- LeaveGroup ---- */

void grp_leave(struct grp_coordinator *c, int64_t now_ms, const struct grp_leave_req *req,
               void *ctx)
{
    ASSERT(!c->in_callback);
    struct grp_leave_resp r = {0};
    r.error = grp__validate_group(c, req->group_id, false);
    struct grp_group *g = r.error ? NULL : grp__get(c, req->group_id);
    if (g && g->state == GRP_STATE_DEAD)
        r.error = GRP_ERR_COORDINATOR_NOT_AVAILABLE;
    if (!r.error) {
        struct grp_leave_member_resp *ms =
            arena_alloc(&c->resp, (req->n_members ? req->n_members : 1) * sizeof(*ms));
        for (size_t i = 0; i < req->n_members; i++) {
            const struct grp_member_identity *who = &req->members[i];
            ms[i].member_id = who->member_id.ptr ? who->member_id : EMPTY;
            ms[i].group_instance_id = who->group_instance_id;
            ssize_t pi;
            struct grp_member *m;
            if (!g) {
                ms[i].error = GRP_ERR_UNKNOWN_MEMBER_ID;
            } else if (who->member_id.len == 0) {
                /* Administrative removal of a static member by instance id. */
                m = grp__static_member(g, who->group_instance_id);
                ms[i].error = m ? GRP_ERR_NONE : GRP_ERR_UNKNOWN_MEMBER_ID;
                if (m)
                    grp__remove_member_and_update(c, g, m, now_ms);
            } else if ((pi = grp__pending_index(g, who->member_id)) >= 0) {
                grp__pending_remove_at(g, (size_t)pi);
                grp__maybe_complete_join(c, g, now_ms);
                ms[i].error = GRP_ERR_NONE;
            } else if (grp__static_fenced(g, who->group_instance_id, who->member_id)) {
                ms[i].error = GRP_ERR_FENCED_INSTANCE_ID;
            } else if ((m = grp__member(g, who->member_id))) {
                say_info("group", "member %.*s left group %.*s", (int)who->member_id.len,
                         who->member_id.ptr, (int)g->id.len, g->id.ptr);
                grp__remove_member_and_update(c, g, m, now_ms);
                ms[i].error = GRP_ERR_NONE;
            } else {
                ms[i].error = GRP_ERR_UNKNOWN_MEMBER_ID;
            }
        }
        r.members = ms;
        r.n_members = req->n_members;
    }
    GRP_CALLBACK(c, on_leave_done, ctx, &r);
    arena_free(&c->resp);
}
