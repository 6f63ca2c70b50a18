/*
 * Raft core: node lifecycle, timers, elections (pre-vote, check-quorum lease), message
 * dispatch by term, proposals, membership, leadership transfer, read index, and the
 * ready/advance handshake with the application. Log replication lives in replicate.c.
 *
 * Configuration changes take effect when applied (as in etcd/raft), one voter at a time;
 * a leader proposes a change only after every earlier conf entry in its log (and its own
 * election no-op) is applied, which rules out the single-server-change bug described by
 * Ongaro (raft-dev, 2015).
 */
#include "raft/raft_int.h"

#include <stdlib.h>
#include <string.h>

const char *raft_role_name(enum raft_role role)
{
    switch (role) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_PRE_CANDIDATE: return "pre-candidate";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    }
    return "?";
}

void raft_config_default(struct raft_config *c, uint64_t id)
{
    memset(c, 0, sizeof *c);
    c->id = id;
    c->election_ticks = 10;
    c->heartbeat_ticks = 1;
    c->pre_vote = true;
    c->check_quorum = true;
    c->max_inflight = 64;
    c->max_msg_entries = 256;
    c->max_msg_bytes = 1u << 20;
    c->seed = id;
}

static uint64_t rng_next(struct raft *r)
{
    /* xorshift64*: deterministic per (seed, id), enough to spread election timeouts. */
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * 2685821657736338717ull;
}

void raft_reset_timeouts(struct raft *r)
{
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    r->randomized_timeout = r->cfg.election_ticks + (uint32_t)(rng_next(r) % r->cfg.election_ticks);
}

bool raft_is_voter_self(const struct raft *r)
{
    return raft_conf_is_voter(&r->conf, r->id);
}

uint32_t raft_quorum(const struct raft *r)
{
    return r->conf.n_voters / 2 + 1;
}

struct progress *raft_progress(struct raft *r, uint64_t id)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

struct raft_msg *raft_send(struct raft *r, uint8_t type, uint64_t to)
{
    if (r->n_msgs == r->cap_msgs) {
        r->cap_msgs = r->cap_msgs ? r->cap_msgs * 2 : 16;
        r->msgs = xrealloc(r->msgs, r->cap_msgs * sizeof *r->msgs);
    }
    struct raft_msg *m = &r->msgs[r->n_msgs++];
    memset(m, 0, sizeof *m);
    m->type = type;
    m->from = r->id;
    m->to = to;
    m->term = r->term;
    return m;
}

static void free_msg(struct raft_msg *m)
{
    for (uint32_t i = 0; i < m->n_entries; i++)
        free(m->entries[i].data);
    free(m->entries);
    free(m->snapshot.data);
}

static void drop_reads(struct raft *r)
{
    r->n_reads_pending = 0;
}

void raft_become_follower(struct raft *r, uint64_t term, uint64_t leader)
{
    ASSERT(term >= r->term);
    if (term > r->term) {
        r->term = term;
        r->vote = 0;
    }
    if (r->role != RAFT_FOLLOWER || r->leader != leader)
        say_debug("raft", "node %llu became follower at term %llu (leader %llu)",
                  (unsigned long long)r->id, (unsigned long long)term, (unsigned long long)leader);
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
    r->transferee = 0;
    drop_reads(r);
    raft_reset_timeouts(r);
}

static void become_leader(struct raft *r)
{
    ASSERT(r->role == RAFT_CANDIDATE);
    r->role = RAFT_LEADER;
    r->leader = r->id;
    r->transferee = 0;
    raft_reset_timeouts(r);
    raft_reset_progress(r);
    say_debug("raft", "node %llu became leader at term %llu", (unsigned long long)r->id,
              (unsigned long long)r->term);
    /* The no-op lets the leader commit (and learn the commit index of) everything from
     * earlier terms: entries of old terms are only committed indirectly (figure 8). */
    raft_leader_append(r, RAFT_ENTRY_NORMAL, NULL, 0);
    /* No conf change until everything up to here is applied (see the file comment). */
    r->pending_conf = rlog_last_index(&r->log);
}

/* Counts granted/rejected votes; returns 1 won, -1 lost, 0 undecided. */
static int tally(struct raft *r)
{
    uint32_t granted = 0, rejected = 0;
    for (uint32_t i = 0; i < r->conf.n_voters; i++) {
        granted += r->votes[i] == 1;
        rejected += r->votes[i] == 2;
    }
    if (granted >= raft_quorum(r))
        return 1;
    if (rejected >= raft_quorum(r))
        return -1;
    return 0;
}

