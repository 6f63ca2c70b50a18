/* Server internals shared by the server's own files and the API handlers.
 *
 * Errors: the server's own functions return 0 or -1 once the reason is logged; what
 * goes to a client is a Kafka error code (proto's KERR_*), mapped from the modules'
 * own codes by kerr_from_storage and kerr_from_cluster. */
#ifndef SAMSA_SERVER_INTERNAL_H
#define SAMSA_SERVER_INTERNAL_H

#include "cluster/cluster.h"
#include "group/group.h"
#include "net/net.h"
#include "proto/proto.h"
#include "replica/replica.h"
#include "server/server.h"
#include "storage/storage.h"
#include "txn/txn.h"

#include <pthread.h>
#include <stdatomic.h>

/* A topic this node hosts: its partitions (replica.h) and their shared settings. */
struct topic_state {
    char *name;
    int32_t partition_count;       /* opened: partitions[0, partition_count) */
    int32_t target_count;          /* in the metadata; more than opened while opening */
    bool opening_created;          /* being opened because it was just created */
    bool taking_back;              /* created, could not be opened: being deleted again */
    struct open_waiter *waiters;   /* told when the opening ends (partitions.c) */
    struct partition **partitions; /* target_count slots; NULL: another broker's */
    struct topic_settings settings;
};

/* A request being served. Owns its frame (a copy, or the connection's input buffer
 * taken whole) so decoded slices stay valid while the request waits (for an fsync or a
 * long poll), and an arena for everything decoded or built for it. */
struct request {
    struct server *srv;
    struct net_reply *reply;
    struct request_header hdr;
    uint8_t *frame; /* inside frame_block */
    size_t frame_len;
    void *frame_block;  /* owned; freed with the request */
    struct reader body; /* positioned after the header */
    struct arena arena;
    int64_t start_ms; /* monotonic */
    void *state;      /* the handler's, while the request waits */
};

struct server {
    const struct broker_config *cfg;
    bool manual_io; /* server_options: every syncer manual (tests) */
    struct net_loop *loop;
    struct net_listener *listener;
    struct cluster *cluster;
    struct syncer *metadata_io; /* writes and syncs the metadata log (changes.c) */
    struct syncer *syncer;
    char *log_dir;
    struct hmap topics; /* name -> struct topic_state */
    /* Group commit. */
    bool round_in_flight;
    struct partition **sync_wanted; /* partitions whose sync_wanted flag is set */
    size_t sync_wanted_count, sync_wanted_cap;
    struct purgatory *durable_waits; /* acks=all produces and internal writes (commit.c) */
    /* Long-poll fetches waiting for data (handlers/fetch.c), retried in the idle hook
     * after appends notify their partitions; one timer for the earliest deadline. */
    struct purgatory *fetch_waits;
    uint64_t fetch_timer;
    int64_t fetch_timer_deadline; /* what fetch_timer is armed for; INT64_MAX: not armed */
    bool fetch_orphans;           /* a connection closed: parked fetches may have lost theirs */
    uint64_t retention_timer;
    uint64_t flush_timer;
    uint64_t producer_expiry_timer;
    uint64_t checkpoint_timer;
    bool stopping;
    int64_t drain_deadline_ms; /* shutdown: stop waiting for in-flight syncs then */
    bool drain_flushed;
    /* Consumer groups (groups.c): the coordinator, and its host in __consumer_offsets
     * (its loading, appends and timer). */
    struct grp_coordinator *groups;
    struct itopic_host *groups_host;
    struct delays *delays;                 /* delayed delivery (delays.c); NULL until started */
    struct delay_learning *delay_learning; /* target partitions to tell (delays.c) */
    struct peers *peers; /* requests to other brokers (peers.c); NULL until the first */
    /* Transactions (txns.c): the coordinator and its host in __transaction_state, the
     * markers being written, and completions queued for the idle hook. */
    struct txn_coordinator *txns;
    struct itopic_host *txns_host;
    uint64_t txns_generation; /* bumped at every start: late producer ids are dropped */
    struct marker_job *marker_jobs;
    struct add_wait *txn_adds; /* server_txn_add_partitions: one asking per id, in order */
    bool txn_transitioned;     /* the coordinator completed a transition since the idle hook */
    struct txn_deferred *txn_deferred, *txn_deferred_tail;
    bool txn_topic_asked;    /* the creation of __transaction_state is on its way */
    bool groups_topic_asked; /* the controller's creation of __consumer_offsets is on its way */
    bool delay_topic_asked;  /* and of __samsa_delay (asked for by a delayed produce) */
    int64_t groups_controller_since_ms; /* this node has been the controller since (0: not) */
    /* Log cleaner (compaction.c). */
    struct syncer *cleaner;
    uint64_t cleaner_timer;
    bool clean_in_flight;
    size_t clean_cursor;         /* where the next search for a partition to clean starts */
    struct hmap start_offsets;   /* "topic-partition" -> int64 log start, from checkpoint */
    struct hmap recovery_points; /* "topic-partition" -> int64 recovery point */
    /* Removing deleted topics' directories (partitions.c): its own thread, so that big
     * unlinks never delay a group-commit round; stopping leaves the rest to start-up. */
    struct syncer *remover;
    atomic_bool removal_stop;
    /* Idempotent producers: the ids of the block reserved last, and the requests
     * waiting while the next block is reserved (init_producer_id.c). */
    int64_t next_producer_id, producer_id_block_end;
    struct producer_id_wait *producer_id_waits, *producer_id_waits_tail;
    bool producer_ids_reserving;
    int log_dir_lock_fd; /* holds the flock on <log_dir>/.lock; -1 before */
    /* Topics whose new partitions are opened a slice at a time (partitions.c). */
    struct topic_state **opening;
    size_t opening_count, opening_cap;
    uint64_t open_timer;
    /* The metadata quorum's links to the other voters (quorum_link.c); NULL for one. */
    struct quorum_link *quorum_link;
    int32_t advertised_port; /* the client listener's, as registered */
    /* Follower fetchers, one per leader broker followed (replication.c). */
    struct fetch_source **fetch_sources;
    size_t fetch_source_count;
    /* Replication quotas (KIP-73): what this node sends to throttled followers as their
     * leader (handlers/fetch.c), and what it copies for its throttled replicas as a
     * follower (replication.c). Which partitions are throttled: topic_settings. */
    struct repl_quota leader_quota;
    struct repl_quota follower_quota;
    uint64_t isr_timer;       /* ISR checks of led partitions (alter_partition.c) */
    uint64_t isr_request_seq; /* AlterPartition requests sent, to match their answers */
    uint64_t shutdown_timer;  /* a controlled shutdown's deadline (server.c) */
    uint64_t balance_timer;   /* preferred-leader elections (leader_balance.c) */
};

