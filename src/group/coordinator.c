/*
 * The group coordinator's core: groups and members, the rebalance state machine
 * (Empty -> PreparingRebalance -> CompletingRebalance -> Stable, Dead when removed),
 * its timers, and the JoinGroup, SyncGroup, Heartbeat and LeaveGroup APIs.
 *
 * This follows Kafka's classic GroupCoordinator closely, because clients depend on
 * its exact answers: which error makes a consumer rejoin, reset its member id, or
 * give up. Where Kafka leaves a request unanswered (a JoinGroup replaced by a
 * duplicate, a removed member's SyncGroup), we answer it, since every request
 * here gets exactly one completion.
 *
 * Timers are deadlines stored on groups and members; grp_tick() compares them with
 * now_ms. c->next_deadline_ms is a lower bound on the earliest one: setting a
 * deadline lowers it (grp__note_deadline), and every tick recomputes it exactly.
 */
#include "group/group_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

/* ---- small helpers ---- */

struct grp_bytes grp__bytes_dup(struct slice s)
{
    if (!s.ptr)
        return (struct grp_bytes){NULL, 0};
    uint8_t *p = xmalloc(s.len ? s.len : 1);
    if (s.len)
        memcpy(p, s.ptr, s.len);
    return (struct grp_bytes){p, s.len};
}

void grp__bytes_free(struct grp_bytes *b)
{
    free(b->ptr);
    b->ptr = NULL;
    b->len = 0;
}

void grp__bytes_set(struct grp_bytes *b, struct slice s)
{
    struct grp_bytes n = grp__bytes_dup(s);
    grp__bytes_free(b);
    *b = n;
}

static const struct slice EMPTY = {(const uint8_t *)"", 0};

static const char *const STATE_NAMES[] = {"Empty", "PreparingRebalance", "CompletingRebalance",
                                          "Stable", "Dead"};

const char *grp_state_name(enum grp_state s)
{
    ASSERT((size_t)s < ARRAY_LEN(STATE_NAMES));
    return STATE_NAMES[s];
}

int grp_state_parse(struct slice name)
{
    for (size_t i = 0; i < ARRAY_LEN(STATE_NAMES); i++) {
        size_t n = strlen(STATE_NAMES[i]);
        if (name.len == n && strncasecmp((const char *)name.ptr, STATE_NAMES[i], n) == 0)
            return (int)i;
    }
    return -1;
}

void grp_config_defaults(struct grp_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->min_session_timeout_ms = 6000;
    cfg->max_session_timeout_ms = 1800000;
    cfg->initial_rebalance_delay_ms = 3000;
    cfg->max_group_size = INT32_MAX;
    cfg->offsets_retention_ms = 10080LL * 60 * 1000;
    cfg->offsets_retention_check_interval_ms = 600000;
    cfg->offsets_num_partitions = 50;
    cfg->max_metadata_bytes = 1 << 20;
    cfg->max_total_member_bytes = 128ll << 20;
    cfg->max_offset_metadata_bytes = 4096;
}

/* ---- partition of a group: Kafka's Utils.abs(groupId.hashCode()) % n ---- */
int32_t grp_partition_for_n(struct slice group_id, int32_t num_partitions)
{
    return kafka_partition_for(group_id, num_partitions);
}

int32_t grp_partition_for(const struct grp_coordinator *c, struct slice group_id)
{
    return grp_partition_for_n(group_id, c->cfg.offsets_num_partitions);
}

/* ---- coordinator ---- */

int grp_coordinator_create(const struct grp_config *cfg, struct grp_coordinator **out)
{
    if (cfg->offsets_num_partitions <= 0 || cfg->min_session_timeout_ms < 0 ||
        cfg->max_session_timeout_ms < cfg->min_session_timeout_ms ||
        cfg->initial_rebalance_delay_ms < 0 || cfg->max_group_size <= 0 ||
        cfg->offsets_retention_ms <= 0 || cfg->offsets_retention_check_interval_ms <= 0 ||
        cfg->max_metadata_bytes <= 0 || cfg->max_offset_metadata_bytes < 0 || !cfg->append ||
        !cfg->on_join_done || !cfg->on_sync_done || !cfg->on_heartbeat_done ||
        !cfg->on_leave_done || !cfg->on_commit_done || !cfg->on_fetch_done ||
        !cfg->on_describe_done || !cfg->on_list_done || !cfg->on_delete_groups_done ||
        !cfg->on_offset_delete_done) {
        say_error("group", "invalid group coordinator configuration (a bound is out of "
                           "range or a callback is missing)");
        return -22; /* -EINVAL */
    }
    struct grp_coordinator *c = xcalloc(1, sizeof(*c));
    c->cfg = *cfg;
    hmap_init(&c->groups);
    c->partitions = xcalloc((size_t)cfg->offsets_num_partitions, 1);
    c->next_deadline_ms = GRP_NO_DEADLINE;
    c->next_expiry_check_ms = GRP_NO_DEADLINE;
    arena_init(&c->resp);
    *out = c;
    return 0;
}