static void record_vote(struct raft *r, uint64_t id, bool granted)
{
    for (uint32_t i = 0; i < r->conf.n_voters; i++)
        if (r->conf.voters[i] == id && r->votes[i] == 0)
            r->votes[i] = granted ? 1 : 2;
}

static void campaign(struct raft *r, bool pre, bool transfer)
{
    if (!raft_is_voter_self(r))
        return;
    memset(r->votes, 0, sizeof r->votes);
    uint64_t campaign_term;
    if (pre) {
        r->role = RAFT_PRE_CANDIDATE;
        r->leader = 0;
        raft_reset_timeouts(r);
        campaign_term = r->term + 1;
    } else {
        r->term++;
        r->vote = r->id;
        r->role = RAFT_CANDIDATE;
        r->leader = 0;
        raft_reset_timeouts(r);
        campaign_term = r->term;
    }
    drop_reads(r);
    record_vote(r, r->id, true);
    if (tally(r) == 1) {
        if (pre)
            campaign(r, false, false);
        else
            become_leader(r);
        return;
    }
    for (uint32_t i = 0; i < r->conf.n_voters; i++) {
        uint64_t to = r->conf.voters[i];
        if (to == r->id)
            continue;
        struct raft_msg *m = raft_send(r, pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE, to);
        m->term = campaign_term;
        m->index = rlog_last_index(&r->log);
        m->log_term = rlog_last_term(&r->log);
        m->flags = transfer ? RAFT_FLAG_TRANSFER : 0;
    }
}

void raft_campaign(struct raft *r)
{
    if (r->role == RAFT_LEADER)
        return;
    campaign(r, r->cfg.pre_vote, false);
}

static void tick_leader(struct raft *r)
{
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->transferee && ++r->transfer_elapsed >= r->cfg.election_ticks) {
        say_debug("raft", "node %llu: leadership transfer to %llu timed out",
                  (unsigned long long)r->id, (unsigned long long)r->transferee);
        r->transferee = 0;
    }
    if (r->election_elapsed >= r->cfg.election_ticks) {
        r->election_elapsed = 0;
        if (r->cfg.check_quorum) {
            /* A leader cut off from a quorum steps down, so that clients go elsewhere
             * and its lease-based rejection of votes does not outlive it. */
            uint32_t active = 0;
            for (uint32_t i = 0; i < r->n_prs; i++) {
                struct progress *pr = &r->prs[i];
                if (pr->voter && (pr->id == r->id || pr->recent_active))
                    active++;
                pr->recent_active = false;
            }
            if (active < raft_quorum(r)) {
                say_debug("raft", "node %llu lost its quorum at term %llu; stepping down",
                          (unsigned long long)r->id, (unsigned long long)r->term);
                raft_become_follower(r, r->term, 0);
                return;
            }
        }
    }
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        raft_bcast_heartbeat(r, r->read_round);
    }
}

void raft_tick(struct raft *r)
{
    if (r->role == RAFT_LEADER) {
        tick_leader(r);
        return;
    }
    r->election_elapsed++;
    if (r->election_elapsed >= r->randomized_timeout) {
        r->election_elapsed = 0;
        if (raft_is_voter_self(r))
            campaign(r, r->cfg.pre_vote, false);
        else
            raft_reset_timeouts(r);
    }
}

static void handle_vote(struct raft *r, const struct raft_msg *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE;
    /* A pre-vote for a future term can be granted while we still follow someone; the
     * lease check in raft_step already refused it if that leader is alive. */
    bool can_vote =
        r->vote == m->from || (r->vote == 0 && r->leader == 0) || (pre && m->term > r->term);
    bool grant = can_vote && rlog_is_up_to_date(&r->log, m->log_term, m->index);
    struct raft_msg *resp = raft_send(r, pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP, m->from);
    resp->reject = !grant;
    /* A granted pre-vote answers in the candidate's future term so it can count it. */
    resp->term = (pre && grant) ? m->term : r->term;
    if (grant && !pre) {
        r->vote = m->from;
        r->election_elapsed = 0;
    }
}

