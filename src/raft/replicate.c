/*
 * Log replication: the leader's per-follower progress (probe, pipelined replicate with a
 * bounded in-flight window, snapshot), the follower's append/heartbeat/snapshot handling
 * with fast backtracking hints, the commit rule, and read-index confirmation.
 */
#include "raft/raft_int.h"

#include <stdlib.h>
#include <string.h>

void raft_reset_progress(struct raft *r)
{
    r->n_prs = 0;
    uint64_t last = rlog_last_index(&r->log);
    for (int pass = 0; pass < 2; pass++) {
        const uint64_t *ids = pass ? r->conf.learners : r->conf.voters;
        uint32_t n = pass ? r->conf.n_learners : r->conf.n_voters;
        for (uint32_t i = 0; i < n; i++) {
            struct progress *pr = &r->prs[r->n_prs++];
            memset(pr, 0, sizeof *pr);
            pr->id = ids[i];
            pr->voter = !pass;
            pr->state = PR_PROBE;
            pr->next = last + 1;
            pr->recent_active = true;
            if (ids[i] == r->id)
                pr->match = r->log.stable;
        }
    }
}

static void inflight_reset(struct progress *pr)
{
    pr->inflight = 0;
    pr->inflight_head = 0;
}

static void inflight_add(struct progress *pr, uint64_t last)
{
    ASSERT(pr->inflight < 64);
    pr->inflight_last[(pr->inflight_head + pr->inflight) % 64] = last;
    pr->inflight++;
}

static void inflight_free_to(struct progress *pr, uint64_t idx)
{
    while (pr->inflight && pr->inflight_last[pr->inflight_head] <= idx) {
        pr->inflight_head = (pr->inflight_head + 1) % 64;
        pr->inflight--;
    }
}

static void become_probe(struct progress *pr)
{
    pr->state = PR_PROBE;
    pr->paused = false;
    pr->pending_snapshot = 0;
    inflight_reset(pr);
}

static void become_replicate(struct progress *pr)
{
    pr->state = PR_REPLICATE;
    pr->paused = false;
    pr->next = pr->match + 1;
    inflight_reset(pr);
}

static void send_snapshot(struct raft *r, struct progress *pr)
{
    ASSERT(r->snapshot.index >= r->log.offset && r->snapshot.index > 0);
    struct raft_msg *m = raft_send(r, RAFT_MSG_SNAPSHOT, pr->id);
    m->snapshot = r->snapshot;
    m->snapshot.data = NULL;
    if (r->snapshot.len) {
        m->snapshot.data = xmalloc(r->snapshot.len);
        memcpy(m->snapshot.data, r->snapshot.data, r->snapshot.len);
    }
    pr->state = PR_SNAPSHOT;
    pr->pending_snapshot = r->snapshot.index;
    pr->pending_snapshot_beats = 0;
    pr->paused = true;
    inflight_reset(pr);
}

/* Sends the next append to pr if flow control allows; with allow_empty an append without
 * entries still goes out (to carry the commit index). Returns whether anything was sent. */
bool raft_send_append(struct raft *r, struct progress *pr, bool allow_empty)
{
    if (pr->id == r->id || pr->state == PR_SNAPSHOT)
        return false;
    if (pr->state == PR_PROBE && pr->paused)
        return false;
    if (pr->state == PR_REPLICATE && pr->inflight >= r->cfg.max_inflight)
        return false;
    uint64_t prev = pr->next - 1, prev_term;
    if (!rlog_term(&r->log, prev, &prev_term)) {
        /* The entries this follower needs are compacted away. */
        send_snapshot(r, pr);
        return true;
    }
    uint64_t last = rlog_last_index(&r->log);
    struct raft_entry *ents = NULL;
    size_t n = rlog_copy_range(&r->log, pr->next, last, r->cfg.max_msg_entries,
                               r->cfg.max_msg_bytes, &ents);
    if (n == 0 && !allow_empty)
        return false;
    struct raft_msg *m = raft_send(r, RAFT_MSG_APPEND, pr->id);
    m->index = prev;
    m->log_term = prev_term;
    m->commit = r->log.committed;
    m->entries = ents;
    m->n_entries = (uint32_t)n;
    if (pr->state == PR_REPLICATE) {
        if (n) {
            pr->next = prev + n + 1;
            inflight_add(pr, prev + n);
        }
    } else {
        pr->paused = true;
    }
    return true;
}

void raft_bcast_append(struct raft *r)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        raft_send_append(r, &r->prs[i], true);
}

