/*
 * cluster: the metadata image every handler reads (brokers, topics, partitions,
 * replicas, leaders, per-topic configs) and the metadata log it is built from.
 *
 * Changes are KRaft-style metadata records (TopicRecord, PartitionRecord,
 * ConfigRecord, RemoveTopicRecord, RegisterBrokerRecord, ...) appended to a durable
 * log and then applied to the in-memory image. On start-up the log is replayed. The
 * log is the Raft core's (quorum.c over src/raft), with one voter today; the cluster
 * issue adds voters over the network, and the records, the image and this interface
 * stay the same. Data dirs of earlier versions (metalog.c) are upgraded in place.
 *
 * Error returns (and cluster_result.err) are negative CLUSTER_ERR_* codes; handlers map
 * them to Kafka codes. Every function is called on one thread (the broker's event
 * loop); only a change's log write runs elsewhere, on the runner's thread.
 */
#ifndef SAMSA_CLUSTER_H
#define SAMSA_CLUSTER_H

#include "base/base.h"

enum cluster_err {
    CLUSTER_OK = 0,
    CLUSTER_ERR_IO = -1, /* the metadata log could not be written */
    CLUSTER_ERR_TOPIC_EXISTS = -2,
    CLUSTER_ERR_UNKNOWN_TOPIC = -3,
    CLUSTER_ERR_INVALID_TOPIC = -4, /* name breaks Kafka's rules */
    CLUSTER_ERR_INVALID_PARTITIONS = -5,
    CLUSTER_ERR_INVALID_REPLICATION = -6,
    CLUSTER_ERR_INVALID_CONFIG = -7,
    CLUSTER_ERR_LIMIT = -8,   /* a bound (partitions per topic, topics) */
    CLUSTER_ERR_CORRUPT = -9, /* the metadata log is damaged (not a torn tail) */
    /* This node does not lead the metadata quorum (or stopped leading before the change
     * was committed: the next leader may still commit it). Kafka's NOT_CONTROLLER. */
    CLUSTER_ERR_NOT_CONTROLLER = -10,
    /* A heartbeat from a broker epoch that is not the registered one (an older process,
     * or one registered again since). Kafka's STALE_BROKER_EPOCH. */
    CLUSTER_ERR_STALE_BROKER_EPOCH = -11,
    CLUSTER_ERR_INVALID_ASSIGNMENT = -12, /* a manual replica assignment Kafka refuses */
    /* AlterPartition from a leader that no longer leads at its epoch / saw an older
     * partition epoch / names a replica that may not be in sync (fenced, or no replica). */
    CLUSTER_ERR_FENCED_LEADER_EPOCH = -13,
    CLUSTER_ERR_INVALID_UPDATE_VERSION = -14,
    CLUSTER_ERR_INELIGIBLE_REPLICA = -15,
    /* ElectLeaders: the partition already has the leader asked for / its preferred
     * replica cannot lead (fenced, or not in sync) / no replica can lead. */
    CLUSTER_ERR_ELECTION_NOT_NEEDED = -16,
    CLUSTER_ERR_PREFERRED_NOT_AVAILABLE = -17,
    CLUSTER_ERR_NO_ELIGIBLE_LEADER = -18,
    /* A reassignment is cancelled where none is under way (NO_REASSIGNMENT_IN_PROGRESS). */
    CLUSTER_ERR_NO_REASSIGNMENT = -19,
};

/* ---- topic configuration ---- */

enum tcfg_type { TCFG_LONG, TCFG_INT, TCFG_STRING, TCFG_BOOL, TCFG_DOUBLE, TCFG_LIST, TCFG_SHORT };

/* One per-topic config Samsa knows: its Kafka name, the broker property that gives
 * its default, and how values are checked. */
