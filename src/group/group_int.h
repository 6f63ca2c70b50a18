/*
 * Internal structures of the group coordinator, shared by its files:
 *   coordinator.c  config, groups, members, the rebalance state machine, timers
 *   membership.c   JoinGroup/SyncGroup/Heartbeat/LeaveGroup
 *   offsets.c      OffsetCommit/OffsetFetch/OffsetDelete, offset expiry
 *   admin.c        DescribeGroups/ListGroups/DeleteGroups
 *   load.c         loading and unloading partitions of __consumer_offsets
 *   group_records.c the record formats
 *
 * Names: grp_ is the module's public interface (group.h); functions shared only between
 * these files carry grp__, as net's internals carry net__; the rest are static.
 */
#ifndef SAMSA_GROUP_INT_H
#define SAMSA_GROUP_INT_H

#include "group/group.h"

#include <sys/types.h>

#define GRP_NO_DEADLINE INT64_MAX
/* Kafka's GroupCoordinator.NewMemberJoinTimeoutMs: a new member's JoinGroup expires. */
#define GRP_NEW_MEMBER_JOIN_TIMEOUT_MS 300000
/* Bound on the protocols one member may offer. */
#define GRP_MAX_PROTOCOLS_PER_MEMBER 64

/* Owned byte string: ptr NULL means null; a non-null empty value has a 1-byte alloc. */
struct grp_bytes {
    uint8_t *ptr;
    size_t len;
};

struct grp_bytes grp__bytes_dup(struct slice s);
void grp__bytes_free(struct grp_bytes *b);
static inline struct slice grp__bs(struct grp_bytes b)
{
    return (struct slice){b.ptr, b.len};
}
/* Copy of s in arena a: null stays null, a non-null empty value gets a non-NULL ptr. */
static inline struct slice grp__arena_slice(struct arena *a, struct slice s)
{
    if (!s.ptr)
        return SLICE_NULL;
    return (struct slice){arena_memdup(a, s.len ? s.ptr : (const uint8_t *)"", s.len ? s.len : 1),
                          s.len};
}
static inline bool grp__bytes_eq(struct grp_bytes b, struct slice s)
{
    return (b.ptr == NULL) == (s.ptr == NULL) && slice_eq(grp__bs(b), s);
}

struct grp_member_protocol {
    struct grp_bytes name;
    struct grp_bytes metadata;
};

struct grp_member {
    struct grp_bytes id;
    struct grp_bytes instance_id; /* null for dynamic members */
    struct grp_bytes client_id;
    struct grp_bytes client_host;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    struct grp_member_protocol *protocols;
    size_t n_protocols;
    struct grp_bytes assignment; /* of the current generation; empty until synced */
    bool is_new;                 /* joined but not yet part of a completed generation */
    bool awaiting_join;          /* join_ctx holds a JoinGroup to answer */
    void *join_ctx;
    bool awaiting_sync; /* sync_ctx holds a SyncGroup to answer */
    void *sync_ctx;
    bool pending_sync;             /* has not sent SyncGroup for this generation yet */
    int64_t heartbeat_deadline_ms; /* session expiry */
    /* What this member counts against the broker-wide member metadata budget
     * (grp__member_account), and the coordinator's total it counts in. */
    size_t held_bytes;
    size_t *account;
};

/* A member id handed out with MEMBER_ID_REQUIRED, not yet joined. */
struct grp_pending_member {
    struct grp_bytes id;
    int64_t deadline_ms;
};

struct grp_offset_entry {
    struct grp_bytes topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    struct grp_bytes metadata;
    int64_t commit_ts_ms;
    int64_t expire_ts_ms; /* -1 unless loaded from a v1 record */
};

struct grp_group {
    struct grp_bytes id;
    int32_t partition; /* of __consumer_offsets */
    enum grp_state state;
    int64_t state_ts_ms; /* when the current state was entered; -1 unknown */
    int32_t generation;
    struct grp_bytes protocol_type; /* null until the first member joins */
    struct grp_bytes protocol;      /* selected protocol of the generation; null when Empty */
    struct grp_bytes leader;        /* member id; null without members */

    struct grp_member **members; /* join order */
    size_t n_members, cap_members;
    struct grp_pending_member *pending; /* MEMBER_ID_REQUIRED ids */
    size_t n_pending, cap_pending;
    size_t n_awaiting_join;

    /* PreparingRebalance: the join phase ends at join_deadline_ms or when everybody
     * has joined; during the initial delay only the deadline ends it. */
    int64_t join_deadline_ms;
    bool initial_delay;
    bool new_member_added;
    int64_t initial_delay_remaining_ms;
    /* CompletingRebalance/Stable: members that never sync are removed at this time. */
    int64_t sync_deadline_ms;

    /* Topics subscribed by the consumer-protocol members of this generation. */
    bool subscriptions_known;
    struct grp_bytes *subscribed_topics;
    size_t n_subscribed_topics;

    struct hmap offsets; /* grp__offset_key() -> struct grp_offset_entry */
    /* Offsets committed inside transactions (TxnOffsetCommit), durable but not visible
     * until their producer's COMMIT marker, dropped by its ABORT marker (offsets.c). */
    struct grp_txn_offset *txn_offsets;
    size_t n_txn_offsets, cap_txn_offsets;