void grp_coordinator_destroy(struct grp_coordinator *c)
{
    if (!c)
        return;
    ASSERT(!c->in_callback);
    struct slice k;
    void *v;
    for (size_t it = 0; hmap_next(&c->groups, &it, &k, &v);)
        grp__fail_waiters(c, v, GRP_ERR_NOT_COORDINATOR);
    /* Requests waiting on an append are answered as if the append failed. */
    while (c->ops) {
        struct grp_pending_op *op = c->ops;
        switch (op->kind) {
        case GRP_OP_COMMIT: grp__commit_done(c, op, GRP_ERR_NOT_COORDINATOR); break;
        case GRP_OP_OFFSET_DELETE: grp__offset_delete_done(c, op, GRP_ERR_NOT_COORDINATOR); break;
        case GRP_OP_DELETE_GROUPS: grp__delete_groups_done(c, op, GRP_ERR_NOT_COORDINATOR); break;
        default: break; /* their waiters were members, failed above */
        }
        grp__op_free(c, op);
    }
    for (size_t it = 0; hmap_next(&c->groups, &it, &k, &v);) {
        struct grp_group *g = v;
        g->removed = true;
        grp__free(g);
    }
    hmap_free(&c->groups);
    free(c->partitions);
    arena_free(&c->resp);
    free(c);
}

size_t grp_group_count(const struct grp_coordinator *c)
{
    return c->groups.count;
}

void grp__note_deadline(struct grp_coordinator *c, int64_t deadline_ms)
{
    if (deadline_ms < c->next_deadline_ms)
        c->next_deadline_ms = deadline_ms;
}

int64_t grp_next_deadline(const struct grp_coordinator *c)
{
    return c->next_deadline_ms;
}

int16_t grp__validate_group(const struct grp_coordinator *c, struct slice group_id,
                            bool allow_empty)
{
    if (!group_id.ptr || (!allow_empty && group_id.len == 0) || group_id.len > INT16_MAX)
        return GRP_ERR_INVALID_GROUP_ID;
    switch (c->partitions[grp_partition_for(c, group_id)]) {
    case GRP_PART_OWNED: return GRP_ERR_NONE;
    case GRP_PART_LOADING: return GRP_ERR_COORDINATOR_LOAD_IN_PROGRESS;
    default: return GRP_ERR_NOT_COORDINATOR;
    }
}

/* Kafka's mapping of a failed __consumer_offsets append to what the client sees. */
int16_t grp__map_append_error(int16_t error)
{
    switch (error) {
    case GRP_ERR_UNKNOWN_TOPIC_OR_PARTITION:
    case GRP_ERR_NOT_ENOUGH_REPLICAS:
    case GRP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case GRP_ERR_REQUEST_TIMED_OUT: return GRP_ERR_COORDINATOR_NOT_AVAILABLE;
    case GRP_ERR_NOT_LEADER_OR_FOLLOWER:
    case GRP_ERR_KAFKA_STORAGE_ERROR: return GRP_ERR_NOT_COORDINATOR;
    case GRP_ERR_MESSAGE_TOO_LARGE:
    case GRP_ERR_RECORD_LIST_TOO_LARGE: return GRP_ERR_UNKNOWN_SERVER_ERROR;
    default: return error;
    }
}

/* ---- groups and members ---- */

struct grp_group *grp__get(struct grp_coordinator *c, struct slice id)
{
    return hmap_get(&c->groups, id);
}

void grp__transition(struct grp_group *g, enum grp_state to, int64_t now_ms)
{
    g->state = to;
    g->state_ts_ms = now_ms;
}

struct grp_group *grp__create(struct grp_coordinator *c, struct slice id, int64_t now_ms)
{
    ASSERT(!grp__get(c, id));
    struct grp_group *g = xcalloc(1, sizeof(*g));
    g->id = grp__bytes_dup(id.ptr ? id : EMPTY);
    g->partition = grp_partition_for(c, id);
    g->state = GRP_STATE_EMPTY;
    g->state_ts_ms = now_ms;
    g->join_deadline_ms = GRP_NO_DEADLINE;
    g->sync_deadline_ms = GRP_NO_DEADLINE;
    hmap_init(&g->offsets);
    hmap_put(&c->groups, id, g);
    return g;
}

struct grp_member *grp__member_new(struct grp_coordinator *c)
{
    struct grp_member *m = xcalloc(1, sizeof(*m));
    m->account = &c->member_bytes;
    return m;
}

static size_t member_size(const struct grp_member *m)
{
    size_t n = m->assignment.len;
    for (size_t i = 0; i < m->n_protocols; i++)
        n += m->protocols[i].name.len + m->protocols[i].metadata.len;
    return n;
}

size_t grp_member_bytes(const struct grp_coordinator *c)
{
    return c->member_bytes;
}

void grp__member_account(struct grp_member *m)
{
    size_t now = member_size(m);
    ASSERT(*m->account >= m->held_bytes);
    *m->account = *m->account - m->held_bytes + now;
    m->held_bytes = now;
}

void grp__member_free(struct grp_member *m)
{
    ASSERT(*m->account >= m->held_bytes);
    *m->account -= m->held_bytes;
    grp__bytes_free(&m->id);
    grp__bytes_free(&m->instance_id);
    grp__bytes_free(&m->client_id);
    grp__bytes_free(&m->client_host);
    for (size_t i = 0; i < m->n_protocols; i++) {
        grp__bytes_free(&m->protocols[i].name);
        grp__bytes_free(&m->protocols[i].metadata);
    }
    free(m->protocols);
    grp__bytes_free(&m->assignment);
    free(m);
}