struct tcfg_def {
    const char *name;       /* e.g. "retention.ms" */
    const char *broker_key; /* e.g. "log.retention.ms", or NULL */
    enum tcfg_type type;
    const char *default_value;
    /* Returns NULL if value is acceptable, else a message saying why not. */
    const char *(*check)(const char *value);
    const char *doc;
};
const struct tcfg_def *tcfg_find(const char *name);
size_t tcfg_count(void);
const struct tcfg_def *tcfg_at(size_t i);
/* Validates name=value for a topic; NULL if fine, else a message (static storage). */
const char *tcfg_validate(const char *name, const char *value);

/* leader.|follower.replication.throttled.replicas (KIP-73): "*" (every replica of the
 * topic) or partition:broker entries, with Kafka 4.4's rules (tcfg_validate checks them).
 * Returns -1 for a value Kafka refuses, 1 for "*", else 0 after calling each (may be NULL)
 * for every entry, in order (repeats included); entries whose numbers do not fit an
 * int32 (which Kafka accepts) name no replica that can exist and are left out. */
int tcfg_replica_list_parse(const char *value,
                            void (*each)(void *arg, int32_t partition, int32_t broker), void *arg);

struct config_entry {
    char *name;
    char *value;
};

/* ---- the image ---- */

struct mpartition {
    int32_t id;
    int32_t leader; /* node id, -1 if none */
    int32_t leader_epoch;
    int32_t partition_epoch;
    int32_t replica_count;
    int32_t *replicas;
    int32_t isr_count;
    int32_t *isr;
    /* A reassignment under way (KIP-455): `adding` are replicas that join, `removing`
     * those that leave once every target replica is in sync; both are among `replicas`,
     * which lists the target replicas first. Counts 0: no reassignment is under way. */
    int32_t adding_count;
    int32_t *adding;
    int32_t removing_count;
    int32_t *removing;
};

struct mtopic {
    char *name;
    uint8_t id[16]; /* topic id (uuid) */
    bool internal;  /* __consumer_offsets and friends: hidden from listings */
    int32_t partition_count;
    struct mpartition *partitions;
    int32_t partition_cap; /* room in partitions */
    size_t config_count;   /* explicitly set per-topic configs only */
    struct config_entry *configs;
};

struct mbroker {
    int32_t node_id;
    char *host;
    int32_t port;
    char *rack; /* NULL if none */
    /* Kafka's broker epoch: grows with every registration of a new process
     * (incarnation), so a heartbeat of an older process is told STALE_BROKER_EPOCH. */
    int64_t epoch;
    uint8_t incarnation[16]; /* the registering process's random id; zero: none given */
    /* A fenced broker leads nothing and is not listed to clients: it registered and has
     * not heartbeated yet, or its session (broker.session.timeout.ms) expired. */
    bool fenced;
};

struct cluster;

struct cluster_options {
    const char *metadata_dir; /* holds the metadata log; created if missing */
    int32_t node_id;
    const char *cluster_id; /* NULL: read from the log or generate one */
    /* Recovery only: replay every intact entry of a damaged log, skipping damaged
     * stretches; write nothing (no meta.properties, no marker) until
     * cluster_rewrite_log. */
    bool salvage;
    /* samsa.max.partitions: creations that would take the partitions of all topics
     * past it are refused (CLUSTER_ERR_LIMIT); <= 0 means unbounded. */
    int64_t max_partitions;
    /* Kafka's metadata.log.max.record.bytes.between.snapshots: once the metadata log
     * (raft.log) holds this many bytes after the latest snapshot, a change's completion
     * writes a new snapshot of the image and drops the log it covers. 0: Kafka's default,
     * CLUSTER_SNAPSHOT_MAX_BYTES_DEFAULT. */
    int64_t snapshot_max_bytes;
    /* Kafka's metadata.log.max.snapshot.interval.ms: a snapshot is also written when a
     * change in no snapshot was applied this long ago (checked as changes complete).
     * 0: never (Kafka's meaning of 0; its default is 3600000). */
    int64_t snapshot_interval_ms;
    /* controller.quorum.voters' node ids; none: this node is the only voter. A quorum of
     * several needs its dir formatted (cluster_format) before its first start, and a
     * transport (cluster_set_transport) and ticks (cluster_tick) to elect a leader. */
    const int32_t *voters;
    size_t voter_count;
    uint32_t election_ticks; /* election timeout in ticks; 0: 10. Heartbeats every tick */
    /* This node hosts no partitions (process.roles=controller): with no broker
     * registered yet, placement has nowhere to go rather than this node. */
    bool controller_only;
    uint64_t seed; /* randomizes election timeouts: differ between nodes */
    /* unclean.leader.election.enable of the broker: the default of topics that do not set
     * it (see cluster_expire_sessions). */
    bool unclean_leader_election;
};
#define CLUSTER_SNAPSHOT_MAX_BYTES_DEFAULT 20971520 /* Kafka's, 20 MiB */

