/*
 * replica: what this node keeps per partition it hosts, and the operations that wait on
 * partitions (DESIGN.md, "replica/").
 *
 * ---- Partitions ----
 * A struct partition is one partition this node hosts: its log, its role (leader or
 * follower) and leader epoch, and what consumers may see of it (the high watermark).
 * Its life: partition_open (as a follower at epoch -1, not yet serving clients), then
 * partition_become_leader / partition_become_follower as the metadata says, and at the
 * end partition_close (the topic stays; the files too) or partition_delete (the topic
 * went away; the directory is renamed for removal). Background jobs (sync rounds,
 * cleaner runs) hold a partition so that a close while they run frees it only when the
 * last of them lets go (partition_hold / partition_release).
 *
 * The one function that checks a client's view of the leader is
 * partition_check_leader; the one place that says what a consumer may see is
 * partition_high_watermark. Loop thread only.
 *
 * Errors: partition_open, partition_delete and partition_append_as_leader return 0 or a
 * storage error code (storage.h; storage_strerror names it); partition_check_leader
 * answers a Kafka error code (proto.h), which goes to the client.
 *
 * ---- The purgatory ----
 * (Kafka's DelayedOperationPurgatory): one keyed facility for operations
 * that complete later. An operation watches keys — "partition P became durable further",
 * "data arrived at P", "P's high watermark moved" — and may have a deadline.
 *
 *   add       try the operation at once; if it cannot complete, it waits on its keys.
 *   notify    whoever changed what a key stands for queues the operations watching it.
 *   run       (the event loop's idle hook) retries the queued operations, oldest first,
 *             so a burst of appends costs one retry per waiting operation, not one each.
 *   expire    completes, as expired, every operation whose deadline has passed.
 *
 * An operation is completed exactly once — because its try_complete said it can, because
 * its deadline passed, or because the host forces it (shutdown) — or cancelled, which
 * calls nothing. The purgatory never touches an operation after completing or cancelling
 * it, so complete may free it, and complete may add, notify or cancel other
 * operations (it runs with the purgatory in a consistent state).
 *
 * No clock, no timers, no I/O: time arrives as now_ms arguments and the host arms one
 * timer for purgatory_next_deadline(), so tests drive the purgatory with a fake clock.
 * Loop thread only.
 *
 * The purgatory itself cannot fail (allocation failure aborts, as everywhere in Samsa).
 *
 * ---- Replication quotas ----
 * (KIP-73): a byte rate that copying throttled replicas may use, measured as Kafka's
 * ReplicationQuotaManager measures it (see struct repl_quota), and per topic the
 * partitions whose replicas count as throttled on this node. The host asks "exceeded?"
 * before sending (follower) or reading (leader) a throttled partition's data and records
 * what was sent afterwards, so a replica always gets whole batches and, the quota being
 * a rate over a window, gets them again once the window has room: throttling delays,
 * never starves. No clock here either: now_ms arrives as an argument.
 */
#ifndef SAMSA_REPLICA_H
#define SAMSA_REPLICA_H

#include "storage/storage.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- partitions ---- */

/* The partitions of a topic whose replicas a throttled-replicas config
 * (leader.|follower.replication.throttled.replicas) names on this node: every one ("*"),
 * or those listed with this node's id. Built by the host when configs change. */
struct throttled_partitions {
    bool all;
    int32_t count;
    int32_t *ids; /* sorted, distinct; owned by the topic's host (throttled_free) */
};
/* Replaces t's contents: every partition (all), else ids[0, n) (any order, repeats
 * allowed; copied). */
void throttled_set(struct throttled_partitions *t, bool all, const int32_t *ids, size_t n);
void throttled_free(struct throttled_partitions *t);
/* throttled_has's binary search of t->ids. */
bool throttled_listed(const struct throttled_partitions *t, int32_t partition);
/* Whether partition is throttled. Cheap when nothing is (the common case): two field
 * tests, no call. */
static inline bool throttled_has(const struct throttled_partitions *t, int32_t partition)
{
    return t->all || (t->count > 0 && throttled_listed(t, partition));
}

/* The topic configs a partition's request paths consult, parsed once when the topic is
 * opened or its configs change (by the host), so produce never parses strings. */