static void clear_subscriptions(struct grp_group *g)
{
    for (size_t i = 0; i < g->n_subscribed_topics; i++)
        grp__bytes_free(&g->subscribed_topics[i]);
    free(g->subscribed_topics);
    g->subscribed_topics = NULL;
    g->n_subscribed_topics = 0;
    g->subscriptions_known = false;
}

void grp__free(struct grp_group *g)
{
    ASSERT(g->removed && g->refs == 0);
    for (size_t i = 0; i < g->n_members; i++)
        grp__member_free(g->members[i]);
    free(g->members);
    for (size_t i = 0; i < g->n_pending; i++)
        grp__bytes_free(&g->pending[i].id);
    free(g->pending);
    grp__offsets_clear(g);
    hmap_free(&g->offsets);
    grp__txn_offsets_clear(g);
    clear_subscriptions(g);
    grp__bytes_free(&g->id);
    grp__bytes_free(&g->protocol_type);
    grp__bytes_free(&g->protocol);
    grp__bytes_free(&g->leader);
    free(g);
}

void grp__unref(struct grp_group *g)
{
    ASSERT(g->refs > 0);
    if (--g->refs == 0 && g->removed)
        grp__free(g);
}

/* Takes the group out of the map (Dead); it is freed once no append refers to it. */
void grp__remove_from_map(struct grp_coordinator *c, struct grp_group *g)
{
    ASSERT(!g->removed);
    void *v = hmap_remove(&c->groups, grp__bs(g->id));
    ASSERT(v == g);
    g->state = GRP_STATE_DEAD;
    g->removed = true;
    if (g->refs == 0)
        grp__free(g);
}

struct grp_member *grp__member(const struct grp_group *g, struct slice member_id)
{
    for (size_t i = 0; i < g->n_members; i++)
        if (slice_eq(grp__bs(g->members[i]->id), member_id))
            return g->members[i];
    return NULL;
}

struct grp_member *grp__static_member(const struct grp_group *g, struct slice instance_id)
{
    if (!instance_id.ptr)
        return NULL;
    for (size_t i = 0; i < g->n_members; i++)
        if (g->members[i]->instance_id.ptr &&
            slice_eq(grp__bs(g->members[i]->instance_id), instance_id))
            return g->members[i];
    return NULL;
}

/* Kafka's isStaticMemberFenced: the instance id is known but mapped to another member. */
bool grp__static_fenced(const struct grp_group *g, struct slice instance_id, struct slice member_id)
{
    struct grp_member *m = grp__static_member(g, instance_id);
    return m && !slice_eq(grp__bs(m->id), member_id);
}

ssize_t grp__pending_index(const struct grp_group *g, struct slice member_id)
{
    for (size_t i = 0; i < g->n_pending; i++)
        if (slice_eq(grp__bs(g->pending[i].id), member_id))
            return (ssize_t)i;
    return -1;
}

void grp__pending_remove_at(struct grp_group *g, size_t i)
{
    grp__bytes_free(&g->pending[i].id);
    g->pending[i] = g->pending[--g->n_pending];
}

bool grp__is_leader(const struct grp_group *g, struct slice member_id)
{
    return g->leader.ptr && slice_eq(grp__bs(g->leader), member_id);
}

struct slice grp__member_metadata(const struct grp_member *m, struct slice protocol)
{
    for (size_t i = 0; i < m->n_protocols; i++)
        if (slice_eq(grp__bs(m->protocols[i].name), protocol))
            return grp__bs(m->protocols[i].metadata);
    return EMPTY;
}

int32_t grp__rebalance_timeout(const struct grp_group *g)
{
    int32_t t = 0;
    for (size_t i = 0; i < g->n_members; i++)
        t = MAX(t, g->members[i]->rebalance_timeout_ms);
    return t;
}

void grp__set_protocols(struct grp_member *m, const struct grp_join_req *req)
{
    for (size_t i = 0; i < m->n_protocols; i++) {
        grp__bytes_free(&m->protocols[i].name);
        grp__bytes_free(&m->protocols[i].metadata);
    }
    free(m->protocols);
    m->protocols = xcalloc(req->n_protocols, sizeof(*m->protocols));
    for (size_t i = 0; i < req->n_protocols; i++) {
        struct slice name = req->protocols[i].name;
        m->protocols[i].name = grp__bytes_dup(name.ptr ? name : EMPTY);
        m->protocols[i].metadata =
            grp__bytes_dup(req->protocols[i].metadata.ptr ? req->protocols[i].metadata : EMPTY);
    }
    m->n_protocols = req->n_protocols;
    m->session_timeout_ms = req->session_timeout_ms;
    m->rebalance_timeout_ms = req->rebalance_timeout_ms;
    grp__member_account(m);
}

bool grp__protocols_match(const struct grp_member *m, const struct grp_join_req *req)
{
    if (m->n_protocols != req->n_protocols)
        return false;
    for (size_t i = 0; i < req->n_protocols; i++)
        if (!slice_eq(grp__bs(m->protocols[i].name), req->protocols[i].name) ||
            !slice_eq(grp__bs(m->protocols[i].metadata), req->protocols[i].metadata))
            return false;
    return true;
}