/* Opens (creating if new) the metadata log and replays it into the image. A torn tail
 * (the unacknowledged entry a crash cut short) is truncated; other damage returns
 * CLUSTER_ERR_CORRUPT with a log line naming the file, the offset and the way out,
 * and changes nothing. */
int cluster_open(const struct cluster_options *opts, struct cluster **out);
void cluster_close(struct cluster *c);

const char *cluster_id(const struct cluster *c);
const char *cluster_log_path(const struct cluster *c);
/* The metadata log held no entry when opened: a new node, or a log emptied or deleted. */
bool cluster_log_was_empty(const struct cluster *c);
/* Salvage: bytes of damaged stretches skipped while replaying. */
size_t cluster_log_skipped_bytes(const struct cluster *c);
/* The log records that the topic with this id was deleted (RemoveTopicRecord). */
bool cluster_topic_id_deleted(const struct cluster *c, const uint8_t id[16]);
/* The active controller: the metadata quorum's leader as this node knows it, -1 for
 * none (an election is under way). */
int32_t cluster_controller_id(const struct cluster *c);
/* Prepares an empty metadata dir for the first start of a node of a quorum of several
 * (`samsa-server format`): writes meta.properties with the cluster id (a uuid as Kafka
 * writes it) and the mark that lets cluster_open found the quorum's log there. A
 * controller that lost its log is refused, since it was not formatted again. CLUSTER_OK,
 * CLUSTER_ERR_INVALID_CONFIG (cluster id malformed) or CLUSTER_ERR_IO (logged: a log is
 * already there, or a write failed). */
int cluster_format(const char *metadata_dir, int32_t node_id, const char *cluster_id);

/* ---- the quorum's messages ----
 * Raft messages between the controllers of a quorum of several, carried by the owner
 * (server/: the SamsaRaft request on the controller listener). */
typedef void (*cluster_send_fn)(void *arg, int32_t to, const uint8_t *msg, size_t len);
/* Where messages to other voters go (borrowed bytes; a message may be dropped). */
void cluster_set_transport(struct cluster *c, cluster_send_fn send, void *arg);
/* One tick of the quorum's clock (election and heartbeat timers count them). */
void cluster_tick(struct cluster *c);
/* One message from another voter (borrowed for the call). */
void cluster_receive(struct cluster *c, const uint8_t *msg, size_t len);

/* The metadata quorum as Kafka's DescribeQuorum reports it: the metadata log is Kafka's
 * __cluster_metadata partition 0, its Raft term the leader epoch. Offsets count the
 * entries of the Raft log (offset = Raft index - 1, configuration entries and each
 * leader's no-op included, as Kafka counts its control records), so the high watermark,
 * the offset after the last committed entry, is the commit index, and a log end offset
 * the last index. A change being written shows in the leader's log end offset before it
 * reaches the high watermark. */