struct topic_settings {
    bool internal;  /* __consumer_offsets: clients may not write it */
    bool compacted; /* cleanup.policy includes compact */
    int64_t max_message_bytes;
    int64_t min_insync_replicas;
    int64_t flush_messages;          /* INT64_MAX: no policy */
    int64_t flush_ms;                /* INT64_MAX: no policy */
    enum compress_codec compression; /* compression.type */
    int compression_level;           /* compression.<codec>.level, 0 if none */
    bool create_time;                /* message.timestamp.type=CreateTime: stamps checked */
    int64_t timestamp_before_max_ms; /* message.timestamp.before.max.ms (>= 0) */
    int64_t timestamp_after_max_ms;  /* message.timestamp.after.max.ms (>= 0) */
    /* leader.replication.throttled.replicas: partitions whose followers this node, as
     * their leader, serves within leader.replication.throttled.rate */
    struct throttled_partitions leader_throttled;
    /* follower.replication.throttled.replicas: partitions this node, as a follower,
     * copies within follower.replication.throttled.rate */
    struct throttled_partitions follower_throttled;
    bool delay_enabled;   /* samsa.delay.enable: delivery headers are obeyed */
    int64_t delay_max_ms; /* samsa.delay.max.ms: the furthest due time accepted */
};

enum partition_role {
    PARTITION_FOLLOWER, /* copies a leader (or, just opened, waits to be told its role) */
    PARTITION_LEADER,   /* takes produce and serves fetch */
};

/* A follower as its leader sees it. */
struct replica_follower {
    int32_t node_id;
    /* The offset it last fetched from: it holds everything below (made durable first,
     * unless samsa.replica.fetch.sync is off). -1 until it fetches from this leader. */
    int64_t log_end;
    int64_t last_fetch_ms;
    int64_t log_end_at_last_fetch; /* the leader's log end when it last fetched */
    /* Last time it had everything the leader had (Kafka's lastCaughtUpTime); -1 until
     * the first ISR check of this leader's term, which counts as caught up. */
    int64_t caught_up_ms;
};

struct partition {
    const char *topic;                     /* the topic's name: borrowed from the host */
    const struct topic_settings *settings; /* the topic's: borrowed from the host */
    int32_t index;
    struct log *log; /* NULL once closed */
    enum partition_role role;
    int32_t leader_epoch; /* -1 until the first become_leader/become_follower */
    /* Replication, as the metadata assigns it (partition_set_assignment). Until then,
     * and on a node on its own, there are no replicas but this one (replica_count 0). */
    int32_t self_id;
    int32_t leader_id; /* -1: none */
    int32_t replica_count;
    int32_t *replicas;
    int32_t isr_count;
    int32_t *isr;
    int32_t follower_count; /* the replicas other than this node */
    struct replica_follower *followers;
    int32_t partition_epoch; /* the metadata's, sent with AlterPartition */
    /* An ISR this leader asked the controller for and has not heard back about: while
     * it may be written, the high watermark counts its members too (Kafka's maximal
     * ISR), so that a follower joining never misses what the watermark passes. */
    int32_t pending_isr_count; /* 0: nothing asked */
    int32_t *pending_isr;
    /* The host's bookkeeping of its requests: the newest one's id, and when to ask
     * again (a request unanswered, or a refusal not to repeat at once; 0: no wait). */
    uint64_t isr_request_id;
    int64_t isr_retry_at_ms;
    /* Of a partition with more than one replica: the leader's is the minimum over the
     * in-sync replicas' log ends, never going back while it leads; a follower's is the
     * leader's, as far as its own log reaches. */
    int64_t high_watermark;
    /* Group commit's bookkeeping (server/commit.c): queued for the next sync round. */
    bool sync_wanted;
    /* Lifetime: background jobs holding p, and whether p was closed under them. */
    int holds;
    bool closed;
};

/* What partition_open needs. Strings are borrowed for the call, except topic and
 * settings, which must outlive the partition. */
struct partition_spec {
    const char *dir;   /* the partition's directory: <log.dirs>/<topic>-<index> */
    const char *topic; /* kept */
    const struct topic_settings *settings; /* kept */
    int32_t index;
    const char *topic_id;   /* text; written to partition.metadata of a new directory */
    struct log_config log;  /* the topic's effective log configuration */
    int64_t recovery_point; /* from the checkpoint; -1: none */
    int64_t start_offset;   /* from the checkpoint; -1 or 0: none */
};

/* Opens (creating if needed) the partition's log as a follower at leader epoch -1.
 * 0 and *out, or a storage error (nothing opened). A failure to write the topic id or
 * to restore the start offset is logged, not fatal: both only help later recovery. */
