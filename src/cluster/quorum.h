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
 * A change: quorum_propose (caller's thread), quorum_persist (any one thread: writes and
 * fdatasyncs), quorum_advance (caller's thread: applies what is committed). One change
 * at a time. */
#ifndef SAMSA_CLUSTER_QUORUM_H
#define SAMSA_CLUSTER_QUORUM_H

#include "base/base.h"

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
/* Recovery: replaces the log with a snapshot of exactly these entries; the old files are
 * kept beside (the first kept path in *kept_path, malloc'd, NULL if none). */
int quorum_replace(struct quorum *q, const struct slice *entries, size_t n, char **kept_path);
const char *quorum_path(const struct quorum *q);
void quorum_close(struct quorum *q);

#endif