#define CLUSTER_QUORUM_MAX_NODES 16 /* raft.h's RAFT_MAX_NODES */
struct cluster_quorum_replica {
    int32_t node_id;
    int64_t log_end_offset; /* -1: unknown (a peer whose progress is not known here) */
};
struct cluster_quorum_state {
    int32_t leader_id; /* the leader this node knows of, -1 for none */
    bool leading;      /* this node leads (one voter: always, once open) */
    int32_t leader_epoch;
    int64_t high_watermark;
    int64_t log_end_offset; /* this node's */
    size_t voter_count;
    struct cluster_quorum_replica voters[CLUSTER_QUORUM_MAX_NODES];
    size_t observer_count; /* non-voting members (Raft learners); none on one node */
    struct cluster_quorum_replica observers[CLUSTER_QUORUM_MAX_NODES];
};
void cluster_quorum_state(const struct cluster *c, struct cluster_quorum_state *out);

size_t cluster_broker_count(const struct cluster *c);
const struct mbroker *cluster_broker_at(const struct cluster *c, size_t i);
const struct mbroker *cluster_broker_find(const struct cluster *c, int32_t node_id);

/* Topic lookups return pointers owned by the image, valid until the next change. */
const struct mtopic *cluster_topic_find(const struct cluster *c, struct slice name);
const struct mtopic *cluster_topic_find_id(const struct cluster *c, const uint8_t id[16]);
size_t cluster_topic_count(const struct cluster *c);
int64_t cluster_partition_count(const struct cluster *c);                 /* of all topics */
const struct mtopic *cluster_topic_at(const struct cluster *c, size_t i); /* in creation order */
/* Effective value of a topic config: the topic's own setting, or NULL for default. */
const char *cluster_topic_config(const struct mtopic *t, const char *name);

/* Kafka's topic name rules: 1..249 chars of [a-zA-Z0-9._-], not "." or "..".
 * Returns NULL if valid, else why not. */
const char *cluster_topic_name_error(struct slice name);

/* ---- changes ----
 *
 * A change is checked against the image, written to the metadata log as one entry,
 * made durable, applied to the image (the listener runs), and then reported to
 * done(arg, result), on the thread that submitted it. Changes are taken one at a time in
 * submission order, and each is checked against the image as every change before it
 * left it, so two changes never both pass a check that only one may pass.
 *
 * Where the write and its fsync run is the runner's choice (cluster_set_runner): the
 * broker runs them on a thread of their own, so its event loop never waits for the
 * disk. With no runner (start-up, tools, tests) a change is written and applied inside
 * the call that submits it. Either way done may run before the submitting call returns
 * (a change refused by its checks, validate_only, or no runner). done may be NULL. */
struct cluster_result {
    int err;                   /* CLUSTER_OK or a CLUSTER_ERR_* */
    const char *why;           /* NULL or why not; valid during the callback only */
    int64_t first_producer_id; /* cluster_allocate_producer_ids: the first id reserved */
    int64_t broker_epoch;      /* registration: the broker's epoch */
    bool fenced;               /* registration and heartbeat: the broker is fenced */
    int32_t partition_epoch;   /* partition changes: the partition's epoch after it */
};
typedef void (*cluster_done_fn)(void *arg, const struct cluster_result *res);

/* run(runner_arg, work, finished, arg): runs work(arg) somewhere else, then
 * finished(arg) back on the submitting thread. One write is in flight at a time: a
 * change's, or a snapshot's (the image written as a new snapshot of the metadata log, and
 * the log it covers dropped; see snapshot_max_bytes), which runs between two changes. */
struct cluster_runner {
    void (*run)(void *runner_arg, void (*work)(void *arg), void (*finished)(void *arg), void *arg);
    void *runner_arg;
};
/* NULL: changes are written inside the submitting call from then on. */
void cluster_set_runner(struct cluster *c, const struct cluster_runner *runner);
/* A change or a snapshot is being written, or a change waits for its turn. */
bool cluster_busy(const struct cluster *c);
/* Forgets the callbacks of every change submitted with this arg (a request that gave up
 * waiting): the changes themselves still happen. */
void cluster_forget(struct cluster *c, void *arg);