void raft_bcast_heartbeat(struct raft *r, uint64_t context)
{
    for (uint32_t i = 0; i < r->n_prs; i++) {
        struct progress *pr = &r->prs[i];
        if (pr->id == r->id)
            continue;
        struct raft_msg *m = raft_send(r, RAFT_MSG_HEARTBEAT, pr->id);
        /* Only what the follower is known to hold: its log past match may diverge. */
        m->commit = MIN(pr->match, r->log.committed);
        m->context = context;
    }
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The commit rule: the highest index held by a quorum of voters, and only if it is of the
 * current term (Raft §5.4.2; figure 8 shows what goes wrong otherwise). */
bool raft_maybe_commit(struct raft *r)
{
    uint64_t matches[2 * RAFT_MAX_NODES];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].voter)
            matches[n++] = r->prs[i].match;
    if (n == 0)
        return false;
    qsort(matches, n, sizeof matches[0], cmp_desc);
    uint64_t idx = matches[raft_quorum(r) - 1], term;
    if (idx <= r->log.committed || !rlog_term(&r->log, idx, &term) || term != r->term)
        return false;
    r->log.committed = idx;
    return true;
}

/* Largest index <= idx whose term is <= term (or the log start): where two logs can
 * possibly agree, used on both sides of fast backtracking. */
static uint64_t find_conflict_by_term(const struct raft_log *l, uint64_t idx, uint64_t term)
{
    idx = MIN(idx, rlog_last_index(l));
    for (;;) {
        uint64_t t;
        if (!rlog_term(l, idx, &t) || t <= term)
            return idx;
        idx--;
    }
}

void raft_handle_append(struct raft *r, const struct raft_msg *m)
{
    struct raft_msg *resp;
    if (m->index < r->log.committed) {
        /* Everything up to commit already matches; tell the leader where we are. */
        resp = raft_send(r, RAFT_MSG_APPEND_RESP, m->from);
        resp->index = r->log.committed;
        return;
    }
    uint64_t t;
    if (!rlog_term(&r->log, m->index, &t) || t != m->log_term) {
        uint64_t hint = find_conflict_by_term(&r->log, m->index, m->log_term);
        uint64_t hint_term = 0;
        rlog_term(&r->log, hint, &hint_term);
        resp = raft_send(r, RAFT_MSG_APPEND_RESP, m->from);
        resp->reject = true;
        resp->index = m->index;
        resp->hint_index = hint;
        resp->hint_term = hint_term;
        return;
    }
    /* Skip the prefix we already hold; truncate at the first conflict. */
    uint32_t i = 0;
    for (; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        if (!rlog_term(&r->log, e->index, &t))
            break;
        if (t != e->term) {
            if (e->index <= r->log.committed) {
                say_error("raft",
                          "node %llu: leader %llu sent entry %llu conflicting with "
                          "a committed entry; ignoring the message",
                          (unsigned long long)r->id, (unsigned long long)m->from,
                          (unsigned long long)e->index);
                return;
            }
            rlog_truncate_from(&r->log, e->index);
            break;
        }
    }
    for (; i < m->n_entries; i++)
        rlog_append_copy(&r->log, &m->entries[i]);
    uint64_t last_new = m->index + m->n_entries;
    uint64_t commit = MIN(m->commit, last_new);
    if (commit > r->log.committed)
        r->log.committed = commit;
    resp = raft_send(r, RAFT_MSG_APPEND_RESP, m->from);
    resp->index = last_new;
}

static void maybe_send_timeout_now(struct raft *r, struct progress *pr)
{
    if (r->transferee == pr->id && pr->match == rlog_last_index(&r->log))
        raft_send(r, RAFT_MSG_TIMEOUT_NOW, pr->id);
}

void raft_handle_append_resp(struct raft *r, const struct raft_msg *m)
{
    struct progress *pr = raft_progress(r, m->from);
    pr->recent_active = true;
    if (m->reject) {
        if (pr->state == PR_REPLICATE && m->index <= pr->match)
            return; /* stale */
        if (pr->state == PR_PROBE && m->index != pr->next - 1)
            return; /* stale: not the probe we are waiting for */
        if (pr->state == PR_SNAPSHOT)
            return;
        uint64_t next = m->hint_index;
        if (m->hint_term > 0)
            next = find_conflict_by_term(&r->log, m->hint_index, m->hint_term);
        if (next < r->log.offset)
            next = r->log.offset; /* below our log: the probe will turn into a snapshot */
        pr->next = MAX(MIN(next + 1, m->index), pr->match + 1);
        become_probe(pr);
        raft_send_append(r, pr, true);
        return;
    }
    if (m->index > rlog_last_index(&r->log))
        return; /* bogus: acknowledges entries we never had */
    if (m->index > pr->match) {
        pr->match = m->index;
        pr->next = MAX(pr->next, pr->match + 1);
        if (pr->state == PR_PROBE) {
            become_replicate(pr);
        } else if (pr->state == PR_SNAPSHOT && pr->match >= pr->pending_snapshot) {
            become_probe(pr);
            pr->next = pr->match + 1;
        } else {
            inflight_free_to(pr, m->index);
        }
        if (raft_maybe_commit(r))
            raft_bcast_append(r);
        else
            while (raft_send_append(r, pr, false)) {
            }
        maybe_send_timeout_now(r, pr);
    } else if (pr->state == PR_PROBE) {
        pr->paused = false;
        raft_send_append(r, pr, false);
    }
}