    int refs;          /* pending operations referring to this group */
    bool removed;      /* no longer in the coordinator's map (deleted or unloaded) */
    bool has_metadata; /* loading: a group metadata record is live */
};

enum grp_op_kind {
    GRP_OP_COMMIT,        /* OffsetCommit waiting for its records */
    GRP_OP_SYNC_STORE,    /* leader's SyncGroup: group metadata with assignments */
    GRP_OP_STATIC_STORE,  /* static member replaced in a Stable group */
    GRP_OP_EMPTY_STORE,   /* group became Empty: metadata without members */
    GRP_OP_TOMBSTONES,    /* expiry: nothing to answer */
    GRP_OP_DELETE_GROUPS, /* one partition's share of a DeleteGroups request */
    GRP_OP_OFFSET_DELETE,
};

struct grp_delete_batch; /* admin.c */

/* An offset committed in producer_id's open transaction; e is owned. */
struct grp_txn_offset {
    int64_t producer_id;
    struct grp_offset_entry *e;
};

/* An append in flight; its address is the token given to cfg->append. */
struct grp_pending_op {
    enum grp_op_kind kind;
    struct grp_pending_op *prev, *next;
    struct grp_group *group; /* holds a ref; may be NULL for GRP_OP_DELETE_GROUPS */
    void *ctx;
    int32_t generation;
    int64_t txn_producer_id; /* GRP_OP_COMMIT in a transaction (TxnOffsetCommit), else -1 */
    int16_t txn_producer_epoch;
    struct arena arena; /* everything below lives here */

    /* GRP_OP_COMMIT and GRP_OP_OFFSET_DELETE: response skeleton + the entries to apply */
    struct grp_commit_resp_topic *topics;
    size_t n_topics;
    struct grp_offset_entry *entries; /* bytes point into the arena */
    int16_t **entry_error;            /* where each entry's error goes in the response */
    size_t n_entries;

    /* GRP_OP_SYNC_STORE: the assignment per member id, parallel arrays */
    struct slice *assign_member;
    struct slice *assign_bytes;
    size_t n_assign;

    /* GRP_OP_STATIC_STORE */
    struct slice old_member_id, new_member_id;

    /* GRP_OP_DELETE_GROUPS: one op per deleted group */
    struct grp_delete_batch *batch;
    size_t batch_index;
};

enum grp_partition_state { GRP_PART_NOT_OWNED = 0, GRP_PART_LOADING, GRP_PART_OWNED };

struct grp_coordinator {
    struct grp_config cfg;
    struct hmap groups;         /* group id -> struct grp_group */
    uint8_t *partitions;        /* enum grp_partition_state per offsets partition */
    struct grp_pending_op *ops; /* appends in flight */
    uint64_t member_id_counter;
    int64_t next_deadline_ms; /* may be early, never late */
    int64_t next_expiry_check_ms;
    bool in_callback;
    struct arena resp;   /* response memory for the callback being made */
    size_t member_bytes; /* protocols and assignments of every member (grp__member_account) */
};

/* ---- coordinator.c ---- */
#define GRP_CALLBACK(c, fn, ...)                                                                   \
    do {                                                                                           \
        (c)->in_callback = true;                                                                   \
        (c)->cfg.fn(__VA_ARGS__);                                                                  \
        (c)->in_callback = false;                                                                  \
    } while (0)

void grp__note_deadline(struct grp_coordinator *c, int64_t deadline_ms);
struct grp_group *grp__get(struct grp_coordinator *c, struct slice id);
struct grp_group *grp__create(struct grp_coordinator *c, struct slice id, int64_t now_ms);
void grp__transition(struct grp_group *g, enum grp_state to, int64_t now_ms);
void grp__remove_from_map(struct grp_coordinator *c, struct grp_group *g);
void grp__unref(struct grp_group *g);
struct grp_member *grp__member(const struct grp_group *g, struct slice member_id);
/* 0 if the coordinator serves group_id for api; else a Kafka error. */
int16_t grp__validate_group(const struct grp_coordinator *c, struct slice group_id,
                            bool allow_empty);
int16_t grp__map_append_error(int16_t error);
struct grp_pending_op *grp__op_new(struct grp_coordinator *c, enum grp_op_kind kind,
                                   struct grp_group *g, void *ctx);
void grp__op_free(struct grp_coordinator *c, struct grp_pending_op *op);
void grp__append_records(struct grp_coordinator *c, int32_t partition,
                         const struct grp_record *recs, size_t n, struct grp_pending_op *op);
/* Persist the group's metadata (members, assignment from the parallel arrays when
 * given, else each member's own). */
void grp__store_group(struct grp_coordinator *c, struct grp_group *g, struct grp_pending_op *op,
                      const struct slice *assignments /* parallel to g->members, or NULL */,
                      int64_t now_ms);
void grp__complete_join_error(struct grp_coordinator *c, struct grp_member *m,
                              struct slice member_id, int16_t error);