/* A helper thread for blocking work: syncer_create, or a manual syncer when the server
 * was created with manual_io. (Here, not in server.c, so that the files that start
 * syncers do not call up into the one that starts them.) */
static inline int server_syncer_create(struct server *s, int threads, struct syncer **out)
{
    return s->manual_io ? syncer_create_manual(out) : syncer_create(out, threads);
}

/* ---- partitions (partitions.c) ---- */
/* The partition if this node hosts it; NULL for an unknown one, one still being opened,
 * or another broker's (server_partition_absent says which error a client gets). */
struct partition *server_partition(struct server *s, struct slice topic, int32_t index);
/* The Kafka error for a partition server_partition did not give: NOT_LEADER_OR_FOLLOWER
 * for another broker's, else UNKNOWN_TOPIC_OR_PARTITION. */
int16_t server_partition_absent(struct server *s, struct slice topic, int32_t index);
/* The partition's leader and leader epoch as the metadata has them, for the KIP-951 hints
 * that come with NOT_LEADER_OR_FOLLOWER. The leader's broker (NULL: none, or fenced). */
const struct mbroker *server_partition_leader(struct server *s, struct slice topic, int32_t index,
                                              int32_t *leader, int32_t *leader_epoch);
/* The partition a ListOffsets or OffsetForLeaderEpoch entry names, checked with
 * partition_check_leader against the leader epoch the client says it knows (-1: it does
 * not say). NULL with *error set to the partition's Kafka error when this node does not
 * host or lead it or the epoch is not ours; *error is untouched otherwise. */
struct partition *server_partition_at_epoch(struct server *s, struct slice topic, int32_t index,
                                            int32_t current_leader_epoch, int16_t *error);
struct topic_state *server_topic(struct server *s, struct slice topic);
/* Fills the effective log config of a topic: its own settings over broker defaults. */
void server_topic_log_config(const struct server *s, const struct mtopic *t,
                             struct log_config *out);
/* Effective string value of a topic config and whether it came from the topic itself
 * (1), the broker's file (4) or the default (5): Kafka's DescribeConfigs sources. */
const char *server_topic_config_value(const struct server *s, const struct mtopic *t,
                                      const char *name, int8_t *source);
int server_open_all_partitions(struct server *s);

/* ---- the log dir at start-up (log_dir.c) ---- */
/* Takes <log_dir>/.lock (flock) so that no second broker or recovery uses the dir. */
int server_lock_log_dir(const char *log_dir, int *fd_out);
/* Refuses (-1, logged) when the metadata log was missing or empty although the log dir
 * holds partition directories with data. */
int server_check_metadata_accounts_for_data(struct server *s);
/* Removes directories the deletion protocol marked; moves every other directory that
 * no partition of the metadata names to <log_dir>/quarantine/. */
void server_sort_out_unknown_dirs(struct server *s);
void server_close_all_partitions(struct server *s);
int server_cluster_event(void *arg, enum cluster_event ev, const struct mtopic *t,
                         int32_t partition);
/* samsa.max.partitions when the configuration does not set it (partitions.c). */
int64_t server_default_max_partitions(void);
/* If the topic's partitions are still being opened, arranges done(arg, error) for when
 * that ends (KERR_NONE, or the error that stopped it) and returns true; returns false,
 * without calling done, when there is nothing to wait for. */
bool server_topic_wait_open(struct server *s, struct slice topic,
                            void (*done)(void *arg, int16_t error), void *arg);
/* Forgets a wait arranged with that arg: done will not be called. */
void server_topic_wait_cancel(struct server *s, struct slice topic, void *arg);
/* Starts creating a topic with broker defaults (auto-creation); the outcome is logged.
 * Clients learn of the topic from a later Metadata request, as from Kafka. */
void server_auto_create_topic(struct server *s, struct slice name);
/* Writes checkpoint files of every hosted partition, as they are now: recovery points
 * (log.flush.offset.checkpoint.interval.ms, shutdown) and log start offsets
 * (DeleteRecords, deletions); with sync_log_dir, first fsyncs the log dir (renames of
 * deleted partitions). Collected now; written on the metadata thread while serving
 * (never on the loop), in order with every other checkpoint write and metadata change,
 * else inside the call. Then done(arg, rc) on the loop (may be NULL): rc 0 or the first
 * storage error, already logged. */
#define CHECKPOINT_RECOVERY_POINTS 1u
#define CHECKPOINT_START_OFFSETS 2u
void server_write_checkpoints(struct server *s, unsigned which, bool sync_log_dir,
                              void (*done)(void *arg, int rc), void *arg);
/* The same inside the call, when the metadata thread is not running: 0 or an error. */
int server_write_checkpoints_now(struct server *s, unsigned which);

/* ---- group commit (commit.c) ---- */
/* Called after an append: wakes fetches parked on p; marks p for the next sync round
 * when durability is wanted now (acks=all) or the flush policy says so. */
