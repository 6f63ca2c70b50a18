/* The metadata log through the Raft core (src/raft), internal to cluster/.
 *
 * Every metadata change is one entry of a Raft log (raft.h's core and its durable
 * storage, in <metadata dir>/raft/). Today the quorum has one voter, this node: a
 * proposal is committed as soon as it is durable here. The cluster issue adds voters
 * over the network; this interface stays.
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
 * index, then drops the log it covers (raft_storage_save: snapshot.tmp, fdatasync,
 * rename, fsync of the dir, and only then raft.log rewritten the same way). A crash at any
 * point leaves the old snapshot and log, or the new snapshot beside a log whose covered
 * entries recovery skips, or the new snapshot and the short log: the same image.
 *
 * A change: quorum_propose (caller's thread), quorum_persist (any one thread: writes and
 * fdatasyncs), quorum_advance (caller's thread: applies what is committed). A snapshot:
 * quorum_snapshot_due, quorum_snapshot_begin (caller's thread), quorum_snapshot_write (any
 * one thread), quorum_snapshot_done (caller's thread). One change or snapshot at a time.
 *
 * Errors: 0 or a negative errno (-EBADMSG: damage other than a torn tail; -EIO: a write
 * failed earlier, and the quorum refuses changes until the broker restarts). */
#ifndef SAMSA_CLUSTER_QUORUM_H
#define SAMSA_CLUSTER_QUORUM_H

#include "base/base.h"
#include "cluster/cluster.h"

struct quorum;

typedef void (*quorum_apply_fn)(void *arg, struct slice entry);

struct quorum_stats {
    size_t entries;       /* metadata entries applied at open (snapshot and log) */
    size_t skipped_bytes; /* salvage: bytes of damaged stretches skipped */
};

/* Opens the metadata log in dir (creating or upgrading it) and applies every committed
 * entry through apply, in order. salvage: read-only, damaged stretches skipped (for
 * quorum_replace to write a clean log). Returns 0, -EBADMSG for damage that is not a
 * torn tail (logged, nothing changed), or a negative errno. */
int quorum_open(const char *dir, int32_t node_id, bool salvage, quorum_apply_fn apply, void *arg,
                struct quorum **out, struct quorum_stats *stats);
/* Proposes one entry. 0, or -EIO once a write has failed (the log refuses changes until
 * the broker restarts). Then quorum_persist, then quorum_advance. */
int quorum_propose(struct quorum *q, const uint8_t *entry, size_t len);
/* Writes what the proposal needs and fdatasyncs. Any thread; 0 or -errno (logged). */
int quorum_persist(struct quorum *q);
/* After quorum_persist returned persist_rc: applies the entries now committed through
 * apply. Returns 0 when the proposal is committed and applied, 1 when quorum_persist must
 * run again first (never on one voter), or -EIO when the write failed. */
int quorum_advance(struct quorum *q, int persist_rc);
/* When to snapshot; 0 turns a condition off. The default policy is all zero: never. */
struct quorum_snapshot_policy {
    uint64_t max_log_bytes;  /* raft.log at least this long */
    int64_t max_interval_ms; /* the oldest change in no snapshot applied this long ago */
};
void quorum_set_snapshot_policy(struct quorum *q, const struct quorum_snapshot_policy *p);
/* Whether a snapshot is due now: no change is between propose and advance, something is
 * applied beyond the last snapshot, and the policy says so. The clock is read here. */
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