void raft_handle_heartbeat(struct raft *r, const struct raft_msg *m)
{
    uint64_t commit = MIN(m->commit, rlog_last_index(&r->log));
    if (commit > r->log.committed)
        r->log.committed = commit;
    struct raft_msg *resp = raft_send(r, RAFT_MSG_HEARTBEAT_RESP, m->from);
    resp->context = m->context;
}

void raft_handle_heartbeat_resp(struct raft *r, const struct raft_msg *m)
{
    struct progress *pr = raft_progress(r, m->from);
    pr->recent_active = true;
    if (m->context > pr->read_ack && m->context <= r->read_round)
        pr->read_ack = m->context;
    if (pr->state == PR_SNAPSHOT) {
        /* The snapshot may have been lost; retry it after an election timeout's worth
         * of heartbeats instead of on every one. */
        if (++pr->pending_snapshot_beats >= r->cfg.election_ticks) {
            pr->pending_snapshot_beats = 0;
            become_probe(pr);
        }
    } else {
        pr->paused = false;
        /* A full window with a live follower means appends were lost: free a slot so
         * the next append goes out, gets rejected for its gap and turns into a probe. */
        if (pr->state == PR_REPLICATE && pr->inflight >= r->cfg.max_inflight)
            inflight_free_to(pr, pr->inflight_last[pr->inflight_head]);
    }
    /* Empty appends too: if everything in flight was lost, an append at next-1 is what
     * makes the follower reject and the leader fall back to probing. */
    if (pr->match < rlog_last_index(&r->log))
        raft_send_append(r, pr, true);
    raft_release_reads(r);
}

void raft_handle_snapshot(struct raft *r, const struct raft_msg *m)
{
    const struct raft_snapshot *s = &m->snapshot;
    struct raft_msg *resp;
    uint64_t t;
    if (s->index <= r->log.committed || r->snapshot_unstable) {
        resp = raft_send(r, RAFT_MSG_APPEND_RESP, m->from);
        resp->index = r->log.committed;
        return;
    }
    if (rlog_term(&r->log, s->index, &t) && t == s->term) {
        /* We hold the entries already: just learn they are committed. */
        r->log.committed = s->index;
        resp = raft_send(r, RAFT_MSG_APPEND_RESP, m->from);
        resp->index = r->log.committed;
        return;
    }
    say_debug("raft", "node %llu: installing snapshot at %llu/%llu from %llu",
              (unsigned long long)r->id, (unsigned long long)s->index, (unsigned long long)s->term,
              (unsigned long long)m->from);
    rlog_reset(&r->log, s->index, s->term);
    free(r->snapshot.data);
    r->snapshot = *s;
    r->snapshot.data = NULL;
    if (s->len) {
        r->snapshot.data = xmalloc(s->len);
        memcpy(r->snapshot.data, s->data, s->len);
    }
    r->snapshot_unstable = true;
    resp = raft_send(r, RAFT_MSG_APPEND_RESP, m->from);
    resp->index = s->index;
}

/* Releases pending reads whose heartbeat round a quorum of voters has acknowledged. */
void raft_release_reads(struct raft *r)
{
    if (r->role != RAFT_LEADER || r->n_reads_pending == 0)
        return;
    uint64_t acks[2 * RAFT_MAX_NODES];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].voter)
            acks[n++] = r->prs[i].id == r->id ? r->read_round : r->prs[i].read_ack;
    qsort(acks, n, sizeof acks[0], cmp_desc);
    uint64_t confirmed = acks[raft_quorum(r) - 1];
    size_t k = 0;
    while (k < r->n_reads_pending && r->reads_pending[k].round <= confirmed) {
        if (r->n_reads_ready == r->cap_reads_ready) {
            r->cap_reads_ready = r->cap_reads_ready ? r->cap_reads_ready * 2 : 8;
            r->reads_ready = xrealloc(r->reads_ready, r->cap_reads_ready * sizeof *r->reads_ready);
        }
        r->reads_ready[r->n_reads_ready++] = (struct raft_read_state){
            .context = r->reads_pending[k].context, .index = r->reads_pending[k].index};
        k++;
    }
    memmove(r->reads_pending, r->reads_pending + k,
            (r->n_reads_pending - k) * sizeof *r->reads_pending);
    r->n_reads_pending -= k;
}