void server_after_append(struct server *s, struct partition *p, bool want_sync);
/* The idle hook: submits one sync round if none is in flight and one is wanted. */
void server_commit_idle(struct server *s);
void server_flush_policy_tick(struct server *s);
/* Something (a produce request, an internal write) waiting until partitions are
 * durable up to given offsets: done(arg) runs once every (partition, offset) added is
 * durable, or failed (its error slot then holds the Kafka error). */
struct durable_wait;
struct durable_wait *durable_wait_new(void (*done)(void *arg), void *arg);
void durable_wait_add(struct durable_wait *w, struct partition *p, int64_t offset,
                      int16_t *error_slot);
/* The same for an acks=all produce: of a replicated partition, the high watermark must
 * pass offset too (the in-sync replicas have it). */
void durable_wait_add_acked(struct durable_wait *w, struct partition *p, int64_t offset,
                            int16_t *error_slot);
void durable_wait_submit(struct server *s, struct durable_wait *w);
void server_partition_forget(struct server *s, struct partition *p);
/* p stopped leading: its acks=all waits fail (NOT_LEADER_OR_FOLLOWER) and its parked
 * fetches answer now. */
void server_partition_demoted(struct server *s, struct partition *p);
/* p's high watermark moved: acks=all waits and consumers' long polls look again. */
void server_high_watermark_moved(struct server *s, struct partition *p);

/* ---- follower fetchers (replication.c) ----
 * A partition this node follows is copied from its leader by the fetcher for that
 * leader: one connection and one Fetch at a time per leader broker, every partition
 * followed from it in each request (Kafka's replica fetcher threads, on the loop). */
/* p follows p->leader_id (another broker) now: fetch it from there. Partitions that
 * stop following a leader are dropped by its fetcher when it next looks. */
void server_replication_follow(struct server *s, struct partition *p);
/* Start-up: fetches the partitions opened as followers before the loop existed. */
void server_replication_start(struct server *s);
/* Closes the fetchers' connections (shutdown); server_replication_free frees them. */
void server_replication_stop(struct server *s);
void server_replication_free(struct server *s);

/* ---- ISR maintenance (alter_partition.c) ---- */
#define SERVER_API_ALTER_PARTITION 56
/* Asks the active controller to change p's ISR if it should change (p leads): a
 * follower that fell behind leaves it; fetched_from (-1: none, the periodic check) may
 * join it, having just fetched. Resends a request that went unanswered. */
void server_isr_check(struct server *s, struct partition *p, int32_t fetched_from);
/* The periodic check of every led partition (replica.lag.time.max.ms / 2). */
void server_isr_start(struct server *s);
void server_isr_stop(struct server *s);
/* The controller listener's AlterPartition: 0, or -1 when it does not decode. */
int server_serve_alter_partition(struct server *s, const struct request_header *hdr,
                                 struct reader *rd, struct net_reply *r);

/* ---- leader balance (leader_balance.c) ---- */
/* Whether the partition's preferred replica (its first) could lead and does not. */
bool server_preferred_leader_wanted(struct server *s, const struct mpartition *mp);
/* The active controller's periodic preferred-leader elections (auto.leader.rebalance). */
void server_leader_balance_start(struct server *s);
void server_leader_balance_stop(struct server *s);

/* ---- the metadata quorum's links (quorum_link.c) ---- */
/* With several voters: listens on the controller listener, carries the quorum's Raft
 * messages to the other voters and ticks its clock. Nothing with one voter. 0 or -1
 * (logged). */
int server_quorum_link_start(struct server *s);
void server_quorum_link_stop(struct server *s);
/* The controller listener's port (0: none). */
int server_quorum_link_port(const struct server *s);
/* Producer ids handed out per reservation: Kafka's block size (ProducerIdManager), one
 * metadata-log write per 1,000 producers. */
#define SERVER_PRODUCER_ID_BLOCK 1000
/* Reserves a block of SERVER_PRODUCER_ID_BLOCK producer ids for this broker: in the
 * metadata log here when this node is the active controller (or the only one), else
 * through AllocateProducerIds to it. done gets CLUSTER_ERR_NOT_CONTROLLER (retriable)
 * when no controller answers. */
void server_allocate_producer_ids(struct server *s, cluster_done_fn done, void *arg);
/* Sends a request that the active controller answers to it, over the controller
 * listener: the link writes the header, body is the encoded request. on_answer(arg, r)
 * gets the response after its header, or r NULL when the connection closed first.
 * false, and no call, when no other node is the active controller or it cannot be
 * reached now. */
bool server_controller_send(struct server *s, int16_t api_key, int16_t api_version,
                            const struct buf *body, void (*on_answer)(void *arg, struct reader *r),
                            void *arg);
/* Controlled shutdown (SIGTERM in a cluster): heartbeats ask the active controller to
 * move this broker's leaderships (KIP-631's WantShutDown); its answer stops the loop.
 * false when there is nothing to ask (a node on its own, not registered): stop now. */
bool server_controlled_shutdown(struct server *s);
/* Whether this process may lead partitions: alone, always; in a cluster, once the
 * metadata holds its own registration (this incarnation), unfenced. A restarted broker
 * finds itself leader in the metadata it had before: obeying that would take writes at
 * an old leader epoch, which after a power loss could give one epoch two histories. Its
 * registration moves those leaderships away, and they come back at new epochs. */
bool server_may_lead(struct server *s);
/* This broker's epoch from its registration with the active controller; -1: none. */
int64_t server_broker_epoch(const struct server *s);
/* Sends a client's request that only the active controller can answer to it (over the
 * controller listener, as a Kafka broker forwards DescribeQuorum) and relays its answer.
 * false when there is no other controller to ask now: the caller answers. If the
 * connection closes first, fallback(req) answers. */