static void handle_vote_resp(struct raft *r, const struct raft_msg *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE_RESP;
    if (pre && (r->role != RAFT_PRE_CANDIDATE || m->term != r->term + 1) && !m->reject)
        return;
    if (pre && r->role != RAFT_PRE_CANDIDATE)
        return;
    if (!pre && r->role != RAFT_CANDIDATE)
        return;
    record_vote(r, m->from, !m->reject);
    int t = tally(r);
    if (t == 1) {
        if (pre)
            campaign(r, false, false);
        else
            become_leader(r);
    } else if (t == -1) {
        raft_become_follower(r, r->term, 0);
    }
}

static int step_leader_resp(struct raft *r, const struct raft_msg *m)
{
    if (r->role != RAFT_LEADER || !raft_progress(r, m->from))
        return -RAFT_ESTALE;
    if (m->type == RAFT_MSG_APPEND_RESP)
        raft_handle_append_resp(r, m);
    else
        raft_handle_heartbeat_resp(r, m);
    return 0;
}

static int validate(const struct raft *r, const struct raft_msg *m)
{
    if (m->type < RAFT_MSG_PREVOTE || m->type > RAFT_MSG_TYPE_MAX || m->from == 0 ||
        m->from == r->id || m->to != r->id || m->term == 0)
        return -RAFT_EINVAL;
    if (m->n_entries > RAFT_MAX_ENTRIES_PER_MSG || (m->n_entries && !m->entries))
        return -RAFT_EINVAL;
    /* Terms and indexes far beyond any real log would only overflow arithmetic. */
    if (m->term > RAFT_MAX_INDEX || m->index > RAFT_MAX_INDEX || m->log_term > RAFT_MAX_INDEX ||
        m->hint_index > RAFT_MAX_INDEX || m->hint_term > RAFT_MAX_INDEX ||
        m->snapshot.index > RAFT_MAX_INDEX || m->snapshot.term > RAFT_MAX_INDEX)
        return -RAFT_EINVAL;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        uint64_t prev_term = i ? m->entries[i - 1].term : m->log_term;
        if (e->index != m->index + 1 + i || e->term < prev_term || e->term > m->term ||
            e->type > RAFT_ENTRY_CONF || e->len > RAFT_MAX_ENTRY_BYTES || (e->len && !e->data))
            return -RAFT_EINVAL;
        struct raft_conf c;
        if (e->type == RAFT_ENTRY_CONF && raft_conf_decode(e->data, e->len, &c) != 0)
            return -RAFT_EINVAL;
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        const struct raft_snapshot *s = &m->snapshot;
        if (s->index == 0 || s->term == 0 || s->term > m->term || s->conf.n_voters == 0 ||
            s->len > RAFT_MAX_SNAPSHOT_BYTES || (s->len && !s->data))
            return -RAFT_EINVAL;
    }
    return 0;
}

int raft_step(struct raft *r, const struct raft_msg *m)
{
    int rc = validate(r, m);
    if (rc != 0) {
        say_debug("raft", "node %llu: dropping malformed %s from %llu", (unsigned long long)r->id,
                  raft_msg_type_name(m->type), (unsigned long long)m->from);
        return rc;
    }
    bool is_vote = m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE;
    if (m->term > r->term) {
        if (is_vote && r->cfg.check_quorum && r->leader != 0 &&
            r->election_elapsed < r->cfg.election_ticks && !(m->flags & RAFT_FLAG_TRANSFER)) {
            /* Lease: we heard from a live leader within the election timeout, so this
             * candidate (a rejoining, partitioned node) must not depose it. */
            return -RAFT_ESTALE;
        }
        if (m->type == RAFT_MSG_PREVOTE || (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
            /* pre-vote never changes terms */
        } else if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
                   m->type == RAFT_MSG_SNAPSHOT) {
            raft_become_follower(r, m->term, m->from);
        } else {
            raft_become_follower(r, m->term, 0);
        }
    } else if (m->term < r->term) {
        if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
            (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT)) {
            /* Tell a stale leader our term so it steps down; without this a leader cut
             * off by a partition would keep its followers' pre-votes refused forever. */
            raft_send(r, RAFT_MSG_APPEND_RESP, m->from);
        } else if (m->type == RAFT_MSG_PREVOTE) {
            struct raft_msg *resp = raft_send(r, RAFT_MSG_PREVOTE_RESP, m->from);
            resp->reject = true;
        }
        return -RAFT_ESTALE;
    }

    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE: handle_vote(r, m); return 0;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP: handle_vote_resp(r, m); return 0;
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        if (r->role == RAFT_LEADER) {
            say_warn("raft", "node %llu: leader got %s from %llu in its own term %llu",
                     (unsigned long long)r->id, raft_msg_type_name(m->type),
                     (unsigned long long)m->from, (unsigned long long)m->term);
            return -RAFT_EINVAL;
        }
        if (r->role != RAFT_FOLLOWER || r->leader != m->from)
            raft_become_follower(r, m->term, m->from);
        r->election_elapsed = 0;
        if (m->type == RAFT_MSG_APPEND)
            raft_handle_append(r, m);
        else if (m->type == RAFT_MSG_HEARTBEAT)
            raft_handle_heartbeat(r, m);
        else
            raft_handle_snapshot(r, m);
        return 0;
    case RAFT_MSG_APPEND_RESP:
    case RAFT_MSG_HEARTBEAT_RESP: return step_leader_resp(r, m);
    case RAFT_MSG_TIMEOUT_NOW:
        if (r->role == RAFT_LEADER)
            return -RAFT_EINVAL;
        /* Skip pre-vote and tell voters to ignore their lease: the leader asked. */
        campaign(r, false, true);
        return 0;
    }
    return -RAFT_EINVAL;
}