static bool member_supports(const struct grp_member *m, struct slice protocol)
{
    for (size_t i = 0; i < m->n_protocols; i++)
        if (slice_eq(grp__bs(m->protocols[i].name), protocol))
            return true;
    return false;
}

/* Kafka's supportsProtocols: an Empty group takes any non-empty type and protocol list;
 * otherwise the type must match and one offered protocol must be supported by every
 * other member. */
bool grp__supports_protocols(const struct grp_group *g, struct slice self,
                             const struct grp_join_req *req)
{
    if (req->protocol_type.len == 0 || req->n_protocols == 0)
        return false;
    if (g->state == GRP_STATE_EMPTY || g->n_members == 0)
        return true;
    if (!slice_eq(grp__bs(g->protocol_type), req->protocol_type))
        return false;
    for (size_t p = 0; p < req->n_protocols; p++) {
        bool all = true;
        for (size_t i = 0; i < g->n_members && all; i++) {
            const struct grp_member *m = g->members[i];
            if (!slice_eq(grp__bs(m->id), self) && !member_supports(m, req->protocols[p].name))
                all = false;
        }
        if (all)
            return true;
    }
    return false;
}

/* Kafka's selectProtocol: among the protocols every member supports, each member votes
 * for the one it prefers most; the most votes win. Ties go to the candidate the first
 * member (in join order) prefers, to stay deterministic. */
struct slice grp__select_protocol(const struct grp_group *g)
{
    ASSERT(g->n_members > 0);
    const struct grp_member *first = g->members[0];
    size_t best = SIZE_MAX, best_votes = 0;
    for (size_t p = 0; p < first->n_protocols; p++) {
        struct slice name = grp__bs(first->protocols[p].name);
        bool candidate = true;
        for (size_t i = 1; i < g->n_members && candidate; i++)
            candidate = member_supports(g->members[i], name);
        if (!candidate)
            continue;
        size_t votes = 0;
        for (size_t i = 0; i < g->n_members; i++) {
            const struct grp_member *m = g->members[i];
            for (size_t q = 0; q < m->n_protocols; q++) {
                struct slice mine = grp__bs(m->protocols[q].name);
                bool all = true;
                for (size_t j = 0; j < g->n_members && all; j++)
                    all = member_supports(g->members[j], mine);
                if (all) { /* m's vote: its first common protocol */
                    if (slice_eq(mine, name))
                        votes++;
                    break;
                }
            }
        }
        if (best == SIZE_MAX || votes > best_votes) {
            best = p;
            best_votes = votes;
        }
    }
    if (best == SIZE_MAX && first->n_protocols == 0)
        return EMPTY;
    if (best == SIZE_MAX) {
        say_error("group", "group %.*s has no protocol common to all %zu members; using %.*s",
                  (int)g->id.len, g->id.ptr, g->n_members, (int)first->protocols[0].name.len,
                  first->protocols[0].name.ptr);
        best = 0;
    }
    return grp__bs(first->protocols[best].name);
}

/* Topics of the consumer-protocol subscriptions of this generation; unknown when any
 * member's metadata does not decode (then OffsetDelete treats every topic as used). */
void grp__compute_subscriptions(struct grp_group *g)
{
    clear_subscriptions(g);
    if (!g->protocol.ptr || !slice_eq_cstr(grp__bs(g->protocol_type), "consumer"))
        return;
    struct arena a;
    arena_init(&a);
    struct hmap seen;
    hmap_init(&seen);
    bool ok = true;
    for (size_t i = 0; i < g->n_members && ok; i++) {
        struct slice *topics;
        size_t n;
        if (grp_consumer_subscription_topics(
                grp__member_metadata(g->members[i], grp__bs(g->protocol)), &a, &topics, &n) != 0) {
            ok = false;
            break;
        }
        for (size_t t = 0; t < n; t++)
            hmap_put(&seen, topics[t], (void *)1);
    }
    if (ok) {
        g->subscribed_topics = xcalloc(seen.count ? seen.count : 1, sizeof(struct grp_bytes));
        struct slice k;
        void *v;
        for (size_t it = 0; hmap_next(&seen, &it, &k, &v);)
            g->subscribed_topics[g->n_subscribed_topics++] = grp__bytes_dup(k.ptr ? k : EMPTY);
        g->subscriptions_known = true;
    }
    hmap_free(&seen);
    arena_free(&a);
}

/* ---- completions ---- */

void grp__reply_join(struct grp_coordinator *c, void *ctx, const struct grp_join_resp *r)
{
    GRP_CALLBACK(c, on_join_done, ctx, r);
    arena_free(&c->resp);
}

void grp__join_reply_error(struct grp_coordinator *c, void *ctx, struct slice member_id,
                           int16_t error)
{
    struct grp_join_resp r = {.error = error,
                              .generation_id = -1,
                              .leader = EMPTY,
                              .member_id = member_id.ptr ? member_id : EMPTY};
    grp__reply_join(c, ctx, &r);
}

void grp__complete_join_error(struct grp_coordinator *c, struct grp_member *m,
                              struct slice member_id, int16_t error)
{
    if (!m->awaiting_join)
        return;
    m->awaiting_join = false;
    void *ctx = m->join_ctx;
    m->join_ctx = NULL;
    /* Its session deadline counts again now that it no longer waits. */
    grp__note_deadline(c, m->heartbeat_deadline_ms);
    grp__join_reply_error(c, ctx, member_id, error);
}

