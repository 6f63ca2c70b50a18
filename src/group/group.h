/*
 * group: the classic (pre-KIP-848) Kafka group coordinator and committed offsets,
 * as a pure state machine. No I/O, no clock, no threads: the server decodes a
 * request into the plain structs below, calls grp_<api>(c, now_ms, req, ctx), and
 * the coordinator answers -- immediately or later -- by calling the matching
 * cfg->on_<api>_done(ctx, resp) exactly once per request (also on timeouts, member
 * removal, group deletion, partition unload and coordinator destroy).
 *
 * JoinGroup waits for the rebalance; SyncGroup followers wait for the leader's
 * assignment; OffsetCommit, the leader's SyncGroup, DeleteGroups and OffsetDelete
 * wait until their records of the internal topic __consumer_offsets are durable:
 * the coordinator calls cfg->append(...) with records in Kafka's own formats and
 * the server answers with grp_append_done(c, now_ms, token, error) once they are
 * replicated and synced (acks=all) or failed.
 *
 * Time: every entry point takes now_ms, the wall clock in ms (it is persisted as
 * commit and state timestamps). grp_tick(c, now_ms) fires session timeouts,
 * rebalance/sync timeouts, the initial rebalance delay and offset expiry;
 * grp_next_deadline(c) says when the next tick is due (it may be early, never late).
 *
 * Ownership: request structs and the bytes they point at are BORROWED for the
 * duration of the call; whatever the coordinator keeps (metadata, assignments,
 * ids) is copied. Response structs and every slice inside them point into
 * coordinator memory that is valid only during the callback. Callbacks and
 * cfg->append must not call back into the coordinator (ASSERTed); the server
 * queues and calls grp_append_done later.
 *
 * Semantics follow Kafka's GroupCoordinator/GroupMetadataManager (classic
 * protocol); error codes are Kafka's numbers (same values as proto's KERR_*).
 * Record formats: docs are in the comments of group_records.c.
 *
 * Errors: every answer carries a Kafka error code (int16, proto's KERR_* values); the
 * record decoders of group_records.c return 0 or -1 (malformed). Nothing else fails:
 * allocation failure aborts.
 */
#ifndef SAMSA_GROUP_H
#define SAMSA_GROUP_H

#include "base/base.h"

/* ---- Kafka error codes used by this module (org.apache.kafka.common.protocol.Errors) ---- */
enum {
    GRP_ERR_UNKNOWN_SERVER_ERROR = -1,
    GRP_ERR_NONE = 0,
    GRP_ERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
    GRP_ERR_NOT_LEADER_OR_FOLLOWER = 6,
    GRP_ERR_REQUEST_TIMED_OUT = 7,
    GRP_ERR_MESSAGE_TOO_LARGE = 10,
    GRP_ERR_OFFSET_METADATA_TOO_LARGE = 12,
    GRP_ERR_COORDINATOR_LOAD_IN_PROGRESS = 14,
    GRP_ERR_COORDINATOR_NOT_AVAILABLE = 15,
    GRP_ERR_NOT_COORDINATOR = 16,
    GRP_ERR_RECORD_LIST_TOO_LARGE = 18,
    GRP_ERR_NOT_ENOUGH_REPLICAS = 19,
    GRP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20,
    GRP_ERR_ILLEGAL_GENERATION = 22,
    GRP_ERR_INCONSISTENT_GROUP_PROTOCOL = 23,
    GRP_ERR_INVALID_GROUP_ID = 24,
    GRP_ERR_UNKNOWN_MEMBER_ID = 25,
    GRP_ERR_INVALID_SESSION_TIMEOUT = 26,
    GRP_ERR_REBALANCE_IN_PROGRESS = 27,
    GRP_ERR_INVALID_REQUEST = 42,
    GRP_ERR_KAFKA_STORAGE_ERROR = 56,
    GRP_ERR_NON_EMPTY_GROUP = 68,
    GRP_ERR_GROUP_ID_NOT_FOUND = 69,
    GRP_ERR_MEMBER_ID_REQUIRED = 79,
    GRP_ERR_GROUP_MAX_SIZE_REACHED = 81,
    GRP_ERR_FENCED_INSTANCE_ID = 82,
    GRP_ERR_GROUP_SUBSCRIBED_TO_TOPIC = 86,
    GRP_ERR_UNSTABLE_OFFSET_COMMIT = 88,
};

