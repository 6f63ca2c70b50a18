/*
 * Internal to src/raft: the node struct, the in-memory log and the per-follower progress
 * shared by raft.c (elections, ready/advance), replicate.c (log replication, commit,
 * snapshots) and log.c.
 */
#ifndef SAMSA_RAFT_INT_H
#define SAMSA_RAFT_INT_H

#include "raft/raft.h"

/*
 * The in-memory log holds entries (offset, last]; entry i lives at ents[i - offset - 1].
 * offset/offset_term describe the entry just before the first one held (the snapshot
 * boundary or a compaction point). Entries (stable, last] are not yet durable.
 */
struct raft_log {
    struct raft_entry *ents; /* each owns its data */
    size_t n, cap;
    uint64_t offset, offset_term;
    uint64_t stable;    /* highest index known durable (acknowledged by raft_advance) */
    uint64_t committed; /* highest index known committed */
    uint64_t applied;   /* highest index handed to the application and advanced */
};

void rlog_init(struct raft_log *l, uint64_t offset, uint64_t offset_term);
void rlog_free(struct raft_log *l);
uint64_t rlog_last_index(const struct raft_log *l);
uint64_t rlog_last_term(const struct raft_log *l);
bool rlog_term(const struct raft_log *l, uint64_t idx, uint64_t *term);
const struct raft_entry *rlog_entry(const struct raft_log *l, uint64_t idx);
/* Appends a copy of e (its index must be last+1). */
void rlog_append_copy(struct raft_log *l, const struct raft_entry *e);
/* Drops entries >= idx (conflict). Lowers stable if needed. */
void rlog_truncate_from(struct raft_log *l, uint64_t idx);
/* Drops entries <= idx from memory (idx must be held or be offset). */
void rlog_compact(struct raft_log *l, uint64_t idx);
/* Replaces everything with an empty log after (idx, term). */
void rlog_reset(struct raft_log *l, uint64_t idx, uint64_t term);
/* Candidate's log (last_term, last_index) at least as up to date as ours? */
bool rlog_is_up_to_date(const struct raft_log *l, uint64_t last_term, uint64_t last_index);
/* Deep-copies entries [lo, hi] into a malloc'd array; at most max_n and ~max_bytes. */
size_t rlog_copy_range(const struct raft_log *l, uint64_t lo, uint64_t hi, size_t max_n,
                       uint64_t max_bytes, struct raft_entry **out);

enum progress_state { PR_PROBE, PR_REPLICATE, PR_SNAPSHOT };

/* Leader's view of one peer. */
struct progress {
    uint64_t id;
    bool voter;
    enum progress_state state;
    uint64_t match, next;
    bool paused;                /* probe: one append in flight until a reply or heartbeat reply */
    bool recent_active;         /* heard from since the last check-quorum round */
    uint32_t inflight;          /* append messages outstanding in replicate state */
    uint64_t inflight_last[64]; /* ring of last indexes sent, to free slots on ack */
    uint32_t inflight_head;
    uint64_t pending_snapshot;       /* index of the snapshot being sent */
    uint32_t pending_snapshot_beats; /* heartbeat replies since; resend after a timeout */
    uint64_t read_ack;               /* highest read-index round this peer acknowledged */
};

struct pending_read {
    uint64_t context, index, round;
};

struct raft {
    struct raft_config cfg;
    uint64_t id;
    uint64_t term, vote, leader;
    enum raft_role role;
    struct raft_log log;
    struct raft_conf conf; /* the applied configuration */
    uint64_t pending_conf; /* index of the last conf entry appended by this leader */

    uint32_t election_elapsed, heartbeat_elapsed, randomized_timeout;
    uint64_t rng;

    /* elections: who granted (1) / rejected (2) our (pre)vote, indexed like conf.voters */
    uint8_t votes[RAFT_MAX_NODES];

    struct progress prs[2 * RAFT_MAX_NODES];
    uint32_t n_prs;

    uint64_t transferee;
    uint32_t transfer_elapsed;

    struct pending_read *reads_pending;
    size_t n_reads_pending, cap_reads_pending;
    uint64_t read_round; /* increases with every heartbeat round carrying a read */
    struct raft_read_state *reads_ready;
    size_t n_reads_ready, cap_reads_ready;

    struct raft_msg *msgs; /* outbox; entries/snapshot data owned (freed on advance) */
    size_t n_msgs, cap_msgs;

    struct raft_snapshot snapshot; /* the latest snapshot we hold (data owned) */
    bool snapshot_unstable;        /* received, not yet persisted and installed */

    struct raft_hard_state prev_hs; /* last hard state handed out in a ready */
    /* set by raft_ready for raft_advance */
    uint64_t ready_stable_to, ready_stable_term, ready_applied_to;
    bool ready_snapshot;
    size_t ready_n_reads;
};

/* raft.c */
void raft_become_follower(struct raft *r, uint64_t term, uint64_t leader);
struct raft_msg *raft_send(struct raft *r, uint8_t type, uint64_t to);
struct progress *raft_progress(struct raft *r, uint64_t id);
bool raft_is_voter_self(const struct raft *r);
uint32_t raft_quorum(const struct raft *r);
void raft_apply_conf(struct raft *r, const struct raft_conf *c);
void raft_reset_timeouts(struct raft *r);

/* replicate.c */
void raft_reset_progress(struct raft *r);
void raft_bcast_append(struct raft *r);
void raft_bcast_heartbeat(struct raft *r, uint64_t context);
bool raft_send_append(struct raft *r, struct progress *pr, bool allow_empty);
bool raft_maybe_commit(struct raft *r);
void raft_leader_append(struct raft *r, uint8_t type, const void *data, size_t len);
void raft_handle_append(struct raft *r, const struct raft_msg *m);
void raft_handle_append_resp(struct raft *r, const struct raft_msg *m);
void raft_handle_heartbeat(struct raft *r, const struct raft_msg *m);
void raft_handle_heartbeat_resp(struct raft *r, const struct raft_msg *m);
void raft_handle_snapshot(struct raft *r, const struct raft_msg *m);
void raft_release_reads(struct raft *r);

#endif