int partition_open(const struct partition_spec *spec, struct partition **out);
/* Role changes, as the metadata decides them. The epoch never goes backwards. */
void partition_become_leader(struct partition *p, int32_t leader_epoch);
void partition_become_follower(struct partition *p, int32_t leader_epoch);
/* KIP-320: checks the leader epoch a client says it knows (-1: it does not say) and
 * that this node leads p. KERR_NONE, KERR_NOT_LEADER_OR_FOLLOWER, KERR_FENCED_LEADER_EPOCH
 * (the client's epoch is older than ours) or KERR_UNKNOWN_LEADER_EPOCH (newer). */
int16_t partition_check_leader(const struct partition *p, int32_t current_leader_epoch);
/* Appends records as the leader, stamping p's leader epoch: storage's log_append, whose
 * result it returns (the caller's buffer is patched). p must lead (the caller checked
 * partition_check_leader): appending on a follower would fork its log from the leader's,
 * so that is a bug, asserted. */
int partition_append_as_leader(struct partition *p, uint8_t *records, size_t len, int64_t now_ms,
                               struct log_append_result *out);
/* The high watermark: the end of what consumers may see (fetch, ListOffsets latest),
 * what DeleteRecords may delete and compaction may clean up to. With one replica every
 * appended record is in the only in-sync replica, so it is the log end; with
 * replication it is the minimum over the in-sync replicas' log ends (see struct
 * partition). */
int64_t partition_high_watermark(const struct partition *p);
/* The last stable offset (KIP-98): the high watermark, or the first offset of the oldest
 * open transaction when that is lower. read_committed consumers read below it. */
int64_t partition_last_stable_offset(const struct partition *p);

/* ---- replication ----
 * The leader learns each follower's log end from its fetches and moves the high
 * watermark; a follower appends the leader's batches as they are and truncates what
 * diverges from the leader's log (KIP-101/KIP-279, with KIP-595's DivergingEpoch in
 * Fetch instead of a separate OffsetForLeaderEpoch round). */

/* The replicas and in-sync replicas the metadata names, with this node's id and the
 * leader's. Followers that stay keep what the leader knows of them. Returns true when
 * the high watermark moved (an in-sync replica that held it back left the ISR). */
bool partition_set_assignment(struct partition *p, int32_t self_id, int32_t leader_id,
                              int32_t partition_epoch, const int32_t *replicas,
                              int32_t replica_count, const int32_t *isr, int32_t isr_count);
/* More than one replica: the high watermark waits for followers. */
bool partition_replicated(const struct partition *p);
/* Whether node is one of p's replicas (this node included). */
bool partition_has_replica(const struct partition *p, int32_t node_id);
/* Whether node_id is in the ISR as the metadata last gave it (not one this leader has
 * asked for and not yet heard back about). */
bool partition_in_isr(const struct partition *p, int32_t node_id);
/* The leader heard a fetch from follower node at offset (<= the log end; the caller
 * checked). Returns true when the high watermark moved. */
bool partition_follower_fetched(struct partition *p, int32_t node_id, int64_t offset,
                                int64_t now_ms);
/* ISR maintenance (the leader): the ISR to ask the controller for, in replica order, or
 * false when the ISR is right as it is or a request is already out. A follower leaves
 * once it has not caught up with the log end for lag_max_ms (replica.lag.time.max.ms).
 * Only `candidate` (the follower that just fetched; -1: none) may join, once it has
 * reached the high watermark and the start of this leader's epoch: as in Kafka, a
 * follower joins on its own fetch, so one that stopped fetching is never asked for.
 * isr_out has room for p->replica_count ids. */
bool partition_isr_change(struct partition *p, int64_t now_ms, int64_t lag_max_ms,
                          int32_t candidate, int32_t *isr_out, int32_t *count_out);
/* The request for isr went out / was answered (either way: the metadata says what
 * became of it). */
void partition_isr_requested(struct partition *p, const int32_t *isr, int32_t count);
void partition_isr_answered(struct partition *p);
/* The leader's own log grew: with no follower in sync the high watermark follows it.
 * Returns true when it moved. */
bool partition_leader_appended(struct partition *p);
/* Leader side of KIP-320/595: a follower that last fetched a batch of last_fetched_epoch
 * and now asks for fetch_offset diverges from this log when this log's epoch cache ends
 * that epoch earlier (or does not have it). Returns true with the epoch and end offset
 * to tell it (Fetch's DivergingEpoch). */
