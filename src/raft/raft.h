/*
 * raft: consensus as a pure, deterministic state machine (the etcd/raft model).
 *
 * The core does no I/O, reads no clock and starts no threads. The application drives it:
 *
 *     raft_tick()            every tick of its clock (election/heartbeat timers count ticks)
 *     raft_step()            for every message received from a peer
 *     raft_propose*()        to append a command (leader only)
 *     raft_ready()           to collect what must happen next, then in this order:
 *                              1. persist rd.snapshot, rd.entries, rd.hs and fdatasync
 *                              2. send rd.msgs
 *                              3. apply rd.committed (and rd.snapshot to the state machine)
 *                              4. serve rd.reads
 *     raft_advance()         to tell the core step 1 is durable ("entries up to I are
 *                            durable") and steps 2-4 are done.
 *
 * Between raft_ready() and raft_advance() no other raft_* call may be made on that node:
 * the ready batch borrows the core's memory. Everything the core does is a function of
 * these inputs and of config.seed, so a simulator can replay any run exactly.
 *
 * Persistence contract, message codec and simulator checks: docs/raft.md.
 *
 * Errors: the core and the codec return 0 or a negative RAFT_E* code (not errnos: the
 * core does no I/O); the storage (raft_storage_*) returns 0 or a negative errno, with
 * -EBADMSG for damage other than a torn tail.
 */
#ifndef SAMSA_RAFT_H
#define SAMSA_RAFT_H

#include "base/base.h"

/* Bounds (STYLE.md: a limit on everything). */
#define RAFT_MAX_NODES 16             /* voters + learners in one configuration */
#define RAFT_MAX_ENTRIES_PER_MSG 1024 /* entries in one append message */
#define RAFT_MAX_ENTRY_BYTES                                                                       \
    (8u << 20) /* a metadata change: a topic of 100,000 partitions is 4.4 MB */
#define RAFT_MAX_SNAPSHOT_BYTES (64u << 20)
#define RAFT_MAX_MSG_BYTES (96u << 20) /* a whole encoded message */
#define RAFT_MAX_INDEX (1ull << 62)    /* terms and indexes above are rejected as malformed */

/* Error codes (negative returns). */
#define RAFT_ENOTLEADER 1001 /* proposal or read on a non-leader */
#define RAFT_EBUSY 1002      /* conf change pending, transfer in progress, or no commit yet */
#define RAFT_EINVAL 1003     /* malformed or out-of-range input */
#define RAFT_ESTALE 1004     /* message from an old term or unknown peer; ignored */

enum raft_role { RAFT_FOLLOWER, RAFT_PRE_CANDIDATE, RAFT_CANDIDATE, RAFT_LEADER };

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 0, /* application command; empty data is the leader's no-op */
    RAFT_ENTRY_CONF = 1,   /* data is an encoded struct raft_conf (the whole new config) */
};

struct raft_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type; /* enum raft_entry_type */
    uint32_t len;
    uint8_t *data; /* owned by whoever holds the entry (see each function) */
};

/* A configuration: who votes and who only follows. Node ids are non-zero. */
struct raft_conf {
    uint32_t n_voters, n_learners;
    uint64_t voters[RAFT_MAX_NODES];
    uint64_t learners[RAFT_MAX_NODES];
};
bool raft_conf_is_voter(const struct raft_conf *c, uint64_t id);
bool raft_conf_is_learner(const struct raft_conf *c, uint64_t id);
void raft_conf_encode(const struct raft_conf *c, struct buf *out);
/* 0, or -RAFT_EINVAL for malformed bytes, duplicates, zero ids or too many nodes. */
int raft_conf_decode(const uint8_t *data, size_t len, struct raft_conf *out);

struct raft_snapshot {
    uint64_t index, term; /* last entry the snapshot covers; 0,0 = none */
    struct raft_conf conf;
    uint32_t len;
    uint8_t *data; /* the application's state, opaque to raft */
};

struct raft_hard_state {
    uint64_t term;
    uint64_t vote;   /* 0 = none */
    uint64_t commit; /* may be persisted lazily: losing it only delays re-apply */
};