void grp__awaiting_dec(struct grp_group *g)
{
    ASSERT(g->n_awaiting_join > 0);
    g->n_awaiting_join--;
}

/* The JoinGroup answer of a successful generation: the leader gets every member's
 * metadata for the selected protocol. */
void grp__complete_join_ok(struct grp_coordinator *c, struct grp_group *g, struct grp_member *m,
                           bool skip_assignment)
{
    ASSERT(m->awaiting_join);
    m->awaiting_join = false;
    grp__awaiting_dec(g);
    void *ctx = m->join_ctx;
    m->join_ctx = NULL;
    struct grp_join_resp r = {
        .error = GRP_ERR_NONE,
        .generation_id = g->generation,
        .protocol_type = grp__bs(g->protocol_type),
        .protocol_name = grp__bs(g->protocol),
        .leader = g->leader.ptr ? grp__bs(g->leader) : EMPTY,
        .skip_assignment = skip_assignment,
        .member_id = grp__bs(m->id),
    };
    if (grp__is_leader(g, grp__bs(m->id))) {
        struct grp_join_member *ms =
            arena_alloc(&c->resp, (g->n_members ? g->n_members : 1) * sizeof(*ms));
        for (size_t i = 0; i < g->n_members; i++) {
            ms[i].member_id = grp__bs(g->members[i]->id);
            ms[i].group_instance_id = grp__bs(g->members[i]->instance_id);
            ms[i].metadata = grp__member_metadata(g->members[i], grp__bs(g->protocol));
        }
        r.members = ms;
        r.n_members = g->n_members;
    }
    grp__reply_join(c, ctx, &r);
}

/* Answer a JoinGroup right away with the current generation (member not waiting). */
void grp__join_reply_current(struct grp_coordinator *c, struct grp_group *g, struct grp_member *m,
                             void *ctx)
{
    ASSERT(!m->awaiting_join);
    m->awaiting_join = true;
    m->join_ctx = ctx;
    g->n_awaiting_join++;
    grp__complete_join_ok(c, g, m, false);
}

/* Wraps a member's error completion keeping n_awaiting_join right. */
void grp__member_join_error(struct grp_coordinator *c, struct grp_group *g, struct grp_member *m,
                            struct slice member_id, int16_t error)
{
    if (m->awaiting_join) {
        grp__awaiting_dec(g);
        grp__complete_join_error(c, m, member_id, error);
    }
}

void grp__complete_sync(struct grp_coordinator *c, struct grp_group *g, struct grp_member *m,
                        int16_t error)
{
    if (!m->awaiting_sync)
        return;
    m->awaiting_sync = false;
    void *ctx = m->sync_ctx;
    m->sync_ctx = NULL;
    grp__note_deadline(c, m->heartbeat_deadline_ms);
    struct grp_sync_resp r = {.error = error,
                              .protocol_type = grp__bs(g->protocol_type),
                              .protocol_name = grp__bs(g->protocol),
                              .assignment = EMPTY};
    if (!error && m->assignment.ptr)
        r.assignment = grp__bs(m->assignment);
    GRP_CALLBACK(c, on_sync_done, ctx, &r);
    arena_free(&c->resp);
}

void grp__fail_waiters(struct grp_coordinator *c, struct grp_group *g, int16_t error)
{
    for (size_t i = 0; i < g->n_members; i++) {
        struct grp_member *m = g->members[i];
        grp__member_join_error(c, g, m, grp__bs(m->id), error);
        grp__complete_sync(c, g, m, error);
    }
}

void grp__schedule_heartbeat(struct grp_coordinator *c, struct grp_member *m, int64_t now_ms)
{
    m->heartbeat_deadline_ms = now_ms + m->session_timeout_ms;
    grp__note_deadline(c, m->heartbeat_deadline_ms);
}

/* ---- appends ---- */

#define GRP_OP_MAGIC 0x67727030u

struct grp_pending_op *grp__op_new(struct grp_coordinator *c, enum grp_op_kind kind,
                                   struct grp_group *g, void *ctx)
{
    struct grp_pending_op *op = xcalloc(1, sizeof(*op));
    op->kind = kind;
    op->group = g;
    op->ctx = ctx;
    op->txn_producer_id = -1;
    arena_init(&op->arena);
    if (g) {
        g->refs++;
        op->generation = g->generation;
    }
    op->next = c->ops;
    if (c->ops)
        c->ops->prev = op;
    c->ops = op;
    return op;
}

void grp__op_free(struct grp_coordinator *c, struct grp_pending_op *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        c->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    if (op->group)
        grp__unref(op->group);
    arena_free(&op->arena);
    free(op);
}

void grp__append_records(struct grp_coordinator *c, int32_t partition,
                         const struct grp_record *recs, size_t n, struct grp_pending_op *op)
{
    c->in_callback = true;
    if (op->txn_producer_id >= 0)
        c->cfg.append_txn(c->cfg.append_arg, partition, recs, n, op->txn_producer_id,
                          op->txn_producer_epoch, op);
    else
        c->cfg.append(c->cfg.append_arg, partition, recs, n, op);
    c->in_callback = false;
}