/* Registers (or re-registers with new endpoints) a broker: a RegisterBrokerRecord, as
 * Kafka's controller writes for BrokerRegistration. incarnation (16 bytes, or NULL)
 * names the registering process: the same process registering again with the same
 * endpoint changes nothing and gets its epoch back; a new one gets a new epoch, fenced
 * if `fenced` (a broker of a cluster stays fenced until its first heartbeat; a single
 * node registers itself unfenced). res->broker_epoch and res->fenced say the outcome. */
void cluster_register_broker(struct cluster *c, int32_t node_id, const char *host, int32_t port,
                             const char *rack, const uint8_t *incarnation, bool fenced,
                             cluster_done_fn done, void *arg);

/* Adds node_id to the metadata quorum as an observer (a Raft learner: the leader sends it
 * the log; it does not vote), as the active controller does for a broker that registers
 * without being a voter. CLUSTER_OK also when it is a member already. */
void cluster_add_observer(struct cluster *c, int32_t node_id, cluster_done_fn done, void *arg);
/* node_id is a voter or an observer of the quorum (as this node knows it). */
bool cluster_quorum_member(const struct cluster *c, int32_t node_id);

/* ---- broker sessions (the active controller's, in memory, as Kafka keeps them) ----
 * A registered broker heartbeats every broker.heartbeat.interval.ms. A broker that sends
 * none for broker.session.timeout.ms is fenced (cluster_expire_sessions): a
 * BrokerRegistrationChangeRecord, and in the same entry each of its partitions changes
 * as Kafka's controller changes them: it leaves every ISR it shares with others (an ISR's
 * last member stays, so that no unclean choice is ever made), and where it led, the first
 * replica in replica order that is in the new ISR and unfenced leads (none: leader -1).
 * It stays a replica. The first heartbeat of a fenced broker unfences it, and it leads
 * again each leaderless partition whose ISR holds it. A new process registering
 * (cluster_register_broker, fenced) is a fencing too; a registration unfenced (a single
 * node) an unfencing. The leader epoch grows with each leader change, the partition epoch
 * with each change. A controller that takes over gives every broker a full session from
 * then. */
/* res->err: CLUSTER_OK (res->fenced: still fenced), CLUSTER_ERR_NOT_CONTROLLER, or
 * CLUSTER_ERR_STALE_BROKER_EPOCH (unknown broker or another epoch: register again). */
void cluster_broker_heartbeat(struct cluster *c, int32_t node_id, int64_t epoch, int64_t now_ms,
                              cluster_done_fn done, void *arg);

/* A heartbeat with WantShutDown (controlled shutdown, KIP-631): the broker is fenced at
 * once, which moves the leadership of its partitions to other in-sync replicas and takes
 * it out of their ISRs, as for an expired session; res->fenced tells the broker it may
 * stop (it then leads nothing another replica could lead). Errors as for a heartbeat. */
void cluster_broker_controlled_shutdown(struct cluster *c, int32_t node_id, int64_t epoch,
                                        int64_t now_ms, cluster_done_fn done, void *arg);
/* On the active controller, every so often: fences the brokers whose session expired,
 * and those whose connection closed disconnect_grace_ms ago or longer with no heartbeat
 * since (0: only sessions expire). */
void cluster_expire_sessions(struct cluster *c, int64_t now_ms, int64_t session_timeout_ms,
                             int64_t disconnect_grace_ms);
/* The connection broker node_id (at this epoch) heartbeats over closed, as the active
 * controller's transport saw it: a process that dies (kill -9, a crash) closes its
 * connections at once, so cluster_expire_sessions fences it after the grace rather than
 * a whole session, unless it heartbeats again first (a live broker whose connection
 * dropped reconnects and heartbeats at once). A machine that stops, or a network cut,
 * closes nothing: the session applies. Ignored for another epoch, or a fenced broker. */