bool server_forward_to_controller(struct server *s, struct request *req,
                                  void (*fallback)(struct request *req));

/* ---- requests to other brokers (peers.c) ----
 * Requests this broker makes of another broker's client listener, as a client would
 * (delayed delivery's forwarded produces and deliveries): one connection per broker, at
 * the address its registration gives, opened by the first request. */
struct peers;
/* The answer to a request: err 0 and the reader at the response body (after its
 * header), or -errno when none came (-ETIMEDOUT, -ECANCELED at shutdown, how the
 * connection failed, -EBADMSG for a response header cut short). */
typedef void (*peer_done_fn)(void *arg, int err, struct reader *body);
/* Sends frame (a request header, as proto_request_header_encode writes it, then the
 * body; its correlation id is overwritten) to broker node; done runs once, from the
 * loop. 0, or -errno when nothing was sent and done will not run (-EHOSTUNREACH: no
 * such broker registered). */
int server_peer_send(struct server *s, int32_t node, struct buf *frame, int64_t timeout_ms,
                     peer_done_fn done, void *arg);
/* At shutdown: what is in flight fails with -ECANCELED. */
void server_peers_stop(struct server *s);

/* ---- metadata changes (changes.c) ---- */
/* Starts writing the metadata log on its own thread (until then, at start-up, changes
 * complete inside the submitting call). */
int server_metadata_io_start(struct server *s);
/* Finishes the change being written; later ones are written inside their calls. */
void server_metadata_io_stop(struct server *s);
/* A change's result kept for a start-up call, which completes inside the submission. */
struct change_outcome {
    bool done;
    int err;
    char why[256];
    int64_t first_producer_id;
};
void change_outcome_keep(void *arg, const struct cluster_result *res);
/* A request answered once every metadata change it submitted is done: embed it,
 * change_wait_begin, submit each change with the callback and arg of change_wait_slot
 * (which fills that change's error code and message), then change_wait_end. respond
 * runs once, after the last. */
struct change_wait {
    struct request *req;
    int32_t pending; /* changes not done, plus one until change_wait_end */
    void (*respond)(struct change_wait *w);
};
void change_wait_begin(struct change_wait *w, struct request *req,
                       void (*respond)(struct change_wait *w));
cluster_done_fn change_wait_slot(struct change_wait *w, int16_t *error_code,
                                 struct slice *error_message, void **arg);
void change_wait_end(struct change_wait *w);

/* ---- internal topics (internal_topics.c) ---- */
/* Creates an internal topic if it does not exist. 0 or -1 after logging. */
int server_ensure_internal_topic(struct server *s, const char *name, int32_t partitions,
                                 const struct config_entry *configs, size_t config_count);
/* The replication factor of an internal topic created in a cluster (__consumer_offsets,
 * __samsa_delay): offsets.topic.replication.factor, as far as the unfenced brokers allow.
 * Kafka waits for enough brokers instead, which would leave a cluster smaller than the
 * default 3 without groups (docs/compatibility.md). */
int16_t server_internal_replication_factor(struct server *s);

/* Appends the broker's own batch (whole, validated; patched in place) to p, which this
 * node leads, and calls done(arg, error) once it is durable and on the in-sync replicas
 * (acks=all), or failed (at once, when the append itself fails). */
void server_append_durable(struct server *s, struct partition *p, uint8_t *batch, size_t len,
                           void (*done)(void *arg, int16_t error), void *arg);

/* In a cluster, where only the active controller creates topics: asks for an internal
 * topic with a CreateTopics sent, as a client's would be, to this broker's own listener,
 * which forwards it there (KIP-590). *asked is true while the ask is on its way (no
 * second one then). configs are borrowed for the call. */
void server_ask_for_topic(struct server *s, const char *name, int32_t partitions, int16_t rf,
                          const struct config_entry *configs, size_t config_count, bool *asked);

/* ---- state machines kept in internal topics: their host (internal_topics.c) ----
 * A pure state machine whose state lives in the records of an internal topic: the group
 * coordinator in __consumer_offsets; next the transaction coordinator in
 * __transaction_state. The machine knows nothing of the server or the loop; the host
 * knows nothing of what the machine is. (The delay store, server/delays.c, uses the host
 * for loading, leadership and its timer but appends to its partitions itself: each
 * envelope's key names the offset it gets, known only when appending on the loop.) The
 * host owns:
 *   - the topic: created if missing; an existing topic keeps its partition count;
 *   - loading: every partition read at start-up, record by record, into the machine;
 *   - appends: the machine's append callback calls itopic_host_append, which copies and
 *     queues; the idle hook starts them, so the machine is never re-entered from inside
 *     its own append call, and m.append_done always arrives from outside any call into
 *     it, once the records are durable (acks=all) or failed;
 *   - time: one loop timer, re-armed for m.next_deadline after every call into the
 *     machine (calls the host makes itself, and itopic_host_called after the others).
 * Start: itopic_host_open (the partition count is known from here), create the machine
 * with itopic_host_partitions, itopic_host_load. The idle hook calls itopic_host_idle.
 * Stop: itopic_host_stop. All on the loop thread; now_ms is the wall clock. */
