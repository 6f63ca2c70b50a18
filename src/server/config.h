/* Broker configuration: Kafka's property names, parsed and checked at start-up.
 * Unknown keys are warned about; an invalid value stops start-up naming the key. */
#ifndef SAMSA_SERVER_CONFIG_H
#define SAMSA_SERVER_CONFIG_H

#include "base/base.h"
#include "cluster/cluster.h"
#include "net/net.h"

/* One entry of controller.quorum.voters: id@host:port (the voter's controller listener). */
struct quorum_voter {
    int32_t id;
    char *host;
    int32_t port;
};
#define BROKER_MAX_VOTERS 16 /* raft.h's RAFT_MAX_NODES */

struct broker_config {
    struct props props; /* everything from the file plus overrides, for DescribeConfigs */
    int32_t node_id;
    char *listener_name; /* from listeners=PLAINTEXT://host:port: PLAINTEXT */
    char *listener_host;
    int32_t listener_port;
    char *advertised_host; /* from advertised.listeners, else listener (or localhost) */
    int32_t advertised_port;
    /* The listener named in controller.listener.names (default CONTROLLER), where the
     * other voters' Raft messages arrive; host NULL when listeners names none. */
    char *controller_listener_name;
    char *controller_host;
    int32_t controller_port;
    bool controller; /* process.roles has controller (else: broker only, an observer) */
    bool broker;     /* process.roles has broker (else: controller only, no partitions) */
    /* controller.quorum.voters; none: this node alone. */
    struct quorum_voter voters[BROKER_MAX_VOTERS];
    size_t voter_count;
    int64_t election_timeout_ms; /* controller.quorum.election.timeout.ms */
    int64_t fetch_timeout_ms;    /* controller.quorum.fetch.timeout.ms (observers' polls) */
    int64_t broker_heartbeat_interval_ms; /* broker.heartbeat.interval.ms */
    int64_t broker_session_timeout_ms;    /* broker.session.timeout.ms */
    /* samsa.broker.disconnect.fence.ms: a broker whose connection to the active
     * controller closed is fenced this long after, unless it heartbeats (0: never). */
    int64_t broker_disconnect_fence_ms;
    /* samsa.delay.window.ms: delayed records due within this are in the timing wheel;
     * the rest only in the pending list, taken in as the window moves. */
    int64_t delay_window_ms;
    /* Follower fetchers (replica.fetch.*, Kafka's names and defaults). */
    int32_t replica_fetch_wait_max_ms;
    int32_t replica_fetch_min_bytes;
    int32_t replica_fetch_max_bytes;          /* per partition */
    int32_t replica_fetch_response_max_bytes; /* per request */
    int64_t replica_fetch_backoff_ms;
    int64_t replica_lag_time_max_ms;          /* a follower behind this long leaves the ISR */
    int16_t offsets_topic_replication_factor; /* __consumer_offsets, as brokers allow */
    /* auto.leader.rebalance.enable, leader.imbalance.check.interval.seconds (in ms) */
    bool auto_leader_rebalance;
    bool unclean_leader_election; /* unclean.leader.election.enable: topics' default */
    int64_t leader_imbalance_check_interval_ms;
    /* samsa.replica.fetch.sync: a follower makes fetched data durable before its next
     * fetch tells the leader it has it (off: Kafka's in-memory acknowledgement). */
    bool replica_fetch_sync;
    /* Replication quotas (KIP-73): bytes per second that throttled replicas may use,
     * as their leader (leader.replication.throttled.rate) and as a follower
     * (follower.replication.throttled.rate); INT64_MAX: no limit. Measured over
     * replication.quota.window.num samples of replication.quota.window.size.seconds. */
    int64_t leader_replication_throttled_rate;
    int64_t follower_replication_throttled_rate;
    int32_t replication_quota_window_num;
    int64_t replication_quota_window_ms;
    char *log_dir; /* first of log.dirs / log.dir */
    char *rack;
    int32_t num_partitions;
    int16_t default_replication_factor;
    bool auto_create_topics;
    int64_t segment_bytes;
    int64_t roll_ms;
    int64_t retention_ms;
    int64_t retention_bytes;
    int64_t retention_check_interval_ms;
    int64_t flush_interval_messages;
    int64_t flush_interval_ms;
    int64_t flush_scheduler_interval_ms;
    int64_t flush_offset_checkpoint_interval_ms;
    int32_t index_interval_bytes;
    int32_t message_max_bytes;
    int32_t socket_request_max_bytes;
    int64_t connections_max_idle_ms;
    int32_t max_connections;
    int64_t max_partitions; /* samsa.max.partitions; 0: server_default_max_partitions() */
    /* metadata.log.max.record.bytes.between.snapshots, metadata.log.max.snapshot.interval.ms
     * (0: no time-based snapshots) */
    int64_t metadata_snapshot_max_bytes;
    int64_t metadata_snapshot_interval_ms;
    int32_t max_connections_per_ip; /* max.connections.per.ip */
    struct net_ip_limit *ip_limits; /* max.connections.per.ip.overrides, parsed (owned) */
    size_t ip_limit_count;
    int32_t queued_max_requests; /* per-connection in-flight bound */
    int64_t max_unsent_bytes;    /* per-connection backpressure bound */
    /* Broker-wide bounds (-1: none): queued.max.request.bytes,
     * samsa.queued.max.response.bytes, samsa.queued.max.response.files. */
    int64_t queued_max_request_bytes;
    int64_t queued_max_response_bytes;
    int32_t queued_max_response_files;
    bool log_append_time; /* log.message.timestamp.type=LogAppendTime */
    int32_t min_insync_replicas;
    int32_t fetch_max_bytes;   /* fetch.max.bytes: response data cap, below the client's */
    bool fetch_sendfile;       /* samsa.fetch.sendfile: zero-copy fetch path */
    int32_t sync_threads;      /* samsa.sync.threads: fdatasyncs of one round at once */
    int32_t syncfs_partitions; /* samsa.sync.syncfs.partitions: syncfs from this many */
    /* Consumer groups. */
    int32_t group_min_session_timeout_ms;
    int32_t group_max_session_timeout_ms;
    int32_t group_initial_rebalance_delay_ms;
    int32_t group_max_size;
    int64_t group_max_member_metadata_bytes; /* all groups' members' protocols+assignments */
    int64_t offsets_retention_minutes;
    int64_t offsets_retention_check_interval_ms;
    int32_t offsets_topic_num_partitions;
    int32_t offset_metadata_max_bytes;
    /* Idempotent producers: forgotten this long after their last batch. */
    int64_t producer_id_expiration_ms;
    int64_t producer_id_expiration_check_interval_ms;
    /* Transactions: __transaction_state and the coordinator. */
    int32_t txn_state_num_partitions;
    int16_t txn_state_replication_factor;
    int32_t txn_state_min_isr;
    int32_t txn_state_segment_bytes;
    int32_t txn_max_timeout_ms;
    int64_t txn_id_expiration_ms;
    int64_t txn_abort_check_interval_ms;
    int64_t txn_expiration_check_interval_ms;
    int16_t txn_version; /* the transaction.version feature level advertised */
    /* Log cleaner (compaction). */
    bool cleaner_enable;
    int64_t cleaner_backoff_ms;
    enum say_level log_level;
};