void cluster_broker_disconnected(struct cluster *c, int32_t node_id, int64_t epoch, int64_t now_ms);
/* Reserves `count` producer ids for node_id's idempotent producers (a ProducerIdsRecord,
 * as KRaft's controller writes for AllocateProducerIds): res->first_producer_id is the
 * first one. Ids are never reserved twice, across restarts; an unused rest of a block is
 * simply lost. CLUSTER_ERR_LIMIT when ids are exhausted. */
void cluster_allocate_producer_ids(struct cluster *c, int32_t node_id, int64_t count,
                                   cluster_done_fn done, void *arg);
/* Creates a topic. Each partition gets replication_factor distinct replicas among the
 * unfenced brokers, all in its ISR: the first, its leader, on the broker leading the
 * fewest partitions in the rack leading the fewest, ties going round the brokers (Kafka
 * spreads leaders the same way); the others on other brokers, in racks the partition
 * does not use yet while there are such, then on those holding the fewest replicas. With
 * no broker registered yet, the one replica is this node (unless controller-only). More
 * replicas than unfenced brokers: CLUSTER_ERR_INVALID_REPLICATION, with Kafka's message.
 * configs are validated first; nothing is written on error. If validate_only, checks
 * everything and writes nothing. If the broker cannot open the created topic, it is
 * removed again and the result is CLUSTER_ERR_IO. */
void cluster_create_topic(struct cluster *c, struct slice name, int32_t partitions,
                          int16_t replication_factor, const struct config_entry *configs,
                          size_t config_count, bool validate_only, cluster_done_fn done, void *arg);
/* The same with a manual replica assignment (borrowed for the call): partitions ×
 * replication_factor node ids, brokers[p * replication_factor + r] the r-th replica of
 * partition p, the first its preferred leader. Checked as Kafka's controller checks one
 * (CLUSTER_ERR_INVALID_ASSIGNMENT, with Kafka's message): each a registered broker, none
 * twice in a partition, at least one of each partition's unfenced. A partition's ISR is
 * its unfenced replicas in the order given, the first of them its leader. */
void cluster_create_topic_assigned(struct cluster *c, struct slice name, const int32_t *brokers,
                                   int32_t partitions, int16_t replication_factor,
                                   const struct config_entry *configs, size_t config_count,
                                   bool validate_only, cluster_done_fn done, void *arg);
void cluster_delete_topic(struct cluster *c, struct slice name, cluster_done_fn done, void *arg);
/* Grows a topic to new_total partitions. The new ones have as many replicas as the
 * topic's partition 0, placed as cluster_create_topic places them; or, with brokers
 * non-NULL, as assigned: `assigned` partitions × replication_factor node ids (borrowed for
 * the call), checked as in cluster_create_topic_assigned, and refused unless they name
 * exactly the partitions added, each with the topic's number of replicas. */
void cluster_create_partitions(struct cluster *c, struct slice name, int32_t new_total,
                               const int32_t *brokers, int32_t assigned, int16_t replication_factor,
                               bool validate_only, cluster_done_fn done, void *arg);

enum cluster_config_op {
    CFG_OP_SET = 0,
    CFG_OP_DELETE = 1,
    CFG_OP_APPEND = 2,
    CFG_OP_SUBTRACT = 3
};
struct config_change {
    const char *name;
    const char *value; /* NULL for delete */
    enum cluster_config_op op;
};
/* Applies config changes to a topic. replace_all (legacy AlterConfigs) drops every
 * setting not named. All changes are validated before any is written. */
void cluster_alter_topic_configs(struct cluster *c, struct slice name,
                                 const struct config_change *changes, size_t n, bool replace_all,
                                 bool validate_only, cluster_done_fn done, void *arg);