struct itopic_machine {
    void *sm;         /* passed to every op */
    const char *what; /* names the state in log lines: "group" */
    /* Start-up load of one partition: begin, every record that has a key in offset order
     * (with its offset; value.ptr NULL: a tombstone; bytes borrowed for the call), end.
     * load_record returns nonzero for a malformed record: counted, logged, skipped. */
    void (*load_begin)(void *sm, int32_t partition, int64_t now_ms);
    int (*load_record)(void *sm, int32_t partition, int64_t offset, struct slice key,
                       struct slice value);
    /* Optional: records of a transactional batch of producer_id (without it they go to
     * load_record), and transaction markers, as the load meets them. */
    int (*load_txn_record)(void *sm, int32_t partition, struct slice key, struct slice value,
                           int64_t producer_id);
    void (*load_marker)(void *sm, int32_t partition, int64_t producer_id, bool commit);
    void (*load_end)(void *sm, int32_t partition, int64_t now_ms);
    /* This node no longer leads the partition: forget its state (loaded again, with
     * load_begin, when it leads it again). */
    void (*unload)(void *sm, int32_t partition);
    /* Once per itopic_host_append, until stop: error is KERR_NONE, the log's error, or
     * KERR_NOT_COORDINATOR when the partition is gone (the topic was deleted). */
    void (*append_done)(void *sm, int64_t now_ms, void *token, int16_t error);
    void (*tick)(void *sm, int64_t now_ms);
    int64_t (*next_deadline)(void *sm); /* earliest tick with work; INT64_MAX: none */
    /* At stop, after the timer is cancelled: frees the machine, which may answer what
     * waits on it but must not append. */
    void (*destroy)(void *sm);
};
struct itopic_host;
struct itopic_load_stats {
    size_t records; /* read from every partition, malformed and keyless included */
    int64_t elapsed_ms;
};
/* Finds the topic, or creates it with partitions and configs (borrowed), and a host
 * for it in *out (owned by the caller until itopic_host_stop). 0, or -1 after logging. */
int itopic_host_open(struct server *s, const char *topic, int32_t partitions,
                     const struct config_entry *configs, size_t config_count,
                     struct itopic_host **out);
/* The topic's actual partition count: the machine's partitions are [0, this). */
int32_t itopic_host_partitions(const struct itopic_host *h);
/* Hands the machine to the host (m is copied; the host destroys m.sm at stop, also
 * when loading fails) and loads every partition this node leads into it, then arms the
 * timer. stats may be NULL. 0, or -1 after logging: a partition unreadable. */
int itopic_host_load(struct itopic_host *h, const struct itopic_machine *m,
                     struct itopic_load_stats *stats);
/* A partition of the host's topic changed leader: the machine loads it when this node
 * now leads it, and unloads it when it no longer does. h may be NULL. */
void itopic_host_leadership(struct itopic_host *h, int32_t partition);
/* The machine's state of a partition it leads is to be built again from the log (it
 * found what it keeps beside the log damaged): unloaded and loaded again by the idle
 * hook, so this may be called from inside a call into the machine. */
void itopic_host_reload(struct itopic_host *h, int32_t partition);
/* The machine's append: records (borrowed for the call) go to partition, and
 * m.append_done(token) follows later. Copied and queued; started by itopic_host_idle. */
void itopic_host_append(struct itopic_host *h, int32_t partition, const struct record_in *recs,
                        size_t n, void *token);
/* The same as one transactional batch of producer (id, epoch), with the next sequence of
 * that producer in the partition (TxnOffsetCommit's records). */
void itopic_host_append_txn(struct itopic_host *h, int32_t partition, const struct record_in *recs,
                            size_t n, int64_t producer_id, int16_t producer_epoch, void *token);
/* After every call into the machine made outside the host: re-arms the timer. h may be
 * NULL (no host). */
void itopic_host_called(struct itopic_host *h);
/* The idle hook: starts the queued appends, in order. h may be NULL. */
void itopic_host_idle(struct itopic_host *h);
/* Cancels the timer, destroys the machine, frees the queued appends without calling
 * back. Appends in flight complete into the void; the host frees itself after the
 * last. h is gone for the caller (may be NULL: nothing to do). Not from inside a call
 * the host makes into the machine. */
void itopic_host_stop(struct itopic_host *h);

/* ---- transactions (txns.c) ----
 * The transaction coordinator (src/txn), hosted in __transaction_state, which is
 * created when a client first looks for a transaction coordinator. */
/* A request waiting for the coordinator's answer (its ctx): respond encodes the
 * handler's response. Allocated in the request's arena; handlers may embed it first in a
 * larger struct. */
struct txn_call {
    struct request *req;
    void (*respond)(struct txn_call *call, const struct txn_answer *a);
};
int server_txns_start(struct server *s);
void server_txns_stop(struct server *s);
/* From the quorum link's tick (a cluster): starts once __transaction_state exists. */
void server_txns_poll(struct server *s);
void server_txns_idle(struct server *s);
void server_txns_leadership(struct server *s, const char *topic, int32_t partition);
/* After every call into the coordinator made outside the host. */
void server_txns_called(struct server *s);
/* The coordinator's error as a client of this version expects it: PRODUCER_FENCED is
 * INVALID_PRODUCER_EPOCH before fenced_since, the version that defines it (Kafka's
 * mapping). */
int16_t server_txn_error(int16_t error, int16_t version, int16_t fenced_since);
/* KERR_NONE when s->txns can be asked, else the error to answer. */
int16_t server_txns_ready(struct server *s);
/* What a partition's leader (or a group coordinator) asks a transaction coordinator
 * about a producer's partitions (KIP-890). */
enum txn_ask {
    TXN_ASK_VERIFY,   /* part 1: may its batch open the transaction there (VerifyOnly)? */
    TXN_ASK_ADD,      /* part 2 (transaction version 2): add them to its transaction */
    TXN_ASK_ADD_HERE, /* the same, asked by another broker: this node's coordinator only */
};
/* Asks the coordinator of transactional_id about producer (id, epoch)'s parts (topics
 * borrowed for the call), as its first transactional batch for them arrives: this
 * node's coordinator directly, another broker's with AddPartitionsToTxn v5. For ADD,
 * CONCURRENT_TRANSACTIONS (the previous transaction's markers are still being written)
 * is asked again every 20 ms for up to 100 ms, as Kafka's
 * add.partitions.to.txn.retry.backoff.ms / .max.ms. done(arg, errors) runs once, from
 * the loop (never before this returns), with the coordinator's error for each part
 * (Kafka's codes; a coordinator that cannot be reached: COORDINATOR_NOT_AVAILABLE).
 * Asks for the same transactional id are answered in the order they were made, one
 * after another: a producer's pipelined requests then append in their order (a later
 * batch whose add got through first would be out of sequence). ADD_HERE is answered by
 * this node's coordinator or NOT_COORDINATOR, never sent on (two brokers that each
 * believe the other coordinates would bounce it). */