void grp__complete_sync(struct grp_coordinator *c, struct grp_group *g, struct grp_member *m,
                        int16_t error);
void grp__member_free(struct grp_member *m);
/* A new member, counted in c's member metadata total from now on. */
struct grp_member *grp__member_new(struct grp_coordinator *c);
/* Brings the member's share of the total up to date after its protocols or assignment
 * changed (grp__set_protocols does it itself). */
void grp__member_account(struct grp_member *m);
void grp__free(struct grp_group *g);
void grp__compute_subscriptions(struct grp_group *g);
void grp__fail_waiters(struct grp_coordinator *c, struct grp_group *g, int16_t error);
void grp__sync_store_done(struct grp_coordinator *c, struct grp_pending_op *op, int16_t error,
                          int64_t now_ms);
void grp__static_store_done(struct grp_coordinator *c, struct grp_pending_op *op, int16_t error,
                            int64_t now_ms);
void grp__schedule_heartbeat(struct grp_coordinator *c, struct grp_member *m, int64_t now_ms);
void grp__prepare_rebalance(struct grp_coordinator *c, struct grp_group *g, int64_t now_ms);

/* coordinator.c helpers used by membership.c */
void grp__bytes_set(struct grp_bytes *b, struct slice s);
struct grp_member *grp__static_member(const struct grp_group *g, struct slice instance_id);
bool grp__static_fenced(const struct grp_group *g, struct slice instance_id,
                        struct slice member_id);
ssize_t grp__pending_index(const struct grp_group *g, struct slice member_id);
void grp__pending_remove_at(struct grp_group *g, size_t i);
bool grp__is_leader(const struct grp_group *g, struct slice member_id);
struct slice grp__member_metadata(const struct grp_member *m, struct slice protocol);
int32_t grp__rebalance_timeout(const struct grp_group *g);
void grp__set_protocols(struct grp_member *m, const struct grp_join_req *req);
bool grp__protocols_match(const struct grp_member *m, const struct grp_join_req *req);
bool grp__supports_protocols(const struct grp_group *g, struct slice self,
                             const struct grp_join_req *req);
struct slice grp__select_protocol(const struct grp_group *g);
void grp__reply_join(struct grp_coordinator *c, void *ctx, const struct grp_join_resp *r);
void grp__join_reply_error(struct grp_coordinator *c, void *ctx, struct slice member_id,
                           int16_t error);
void grp__complete_join_ok(struct grp_coordinator *c, struct grp_group *g, struct grp_member *m,
                           bool skip_assignment);
void grp__join_reply_current(struct grp_coordinator *c, struct grp_group *g, struct grp_member *m,
                             void *ctx);
void grp__member_join_error(struct grp_coordinator *c, struct grp_group *g, struct grp_member *m,
                            struct slice member_id, int16_t error);
void grp__maybe_prepare_rebalance(struct grp_coordinator *c, struct grp_group *g, int64_t now_ms);
void grp__remove_member_and_update(struct grp_coordinator *c, struct grp_group *g,
                                   struct grp_member *m, int64_t now_ms);
void grp__maybe_complete_join(struct grp_coordinator *c, struct grp_group *g, int64_t now_ms);
void grp__reset_and_propagate_assignment_error(struct grp_coordinator *c, struct grp_group *g,
                                               int16_t error);
void grp__awaiting_dec(struct grp_group *g);

/* ---- offsets.c ---- */
/* Key of g->offsets: partition (4 bytes BE) then topic, written into b. */
struct slice grp__offset_key(struct buf *b, struct slice topic, int32_t partition);
void grp__offset_entry_free(struct grp_offset_entry *e);
void grp__offsets_clear(struct grp_group *g);
/* Records src (copied) as pending in producer_id's transaction; a later commit of the
 * same partition in the same transaction replaces it. */
void grp__txn_offset_put(struct grp_group *g, int64_t producer_id,
                         const struct grp_offset_entry *src);
/* Forgets the group's offsets pending in transactions (unload, deletion). */
void grp__txn_offsets_clear(struct grp_group *g);
void grp__commit_done(struct grp_coordinator *c, struct grp_pending_op *op, int16_t error);
void grp__offset_delete_done(struct grp_coordinator *c, struct grp_pending_op *op, int16_t error);
void grp__expire_offsets(struct grp_coordinator *c, int64_t now_ms);
void grp__set_offset(struct grp_group *g, const struct grp_offset_entry *src);
/* Appends one batch of tombstones to g's partition: the offset keys (topics[i],
 * partitions[i]) for i < n, then g's metadata key when with_group_tombstone. The
 * topics are borrowed for the call only; op is the append's token. Used by
 * OffsetDelete, offset expiry, topic deletion and DeleteGroups, so all of them
 * write tombstones the same way. */
void grp__append_offset_tombstones(struct grp_coordinator *c, struct grp_group *g,
                                   const struct slice *topics, const int32_t *partitions, size_t n,
                                   bool with_group_tombstone, struct grp_pending_op *op);

/* ---- admin.c ---- */
void grp__delete_groups_done(struct grp_coordinator *c, struct grp_pending_op *op, int16_t error);

#endif
