/*
 * The in-memory raft log: entries after the last snapshot/compaction point, with the
 * stable (durable), committed and applied marks. The durable copy is the application's
 * (storage.c); this one is what the core reasons about.
 */
#include "raft/raft_int.h"

#include <stdlib.h>
#include <string.h>

void rlog_init(struct raft_log *l, uint64_t offset, uint64_t offset_term)
{
    memset(l, 0, sizeof *l);
    l->offset = offset;
    l->offset_term = offset_term;
    l->stable = offset;
    l->committed = offset;
    l->applied = offset;
}

void rlog_free(struct raft_log *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->ents[i].data);
    free(l->ents);
    l->ents = NULL;
    l->n = l->cap = 0;
}

uint64_t rlog_last_index(const struct raft_log *l)
{
    return l->offset + l->n;
}

uint64_t rlog_last_term(const struct raft_log *l)
{
    return l->n ? l->ents[l->n - 1].term : l->offset_term;
}

bool rlog_term(const struct raft_log *l, uint64_t idx, uint64_t *term)
{
    if (idx == l->offset) {
        *term = l->offset_term;
        return true;
    }
    if (idx < l->offset || idx > rlog_last_index(l))
        return false;
    *term = l->ents[idx - l->offset - 1].term;
    return true;
}

const struct raft_entry *rlog_entry(const struct raft_log *l, uint64_t idx)
{
    if (idx <= l->offset || idx > rlog_last_index(l))
        return NULL;
    return &l->ents[idx - l->offset - 1];
}

void rlog_append_copy(struct raft_log *l, const struct raft_entry *e)
{
    ASSERT(e->index == rlog_last_index(l) + 1);
    ASSERT(e->term >= rlog_last_term(l));
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->ents = xrealloc(l->ents, l->cap * sizeof *l->ents);
    }
    struct raft_entry *d = &l->ents[l->n++];
    *d = *e;
    d->data = NULL;
    if (e->len) {
        d->data = xmalloc(e->len);
        memcpy(d->data, e->data, e->len);
    }
}

void rlog_truncate_from(struct raft_log *l, uint64_t idx)
{
    /* Committed entries are never truncated: that would be the safety bug itself. */
    ASSERT(idx > l->committed);
    ASSERT(idx > l->offset);
    while (rlog_last_index(l) >= idx) {
        free(l->ents[l->n - 1].data);
        l->n--;
    }
    if (l->stable >= idx)
        l->stable = idx - 1;
}

void rlog_compact(struct raft_log *l, uint64_t idx)
{
    if (idx <= l->offset)
        return;
    ASSERT(idx <= rlog_last_index(l));
    ASSERT(idx <= l->applied);
    uint64_t term;
    ASSERT(rlog_term(l, idx, &term));
    size_t drop = (size_t)(idx - l->offset);
    for (size_t i = 0; i < drop; i++)
        free(l->ents[i].data);
    memmove(l->ents, l->ents + drop, (l->n - drop) * sizeof *l->ents);
    l->n -= drop;
    l->offset = idx;
    l->offset_term = term;
}

void rlog_reset(struct raft_log *l, uint64_t idx, uint64_t term)
{
    rlog_free(l);
    l->offset = idx;
    l->offset_term = term;
    l->stable = MIN(l->stable, idx);
    l->committed = idx;
    l->applied = MIN(l->applied, idx);
}

bool rlog_is_up_to_date(const struct raft_log *l, uint64_t last_term, uint64_t last_index)
{
    uint64_t my_term = rlog_last_term(l);
    return last_term > my_term || (last_term == my_term && last_index >= rlog_last_index(l));
}

size_t rlog_copy_range(const struct raft_log *l, uint64_t lo, uint64_t hi, size_t max_n,
                       uint64_t max_bytes, struct raft_entry **out)
{
    *out = NULL;
    if (lo > hi)
        return 0;
    ASSERT(lo > l->offset && hi <= rlog_last_index(l));
    size_t n = (size_t)MIN(hi - lo + 1, (uint64_t)max_n);
    uint64_t bytes = 0;
    size_t take = 0;
    /* Always at least one entry so that a huge entry still makes progress. */
    while (take < n) {
        bytes += l->ents[lo - l->offset - 1 + take].len;
        if (take > 0 && bytes > max_bytes)
            break;
        take++;
    }
    struct raft_entry *e = xmalloc(take * sizeof *e);
    for (size_t i = 0; i < take; i++) {
        e[i] = l->ents[lo - l->offset - 1 + i];
        if (e[i].len) {
            e[i].data = xmalloc(e[i].len);
            memcpy(e[i].data, l->ents[lo - l->offset - 1 + i].data, e[i].len);
        } else {
            e[i].data = NULL;
        }
    }
    *out = e;
    return take;
}