void grp__store_group(struct grp_coordinator *c, struct grp_group *g, struct grp_pending_op *op,
                      const struct slice *assignments, int64_t now_ms)
{
    (void)now_ms;
    struct arena a;
    arena_init(&a);
    struct grp_member_value *mv = arena_alloc(&a, (g->n_members ? g->n_members : 1) * sizeof(*mv));
    for (size_t i = 0; i < g->n_members; i++) {
        const struct grp_member *m = g->members[i];
        mv[i] = (struct grp_member_value){
            .member_id = grp__bs(m->id),
            .group_instance_id = grp__bs(m->instance_id),
            .client_id = grp__bs(m->client_id),
            .client_host = grp__bs(m->client_host),
            .rebalance_timeout_ms = m->rebalance_timeout_ms,
            .session_timeout_ms = m->session_timeout_ms,
            .subscription = grp__member_metadata(m, grp__bs(g->protocol)),
            .assignment = assignments ? assignments[i] : grp__bs(m->assignment),
        };
    }
    struct grp_group_value v = {
        .protocol_type = grp__bs(g->protocol_type),
        .generation = g->generation,
        .protocol = grp__bs(g->protocol),
        .leader = grp__bs(g->leader),
        .current_state_timestamp_ms = g->state_ts_ms,
        .members = mv,
        .n_members = g->n_members,
    };
    struct buf kb, vb;
    buf_init(&kb);
    buf_init(&vb);
    grp_group_key_encode(&kb, grp__bs(g->id));
    grp_group_value_encode(&vb, &v);
    struct grp_record rec = {{kb.data, kb.len}, {vb.data, vb.len}};
    grp__append_records(c, g->partition, &rec, 1, op);
    buf_free(&kb);
    buf_free(&vb);
    arena_free(&a);
}

/* ---- the rebalance state machine ---- */

void grp__reset_and_propagate_assignment_error(struct grp_coordinator *c, struct grp_group *g,
                                               int16_t error)
{
    for (size_t i = 0; i < g->n_members; i++) {
        grp__bytes_set(&g->members[i]->assignment, EMPTY);
        grp__member_account(g->members[i]);
        grp__complete_sync(c, g, g->members[i], error);
    }
}

void grp__prepare_rebalance(struct grp_coordinator *c, struct grp_group *g, int64_t now_ms)
{
    if (g->state == GRP_STATE_COMPLETING_REBALANCE)
        grp__reset_and_propagate_assignment_error(c, g, GRP_ERR_REBALANCE_IN_PROGRESS);
    g->sync_deadline_ms = GRP_NO_DEADLINE;
    for (size_t i = 0; i < g->n_members; i++)
        g->members[i]->pending_sync = false;
    int32_t rebalance_ms = grp__rebalance_timeout(g);
    int32_t delay_ms = c->cfg.initial_rebalance_delay_ms;
    if (g->state == GRP_STATE_EMPTY && delay_ms > 0) {
        /* Kafka's InitialDelayedJoin: let a starting fleet of consumers join one
         * generation instead of rebalancing once per member. */
        g->initial_delay = true;
        g->new_member_added = false;
        g->join_deadline_ms = now_ms + delay_ms;
        g->initial_delay_remaining_ms = MAX(rebalance_ms - delay_ms, 0);
    } else {
        g->initial_delay = false;
        g->join_deadline_ms = now_ms + rebalance_ms;
    }
    grp__note_deadline(c, g->join_deadline_ms);
    say_info("group",
             "preparing to rebalance group %.*s in state %s with old generation %d "
             "(__consumer_offsets-%d)",
             (int)g->id.len, g->id.ptr, grp_state_name(g->state), g->generation, g->partition);
    grp__transition(g, GRP_STATE_PREPARING_REBALANCE, now_ms);
    grp__maybe_complete_join(c, g, now_ms);
}

void grp__maybe_prepare_rebalance(struct grp_coordinator *c, struct grp_group *g, int64_t now_ms)
{
    if (g->state == GRP_STATE_STABLE || g->state == GRP_STATE_COMPLETING_REBALANCE ||
        g->state == GRP_STATE_EMPTY)
        grp__prepare_rebalance(c, g, now_ms);
}

/* Removes a member outright (no rebalance decision); answers whatever it waits on. */
static void member_remove(struct grp_coordinator *c, struct grp_group *g, struct grp_member *m,
                          int16_t error)
{
    grp__member_join_error(c, g, m, EMPTY, error);
    grp__complete_sync(c, g, m, error);
    size_t i = 0;
    while (g->members[i] != m)
        i++;
    memmove(&g->members[i], &g->members[i + 1], (g->n_members - i - 1) * sizeof(g->members[0]));
    g->n_members--;
    if (grp__is_leader(g, grp__bs(m->id))) {
        if (g->n_members > 0)
            grp__bytes_set(&g->leader, grp__bs(g->members[0]->id));
        else
            grp__bytes_free(&g->leader);
    }
    grp__member_free(m);
}