/* A partition's leader, replicas or in-sync replicas change: a PartitionChangeRecord,
 * as Kafka's controller writes for AlterPartition, elections and reassignments. Every
 * field may be left as it is. Checked against the image: the replicas are registered
 * brokers, without repeats; the ISR is a subset of the replicas; a leader (-1: none) is
 * in the ISR; a new leader, and a broker joining the ISR, is unfenced; a fenced broker
 * stays in an ISR given only as its one member. The partition epoch grows with every
 * change, the leader epoch (as in Kafka) when the leader changes or a replica is removed,
 * not when only the ISR changes or replicas are added; fencing and unfencing
 * (cluster_expire_sessions, cluster_broker_heartbeat) follow the same rule. A change that
 * changes nothing writes nothing. Errors:
 * CLUSTER_ERR_UNKNOWN_TOPIC, CLUSTER_ERR_INVALID_PARTITIONS (no such partition),
 * CLUSTER_ERR_INVALID_REPLICATION (with why). */
#define CLUSTER_KEEP_LEADER (-2)
struct cluster_partition_change {
    int32_t leader;          /* a node id, -1 for none, or CLUSTER_KEEP_LEADER */
    const int32_t *replicas; /* NULL: unchanged */
    int32_t replica_count;
    const int32_t *isr; /* NULL: unchanged */
    int32_t isr_count;
};
void cluster_change_partition(struct cluster *c, struct slice topic, int32_t partition,
                              const struct cluster_partition_change *change, cluster_done_fn done,
                              void *arg);

/* AlterPartition (KIP-497): the partition's leader asks for a new ISR. Written only if
 * `leader` still leads at leader_epoch and the partition is at partition_epoch
 * (CLUSTER_ERR_FENCED_LEADER_EPOCH, CLUSTER_ERR_INVALID_UPDATE_VERSION otherwise) and
 * every member is an unfenced replica (CLUSTER_ERR_INELIGIBLE_REPLICA); then as
 * cluster_change_partition with the ISR changed. res->partition_epoch: the epoch after. */
struct cluster_isr_change {
    int32_t leader, leader_epoch, partition_epoch;
    const int32_t *isr;
    int32_t isr_count;
};
void cluster_alter_partition(struct cluster *c, struct slice topic, int32_t partition,
                             const struct cluster_isr_change *change, cluster_done_fn done,
                             void *arg);

/* ElectLeaders (KIP-460) and the automatic rebalance of leaderships. PREFERRED: the
 * first replica leads, if it is unfenced and in sync (CLUSTER_ERR_PREFERRED_NOT_AVAILABLE
 * otherwise; CLUSTER_ERR_ELECTION_NOT_NEEDED if it leads already). UNCLEAN: for a
 * partition without a leader, an unfenced in-sync replica if there is one, else the
 * first unfenced replica, which becomes the whole ISR: what only the other replicas had
 * is lost (logged, with the partition named); CLUSTER_ERR_ELECTION_NOT_NEEDED when the
 * partition has a leader, CLUSTER_ERR_NO_ELIGIBLE_LEADER when no replica is unfenced.
 * Then as cluster_change_partition. */
enum cluster_election { CLUSTER_ELECT_NONE = 0, CLUSTER_ELECT_PREFERRED, CLUSTER_ELECT_UNCLEAN };
void cluster_elect_leader(struct cluster *c, struct slice topic, int32_t partition,
                          enum cluster_election how, cluster_done_fn done, void *arg);