enum raft_msg_type {
    RAFT_MSG_PREVOTE = 1,
    RAFT_MSG_PREVOTE_RESP,
    RAFT_MSG_VOTE,
    RAFT_MSG_VOTE_RESP,
    RAFT_MSG_APPEND,
    RAFT_MSG_APPEND_RESP,
    RAFT_MSG_HEARTBEAT,
    RAFT_MSG_HEARTBEAT_RESP,
    RAFT_MSG_SNAPSHOT,
    RAFT_MSG_TIMEOUT_NOW,
    RAFT_MSG_TYPE_MAX = RAFT_MSG_TIMEOUT_NOW,
};
const char *raft_msg_type_name(int type);

/*
 * One message. Field use per type:
 *   PREVOTE/VOTE       log_term, index = candidate's last log term/index; term = the term
 *                      campaigned for (for PREVOTE: the next term, not yet adopted);
 *                      flags & RAFT_FLAG_TRANSFER when campaigning on TIMEOUT_NOW
 *   *_RESP (votes)     reject
 *   APPEND             log_term, index = the entry preceding entries; commit; entries
 *   APPEND_RESP        index = last index matched (accept) or rejected index (reject);
 *                      reject, hint_index, hint_term: the follower's hint for backtracking
 *   HEARTBEAT          commit (capped at what the follower is known to have), context
 *   HEARTBEAT_RESP     context echoed (read index rounds)
 *   SNAPSHOT           snapshot
 */
#define RAFT_FLAG_TRANSFER 1u
struct raft_msg {
    uint8_t type; /* enum raft_msg_type */
    uint8_t flags;
    bool reject;
    uint64_t from, to, term;
    uint64_t log_term, index, commit;
    uint64_t hint_index, hint_term;
    uint64_t context;
    uint32_t n_entries;
    struct raft_entry *entries;
    struct raft_snapshot snapshot;
};

/* Wire codec (docs/raft.md). Decode borrows nothing from data: entries and snapshot data
 * are copied into the arena. Returns 0 or -RAFT_EINVAL (with a log line at debug level). */
void raft_msg_encode(const struct raft_msg *m, struct buf *out);
int raft_msg_decode(const uint8_t *data, size_t len, struct arena *a, struct raft_msg *out);

struct raft_config {
    uint64_t id;             /* this node, non-zero */
    uint32_t election_ticks; /* base election timeout; randomized in [e, 2e) */
    uint32_t heartbeat_ticks;
    bool pre_vote;            /* run a pre-vote round before bumping the term */
    bool check_quorum;        /* leader steps down without a quorum; followers keep a lease */
    uint32_t max_inflight;    /* append messages in flight per follower */
    uint32_t max_msg_entries; /* entries per append message (<= RAFT_MAX_ENTRIES_PER_MSG) */
    uint64_t max_msg_bytes;   /* entry bytes per append message (soft) */
    uint64_t seed;            /* PRNG seed for election timeouts */
};
/* Fills sane defaults: 10/1 ticks, pre-vote and check-quorum on, 64 in flight, 256 entries. */
void raft_config_default(struct raft_config *c, uint64_t id);

/* What storage recovered at start-up. All pointers borrowed for the call. */
struct raft_restore {
    struct raft_hard_state hs;
    const struct raft_snapshot *snapshot; /* NULL if none */
    const struct raft_entry *entries;     /* contiguous, following the snapshot */
    size_t n_entries;
};

struct raft_read_state {
    uint64_t context; /* the caller's ctx from raft_read_index */
    uint64_t index;   /* serve the read once applied >= index */
};

/* Soft state: not persisted, reported for observability and routing. */
struct raft_status {
    uint64_t id, term, vote, leader;
    enum raft_role role;
    uint64_t commit, applied, last_index, stable_index, first_index;
    uint64_t snapshot_index;
    uint64_t transferee; /* 0 unless a leadership transfer is in progress */
    struct raft_conf conf;
    /* Leader only (else 0): the last index known replicated on each voter and learner of
     * conf, in conf's order (this node's: its last index). */
    uint64_t voter_match[RAFT_MAX_NODES], learner_match[RAFT_MAX_NODES];
};