bool partition_diverging(struct partition *p, int64_t fetch_offset, int32_t last_fetched_epoch,
                         int32_t *epoch_out, int64_t *end_out);
/* Follower side: where to truncate to after the leader answered DivergingEpoch
 * (epoch, end_offset), as Kafka's fetcher decides it. Never above the log end. */
int64_t partition_truncation_offset(struct partition *p, int32_t epoch, int64_t end_offset);
/* Truncates a follower's log to offset (whole batches, see log_truncate_to); the high
 * watermark follows it down. 0 or a storage error. */
int partition_truncate(struct partition *p, int64_t offset);
/* A follower whose log ends before its leader's log starts: drops its log and restarts
 * it, empty, at the leader's log start (or where the leader's first batch from there
 * begins). 0 or a storage error. */
int partition_restart_at(struct partition *p, int64_t offset);
/* Appends the leader's batches as they are (offsets and epochs kept): log_append_as_
 * follower, whose result it returns. p must follow (asserted). */
int partition_append_as_follower(struct partition *p, const uint8_t *records, size_t len,
                                 int64_t now_ms, struct log_append_result *out);
/* Appends what a Fetch answer's records (len bytes) add to a follower's log: the whole
 * batches from its log end on. Batches it holds already (a retried fetch) are skipped; a
 * log just restarted at the leader's log start restarts at the first batch's base, which
 * may come before it (as Kafka's follower does); a trailing partial batch is left for
 * the next fetch. *appended gets the bytes appended (within records; len 0: none). 0,
 * STORAGE_ERR_CORRUPT for a gap (not the leader's next batch), or a storage error. */
int partition_append_fetched(struct partition *p, const uint8_t *records, size_t len,
                             int64_t now_ms, struct slice *appended);
/* A follower heard the leader's high watermark. */
void partition_follower_high_watermark(struct partition *p, int64_t leader_high_watermark);
/* A background job starts using p (and its log) / is done with it. partition_release
 * returns false when p was closed meanwhile: p may then be freed, the caller must not
 * touch it again (and abandons its job's results). */
void partition_hold(struct partition *p);
bool partition_release(struct partition *p);
/* Closes the log (its data stays) and frees p, or leaves that to the last holder. */
void partition_close(struct partition *p);
/* The topic went away: discards unsynced data, closes the log, renames dir out of the
 * way (so a topic re-created with the name starts empty) into *renamed (malloc'd; the
 * host removes it later), and frees p (or leaves that to the last holder). Returns 0 or
 * the rename's storage error (*renamed NULL; the log is closed all the same). */
int partition_delete(struct partition *p, const char *dir, char **renamed);

/* ---- the purgatory ---- */

/* What a key stands for: an object (a partition) and which of its changes. */
enum purgatory_kind {
    PURGATORY_DURABLE = 1,    /* the object's log is durable up to a further offset */
    PURGATORY_DATA,           /* records were appended to the object's log */
    PURGATORY_HIGH_WATERMARK, /* the object's high watermark moved */
};

struct purgatory_key {
    const void *object; /* compared by address only, never dereferenced */
    enum purgatory_kind kind;
};

enum delayed_outcome {
    DELAYED_READY,   /* try_complete returned true */
    DELAYED_EXPIRED, /* the deadline passed */
    DELAYED_FORCED,  /* purgatory_complete_all: the host is stopping */
};

/* An operation that completes later. Embed it in the owner's struct, zeroed, fill the two
 * callbacks, and hand it to purgatory_add; the rest is the purgatory's. Once completed or
 * cancelled it may be added again. */
struct delayed_op {
    /* True when the operation can complete now. Called by add and run; must not call
     * back into the purgatory. */
    bool (*try_complete)(struct delayed_op *op);
    /* Called exactly once, after the purgatory has let go of op (op may be freed). */
    void (*complete)(struct delayed_op *op, enum delayed_outcome how);

    /* The purgatory's. */
    uint64_t seq;                    /* arrival order */
    int64_t deadline_ms;             /* INT64_MAX: none */
    size_t heap_index;               /* in the deadline heap; SIZE_MAX when not there */
    bool queued;                     /* notified, waiting for run */
    bool waiting;                    /* added and not yet completed or cancelled */
    struct purgatory_watch *watches; /* one per key watched */
    size_t watch_count;
};

struct purgatory;

struct purgatory *purgatory_new(void);
/* Frees the purgatory. Operations still waiting are forgotten without a callback: the
 * host completes or cancels them first (purgatory_complete_all). */