void raft_leader_append(struct raft *r, uint8_t type, const void *data, size_t len)
{
    struct raft_entry e = {.term = r->term,
                           .index = rlog_last_index(&r->log) + 1,
                           .type = type,
                           .len = (uint32_t)len,
                           .data = (uint8_t *)data};
    rlog_append_copy(&r->log, &e);
    raft_bcast_append(r);
}

int raft_propose(struct raft *r, const void *data, size_t len, uint64_t *index_out)
{
    if (r->role != RAFT_LEADER)
        return -RAFT_ENOTLEADER;
    if (r->transferee)
        return -RAFT_EBUSY;
    if (len > RAFT_MAX_ENTRY_BYTES)
        return -RAFT_EINVAL;
    raft_leader_append(r, RAFT_ENTRY_NORMAL, data, len);
    if (index_out)
        *index_out = rlog_last_index(&r->log);
    return 0;
}

static void conf_remove(uint64_t *ids, uint32_t *n, uint64_t id)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (ids[i] == id) {
            ids[i] = ids[--*n];
            return;
        }
    }
}

int raft_propose_conf(struct raft *r, enum raft_conf_op op, uint64_t node, uint64_t *index_out)
{
    if (r->role != RAFT_LEADER)
        return -RAFT_ENOTLEADER;
    if (r->transferee || r->log.applied < r->pending_conf)
        return -RAFT_EBUSY;
    if (node == 0)
        return -RAFT_EINVAL;
    struct raft_conf c = r->conf;
    switch (op) {
    case RAFT_CONF_ADD_VOTER:
        if (raft_conf_is_voter(&c, node))
            return -RAFT_EINVAL;
        if (c.n_voters + c.n_learners >= RAFT_MAX_NODES && !raft_conf_is_learner(&c, node))
            return -RAFT_EINVAL;
        conf_remove(c.learners, &c.n_learners, node);
        c.voters[c.n_voters++] = node;
        break;
    case RAFT_CONF_ADD_LEARNER:
        if (raft_conf_is_voter(&c, node) || raft_conf_is_learner(&c, node) ||
            c.n_voters + c.n_learners >= RAFT_MAX_NODES)
            return -RAFT_EINVAL;
        c.learners[c.n_learners++] = node;
        break;
    case RAFT_CONF_REMOVE:
        if (raft_conf_is_voter(&c, node)) {
            if (c.n_voters == 1)
                return -RAFT_EINVAL;
            conf_remove(c.voters, &c.n_voters, node);
        } else if (raft_conf_is_learner(&c, node)) {
            conf_remove(c.learners, &c.n_learners, node);
        } else {
            return -RAFT_EINVAL;
        }
        break;
    default: return -RAFT_EINVAL;
    }
    struct buf b;
    buf_init(&b);
    raft_conf_encode(&c, &b);
    raft_leader_append(r, RAFT_ENTRY_CONF, b.data, b.len);
    buf_free(&b);
    r->pending_conf = rlog_last_index(&r->log);
    if (index_out)
        *index_out = r->pending_conf;
    return 0;
}

