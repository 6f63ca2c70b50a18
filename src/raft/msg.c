/*
 * Wire encoding of raft messages and configurations (docs/raft.md, "Message format").
 * Big-endian fixed-width fields: the messages are small and rare enough that varints
 * would buy nothing but decoder complexity. The decoder treats its input as untrusted
 * (it has a fuzz target, tests/fuzz/fuzz_raft.c): every length is bounded before use.
 */
#include "raft/raft.h"

#include <string.h>

#define RAFT_WIRE_VERSION 1

const char *raft_msg_type_name(int type)
{
    static const char *names[] = {
        "?",       "PreVote",   "PreVoteResp",   "Vote",     "VoteResp",  "App",
        "AppResp", "Heartbeat", "HeartbeatResp", "Snapshot", "TimeoutNow"};
    if (type < 1 || type > RAFT_MSG_TYPE_MAX)
        return "?";
    return names[type];
}

bool raft_conf_is_voter(const struct raft_conf *c, uint64_t id)
{
    for (uint32_t i = 0; i < c->n_voters; i++)
        if (c->voters[i] == id)
            return true;
    return false;
}

bool raft_conf_is_learner(const struct raft_conf *c, uint64_t id)
{
    for (uint32_t i = 0; i < c->n_learners; i++)
        if (c->learners[i] == id)
            return true;
    return false;
}

void raft_conf_encode(const struct raft_conf *c, struct buf *out)
{
    ASSERT(c->n_voters + c->n_learners <= RAFT_MAX_NODES);
    buf_put_i8(out, (int8_t)c->n_voters);
    buf_put_i8(out, (int8_t)c->n_learners);
    for (uint32_t i = 0; i < c->n_voters; i++)
        buf_put_i64(out, (int64_t)c->voters[i]);
    for (uint32_t i = 0; i < c->n_learners; i++)
        buf_put_i64(out, (int64_t)c->learners[i]);
}

static int conf_read(struct reader *rd, struct raft_conf *out)
{
    memset(out, 0, sizeof *out);
    uint32_t nv = (uint8_t)rd_i8(rd), nl = (uint8_t)rd_i8(rd);
    if (rd->err || nv + nl > RAFT_MAX_NODES)
        return -RAFT_EINVAL;
    for (uint32_t i = 0; i < nv + nl; i++) {
        uint64_t id = (uint64_t)rd_i64(rd);
        if (rd->err || id == 0)
            return -RAFT_EINVAL;
        if (raft_conf_is_voter(out, id) || raft_conf_is_learner(out, id))
            return -RAFT_EINVAL;
        if (i < nv)
            out->voters[out->n_voters++] = id;
        else
            out->learners[out->n_learners++] = id;
    }
    return 0;
}

int raft_conf_decode(const uint8_t *data, size_t len, struct raft_conf *out)
{
    struct reader rd;
    rd_init(&rd, data, len);
    if (conf_read(&rd, out) != 0 || rd_remaining(&rd) != 0)
        return -RAFT_EINVAL;
    return 0;
}

void raft_msg_encode(const struct raft_msg *m, struct buf *out)
{
    buf_put_i8(out, RAFT_WIRE_VERSION);
    buf_put_i8(out, (int8_t)m->type);
    buf_put_i8(out, (int8_t)m->flags);
    buf_put_i8(out, m->reject ? 1 : 0);
    const uint64_t fields[] = {m->from,   m->to,         m->term,      m->log_term, m->index,
                               m->commit, m->hint_index, m->hint_term, m->context};
    for (size_t i = 0; i < ARRAY_LEN(fields); i++)
        buf_put_i64(out, (int64_t)fields[i]);
    buf_put_u32(out, m->n_entries);
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        buf_put_i64(out, (int64_t)e->term);
        buf_put_i64(out, (int64_t)e->index);
        buf_put_i8(out, (int8_t)e->type);
        buf_put_u32(out, e->len);
        buf_append(out, e->data, e->len);
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        buf_put_i64(out, (int64_t)m->snapshot.index);
        buf_put_i64(out, (int64_t)m->snapshot.term);
        raft_conf_encode(&m->snapshot.conf, out);
        buf_put_u32(out, m->snapshot.len);
        buf_append(out, m->snapshot.data, m->snapshot.len);
    }
}

static uint8_t *read_blob(struct reader *rd, uint32_t len, uint32_t max, struct arena *a)
{
    if (len > max || len > rd_remaining(rd)) {
        rd->err = -1;
        return NULL;
    }
    struct slice s = rd_bytes(rd, len);
    return len ? arena_memdup(a, s.ptr, len) : NULL;
}

int raft_msg_decode(const uint8_t *data, size_t len, struct arena *a, struct raft_msg *out)
{
    memset(out, 0, sizeof *out);
    if (len > RAFT_MAX_MSG_BYTES)
        return -RAFT_EINVAL;
    struct reader rd;
    rd_init(&rd, data, len);
    int version = rd_i8(&rd);
    out->type = (uint8_t)rd_i8(&rd);
    out->flags = (uint8_t)rd_i8(&rd);
    int reject = rd_i8(&rd);
    uint64_t *fields[] = {&out->from,       &out->to,        &out->term,
                          &out->log_term,   &out->index,     &out->commit,
                          &out->hint_index, &out->hint_term, &out->context};
    for (size_t i = 0; i < ARRAY_LEN(fields); i++)
        *fields[i] = (uint64_t)rd_i64(&rd);
    uint32_t n = rd_u32(&rd);
    if (rd.err || version != RAFT_WIRE_VERSION || out->type < RAFT_MSG_PREVOTE ||
        out->type > RAFT_MSG_TYPE_MAX || (reject != 0 && reject != 1) ||
        n > RAFT_MAX_ENTRIES_PER_MSG || (out->flags & ~RAFT_FLAG_TRANSFER) ||
        (n && out->type != RAFT_MSG_APPEND))
        goto bad;
    out->reject = reject;
    /* Each entry takes at least 21 bytes: refuse counts the input cannot hold before
     * allocating for them. */
    if ((uint64_t)n * 21 > rd_remaining(&rd))
        goto bad;
    if (n) {
        out->entries = arena_alloc(a, n * sizeof *out->entries);
        out->n_entries = n;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct raft_entry *e = &out->entries[i];
        e->term = (uint64_t)rd_i64(&rd);
        e->index = (uint64_t)rd_i64(&rd);
        e->type = (uint8_t)rd_i8(&rd);
        e->len = rd_u32(&rd);
        e->data = read_blob(&rd, e->len, RAFT_MAX_ENTRY_BYTES, a);
        if (rd.err || e->type > RAFT_ENTRY_CONF)
            goto bad;
    }
    if (out->type == RAFT_MSG_SNAPSHOT) {
        struct raft_snapshot *s = &out->snapshot;
        s->index = (uint64_t)rd_i64(&rd);
        s->term = (uint64_t)rd_i64(&rd);
        if (conf_read(&rd, &s->conf) != 0)
            goto bad;
        s->len = rd_u32(&rd);
        s->data = read_blob(&rd, s->len, RAFT_MAX_SNAPSHOT_BYTES, a);
    }
    if (rd.err || rd_remaining(&rd) != 0)
        goto bad;
    return 0;
bad:
    say_debug("raft", "malformed raft message (%zu bytes)", len);
    memset(out, 0, sizeof *out);
    return -RAFT_EINVAL;
}