/* ---- group states (Kafka's names, as DescribeGroups/ListGroups report them) ---- */
enum grp_state {
    GRP_STATE_EMPTY = 0,
    GRP_STATE_PREPARING_REBALANCE,
    GRP_STATE_COMPLETING_REBALANCE,
    GRP_STATE_STABLE,
    GRP_STATE_DEAD,
};
/* "Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead". */
const char *grp_state_name(enum grp_state s);
/* Case-insensitive parse of the names above; -1 if unknown. */
int grp_state_parse(struct slice name);

/* ---- requests and responses: plain structs (see the header comment for ownership) ----
 * Nullable strings are slices with ptr == NULL for null. */

struct grp_protocol {
    struct slice name;
    struct slice metadata;
};

/* JoinGroup v0-v9. v0 clients have no rebalance timeout: pass the session timeout. */
struct grp_join_req {
    struct slice group_id;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    struct slice member_id;         /* "" for a new member */
    struct slice group_instance_id; /* nullable: static membership when set (v5+) */
    struct slice protocol_type;
    const struct grp_protocol *protocols; /* in the member's preference order */
    size_t n_protocols;
    bool require_known_member_id; /* v4+: answer MEMBER_ID_REQUIRED to new dynamic members */
    struct slice client_id;       /* request header's client id */
    struct slice client_host;     /* peer address as text */
};

struct grp_join_member {
    struct slice member_id;
    struct slice group_instance_id; /* nullable */
    struct slice metadata;          /* for the selected protocol */
};

struct grp_join_resp {
    int16_t error;
    int32_t generation_id;      /* -1 on error */
    struct slice protocol_type; /* nullable */
    struct slice protocol_name; /* nullable */
    struct slice leader;        /* "" on error */
    bool skip_assignment;       /* v9+: static leader rejoined a stable group */
    struct slice member_id;
    const struct grp_join_member *members; /* non-empty only for the leader */
    size_t n_members;
};

struct grp_assignment {
    struct slice member_id;
    struct slice assignment;
};

/* SyncGroup v0-v5. */
struct grp_sync_req {
    struct slice group_id;
    int32_t generation_id;
    struct slice member_id;
    struct slice group_instance_id;           /* nullable */
    struct slice protocol_type;               /* nullable (v5+) */
    struct slice protocol_name;               /* nullable (v5+) */
    const struct grp_assignment *assignments; /* only the leader sends these */
    size_t n_assignments;
};

struct grp_sync_resp {
    int16_t error;
    struct slice protocol_type; /* nullable */
    struct slice protocol_name; /* nullable */
    struct slice assignment;    /* empty on error */
};

/* Heartbeat v0-v4. */
struct grp_heartbeat_req {
    struct slice group_id;
    int32_t generation_id;
    struct slice member_id;
    struct slice group_instance_id; /* nullable */
};

struct grp_heartbeat_resp {
    int16_t error;
};

/* LeaveGroup v0-v5: v0-v2 carry one member id; the server wraps it as one identity. */
struct grp_member_identity {
    struct slice member_id;         /* "" to remove a static member by instance id */
    struct slice group_instance_id; /* nullable */
};

struct grp_leave_req {
    struct slice group_id;
    const struct grp_member_identity *members;
    size_t n_members;
};

struct grp_leave_member_resp {
    struct slice member_id;
    struct slice group_instance_id; /* nullable */
    int16_t error;
};

struct grp_leave_resp {
    int16_t error; /* group-level; for v0-v2 use members[0].error when this is NONE */
    const struct grp_leave_member_resp *members;
    size_t n_members;
};