void server_txn_add_partitions(struct server *s, struct slice transactional_id, int64_t producer_id,
                               int16_t producer_epoch, const struct txn_partition *parts, size_t n,
                               enum txn_ask ask, void (*done)(void *arg, const int16_t *errors),
                               void *arg);
/* A coordinator's answer to an ask as the request that waited on it answers its client
 * (Kafka's AddPartitionsToTxnManager): a coordinator that cannot answer is
 * NOT_ENOUGH_REPLICAS (retriable by every producer), PRODUCER_FENCED is
 * INVALID_PRODUCER_EPOCH, CONCURRENT_TRANSACTIONS stays itself for an add (version 2
 * clients retry it) and is NOT_ENOUGH_REPLICAS for a verification; others as they are. */
int16_t server_txn_ask_error(int16_t error, enum txn_ask ask);
/* Answers every waiting ask COORDINATOR_NOT_AVAILABLE, now (shutdown). */
void server_txn_adds_stop(struct server *s);
/* Called by the idle hook after this node's coordinator completed a transition
 * (s->txn_transitioned): asks waiting on CONCURRENT_TRANSACTIONS are made again now rather
 * than at their next retry. */
void server_txn_adds_wake(struct server *s);
/* A transaction marker for a partition: what the coordinator decided. */
struct txn_marker {
    int64_t producer_id;
    int16_t producer_epoch;
    bool commit;
    int32_t coordinator_epoch;
    int16_t txn_version; /* the client's transaction version */
};
/* Appends m's marker to p, which this node leads, and calls done(arg, error) once it is
 * durable and on the in-sync replicas, or refused (possibly before this returns). A
 * marker of transaction version 2 must carry an epoch above the producer's in p
 * (KIP-1228): INVALID_PRODUCER_EPOCH otherwise. Once durable in __consumer_offsets, it
 * completes the offsets its transaction committed there. */
void server_append_marker(struct server *s, struct partition *p, const struct txn_marker *m,
                          void (*done)(void *arg, int16_t error), void *arg);
/* FindCoordinator, key type 1: the broker leading the id's partition of
 * __transaction_state (KERR_NONE, *out set), or COORDINATOR_NOT_AVAILABLE (the topic is
 * created on the first ask). */
int16_t server_txn_coordinator(struct server *s, struct slice transactional_id,
                               const struct mbroker **out);
/* InitProducerId with a transactional id (handlers/init_producer_id.c). */
struct init_producer_id_request;
void server_txn_init_producer_id(struct request *req, const struct init_producer_id_request *in);
/* A fresh producer id from this node's blocks (init_producer_id.c); done is called once,
 * possibly before this returns. */
void server_new_producer_id(struct server *s,
                            void (*done)(void *arg, int16_t error, int64_t producer_id), void *arg);

/* ---- delayed delivery (delays.c) ----
 * The delay store in __samsa_delay and its mover, on one node or in a cluster
 * (docs/architecture.md, "Delayed delivery"). */
struct delays;
/* Loads __samsa_delay, if it exists (the first delayed produce creates it), and starts
 * delivering. 0 or -1 (logged). */
int server_delays_start(struct server *s);
void server_delays_stop(struct server *s);
/* SamsaDelayStore's work (handlers/samsa_delay_store.c): appends the request's items to
 * its delay partition, which this node must lead. KERR_NONE with *base_offset and
 * *appended (to wait on as acks ask), or the refusal, with *why (in the request's arena)
 * when there is more to say. */
int16_t server_delay_store(struct request *req, const struct samsa_delay_store_request *in,
                           int64_t *base_offset, struct slice *why, struct partition **appended);
/* SamsaDelayProducers' work: out (its index set) gets the last delayed batch of each
 * idempotent producer for that target partition, from its delay partition, which this
 * node must lead (else NOT_LEADER_OR_FOLLOWER). */
void server_delay_producers(struct request *req, struct slice topic,
                            struct samsa_delay_producers_response_topics_partitions *out);
/* The idle hook's part: a delay partition's state built again when it asked; target
 * partitions this node now leads told of their producers' delayed batches. */
void server_delays_idle(struct server *s);
/* A partition changed leader: of __samsa_delay, its delays are loaded or dropped; of
 * another topic, when this node now leads it, it learns the sequence numbers its
 * idempotent producers' delayed batches used (SamsaDelayProducers). */
void server_delays_leadership(struct server *s, const char *topic, int32_t partition);
/* The produce path, for a batch (already validated) of a topic with samsa.delay.enable
 * whose records may carry delivery headers: false when none does (an ordinary produce,
 * nothing done). Else true, with *error the partition's answer: KERR_NONE with the
 * records stored in the delay store (out->base_offset its offset; *appended the delay
 * partition appended to, for acks, or NULL for a retry already stored), or the refusal
 * (a malformed header: INVALID_RECORD naming it; out->error_message says why). When the
 * delay partition is led elsewhere, the records are sent there and out is filled in
 * when it answers (produce_answer_pending, then produce_answer_arrived). */
bool server_delay_produce(struct request *req, struct partition *p, int16_t acks,
                          int32_t timeout_ms, struct slice records,
                          struct produce_response_responses_partition_responses *out,
                          struct partition **appended, int16_t *error);

/* ---- log cleaner (compaction.c) ---- */
int server_cleaner_start(struct server *s);
void server_cleaner_stop(struct server *s);