void raft_apply_conf(struct raft *r, const struct raft_conf *c)
{
    r->conf = *c;
    if (r->role != RAFT_LEADER) {
        if (r->role != RAFT_FOLLOWER && !raft_is_voter_self(r))
            raft_become_follower(r, r->term, 0);
        /* A leader that removed itself steps down: stop honouring its lease so the
         * remaining voters can elect a successor without waiting a full timeout. */
        if (r->leader && !raft_conf_is_voter(c, r->leader))
            r->leader = 0;
        return;
    }
    if (!raft_is_voter_self(r)) {
        /* Removed (or demoted): step down; the remaining voters elect a leader among
         * themselves once their election timeout passes. */
        say_info("raft", "node %llu removed from the voters at term %llu; stepping down",
                 (unsigned long long)r->id, (unsigned long long)r->term);
        raft_become_follower(r, r->term, 0);
        return;
    }
    /* Rebuild progress, keeping what we know about peers that stay. */
    struct progress old[2 * RAFT_MAX_NODES];
    uint32_t n_old = r->n_prs;
    memcpy(old, r->prs, sizeof old);
    raft_reset_progress(r);
    for (uint32_t i = 0; i < r->n_prs; i++) {
        for (uint32_t j = 0; j < n_old; j++) {
            if (old[j].id == r->prs[i].id) {
                bool voter = r->prs[i].voter;
                r->prs[i] = old[j];
                r->prs[i].voter = voter;
            }
        }
    }
    if (r->transferee && !raft_conf_is_voter(&r->conf, r->transferee))
        r->transferee = 0;
    if (raft_maybe_commit(r))
        raft_bcast_append(r);
    raft_release_reads(r);
}

int raft_transfer_leader(struct raft *r, uint64_t to)
{
    if (r->role != RAFT_LEADER)
        return -RAFT_ENOTLEADER;
    if (to == r->id)
        return 0;
    if (!raft_conf_is_voter(&r->conf, to))
        return -RAFT_EINVAL;
    r->transferee = to;
    r->transfer_elapsed = 0;
    struct progress *pr = raft_progress(r, to);
    ASSERT(pr);
    if (pr->match == rlog_last_index(&r->log))
        raft_send(r, RAFT_MSG_TIMEOUT_NOW, to);
    else
        raft_send_append(r, pr, false);
    return 0;
}

int raft_read_index(struct raft *r, uint64_t context)
{
    if (r->role != RAFT_LEADER)
        return -RAFT_ENOTLEADER;
    uint64_t t = 0;
    /* Until an entry of this term commits, our commit index may lag the true one. */
    if (!rlog_term(&r->log, r->log.committed, &t) || t != r->term)
        return -RAFT_EBUSY;
    if (r->n_reads_pending == r->cap_reads_pending) {
        r->cap_reads_pending = r->cap_reads_pending ? r->cap_reads_pending * 2 : 8;
        r->reads_pending =
            xrealloc(r->reads_pending, r->cap_reads_pending * sizeof *r->reads_pending);
    }
    r->read_round++;
    r->reads_pending[r->n_reads_pending++] = (struct pending_read){
        .context = context, .index = r->log.committed, .round = r->read_round};
    if (raft_quorum(r) > 1)
        raft_bcast_heartbeat(r, r->read_round);
    raft_release_reads(r);
    return 0;
}

int raft_snapshot_create(struct raft *r, const void *data, size_t len, uint64_t keep_entries)
{
    uint64_t idx = r->log.applied, term;
    if (idx == 0 || idx <= r->snapshot.index || len > RAFT_MAX_SNAPSHOT_BYTES ||
        !rlog_term(&r->log, idx, &term))
        return -RAFT_EINVAL;
    free(r->snapshot.data);
    r->snapshot =
        (struct raft_snapshot){.index = idx, .term = term, .conf = r->conf, .len = (uint32_t)len};
    if (len) {
        r->snapshot.data = xmalloc(len);
        memcpy(r->snapshot.data, data, len);
    }
    if (idx > keep_entries && idx - keep_entries > r->log.offset)
        rlog_compact(&r->log, idx - keep_entries);
    return 0;
}