/* Kafka's removeMemberAndUpdateGroup: a member left or timed out. */
void grp__remove_member_and_update(struct grp_coordinator *c, struct grp_group *g,
                                   struct grp_member *m, int64_t now_ms)
{
    member_remove(c, g, m, GRP_ERR_UNKNOWN_MEMBER_ID);
    switch (g->state) {
    case GRP_STATE_STABLE:
    case GRP_STATE_COMPLETING_REBALANCE: grp__maybe_prepare_rebalance(c, g, now_ms); break;
    case GRP_STATE_PREPARING_REBALANCE: grp__maybe_complete_join(c, g, now_ms); break;
    default: break;
    }
}

/* If the leader did not rejoin, any member that did becomes leader. False if nobody
 * rejoined. */
static bool elect_joined_leader(struct grp_group *g)
{
    if (!g->leader.ptr)
        return false;
    struct grp_member *leader = grp__member(g, grp__bs(g->leader));
    if (leader && leader->awaiting_join)
        return true;
    for (size_t i = 0; i < g->n_members; i++) {
        if (g->members[i]->awaiting_join) {
            grp__bytes_set(&g->leader, grp__bs(g->members[i]->id));
            return true;
        }
    }
    return false;
}

/* Kafka's onCompleteJoin: the join phase is over (everybody joined or the rebalance
 * timeout fired). Dynamic members that did not rejoin are dropped; static ones stay
 * until their session expires. */
static void complete_join(struct grp_coordinator *c, struct grp_group *g, int64_t now_ms)
{
    ASSERT(g->state == GRP_STATE_PREPARING_REBALANCE);
    g->join_deadline_ms = GRP_NO_DEADLINE;
    g->initial_delay = false;
    for (size_t i = 0; i < g->n_members;) {
        struct grp_member *m = g->members[i];
        if (!m->awaiting_join && !m->instance_id.ptr) {
            say_info("group", "group %.*s removed member %.*s which did not rejoin in time",
                     (int)g->id.len, g->id.ptr, (int)m->id.len, m->id.ptr);
            member_remove(c, g, m, GRP_ERR_UNKNOWN_MEMBER_ID);
        } else if (m->awaiting_join && m->is_new && !m->instance_id.ptr && c->cfg.join_abandoned &&
                   c->cfg.join_abandoned(m->join_ctx)) {
            /* Its JoinGroup's connection is gone: it can never learn its member id, so
             * keeping it would only hold its metadata until its session expired. */
            say_info_ratelimited("group",
                                 "group %.*s dropped new member %.*s whose "
                                 "connection closed before its join completed",
                                 (int)g->id.len, g->id.ptr, (int)m->id.len, m->id.ptr);
            member_remove(c, g, m, GRP_ERR_UNKNOWN_MEMBER_ID);
        } else {
            i++;
        }
    }
    if (!elect_joined_leader(g) && g->n_members > 0) {
        /* Nobody rejoined (only static members left): wait another round; their
         * sessions will expire if they are gone. */
        say_error("group", "group %.*s could not complete rebalance because no members rejoined",
                  (int)g->id.len, g->id.ptr);
        g->join_deadline_ms = now_ms + grp__rebalance_timeout(g);
        grp__note_deadline(c, g->join_deadline_ms);
        return;
    }
    g->generation++;
    if (g->n_members == 0) {
        grp__bytes_free(&g->protocol);
        clear_subscriptions(g);
        grp__transition(g, GRP_STATE_EMPTY, now_ms);
        say_info("group", "group %.*s with generation %d is now empty (__consumer_offsets-%d)",
                 (int)g->id.len, g->id.ptr, g->generation, g->partition);
        grp__store_group(c, g, grp__op_new(c, GRP_OP_EMPTY_STORE, g, NULL), NULL, now_ms);
        return;
    }
    grp__bytes_set(&g->protocol, grp__select_protocol(g));
    grp__compute_subscriptions(g);
    grp__transition(g, GRP_STATE_COMPLETING_REBALANCE, now_ms);
    g->sync_deadline_ms = now_ms + grp__rebalance_timeout(g);
    grp__note_deadline(c, g->sync_deadline_ms);
    say_info("group", "stabilized group %.*s generation %d (__consumer_offsets-%d), %zu members",
             (int)g->id.len, g->id.ptr, g->generation, g->partition, g->n_members);
    for (size_t i = 0; i < g->n_members; i++) {
        struct grp_member *m = g->members[i];
        m->pending_sync = true;
        if (m->awaiting_join)
            grp__complete_join_ok(c, g, m, false);
        grp__schedule_heartbeat(c, m, now_ms);
        m->is_new = false;
    }
}

void grp__maybe_complete_join(struct grp_coordinator *c, struct grp_group *g, int64_t now_ms)
{
    if (g->state == GRP_STATE_PREPARING_REBALANCE && !g->initial_delay &&
        g->n_awaiting_join == g->n_members && g->n_pending == 0)
        complete_join(c, g, now_ms);
}

/* ---- timers ---- */

static bool keep_alive(const struct grp_member *m)
{
    /* Members inside a JoinGroup or SyncGroup are bounded by the rebalance and sync
     * timeouts instead; a new member's JoinGroup by GRP_NEW_MEMBER_JOIN_TIMEOUT_MS. */
    if (m->awaiting_join)
        return !m->is_new;
    return m->awaiting_sync;
}