/* OffsetCommit v0-v9. The server filters unknown topics (UNKNOWN_TOPIC_OR_PARTITION)
 * before calling; retention_time is ignored (KIP-211 semantics). A commit with
 * generation -1 to a group that does not exist creates it (Empty, no protocol type:
 * a simple consumer's group) if it stores anything, whatever the member and instance
 * ids; an Empty group takes such commits too. */
struct grp_commit_partition {
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;  /* -1 if unknown */
    struct slice metadata; /* nullable (null is stored as "") */
};

struct grp_commit_topic {
    struct slice name;
    const struct grp_commit_partition *partitions;
    size_t n_partitions;
};

struct grp_commit_req {
    struct slice group_id;
    int32_t generation_id;          /* -1 for simple (non-member) commits */
    struct slice member_id;         /* "" for simple commits */
    struct slice group_instance_id; /* nullable */
    const struct grp_commit_topic *topics;
    size_t n_topics;
    /* A member's commit (generation >= 0) to a group that does not exist is answered
     * GROUP_ID_NOT_FOUND when set (v9+, as Kafka), else ILLEGAL_GENERATION. */
    bool missing_group_not_found;
};

struct grp_commit_resp_partition {
    int32_t partition;
    int16_t error;
};

struct grp_commit_resp_topic {
    struct slice name;
    const struct grp_commit_resp_partition *partitions;
    size_t n_partitions;
};

struct grp_commit_resp {
    const struct grp_commit_resp_topic *topics;
    size_t n_topics;
};

/* OffsetFetch v0-v9: one request may name several groups (v8+); single-group
 * versions are one element. topics == NULL (n_topics ignored) means all partitions. */
struct grp_fetch_topic {
    struct slice name;
    const int32_t *partitions;
    size_t n_partitions;
};

struct grp_fetch_group {
    struct slice group_id;
    const struct grp_fetch_topic *topics; /* NULL: every committed partition */
    size_t n_topics;
};

struct grp_fetch_req {
    const struct grp_fetch_group *groups;
    size_t n_groups;
    /* v7+: a partition with an offset pending in a transaction is answered
     * UNSTABLE_OFFSET_COMMIT (and no offset) instead of its last stable one. */
    bool require_stable;
};

struct grp_fetch_resp_partition {
    int32_t partition;
    int64_t offset;        /* -1: nothing committed */
    int32_t leader_epoch;  /* -1 if unknown */
    struct slice metadata; /* "" when nothing committed */
    int16_t error;
};

struct grp_fetch_resp_topic {
    struct slice name;
    const struct grp_fetch_resp_partition *partitions;
    size_t n_partitions;
};

struct grp_fetch_resp_group {
    struct slice group_id;
    int16_t error;
    const struct grp_fetch_resp_topic *topics;
    size_t n_topics;
};

struct grp_fetch_resp {
    const struct grp_fetch_resp_group *groups; /* same order as the request */
    size_t n_groups;
};

/* DescribeGroups v0-v5. */
struct grp_describe_req {
    const struct slice *group_ids;
    size_t n_groups;
};

struct grp_describe_member {
    struct slice member_id;
    struct slice group_instance_id; /* nullable */
    struct slice client_id;
    struct slice client_host;
    struct slice metadata;   /* empty unless Stable */
    struct slice assignment; /* empty unless Stable */
};

struct grp_describe_group {
    int16_t error;
    struct slice group_id;
    struct slice state;         /* "Dead" for an unknown group (error NONE, as Kafka) */
    struct slice protocol_type; /* "" if none */
    struct slice protocol;      /* "" unless Stable */
    const struct grp_describe_member *members;
    size_t n_members;
};

struct grp_describe_resp {
    const struct grp_describe_group *groups;
    size_t n_groups;
};

/* ListGroups v0-v4: states filter (v4+), empty = all. */
struct grp_list_req {
    const struct slice *states_filter;
    size_t n_states_filter;
};

struct grp_list_group {
    struct slice group_id;
    struct slice protocol_type;
    struct slice state;
};