struct raft_ready {
    bool hs_changed;
    struct raft_hard_state hs;
    const struct raft_snapshot *snapshot; /* to persist and install, or NULL */
    const struct raft_entry *entries;     /* to persist; the first one may overwrite (truncate)
                                             the stored suffix from its index on */
    size_t n_entries;
    const struct raft_msg *msgs; /* to send after persisting */
    size_t n_msgs;
    const struct raft_entry *committed; /* to apply, in order */
    size_t n_committed;
    const struct raft_read_state *reads;
    size_t n_reads;
};

struct raft;

/*
 * Creates a node. With no stored state (restore NULL or all zero) and bootstrap non-NULL,
 * the node writes the bootstrap configuration as entry 1 (term 1), exactly as every other
 * founding member does, so that nodes added later learn the founders from the log.
 * A node joining later passes bootstrap NULL and waits to be contacted by a leader.
 * Returns 0 or -RAFT_EINVAL; *out is owned by the caller (raft_free).
 */
int raft_new(const struct raft_config *cfg, const struct raft_restore *restore,
             const struct raft_conf *bootstrap, struct raft **out);
void raft_free(struct raft *r);

void raft_tick(struct raft *r);
/* Message borrowed for the call. 0, -RAFT_ESTALE (ignored, normal) or -RAFT_EINVAL. */
int raft_step(struct raft *r, const struct raft_msg *m);
/* Data copied. 0, -RAFT_ENOTLEADER, -RAFT_EBUSY (transfer in progress) or -RAFT_EINVAL. */
int raft_propose(struct raft *r, const void *data, size_t len, uint64_t *index_out);

enum raft_conf_op { RAFT_CONF_ADD_VOTER = 1, RAFT_CONF_ADD_LEARNER, RAFT_CONF_REMOVE };
/* One change at a time: -RAFT_EBUSY while a previous change is not applied or before the
 * leader has committed an entry of its term. Adding an existing learner as voter promotes
 * it. Removing the last voter is -RAFT_EINVAL. */
int raft_propose_conf(struct raft *r, enum raft_conf_op op, uint64_t node, uint64_t *index_out);

/* Starts an election now (tests, or an operator forcing one). */
void raft_campaign(struct raft *r);
/* Leader only: hand leadership to a voter once it has caught up. Aborted after one
 * election timeout. 0, -RAFT_ENOTLEADER or -RAFT_EINVAL. */
int raft_transfer_leader(struct raft *r, uint64_t to);
/* Leader only: a linearizable read. A raft_read_state with this context appears in a
 * later ready once a quorum confirmed leadership. 0, -RAFT_ENOTLEADER or -RAFT_EBUSY. */
int raft_read_index(struct raft *r, uint64_t context);

/* Snapshot of the applied state at the current applied index; data copied. Entries up to
 * applied - keep_entries are dropped from memory (the caller compacts its log the same
 * way). 0 or -RAFT_EINVAL (nothing applied). */
int raft_snapshot_create(struct raft *r, const void *data, size_t len, uint64_t keep_entries);

bool raft_has_ready(const struct raft *r);
void raft_ready(struct raft *r, struct raft_ready *rd);
void raft_advance(struct raft *r, const struct raft_ready *rd);

void raft_status(const struct raft *r, struct raft_status *st);
/* Term of entry idx if known (in memory or the snapshot boundary); false otherwise. */
bool raft_term_at(const struct raft *r, uint64_t idx, uint64_t *term);
const char *raft_role_name(enum raft_role role);