static void group_timers(struct grp_coordinator *c, struct grp_group *g, int64_t now_ms)
{
    bool pending_expired = false;
    for (size_t i = 0; i < g->n_pending;) {
        if (now_ms >= g->pending[i].deadline_ms) {
            grp__pending_remove_at(g, i);
            pending_expired = true;
        } else {
            i++;
        }
    }
    if (pending_expired)
        grp__maybe_complete_join(c, g, now_ms);
    for (size_t i = 0; i < g->n_members;) {
        struct grp_member *m = g->members[i];
        if (now_ms >= m->heartbeat_deadline_ms && !keep_alive(m)) {
            say_info("group",
                     "member %.*s in group %.*s has failed, removing it from the group "
                     "(session timeout %d ms)",
                     (int)m->id.len, m->id.ptr, (int)g->id.len, g->id.ptr, m->session_timeout_ms);
            grp__remove_member_and_update(c, g, m, now_ms);
            i = 0; /* the array changed */
        } else {
            i++;
        }
    }
    if (g->state == GRP_STATE_PREPARING_REBALANCE && now_ms >= g->join_deadline_ms) {
        if (g->initial_delay && g->new_member_added && g->initial_delay_remaining_ms > 0) {
            int64_t delay =
                MIN((int64_t)c->cfg.initial_rebalance_delay_ms, g->initial_delay_remaining_ms);
            g->initial_delay_remaining_ms =
                MAX(g->initial_delay_remaining_ms - c->cfg.initial_rebalance_delay_ms, 0);
            g->new_member_added = false;
            g->join_deadline_ms = now_ms + delay;
        } else {
            complete_join(c, g, now_ms);
        }
    }
    if ((g->state == GRP_STATE_COMPLETING_REBALANCE || g->state == GRP_STATE_STABLE) &&
        now_ms >= g->sync_deadline_ms) {
        g->sync_deadline_ms = GRP_NO_DEADLINE;
        bool removed = false;
        for (size_t i = 0; i < g->n_members;) {
            struct grp_member *m = g->members[i];
            if (m->pending_sync) {
                say_info("group", "group %.*s removed member %.*s which did not send SyncGroup",
                         (int)g->id.len, g->id.ptr, (int)m->id.len, m->id.ptr);
                member_remove(c, g, m, GRP_ERR_UNKNOWN_MEMBER_ID);
                removed = true;
            } else {
                i++;
            }
        }
        if (removed)
            grp__prepare_rebalance(c, g, now_ms);
    }
}

static void recompute_deadline(struct grp_coordinator *c)
{
    int64_t d = c->next_expiry_check_ms;
    struct slice k;
    void *v;
    for (size_t it = 0; hmap_next(&c->groups, &it, &k, &v);) {
        struct grp_group *g = v;
        if (c->partitions[g->partition] != GRP_PART_OWNED)
            continue;
        for (size_t i = 0; i < g->n_pending; i++)
            d = MIN(d, g->pending[i].deadline_ms);
        for (size_t i = 0; i < g->n_members; i++)
            if (!keep_alive(g->members[i]))
                d = MIN(d, g->members[i]->heartbeat_deadline_ms);
        if (g->state == GRP_STATE_PREPARING_REBALANCE)
            d = MIN(d, g->join_deadline_ms);
        if (g->state == GRP_STATE_COMPLETING_REBALANCE || g->state == GRP_STATE_STABLE)
            d = MIN(d, g->sync_deadline_ms);
    }
    c->next_deadline_ms = d;
}

void grp_tick(struct grp_coordinator *c, int64_t now_ms)
{
    ASSERT(!c->in_callback);
    struct slice k;
    void *v;
    for (size_t it = 0; hmap_next(&c->groups, &it, &k, &v);) {
        struct grp_group *g = v;
        if (c->partitions[g->partition] == GRP_PART_OWNED)
            group_timers(c, g, now_ms);
    }
    if (now_ms >= c->next_expiry_check_ms) {
        grp__expire_offsets(c, now_ms);
        c->next_expiry_check_ms = now_ms + c->cfg.offsets_retention_check_interval_ms;
    }
    recompute_deadline(c);
}

/* ---- append completions ---- */

void grp_append_done(struct grp_coordinator *c, int64_t now_ms, void *token, int16_t error)
{
    ASSERT(!c->in_callback);
    struct grp_pending_op *op = token;
    ASSERT(op);
    switch (op->kind) {
    case GRP_OP_COMMIT: grp__commit_done(c, op, error); break;
    case GRP_OP_SYNC_STORE: grp__sync_store_done(c, op, error, now_ms); break;
    case GRP_OP_STATIC_STORE: grp__static_store_done(c, op, error, now_ms); break;
    case GRP_OP_EMPTY_STORE:
        /* Kafka: safe to ignore; the previous generation has no live members anyway. */
        if (error)
            say_warn("group", "failed to write empty metadata for group %.*s: error %d",
                     (int)op->group->id.len, op->group->id.ptr, error);
        break;
    case GRP_OP_TOMBSTONES:
        if (error)
            say_warn("group", "failed to append expiry tombstones: error %d", error);
        break;
    case GRP_OP_DELETE_GROUPS: grp__delete_groups_done(c, op, error); break;
    case GRP_OP_OFFSET_DELETE: grp__offset_delete_done(c, op, error); break;
    }
    grp__op_free(c, op);
}