struct grp_list_resp {
    int16_t error; /* COORDINATOR_LOAD_IN_PROGRESS while any owned partition loads */
    const struct grp_list_group *groups; /* sorted by group id */
    size_t n_groups;
};

/* DeleteGroups v0-v2. */
struct grp_delete_groups_req {
    const struct slice *group_ids;
    size_t n_groups;
};

struct grp_delete_group_result {
    struct slice group_id;
    int16_t error;
};

struct grp_delete_groups_resp {
    const struct grp_delete_group_result *results; /* request order */
    size_t n_results;
};

/* OffsetDelete v0. */
struct grp_offset_delete_req {
    struct slice group_id;
    const struct grp_fetch_topic *topics; /* same shape: name + partitions */
    size_t n_topics;
};

struct grp_offset_delete_resp {
    int16_t error;
    const struct grp_commit_resp_topic *topics; /* per-partition errors */
    size_t n_topics;
};

/* ---- records of __consumer_offsets ---- */
struct grp_record {
    struct slice key;
    struct slice value; /* ptr == NULL: tombstone */
};

/* ---- configuration ---- */
struct grp_config {
    int32_t min_session_timeout_ms;              /* group.min.session.timeout.ms (6000) */
    int32_t max_session_timeout_ms;              /* group.max.session.timeout.ms (1800000) */
    int32_t initial_rebalance_delay_ms;          /* group.initial.rebalance.delay.ms (3000) */
    int32_t max_group_size;                      /* group.max.size (INT32_MAX) */
    int64_t offsets_retention_ms;                /* offsets.retention.minutes * 60000 (7 days) */
    int64_t offsets_retention_check_interval_ms; /* offsets.retention.check.interval.ms (600000) */
    int32_t offsets_num_partitions;              /* offsets.topic.num.partitions (50) */
    int32_t max_metadata_bytes; /* bound on a member's metadata / assignment (1 MiB) */
    /* samsa.group.max.member.metadata.bytes: bound on the protocols and assignments of
     * every member of every group together (128 MiB); a JoinGroup that would pass it
     * gets COORDINATOR_NOT_AVAILABLE (retriable) and changes nothing. */
    int64_t max_total_member_bytes;
    int32_t max_offset_metadata_bytes; /* offset.metadata.max.bytes (4096) */
    uint64_t member_id_seed;           /* makes member ids unique across restarts (wall ns ^ pid) */

    /* Persist records to partition offsets_partition of __consumer_offsets with
     * acks=all; then call grp_append_done(c, now, token, error) exactly once, later
     * (not from inside this call). records and their bytes are valid during the call. */
    void (*append)(void *arg, int32_t offsets_partition, const struct grp_record *records,
                   size_t n_records, void *token);
    /* The same for a TxnOffsetCommit: the records go in a transactional batch of the
     * producer (id, epoch), which its transaction's marker completes. Needed only when
     * grp_txn_commit is called. */
    void (*append_txn)(void *arg, int32_t offsets_partition, const struct grp_record *records,
                       size_t n_records, int64_t producer_id, int16_t producer_epoch, void *token);
    void *append_arg;
    /* Optional: whether the client that sent the JoinGroup with this ctx can no longer
     * get its answer (its connection closed). A new dynamic member whose join is
     * abandoned so is dropped when the join phase completes. */
    bool (*join_abandoned)(void *ctx);

    /* Completions: each called exactly once per request with the ctx passed in. */
    void (*on_join_done)(void *ctx, const struct grp_join_resp *resp);
    void (*on_sync_done)(void *ctx, const struct grp_sync_resp *resp);
    void (*on_heartbeat_done)(void *ctx, const struct grp_heartbeat_resp *resp);
    void (*on_leave_done)(void *ctx, const struct grp_leave_resp *resp);
    void (*on_commit_done)(void *ctx, const struct grp_commit_resp *resp);
    void (*on_fetch_done)(void *ctx, const struct grp_fetch_resp *resp);
    void (*on_describe_done)(void *ctx, const struct grp_describe_resp *resp);
    void (*on_list_done)(void *ctx, const struct grp_list_resp *resp);
    void (*on_delete_groups_done)(void *ctx, const struct grp_delete_groups_resp *resp);
    void (*on_offset_delete_done)(void *ctx, const struct grp_offset_delete_resp *resp);
};