/* The node is its metadata quorum's only voter: a single node, or the one controller of
 * brokers that observe it. */
static inline bool broker_config_alone(const struct broker_config *c)
{
    return c->controller && c->voter_count <= 1;
}

/* Parses file (may be NULL) then overrides ("key=value"). 0, or -1 after logging. */
int broker_config_load(struct broker_config *c, const char *file, char **overrides,
                       size_t override_count);
void broker_config_free(struct broker_config *c);

/* For DescribeConfigs on the broker resource: every known key with its value and
 * whether it was set (STATIC_BROKER_CONFIG) or is the default. */
#define BROKER_CONFIG_MAX_ITEMS 128 /* bound on the key table (checked in config.c) */
struct broker_config_item {
    const char *name;
    const char *value;   /* effective value as a string; NULL if unset without a default */
    enum tcfg_type type; /* the key's type in Kafka (DescribeConfigs v3+ ConfigType) */
    bool is_default;
    bool sensitive;
    bool read_only;
};
size_t broker_config_items(const struct broker_config *c, struct broker_config_item *out,
                           size_t max);
/* Effective broker-level value for a key (set or default), or NULL if unknown or unset
 * without a default. */
const char *broker_config_value(const struct broker_config *c, const char *key);

/* DescribeConfigs synonyms of a broker property, in Kafka's order and by Kafka's rules
 * (properties setting the same thing, e.g. log.retention.ms/minutes/hours: the file's
 * settings, then the defaults, starting at the key's own entry). The topic config that
 * a property is the default of has these synonyms too. Strings are borrowed from c or
 * static. out must have room for BROKER_CONFIG_MAX_SYNONYMS; returns the count (0 for
 * an unknown key). */
#define BROKER_CONFIG_MAX_SYNONYMS 6
struct broker_config_synonym {
    const char *name;
    const char *value;
    bool is_default; /* DEFAULT_CONFIG; else STATIC_BROKER_CONFIG (the properties file) */
};
size_t broker_config_synonyms(const struct broker_config *c, const char *key,
                              struct broker_config_synonym *out, size_t max);

#endif