/* ---- durable storage (storage.c): one directory per raft group ----
 * raft.log   append-only records, each [u32 len][u32 crc32c][u8 kind][payload]:
 *            kind 1 entry (term, index, type, data), kind 2 hard state.
 *            An entry at index i discards any stored entry >= i (a truncation).
 * snapshot   written as snapshot.tmp, fdatasync'd, renamed, directory fsync'd.
 * clean-shutdown  empty marker: written by a close that knows raft.log is whole records,
 *            removed (durably) by raft_storage_accept.
 * Recovery (strict) cuts off a torn tail, the partial records of the one save being
 * written at a crash: fewer bytes than a header, records reaching or passing the end of
 * the file, zeros to the end, with no intact record after the damage. Anything else is
 * refused with -EBADMSG and nothing on disk is changed: damage with an intact record after
 * it, a whole record that is malformed or leaves an index gap, any damage while the
 * clean-shutdown marker is present, a corrupt snapshot, a missing raft.log beside a
 * snapshot. docs/raft.md, "Recovery".
 * A strict start is two steps so that a refusal changes nothing: raft_storage_open only
 * reads and decides the repairs; the owner checks the restore (raft_new and whatever it
 * requires of its configuration), and only then raft_storage_accept writes them. */
enum raft_storage_mode {
    RAFT_STORAGE_STRICT,  /* normal start: recover as above; accept, then take saves */
    RAFT_STORAGE_SALVAGE, /* offline recovery: read-only, writes nothing (no marker, no
                             truncation); replays every intact record it can, skipping
                             damaged stretches and entries that do not follow the log */
};
struct raft_storage;
/* Opens dir and recovers into memory, writing nothing in either mode (a missing dir is a
 * new group in strict mode). 0; -EBADMSG for a damaged log or snapshot that is not a torn
 * tail (logged: file, byte offset, file length, intact records before it); or -errno.
 * *out owned by caller (raft_storage_close). */
int raft_storage_open(const char *dir, enum raft_storage_mode mode, struct raft_storage **out);
/* Strict, once the caller has checked the restore and will start from it: writes what
 * recovery decided (creates dir and raft.log, cuts a torn tail, completes an interrupted
 * snapshot install, removes *.tmp leftovers and, durably, the clean-shutdown marker).
 * Before it no save is taken. 0 or -errno (logged; then close and open again). */
int raft_storage_accept(struct raft_storage *s);
/* Accepted, with raft.log known whole: fdatasyncs what is unsynced and writes the marker.
 * Unaccepted (or salvage): writes nothing. */
void raft_storage_close(struct raft_storage *s);
/* What was recovered; pointers stay valid until the next storage call. Entries are
 * contiguous and follow the snapshot, as raft_new requires, in salvage mode too. */
void raft_storage_restore(struct raft_storage *s, struct raft_restore *out);
/* Persists a ready's snapshot, entries and hard state, then fdatasyncs (if sync).
 * Returns 0 or -errno (logged). Nothing in rd.msgs may be sent before this returns 0.
 * After a failure every later save returns -EIO: close and reopen. Strict mode only,
 * after raft_storage_accept. */
int raft_storage_save(struct raft_storage *s, const struct raft_ready *rd, bool sync);
/* Persists a snapshot the owner took of its applied state (raft_snapshot_create), then
 * rewrites the log without the entries it covers, keeping those after it (unlike a
 * ready's snapshot, which replaces the whole log). Every step fsync'd. Strict mode only,
 * after raft_storage_accept; snap->index must be stored. 0 or -errno (logged). */
int raft_storage_snapshot(struct raft_storage *s, const struct raft_snapshot *snap);
/* Rewrites the log without entries <= index (after a snapshot). Strict mode only, after
 * raft_storage_accept. */
int raft_storage_compact(struct raft_storage *s, uint64_t index);
/* Bytes currently in raft.log (for tests and compaction policy). */
uint64_t raft_storage_log_bytes(const struct raft_storage *s);
/* Salvage: bytes of raft.log not replayed (damaged stretches, and intact records that
 * could not be used: malformed, unknown kind, or entries after an index gap). Strict: 0. */
size_t raft_storage_skipped_bytes(const struct raft_storage *s);
/* Salvage: the intact entries that did not follow the log (after a damaged stretch or
 * gap), in log order, later ones superseding earlier ones of the same or a higher index.
 * Not part of the restore (raft_new could not take them); a recovery tool that wants
 * every intact entry applies them after the restore's. Valid until the next call. */
void raft_storage_strays(const struct raft_storage *s, const struct raft_entry **entries,
                         size_t *n);

#endif