/* Kafka's defaults; callbacks NULL. */
void grp_config_defaults(struct grp_config *cfg);

struct grp_coordinator;

/* cfg is copied. Returns 0, or -EINVAL for an invalid config (logged). */
int grp_coordinator_create(const struct grp_config *cfg, struct grp_coordinator **out);
/* Completes every waiting request with NOT_COORDINATOR (including those waiting on an
 * append) and frees everything. The server must not call grp_append_done afterwards. */
void grp_coordinator_destroy(struct grp_coordinator *c);

/* abs(Java String.hashCode(group_id)) % offsets.topic.num.partitions, exactly as Kafka. */
int32_t grp_partition_for(const struct grp_coordinator *c, struct slice group_id);
int32_t grp_partition_for_n(struct slice group_id, int32_t num_partitions);

/* ---- loading a partition of __consumer_offsets (this node became its leader) ----
 * Requests for groups of a partition being loaded get COORDINATOR_LOAD_IN_PROGRESS;
 * of a partition not owned, NOT_COORDINATOR. */
void grp_load_begin(struct grp_coordinator *c, int64_t now_ms, int32_t partition);
/* One record in log order (value.ptr == NULL: tombstone). Returns 0, or -1 if the
 * record is malformed (logged and skipped; loading continues). Unknown key versions
 * (newer record types) are skipped and return 0. */
int grp_load_record(struct grp_coordinator *c, int32_t partition, struct slice key,
                    struct slice value);
/* A record of a transactional batch of producer_id: an offset commit stays pending until
 * the producer's marker (grp_txn_marker), as Kafka loads TxnOffsetCommit records. */
int grp_load_txn_record(struct grp_coordinator *c, int32_t partition, struct slice key,
                        struct slice value, int64_t producer_id);
void grp_load_end(struct grp_coordinator *c, int64_t now_ms, int32_t partition);
/* This node lost the partition: waiting joins/syncs get NOT_COORDINATOR, its groups are
 * dropped from memory. Appends in flight still get their grp_append_done. */
void grp_unload(struct grp_coordinator *c, int32_t partition);

/* ---- timers ---- */
/* Bytes of member metadata (protocols and assignments) held for all groups, which
 * max_total_member_bytes bounds. */
size_t grp_member_bytes(const struct grp_coordinator *c);
void grp_tick(struct grp_coordinator *c, int64_t now_ms);
/* Earliest time grp_tick has work to do, or INT64_MAX. */
int64_t grp_next_deadline(const struct grp_coordinator *c);

/* ---- durable appends ---- */
/* error: 0, or the Kafka error of the failed append (mapped as Kafka maps it). */
void grp_append_done(struct grp_coordinator *c, int64_t now_ms, void *token, int16_t error);

/* ---- the APIs ---- */
void grp_join(struct grp_coordinator *c, int64_t now_ms, const struct grp_join_req *req, void *ctx);
void grp_sync(struct grp_coordinator *c, int64_t now_ms, const struct grp_sync_req *req, void *ctx);
void grp_heartbeat(struct grp_coordinator *c, int64_t now_ms, const struct grp_heartbeat_req *req,
                   void *ctx);
void grp_leave(struct grp_coordinator *c, int64_t now_ms, const struct grp_leave_req *req,
               void *ctx);
void grp_commit(struct grp_coordinator *c, int64_t now_ms, const struct grp_commit_req *req,
                void *ctx);
/* TxnOffsetCommit v0-v4: an OffsetCommit inside producer (id, epoch)'s transaction.
 * Validated and answered as a commit (on_commit_done), once its records are durable in
 * a transactional batch (cfg->append_txn); the offsets become visible only when the
 * transaction's COMMIT marker reaches their partition (grp_txn_marker). */
void grp_txn_commit(struct grp_coordinator *c, int64_t now_ms, const struct grp_commit_req *req,
                    int64_t producer_id, int16_t producer_epoch, void *ctx);