int raft_new(const struct raft_config *cfg, const struct raft_restore *restore,
             const struct raft_conf *bootstrap, struct raft **out)
{
    *out = NULL;
    if (cfg->id == 0 || cfg->election_ticks < 2 || cfg->heartbeat_ticks == 0 ||
        cfg->heartbeat_ticks >= cfg->election_ticks || cfg->max_inflight == 0 ||
        cfg->max_msg_entries == 0)
        return -RAFT_EINVAL;
    struct raft_restore empty = {0};
    if (!restore)
        restore = &empty;
    const struct raft_snapshot *snap = restore->snapshot;
    if (snap && snap->index == 0)
        snap = NULL;
    uint64_t offset = snap ? snap->index : 0, offset_term = snap ? snap->term : 0;
    /* Storage may keep a few entries the snapshot covers (for lagging followers); the
     * core starts its log at the snapshot. */
    const struct raft_entry *ents = restore->entries;
    size_t n_ents = restore->n_entries;
    while (n_ents && ents[0].index <= offset) {
        ents++;
        n_ents--;
    }
    for (size_t i = 0; i < n_ents; i++) {
        const struct raft_entry *e = &ents[i];
        uint64_t prev_term = i ? ents[i - 1].term : offset_term;
        if (e->index != offset + 1 + i || e->term < prev_term)
            return -RAFT_EINVAL;
    }
    if (restore->hs.commit > offset + n_ents)
        return -RAFT_EINVAL;

    struct raft *r = xcalloc(1, sizeof *r);
    r->cfg = *cfg;
    if (r->cfg.max_inflight > 64)
        r->cfg.max_inflight = 64;
    if (r->cfg.max_msg_entries > RAFT_MAX_ENTRIES_PER_MSG)
        r->cfg.max_msg_entries = RAFT_MAX_ENTRIES_PER_MSG;
    r->id = cfg->id;
    r->rng = (cfg->seed ^ (cfg->id * 0x9E3779B97F4A7C15ull)) | 1;
    rlog_init(&r->log, offset, offset_term);
    if (snap) {
        r->snapshot = *snap;
        r->snapshot.data = NULL;
        if (snap->len) {
            r->snapshot.data = xmalloc(snap->len);
            memcpy(r->snapshot.data, snap->data, snap->len);
        }
        r->conf = snap->conf;
    }
    for (size_t i = 0; i < n_ents; i++)
        rlog_append_copy(&r->log, &ents[i]);
    r->log.stable = rlog_last_index(&r->log);
    r->term = restore->hs.term;
    r->vote = restore->hs.vote;
    r->log.committed = MAX(restore->hs.commit, offset);
    r->prev_hs = restore->hs;
    /* The configuration is that of the last committed conf entry: it was applied before
     * the restart (or could have been), and a node must know its voters before the
     * application re-applies the log, or it could not even campaign. */
    for (uint64_t idx = r->log.committed; idx > offset; idx--) {
        const struct raft_entry *e = rlog_entry(&r->log, idx);
        struct raft_conf c;
        if (e->type == RAFT_ENTRY_CONF && raft_conf_decode(e->data, e->len, &c) == 0) {
            r->conf = c;
            break;
        }
    }
    bool fresh = !snap && n_ents == 0 && restore->hs.term == 0;
    if (fresh && bootstrap) {
        struct buf b;
        buf_init(&b);
        raft_conf_encode(bootstrap, &b);
        struct raft_entry e = {
            .term = 1, .index = 1, .type = RAFT_ENTRY_CONF, .len = (uint32_t)b.len, .data = b.data};
        rlog_append_copy(&r->log, &e);
        buf_free(&b);
        r->term = 1;
        r->log.committed = 1;
        r->log.applied = 1;
        r->conf = *bootstrap;
    }
    r->role = RAFT_FOLLOWER;
    raft_reset_timeouts(r);
    *out = r;
    return 0;
}

void raft_free(struct raft *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_msgs; i++)
        free_msg(&r->msgs[i]);
    free(r->msgs);
    rlog_free(&r->log);
    free(r->snapshot.data);
    free(r->reads_pending);
    free(r->reads_ready);
    free(r);
}

static uint64_t ready_applied_base(const struct raft *r)
{
    return r->snapshot_unstable ? MAX(r->log.applied, r->snapshot.index) : r->log.applied;
}

bool raft_has_ready(const struct raft *r)
{
    struct raft_hard_state hs = {r->term, r->vote, r->log.committed};
    return r->n_msgs || r->snapshot_unstable || r->log.stable < rlog_last_index(&r->log) ||
           memcmp(&hs, &r->prev_hs, sizeof hs) != 0 || r->n_reads_ready ||
           MIN(r->log.committed, rlog_last_index(&r->log)) > ready_applied_base(r);
}