/* ---- consumer groups (groups.c and the group handlers) ---- */
/* The coordinator, hosted in __consumer_offsets (s->groups, s->groups_host): it
 * coordinates the groups of the partitions this node leads. A single node creates the
 * topic and starts it at start-up. */
int server_groups_start(struct server *s);
void server_groups_stop(struct server *s);
/* In a quorum of several, every quorum tick until the coordinator runs: the active
 * controller creates __consumer_offsets (once brokers are registered, so that its
 * partitions are spread), and every node starts its coordinator once the topic's
 * partitions it holds are open. */
void server_groups_poll(struct server *s);
/* A partition of __consumer_offsets changed leader: its groups are loaded or dropped. */
void server_groups_leadership(struct server *s, const char *topic, int32_t partition);
/* The broker coordinating a group (the leader of its __consumer_offsets partition), or
 * NULL when there is none now (no topic yet, a partition without a leader). */
const struct mbroker *server_group_coordinator(struct server *s, struct slice group_id);
/* Removes the committed offsets of a deleted topic from every group. */
void server_groups_topic_deleted(struct server *s, const char *topic);
/* A transaction marker of producer_id is durable in partition of __consumer_offsets: the
 * offsets it committed there in the transaction are applied or dropped. */
void server_groups_txn_marker(struct server *s, int32_t partition, int64_t producer_id,
                              bool commit);
/* After every call into the coordinator: re-arms its timer. */
void server_groups_called(struct server *s);
/* Completion callbacks the coordinator calls; each answers the request in ctx. */
void group_join_done(void *ctx, const struct grp_join_resp *resp);
void group_sync_done(void *ctx, const struct grp_sync_resp *resp);
void group_heartbeat_done(void *ctx, const struct grp_heartbeat_resp *resp);
void group_leave_done(void *ctx, const struct grp_leave_resp *resp);
void group_commit_done(void *ctx, const struct grp_commit_resp *resp);
/* OffsetCommit's path (handlers/offset_commit.c), also for TxnOffsetCommit: with
 * txn_producer_id >= 0 the commit is inside that producer's transaction. */
struct offset_commit_request;
void offset_commit_start(struct request *req, const struct offset_commit_request *in,
                         int64_t txn_producer_id, int16_t txn_producer_epoch);
/* TxnOffsetCommit's answer (handlers/txn_offset_commit.c). */
void txn_offset_commit_respond(struct request *req, const struct grp_commit_resp_topic *topics,
                               size_t n);
void group_fetch_done(void *ctx, const struct grp_fetch_resp *resp);
void group_describe_done(void *ctx, const struct grp_describe_resp *resp);
void group_list_done(void *ctx, const struct grp_list_resp *resp);
void group_delete_groups_done(void *ctx, const struct grp_delete_groups_resp *resp);
void group_offset_delete_done(void *ctx, const struct grp_offset_delete_resp *resp);
/* The peer's address as text, in the request's arena ("" if the connection is gone). */
struct slice request_peer(struct request *req);
/* A manual replica assignment's next partition names count brokers: NULL and *width
 * set (the first partition's count, which every other must match), or why not, as
 * Kafka words it (in the request's arena). *width starts at -1. */
const char *request_assignment_width_error(struct request *req, int32_t count, int32_t *width);

/* ---- fetch long poll (handlers/fetch.c) ---- */
/* Drops parked fetches whose connection closed (see s->fetch_orphans). */
void fetch_drop_orphans(struct server *s);
/* Fetch responses with file data (fetch_sendfile.c): a records field is encoded as a
 * marker, then each marker is replaced on the wire by its file range, sent with
 * sendfile(2) or copied with pread straight into the reply. */
#define FETCH_MAX_FILE_RANGES 4096
struct slice fetch_file_marker(size_t index);
void fetch_send_with_files(struct request *req, const struct buf *encoded,
                           const struct log_read_result *files, const bool *as_file, size_t n);

/* ---- requests (dispatch.c) ---- */
void server_on_request(struct net_conn *c, struct slice frame, struct net_reply *r, void *arg);
/* A request on the controller listener (quorum_link.c): served as on the client listener,
 * except that metadata changes are never forwarded from there. */
void server_on_controller_listener_request(struct net_conn *c, struct slice frame,
                                           struct net_reply *r, struct server *s);
/* The controller id clients are told (Metadata, DescribeCluster for brokers): the active
 * controller when it is a broker they can reach, else this node (which forwards metadata
 * changes to it), as a KRaft broker names a broker. -1: none. */
int32_t server_client_controller_id(struct server *s);
void server_on_close(struct net_conn *c, void *arg);
/* Writes the response header into the reply and returns the body buffer. */
struct buf *request_response_begin(struct request *req);
/* Sends the reply and frees the request. */
void request_response_end(struct request *req);
/* Fills the ApiVersions list: every API with both a schema and a handler. */
size_t server_fill_api_keys(struct api_versions_response_api_keys *keys, size_t max);
/* Completes without a response (acks=0), freeing the request. */
void request_drop(struct request *req);
void request_free(struct request *req);
/* The body did not decode: Kafka closes the connection. Frees the request. */
void request_malformed(struct request *req);

#define REQUEST_RESPOND(req, msg, resp_ptr)                                                        \
    do {                                                                                           \
        struct buf *b_ = request_response_begin(req);                                              \
        msg##_encode(b_, (req)->hdr.api_version, (resp_ptr));                                      \
        request_response_end(req);                                                                 \
    } while (0)

/* The *AuthorizedOperations fields: bit n set for Kafka's AclOperation code n. With no
 * authorizer Kafka reports every operation the resource type supports, and so does
 * Samsa (there are no ACLs); the sets are Kafka 4.4's answers. */