/* A transaction marker of producer_id is durable in partition of __consumer_offsets (or,
 * while loading, was read there): its pending offsets become committed (commit) or are
 * dropped. */
void grp_txn_marker(struct grp_coordinator *c, int32_t partition, int64_t producer_id, bool commit);
void grp_fetch(struct grp_coordinator *c, int64_t now_ms, const struct grp_fetch_req *req,
               void *ctx);
void grp_describe(struct grp_coordinator *c, int64_t now_ms, const struct grp_describe_req *req,
                  void *ctx);
void grp_list(struct grp_coordinator *c, int64_t now_ms, const struct grp_list_req *req, void *ctx);
void grp_delete_groups(struct grp_coordinator *c, int64_t now_ms,
                       const struct grp_delete_groups_req *req, void *ctx);
void grp_offset_delete(struct grp_coordinator *c, int64_t now_ms,
                       const struct grp_offset_delete_req *req, void *ctx);

/* A topic was deleted: every group's committed offsets of it are removed (tombstones
 * appended through cfg->append). */
void grp_topic_deleted(struct grp_coordinator *c, int64_t now_ms, struct slice topic);

/* Number of groups in memory (tests, metrics). */
size_t grp_group_count(const struct grp_coordinator *c);

/* ---- __consumer_offsets record formats (group_records.c) ----
 * Keys: int16 version, then fields. Version 0/1 = offset commit (group, topic,
 * partition); version 2 = group metadata (group). Values: int16 version, then
 * fields; encoders write offset value v3 and group value v3, decoders read v0-v3.
 * Strings are int16-length, bytes int32-length, -1 = null (Kafka's non-flexible
 * encoding). Decoders never crash on malformed input; returned slices BORROW the
 * input bytes. */
enum { GRP_KEY_OFFSET = 1, GRP_KEY_GROUP = 2, GRP_KEY_OTHER = 3 };

struct grp_key {
    int kind; /* GRP_KEY_* */
    int16_t version;
    struct slice group;
    struct slice topic; /* offset keys */
    int32_t partition;  /* offset keys */
};

struct grp_offset_value {
    int64_t offset;
    int32_t leader_epoch; /* -1 if none (v0-v2 have none) */
    struct slice metadata;
    int64_t commit_timestamp_ms;
    int64_t expire_timestamp_ms; /* -1 unless a v1 record carried one */
};

struct grp_member_value {
    struct slice member_id;
    struct slice group_instance_id; /* nullable */
    struct slice client_id;
    struct slice client_host;
    int32_t rebalance_timeout_ms;
    int32_t session_timeout_ms;
    struct slice subscription;
    struct slice assignment;
};

struct grp_group_value {
    struct slice protocol_type;
    int32_t generation;
    struct slice protocol;              /* nullable */
    struct slice leader;                /* nullable */
    int64_t current_state_timestamp_ms; /* -1 if none */
    const struct grp_member_value *members;
    size_t n_members;
};

void grp_offset_key_encode(struct buf *b, struct slice group, struct slice topic,
                           int32_t partition);
void grp_group_key_encode(struct buf *b, struct slice group);
void grp_offset_value_encode(struct buf *b, const struct grp_offset_value *v);
void grp_group_value_encode(struct buf *b, const struct grp_group_value *v);

/* 0, or -1 if malformed. An unknown key version gives kind GRP_KEY_OTHER and 0. */
int grp_key_decode(struct slice key, struct grp_key *out);
int grp_offset_value_decode(struct slice value, struct grp_offset_value *out);
/* members are allocated from a. */
int grp_group_value_decode(struct slice value, struct arena *a, struct grp_group_value *out);

/* Topics of a consumer protocol subscription (ConsumerProtocolSubscription v0+: int16
 * version, [string] topics, nullable bytes user data, ...). Topics array from a. */
int grp_consumer_subscription_topics(struct slice metadata, struct arena *a, struct slice **topics,
                                     size_t *n_topics);

#endif