void raft_ready(struct raft *r, struct raft_ready *rd)
{
    memset(rd, 0, sizeof *rd);
    rd->hs = (struct raft_hard_state){r->term, r->vote, r->log.committed};
    rd->hs_changed = memcmp(&rd->hs, &r->prev_hs, sizeof rd->hs) != 0;
    r->ready_snapshot = r->snapshot_unstable;
    if (r->snapshot_unstable)
        rd->snapshot = &r->snapshot;
    uint64_t last = rlog_last_index(&r->log);
    uint64_t from = MAX(r->log.stable, r->log.offset) + 1;
    if (from <= last) {
        rd->entries = rlog_entry(&r->log, from);
        rd->n_entries = (size_t)(last - from + 1);
    }
    r->ready_stable_to = last;
    uint64_t base = ready_applied_base(r);
    uint64_t hi = MIN(r->log.committed, last);
    r->ready_applied_to = base;
    if (hi > base) {
        rd->committed = rlog_entry(&r->log, base + 1);
        rd->n_committed = (size_t)(hi - base);
        r->ready_applied_to = hi;
    }
    rd->msgs = r->msgs;
    rd->n_msgs = r->n_msgs;
    rd->reads = r->reads_ready;
    rd->n_reads = r->n_reads_ready;
    r->ready_n_reads = r->n_reads_ready;
}

void raft_advance(struct raft *r, const struct raft_ready *rd)
{
    r->prev_hs = rd->hs;
    if (r->ready_snapshot) {
        r->snapshot_unstable = false;
        r->log.stable = MAX(r->log.stable, r->snapshot.index);
        r->log.applied = MAX(r->log.applied, r->snapshot.index);
        raft_apply_conf(r, &r->snapshot.conf);
    }
    r->log.stable = MAX(r->log.stable, r->ready_stable_to);
    for (size_t i = 0; i < r->n_msgs; i++)
        free_msg(&r->msgs[i]);
    r->n_msgs = 0;
    if (r->ready_n_reads) {
        memmove(r->reads_ready, r->reads_ready + r->ready_n_reads,
                (r->n_reads_ready - r->ready_n_reads) * sizeof *r->reads_ready);
        r->n_reads_ready -= r->ready_n_reads;
    }
    /* Apply conf entries as they are applied; a conf change may end our leadership. */
    for (uint64_t idx = r->log.applied + 1; idx <= r->ready_applied_to; idx++) {
        const struct raft_entry *e = rlog_entry(&r->log, idx);
        ASSERT(e);
        r->log.applied = idx;
        struct raft_conf c;
        if (e->type == RAFT_ENTRY_CONF && raft_conf_decode(e->data, e->len, &c) == 0)
            raft_apply_conf(r, &c);
    }
    if (r->role == RAFT_LEADER) {
        /* The leader counts itself only for what it has made durable. */
        struct progress *self = raft_progress(r, r->id);
        if (self) {
            self->match = r->log.stable;
            self->next = self->match + 1;
        }
        if (raft_maybe_commit(r))
            raft_bcast_append(r);
        raft_release_reads(r);
    }
}

void raft_status(const struct raft *r, struct raft_status *st)
{
    memset(st, 0, sizeof *st);
    st->id = r->id;
    st->term = r->term;
    st->vote = r->vote;
    st->leader = r->leader;
    st->role = r->role;
    st->commit = r->log.committed;
    st->applied = r->log.applied;
    st->last_index = rlog_last_index(&r->log);
    st->stable_index = r->log.stable;
    st->first_index = r->log.offset + 1;
    st->snapshot_index = r->snapshot.index;
    st->transferee = r->transferee;
    st->conf = r->conf;
    if (r->role != RAFT_LEADER)
        return;
    for (uint32_t k = 0; k < r->n_prs; k++) {
        const struct progress *pr = &r->prs[k];
        uint64_t match = pr->id == r->id ? st->last_index : pr->match;
        for (uint32_t i = 0; i < r->conf.n_voters; i++)
            if (r->conf.voters[i] == pr->id)
                st->voter_match[i] = match;
        for (uint32_t i = 0; i < r->conf.n_learners; i++)
            if (r->conf.learners[i] == pr->id)
                st->learner_match[i] = match;
    }
}

bool raft_term_at(const struct raft *r, uint64_t idx, uint64_t *term)
{
    return rlog_term(&r->log, idx, term);
}