void purgatory_free(struct purgatory *pg);

/* Tries op once: if try_complete says it can, completes it (DELAYED_READY) before
 * returning true. Otherwise op waits on keys[0..n) (duplicates watched once) until
 * deadline_ms (INT64_MAX: no deadline) and false is returned. op is borrowed until it
 * is completed or cancelled. */
bool purgatory_add(struct purgatory *pg, struct delayed_op *op, const struct purgatory_key *keys,
                   size_t n, int64_t deadline_ms);
/* Queues every operation watching key for the next purgatory_run. Cheap; does not call
 * any operation. */
void purgatory_notify(struct purgatory *pg, struct purgatory_key key);
/* Retries the queued operations in arrival order, completing those that can; operations
 * queued while it runs are tried in the same call. Returns how many completed. */
size_t purgatory_run(struct purgatory *pg);
/* Completes (DELAYED_EXPIRED) every waiting operation whose deadline is <= now_ms, the
 * earliest deadline first (ties: arrival order). Returns how many. */
size_t purgatory_expire(struct purgatory *pg, int64_t now_ms);
/* The earliest deadline of a waiting operation, or INT64_MAX. */
int64_t purgatory_next_deadline(const struct purgatory *pg);
/* Removes op without calling it (its requester went away). No-op if op is not waiting. */
void purgatory_cancel(struct purgatory *pg, struct delayed_op *op);
/* The object of key goes away: every operation watching it stops watching it and is
 * queued for the next run (where it finds the object gone by its own lookup). */
void purgatory_forget(struct purgatory *pg, struct purgatory_key key);
/* Completes every waiting operation with DELAYED_FORCED, in arrival order. */
void purgatory_complete_all(struct purgatory *pg);
/* Operations waiting. */
size_t purgatory_size(const struct purgatory *pg);
/* Calls fn for every waiting operation, in arrival order; fn may cancel or complete
 * the operation it is given (and no other). */
void purgatory_each(struct purgatory *pg, void (*fn)(void *arg, struct delayed_op *op), void *arg);

/* ---- replication quotas ---- */

/* Kafka's replication quota (ReplicationQuotaManager: a SimpleRate over a SampledStat):
 * bytes are summed in samples of window_ms each, at most samples of them kept
 * (replication.quota.window.num × replication.quota.window.size.seconds). The rate is
 * the sum of the live samples over the time since the oldest one started, but at least
 * window_ms, so a burst after a quiet spell is measured over one sample's length, not
 * over the few milliseconds it took. A sample is dropped once nothing was recorded in it
 * for samples × window_ms. The quota is exceeded while that rate is above bound. */
#define REPL_QUOTA_MAX_SAMPLES 100     /* replication.quota.window.num is checked against it */
#define REPL_QUOTA_UNBOUNDED INT64_MAX /* Kafka's default rate: Long.MAX_VALUE, no quota */
struct repl_quota_sample {
    int64_t start_ms;
    int64_t last_ms; /* of the last bytes recorded (start_ms if none) */
    int64_t bytes;
};
struct repl_quota {
    int64_t bound;     /* bytes per second; REPL_QUOTA_UNBOUNDED: never exceeded */
    int64_t window_ms; /* one sample's length */
    int32_t samples;   /* samples that count (one more is kept, as Kafka keeps) */
    int32_t used;      /* s[0, used) have started */
    int32_t current;   /* the one being recorded into */
    struct repl_quota_sample s[REPL_QUOTA_MAX_SAMPLES + 1];
};
void repl_quota_init(struct repl_quota *q, int64_t bound, int32_t samples, int64_t window_ms);
/* Adds bytes sent at now_ms (whether or not that exceeds the quota, as Kafka records). */
void repl_quota_record(struct repl_quota *q, int64_t bytes, int64_t now_ms);
/* The measured rate, bytes per second. */
double repl_quota_rate(struct repl_quota *q, int64_t now_ms);
/* The rate is above the bound: throttled data waits. Never with REPL_QUOTA_UNBOUNDED. */
bool repl_quota_exceeded(struct repl_quota *q, int64_t now_ms);
/* How long, from now_ms, until the quota is no longer exceeded if nothing more is
 * recorded: 0 if it is not; else at least 1 and at most samples × window_ms (when
 * every sample has been dropped). */
int64_t repl_quota_wait_ms(struct repl_quota *q, int64_t now_ms);

#endif