enum {
    ACL_READ = 3,
    ACL_WRITE,
    ACL_CREATE,
    ACL_DELETE,
    ACL_ALTER,
    ACL_DESCRIBE,
    ACL_CLUSTER_ACTION,
    ACL_DESCRIBE_CONFIGS,
    ACL_ALTER_CONFIGS,
    ACL_IDEMPOTENT_WRITE
};
#define ACL_BIT(op) (1 << (op))
#define TOPIC_AUTHORIZED_OPS                                                                       \
    (ACL_BIT(ACL_READ) | ACL_BIT(ACL_WRITE) | ACL_BIT(ACL_CREATE) | ACL_BIT(ACL_DELETE) |          \
     ACL_BIT(ACL_ALTER) | ACL_BIT(ACL_DESCRIBE) | ACL_BIT(ACL_DESCRIBE_CONFIGS) |                  \
     ACL_BIT(ACL_ALTER_CONFIGS))
#define GROUP_AUTHORIZED_OPS                                                                       \
    (ACL_BIT(ACL_READ) | ACL_BIT(ACL_DESCRIBE) | ACL_BIT(ACL_DELETE) |                             \
     ACL_BIT(ACL_DESCRIBE_CONFIGS) | ACL_BIT(ACL_ALTER_CONFIGS))
#define CLUSTER_AUTHORIZED_OPS                                                                     \
    (ACL_BIT(ACL_CREATE) | ACL_BIT(ACL_CLUSTER_ACTION) | ACL_BIT(ACL_DESCRIBE_CONFIGS) |           \
     ACL_BIT(ACL_ALTER_CONFIGS) | ACL_BIT(ACL_IDEMPOTENT_WRITE) | ACL_BIT(ACL_ALTER) |             \
     ACL_BIT(ACL_DESCRIBE))

/* n zeroed elements of type T from the request's arena. */
#define REQ_ALLOC(req, T, n) ((T *)arena_alloc(&(req)->arena, (size_t)(n) * sizeof(T)))
/* A NUL-terminated copy of a slice in the request's arena. */
#define REQ_CSTR(req, sl) arena_strndup(&(req)->arena, (const char *)(sl).ptr, (sl).len)

/* Config resource types (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs). */
#define CONFIG_RESOURCE_TOPIC 2
#define CONFIG_RESOURCE_BROKER 4
/* Why configs of a non-topic resource cannot be altered: the error code, and a message. */
int16_t config_alter_refusal(int8_t resource_type, struct slice *message);

/* A resource of AlterConfigs or IncrementalAlterConfigs as the shared checks see it
 * (handlers/alter_checks.c); arrays in the request's arena. */
struct alter_resource {
    int8_t type;
    struct slice name;
    int32_t n_configs;
    struct slice *config_names;
    bool *null_value; /* a null value the config's operation does not allow */
    bool duplicate;   /* set by alter_mark_duplicates */
};
/* Marks every resource whose (type, name) occurs more than once in rs[0..n). */
void alter_mark_duplicates(struct request *req, struct alter_resource *rs, int32_t n);
/* Kafka's checks of one resource before any change: KERR_NONE, or its error code with
 * *message set. */
int16_t alter_check_resource(struct request *req, const struct alter_resource *r,
                             struct slice *message);

/* Kafka error code for a storage or cluster error (kerr.c). */
int16_t kerr_from_storage(int err);
int16_t kerr_from_cluster(int err);

/* A produce (handlers/produce.c) one of whose partitions is answered later, by another
 * broker (delayed delivery's store): its response waits until each such answer arrived. */
void produce_answer_pending(struct request *req);
void produce_answer_arrived(struct request *req);
/* In a cluster, from the quorum link's tick: the delays start once __samsa_delay exists
 * and its partitions are open. */
void server_delays_poll(struct server *s);

/* Handlers: each decodes its request body, and answers now or later. */
#define SAMSA_HANDLERS(X)                                                                          \
    X(0, produce)                                                                                  \
    X(1, fetch)                                                                                    \
    X(2, list_offsets)                                                                             \
    X(3, metadata)                                                                                 \
    X(8, offset_commit)                                                                            \
    X(9, offset_fetch)                                                                             \
    X(10, find_coordinator)                                                                        \
    X(11, join_group)                                                                              \
    X(12, heartbeat)                                                                               \
    X(13, leave_group)                                                                             \
    X(14, sync_group)                                                                              \
    X(15, describe_groups)                                                                         \
    X(16, list_groups)                                                                             \
    X(18, api_versions)                                                                            \
    X(19, create_topics)                                                                           \
    X(20, delete_topics)                                                                           \
    X(21, delete_records)                                                                          \
    X(22, init_producer_id)                                                                        \
    X(23, offset_for_leader_epoch)                                                                 \
    X(24, add_partitions_to_txn)                                                                   \
    X(25, add_offsets_to_txn)                                                                      \
    X(26, end_txn)                                                                                 \
    X(27, write_txn_markers)                                                                       \
    X(28, txn_offset_commit)                                                                       \
    X(32, describe_configs)                                                                        \
    X(33, alter_configs)                                                                           \
    X(35, describe_log_dirs)                                                                       \
    X(37, create_partitions)                                                                       \
    X(42, delete_groups)                                                                           \
    X(43, elect_leaders)                                                                           \
    X(44, incremental_alter_configs)                                                               \
    X(45, alter_partition_reassignments)                                                           \
    X(46, list_partition_reassignments)                                                            \
    X(47, offset_delete)                                                                           \
    X(55, describe_quorum)                                                                         \
    X(60, describe_cluster)                                                                        \
    X(61, describe_producers)                                                                      \
    X(65, describe_transactions)                                                                   \
    X(66, list_transactions)                                                                       \
    X(10001, samsa_delay_store)                                                                    \
    X(10002, samsa_delay_producers)
#define X(key, name) void handle_##name(struct request *req);
SAMSA_HANDLERS(X)
#undef X

#endif