/* AlterPartitionReassignments (KIP-455): moves a partition to the `target` replicas
 * (borrowed for the call), as Kafka's controller does. The replicas become the target
 * followed by the current replicas not in it; those not yet replicas are being added,
 * those not in the target being removed. The new replicas copy the leader's log, and
 * once every target replica is in the ISR (which the leader's AlterPartition grows as
 * they catch up) the same change completes the reassignment: the replicas being removed
 * leave the replicas and the ISR, and if the leader was one of them the first target
 * replica in sync and unfenced leads. A target the partition already has completes at
 * once. A new target replaces a reassignment under way (the replicas are then the
 * current ones, those being added included). The target is checked as a manual
 * assignment (CLUSTER_ERR_INVALID_ASSIGNMENT: empty, a broker named twice or not
 * registered; a fenced one may be named and joins once it returns); with
 * !allow_rf_change a target of another size than the current replicas (those being added
 * not counted) is CLUSTER_ERR_INVALID_REPLICATION (KIP-860). target NULL cancels the
 * reassignment under way: the replicas being added leave the replicas and the ISR
 * (CLUSTER_ERR_NO_REASSIGNMENT when none is under way; CLUSTER_ERR_INVALID_ASSIGNMENT when
 * no replica of the current ones is left in sync). Unknown topic or partition:
 * CLUSTER_ERR_UNKNOWN_TOPIC, CLUSTER_ERR_INVALID_PARTITIONS. A change of the replicas
 * through cluster_change_partition ends a reassignment under way. */
void cluster_reassign_partition(struct cluster *c, struct slice topic, int32_t partition,
                                const int32_t *target, int32_t target_count, bool allow_rf_change,
                                cluster_done_fn done, void *arg);

/* UUIDs (topic ids) as Kafka writes them: 22 characters of url-safe base64. */
#define CLUSTER_UUID_TEXT_BYTES 23
/* A fresh random (version 4) uuid, as topic ids are made. */
void cluster_uuid_random(uint8_t id[16]);
void cluster_uuid_format(const uint8_t id[16], char out[CLUSTER_UUID_TEXT_BYTES]);
int cluster_uuid_parse(const char *text, uint8_t id[16]); /* 0, or -1 if malformed */

/* Recovery: puts a topic found on disk into the image without writing the log. A
 * topic of that name gets its missing partitions up to `partitions`; otherwise it is
 * created with `id` (a new one when NULL or taken) and the given configs. */
int cluster_recover_topic(struct cluster *c, const char *name, const uint8_t *id,
                          int32_t partitions, const struct config_entry *configs, size_t n);
/* Recovery: replaces the metadata log with one that records exactly the image, and
 * moves producer id allocation on by producer_id_gap (ids handed out in a skipped
 * stretch must never be handed out again). The old file is kept at *kept_path. */
int cluster_rewrite_log(struct cluster *c, int64_t producer_id_gap, char **kept_path);

/* Called after a change has been applied to the image (topic created, deleted,
 * partitions added, configs altered), so the broker can open/close logs. */
enum cluster_event {
    CLUSTER_TOPIC_CREATED,
    CLUSTER_TOPIC_DELETED,
    CLUSTER_PARTITIONS_ADDED,
    CLUSTER_CONFIG_CHANGED,
    CLUSTER_PARTITION_CHANGED, /* leader, epochs, replicas or ISR of one partition */
};
/* partition: the partition a CLUSTER_PARTITION_CHANGED names (t->partitions[partition]
 * holds its new state); -1 for the topic-level events. Returns 0, or non-zero when the
 * broker cannot serve the change (partitions it could not open): a topic creation is
 * then taken back and reported as failed. */
typedef int (*cluster_listener_fn)(void *arg, enum cluster_event ev, const struct mtopic *t,
                                   int32_t partition);
void cluster_set_listener(struct cluster *c, cluster_listener_fn fn, void *arg);

/* For tests only (tests/sim/metadata_sim.c checks that every node's image goes through
 * one common history): fn(arg, index, snapshot) runs each time the image has come to
 * reflect the metadata log through Raft index `index`: after each committed change is
 * applied (after the listener; snapshot false), and after a leader's snapshot replaced
 * the image (snapshot true). Entries that change nothing (a leader's no-op, a
 * configuration) are not reported. cluster_applied_index says where the image stands,
 * e.g. after cluster_open replayed the log. */
typedef void (*cluster_apply_hook_fn)(void *arg, uint64_t index, bool snapshot);
void cluster_set_apply_hook(struct cluster *c, cluster_apply_hook_fn fn, void *arg);
uint64_t cluster_applied_index(const struct cluster *c);

#endif
