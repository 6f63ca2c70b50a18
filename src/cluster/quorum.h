/* The metadata log through the Raft core (src/raft), internal to cluster/.
 *
 * Every metadata change is one entry of a Raft log (raft.h's core and its durable
 * storage, in <metadata dir>/raft/). The voters are controller.quorum.voters: this node
 * alone (the single-node quick start: a proposal is committed once durable here), or
 * several controllers that exchange Raft messages through the owner's transport
 * (quorum_send_fn out, quorum_receive in) and elect a leader; only the leader proposes.
 *
 * Starting. A quorum of one founds itself on an empty dir. A node of a quorum of several
 * starts from an empty dir only when the dir was formatted for it (quorum_format, by
 * `samsa-server format`): a voter whose log was lost must not vote as if it had never
 * voted, or two leaders could be elected in one term and committed changes lost. Format
 * leaves a marker that the first durable save removes. A node that is not one of the
 * voters is an observer: it starts with an empty log and gets the log from the leader
 * once the leader has added it (quorum_add_observer), as a Raft learner.
 *
 * Snapshots. A snapshot's data is a sequence of metadata-log entries (each u32 length,
 * then the entry as cluster.c encodes it), applied in order like the log after it. The
 * upgrade from the local metadata log of earlier versions (metalog.c, metadata.log) is
 * such a snapshot: every entry of the old log, in its order, checked by metalog.c's
 * rules (a damaged old log is refused, never guessed at). The old file is then kept as
 * metadata.log.migrated-<ms>. `samsa metadata recover` writes one as well.
 *
 * Later snapshots compact the log: once raft.log holds max_log_bytes (Kafka's
 * metadata.log.max.record.bytes.between.snapshots), or a change applied max_interval_ms
 * ago is in no snapshot yet (metadata.log.max.snapshot.interval.ms), the caller hands
 * over the image as such entries and the quorum writes it as the snapshot at the applied
 * index, then drops the log it covers (snapshot.tmp, fdatasync, rename, fsync of the dir,
 * and only then raft.log rewritten the same way, keeping the entries after it). A crash
 * at any point leaves the old snapshot and log, or the new snapshot beside a log whose
 * covered entries recovery skips, or the new snapshot and the short log: the same image.
 * A follower too far behind the leader's log gets the leader's snapshot: reset, then the
 * snapshot's entries through apply, replace the image.
 *
 * Driving it, all on the caller's thread except quorum_persist and quorum_snapshot_write:
 *   quorum_tick (every tick), quorum_receive (every message), quorum_propose (leader)
 *   may each leave a write pending (quorum_write_pending): the owner runs quorum_persist
 *   on any one thread (it writes and fdatasyncs), then quorum_advance here, which sends
 *   the messages that waited for the write and applies what is committed. Inputs that
 *   arrive while a write is pending are held and stepped by quorum_advance. A snapshot:
 *   quorum_snapshot_due, quorum_snapshot_begin, quorum_snapshot_write (any one thread,
 *   never beside quorum_persist), quorum_snapshot_done.
 *
 * Errors: 0 or a negative errno (-EBADMSG: damage other than a torn tail; -EIO: a write
 * failed earlier, and the quorum refuses changes until the broker restarts). */
#ifndef SAMSA_CLUSTER_QUORUM_H
#define SAMSA_CLUSTER_QUORUM_H

#include "base/base.h"
#include "cluster/cluster.h"

struct quorum;

/* A committed entry, in log order. own: the entry this node proposed last
 * (quorum_proposal says APPLIED from now on). */
typedef void (*quorum_apply_fn)(void *arg, struct slice entry, bool own);
/* A snapshot from the leader replaces the image: called with done false before its
 * entries come through apply (empty the image), and with done true after them. */
typedef void (*quorum_reset_fn)(void *arg, bool done);
/* One encoded Raft message (raft_msg_encode) for node `to`, borrowed for the call. A
 * message may be dropped: Raft sends again. */
typedef void (*quorum_send_fn)(void *arg, int32_t to, const uint8_t *msg, size_t len);

struct quorum_config {
    int32_t node_id;
    /* controller.quorum.voters' node ids; none: this node alone. */
    const int32_t *voters;
    size_t voter_count;
    /* salvage: read-only, damaged stretches skipped (for quorum_replace to write a clean
     * log); one voter only. */
    bool salvage;
    uint32_t election_ticks; /* 0: the core's default (10); heartbeats every tick */
    uint64_t seed;           /* election timeouts' randomness: differ between nodes */
    quorum_apply_fn apply;
    quorum_reset_fn reset; /* may be NULL with one voter (nobody sends snapshots) */
    void *arg;             /* of apply and reset */
};

struct quorum_stats {
    size_t entries; /* metadata entries applied at open (snapshot and log) */
    /* Metadata entries stored, committed or not: a voter of a quorum of several applies
     * at open only what it knows committed, which may be nothing until the leader says. */
    size_t stored_entries;
    size_t skipped_bytes; /* salvage: bytes of damaged stretches skipped */
};

/* Opens the metadata log in dir (creating or upgrading it) and applies every committed
 * entry through apply, in order; a quorum of one also elects itself. Returns 0, -EBADMSG
 * for damage that is not a torn tail (logged, nothing changed), -EINVAL for a log that
 * does not belong to this configuration or an unformatted dir of a quorum of several
 * (logged), or a negative errno. */
int quorum_open(const char *dir, const struct quorum_config *cfg, struct quorum **out,
                struct quorum_stats *stats);
/* Prepares an empty dir for a node of a quorum of several (see the top). 0, -EEXIST when
 * the dir holds a metadata log already, or -errno. */
int quorum_format(const char *dir);
/* Where messages go; until set (or with send NULL) they are dropped. */
void quorum_set_transport(struct quorum *q, quorum_send_fn send, void *arg);

void quorum_tick(struct quorum *q);
/* One encoded message from a peer (borrowed). Malformed ones are dropped (logged at
 * debug level); messages for another node too. */
void quorum_receive(struct quorum *q, const uint8_t *msg, size_t len);
/* This node leads, everything in its log is applied (so a change is checked against the
 * whole image), no write is pending and no earlier write failed. */
bool quorum_can_propose(const struct quorum *q);
/* Proposes one entry (quorum_can_propose must hold). 0, -EFBIG for an entry over the
 * limit, or -EIO. Then quorum_proposal tells what became of it. */
int quorum_propose(struct quorum *q, const uint8_t *entry, size_t len);
/* Proposes adding node as an observer (a Raft learner: it gets the log and does not
 * vote), the same way. 0, -EEXIST when it is a voter or an observer already, or -EIO. */
int quorum_add_observer(struct quorum *q, int32_t node);
enum quorum_outcome {
    QUORUM_NONE,    /* nothing proposed since the last outcome was taken */
    QUORUM_PENDING, /* not committed yet */
    QUORUM_APPLIED, /* committed and applied (apply saw it with own set) */
    QUORUM_LOST,    /* this node stopped leading first: it may still commit, or not */
    QUORUM_FAILED,  /* a write failed: the quorum refuses changes until restart */
};
/* What became of the last proposal; a final outcome is reported once, then NONE. */
enum quorum_outcome quorum_take_outcome(struct quorum *q);
/* A write must run: quorum_persist (any one thread), then quorum_advance. */
bool quorum_write_pending(const struct quorum *q);
/* Writes what is pending and fdatasyncs. 0 or -errno (logged). */
int quorum_persist(struct quorum *q);
/* After quorum_persist returned persist_rc: sends the messages that waited for it,
 * applies what is committed, steps the inputs held meanwhile. */
void quorum_advance(struct quorum *q, int persist_rc);
/* This node leads (it may still be catching up: see quorum_can_propose). */
bool quorum_leading(const struct quorum *q);
/* A write failed: the quorum takes no more changes until restart. */
bool quorum_failed(const struct quorum *q);
/* The leader this node knows of, -1 for none. */
int32_t quorum_leader(const struct quorum *q);
/* The Raft index of the last entry applied (change, no-op or configuration), or of the
 * snapshot applied last: the image reflects the log through it. Inside apply, the
 * index of the entry being applied. */
uint64_t quorum_applied_index(const struct quorum *q);
/* When to snapshot; 0 turns a condition off. The default policy is all zero: never. */
struct quorum_snapshot_policy {
    uint64_t max_log_bytes;  /* raft.log at least this long */
    int64_t max_interval_ms; /* the oldest change in no snapshot applied this long ago */
};
void quorum_set_snapshot_policy(struct quorum *q, const struct quorum_snapshot_policy *p);
/* Whether a snapshot is due now: no write is pending, something is applied beyond the
 * last snapshot, and the policy says so. The clock is read here. */
bool quorum_snapshot_due(const struct quorum *q);
/* Takes the snapshot: entries (borrowed for the call) rebuild the image as of everything
 * applied. The Raft core drops the entries it covers from memory. 0, or -EFBIG when the
 * image passes RAFT_MAX_SNAPSHOT_BYTES (logged; no snapshot is taken again until restart,
 * and the log keeps growing). Then quorum_snapshot_write, then quorum_snapshot_done. */
int quorum_snapshot_begin(struct quorum *q, const struct slice *entries, size_t n);
/* Writes the snapshot and drops the log it covers, with every fsync. Any one thread. */
int quorum_snapshot_write(struct quorum *q);
/* Caller's thread, after quorum_snapshot_write returned write_rc. A failed write refuses
 * every later change, as a failed change does (what is on disk is still whole). */
void quorum_snapshot_done(struct quorum *q, int write_rc);
/* Recovery: replaces the log with a snapshot of exactly these entries; the old files are
 * kept beside (the first kept path in *kept_path, malloc'd, NULL if none). */
int quorum_replace(struct quorum *q, const struct slice *entries, size_t n, char **kept_path);
/* The quorum as of the last change applied or proposed on the caller's thread (see
 * cluster_quorum_state). Never waits: a write in flight on the runner's thread shows as
 * a log end beyond the high watermark. */
void quorum_describe(const struct quorum *q, struct cluster_quorum_state *out);
const char *quorum_path(const struct quorum *q);
void quorum_close(struct quorum *q);

#endif
