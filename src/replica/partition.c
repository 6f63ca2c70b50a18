/* A partition this node hosts: its log, role and leader epoch, and its lifetime under
 * background jobs (replica.h). */
#include "replica/replica.h"

#include "base/base.h"
#include "proto/proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int partition_open(const struct partition_spec *spec, struct partition **out)
{
    bool is_new = access(spec->dir, F_OK) != 0;
    struct log *l = NULL;
    int rc = log_open(spec->dir, &spec->log, spec->recovery_point, &l);
    if (rc != 0)
        return rc;
    if (is_new) {
        /* The topic id tells start-up, after a crash, whether a directory whose topic
         * the metadata no longer names belongs to a deletion it records. */
        if ((rc = log_dir_write_topic_id(spec->dir, spec->topic_id)) != 0)
            say_warn("replica", "cannot write the topic id of %s-%d in %s: %s", spec->topic,
                     spec->index, spec->dir, strerror(-rc));
    }
    if (spec->start_offset > 0 && (rc = log_set_start_offset(l, spec->start_offset)) != 0)
        say_warn("replica", "cannot restore log start offset %lld of %s-%d: %s",
                 (long long)spec->start_offset, spec->topic, spec->index, storage_strerror(rc));
    struct partition *p = xcalloc(1, sizeof *p);
    p->topic = spec->topic;
    p->settings = spec->settings;
    p->index = spec->index;
    p->log = l;
    p->role = PARTITION_FOLLOWER;
    p->leader_epoch = -1;
    p->self_id = p->leader_id = -1;
    *out = p;
    return 0;
}

static void set_epoch(struct partition *p, int32_t leader_epoch)
{
    /* Epochs only grow: a change carrying an older one is a stale decision applied late,
     * and obeying it would let two leaders write the same epoch. */
    ASSERT(leader_epoch >= p->leader_epoch);
    p->leader_epoch = leader_epoch;
}

void partition_become_leader(struct partition *p, int32_t leader_epoch)
{
    bool new_term = p->role != PARTITION_LEADER || leader_epoch != p->leader_epoch;
    set_epoch(p, leader_epoch);
    p->role = PARTITION_LEADER;
    /* A new leader knows nothing of its followers until they fetch from it: what they
     * told an earlier leader may since have been truncated. Until then the high
     * watermark stays where this node knew it as a follower. */
    if (new_term) {
        for (int32_t i = 0; i < p->follower_count; i++) {
            struct replica_follower *f = &p->followers[i];
            f->log_end = f->log_end_at_last_fetch = f->caught_up_ms = -1;
        }
        p->pending_isr_count = 0;
    }
}

void partition_become_follower(struct partition *p, int32_t leader_epoch)
{
    set_epoch(p, leader_epoch);
    p->role = PARTITION_FOLLOWER;
}

int16_t partition_check_leader(const struct partition *p, int32_t current_leader_epoch)
{
    /* Kafka checks the epoch first: a client behind on the epoch must refresh its
     * metadata whoever leads now (FENCED), one ahead knows of a change this node has not
     * seen yet (UNKNOWN); both are retriable. */
    if (current_leader_epoch >= 0 && current_leader_epoch < p->leader_epoch)
        return KERR_FENCED_LEADER_EPOCH;
    if (current_leader_epoch > p->leader_epoch)
        return KERR_UNKNOWN_LEADER_EPOCH;
    if (p->role != PARTITION_LEADER)
        return KERR_NOT_LEADER_OR_FOLLOWER;
    return KERR_NONE;
}

int partition_append_as_leader(struct partition *p, uint8_t *records, size_t len, int64_t now_ms,
                               struct log_append_result *out)
{
    ASSERT(p->role == PARTITION_LEADER && p->leader_epoch >= 0);
    return log_append(p->log, records, len, p->leader_epoch, now_ms, out);
}

int64_t partition_high_watermark(const struct partition *p)
{
    int64_t end = log_end_offset(p->log);
    return partition_replicated(p) ? MIN(p->high_watermark, end) : end;
}

int64_t partition_last_stable_offset(const struct partition *p)
{
    int64_t hw = partition_high_watermark(p);
    int64_t unstable = log_first_unstable_offset(p->log);
    return unstable >= 0 ? MIN(unstable, hw) : hw;
}

/* ---- replication ---- */

static bool contains(const int32_t *ids, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static struct replica_follower *follower(struct partition *p, int32_t node_id)
{
    for (int32_t i = 0; i < p->follower_count; i++)
        if (p->followers[i].node_id == node_id)
            return &p->followers[i];
    return NULL;
}

bool partition_replicated(const struct partition *p)
{
    return p->replica_count > 1;
}

bool partition_has_replica(const struct partition *p, int32_t node_id)
{
    return contains(p->replicas, p->replica_count, node_id);
}

bool partition_in_isr(const struct partition *p, int32_t node_id)
{
    return contains(p->isr, p->isr_count, node_id);
}

/* The leader's high watermark: the least log end over the in-sync replicas, once every
 * one of them has fetched from this leader; it never goes back. */
static bool advance_high_watermark(struct partition *p)
{
    if (p->role != PARTITION_LEADER || !partition_replicated(p))
        return false;
    int64_t hw = log_end_offset(p->log);
    for (int32_t i = 0; i < p->isr_count + p->pending_isr_count; i++) {
        int32_t id = i < p->isr_count ? p->isr[i] : p->pending_isr[i - p->isr_count];
        if (id == p->self_id)
            continue;
        const struct replica_follower *f = follower(p, id);
        if (!f || f->log_end < 0)
            return false;
        hw = MIN(hw, f->log_end);
    }
    if (hw <= p->high_watermark)
        return false;
    p->high_watermark = hw;
    return true;
}

bool partition_set_assignment(struct partition *p, int32_t self_id, int32_t leader_id,
                              int32_t partition_epoch, const int32_t *replicas,
                              int32_t replica_count, const int32_t *isr, int32_t isr_count)
{
    /* Becoming replicated: what consumers could see so far stays visible. A partition
     * just opened does not know how much of its log the in-sync replicas confirmed
     * (its tail may be a former leader's, never replicated), so it shows nothing new
     * until they fetch from it. */
    if (p->replica_count == 0 && replica_count > 1)
        p->high_watermark = log_start_offset(p->log);
    else if (!partition_replicated(p) && replica_count > 1)
        p->high_watermark = log_end_offset(p->log);
    struct replica_follower *followers = xcalloc((size_t)MAX(replica_count, 1), sizeof *followers);
    int32_t n = 0;
    for (int32_t i = 0; i < replica_count; i++) {
        if (replicas[i] == self_id)
            continue;
        const struct replica_follower *old = follower(p, replicas[i]);
        followers[n++] = old ? *old : (struct replica_follower){replicas[i], -1, -1, -1, -1};
    }
    free(p->followers);
    p->followers = followers;
    p->follower_count = n;
    p->replicas = xrealloc(p->replicas, (size_t)MAX(replica_count, 1) * sizeof *p->replicas);
    memcpy(p->replicas, replicas, (size_t)replica_count * sizeof *replicas);
    p->replica_count = replica_count;
    p->isr = xrealloc(p->isr, (size_t)MAX(isr_count, 1) * sizeof *p->isr);
    memcpy(p->isr, isr, (size_t)isr_count * sizeof *isr);
    p->isr_count = isr_count;
    p->self_id = self_id;
    p->leader_id = leader_id;
    p->partition_epoch = partition_epoch;
    p->pending_isr_count = 0; /* what was asked is decided: this is the outcome */
    return advance_high_watermark(p);
}

bool partition_follower_fetched(struct partition *p, int32_t node_id, int64_t offset,
                                int64_t now_ms)
{
    struct replica_follower *f = follower(p, node_id);
    int64_t end = log_end_offset(p->log);
    ASSERT(f && offset <= end);
    /* Caught up: it has all this log has, or all it had at the previous fetch (Kafka's
     * rule, so that a follower under steady load still counts). */
    if (offset >= end)
        f->caught_up_ms = now_ms;
    else if (f->log_end_at_last_fetch >= 0 && offset >= f->log_end_at_last_fetch)
        f->caught_up_ms = MAX(f->caught_up_ms, f->last_fetch_ms);
    f->log_end = offset;
    f->last_fetch_ms = now_ms;
    f->log_end_at_last_fetch = end;
    return advance_high_watermark(p);
}

bool partition_isr_change(struct partition *p, int64_t now_ms, int64_t lag_max_ms,
                          int32_t candidate, int32_t *isr_out, int32_t *count_out)
{
    if (p->role != PARTITION_LEADER || !partition_replicated(p) || p->pending_isr_count > 0)
        return false;
    int32_t epoch = -1;
    int64_t epoch_start = -1;
    /* Where this leader's epoch begins: the end of the one before it. */
    if (log_end_offset_for_epoch(p->log, p->leader_epoch - 1, &epoch, &epoch_start) != 0 ||
        epoch_start < 0)
        epoch_start = log_start_offset(p->log);
    int64_t hw = partition_high_watermark(p);
    int32_t n = 0;
    bool changed = false;
    for (int32_t i = 0; i < p->replica_count; i++) {
        int32_t id = p->replicas[i];
        bool in = contains(p->isr, p->isr_count, id);
        bool keep;
        if (id == p->self_id) {
            keep = true;
        } else {
            struct replica_follower *f = follower(p, id);
            if (f->caught_up_ms < 0 && in)
                f->caught_up_ms = now_ms; /* the term's first check: give it its time */
            keep = in ? now_ms - f->caught_up_ms <= lag_max_ms
                      : id == candidate && f->log_end >= 0 && f->log_end >= hw &&
                            f->log_end >= epoch_start;
        }
        if (keep)
            isr_out[n++] = id;
        changed |= keep != in;
    }
    *count_out = n;
    return changed;
}

void partition_isr_requested(struct partition *p, const int32_t *isr, int32_t count)
{
    p->pending_isr = xrealloc(p->pending_isr, (size_t)MAX(count, 1) * sizeof *isr);
    memcpy(p->pending_isr, isr, (size_t)count * sizeof *isr);
    p->pending_isr_count = count;
}

void partition_isr_answered(struct partition *p)
{
    p->pending_isr_count = 0;
}

bool partition_leader_appended(struct partition *p)
{
    return advance_high_watermark(p);
}

bool partition_diverging(struct partition *p, int64_t fetch_offset, int32_t last_fetched_epoch,
                         int32_t *epoch_out, int64_t *end_out)
{
    if (last_fetched_epoch < 0)
        return false;
    int32_t epoch = -1;
    int64_t end = -1;
    if (log_end_offset_for_epoch(p->log, last_fetched_epoch, &epoch, &end) != 0)
        epoch = -1, end = -1;
    /* An epoch newer than any in this log (a leader that appended nothing yet in its own):
     * this log's last epoch runs to its end, as Kafka's leader answers, having cached its
     * epoch when it took over. (-1, -1) would not count as diverging at the follower. */
    if (epoch < 0 && end < 0 && last_fetched_epoch > log_latest_epoch(p->log))
        epoch = log_latest_epoch(p->log), end = log_end_offset(p->log);
    if (epoch == last_fetched_epoch && end >= fetch_offset)
        return false;
    *epoch_out = epoch;
    *end_out = end;
    return true;
}

int64_t partition_truncation_offset(struct partition *p, int32_t epoch, int64_t end_offset)
{
    int64_t leo = log_end_offset(p->log);
    if (end_offset < 0) /* the leader knows no epoch this early: keep what it confirmed */
        return MIN(p->high_watermark, leo);
    int32_t mine = -1;
    int64_t my_end = -1;
    if (epoch < 0 || log_end_offset_for_epoch(p->log, epoch, &mine, &my_end) != 0 || mine < 0)
        return MIN(end_offset, leo);
    if (mine != epoch) /* this log ends an older epoch there; the next fetch goes on */
        return MIN(my_end, leo);
    return MIN(MIN(end_offset, my_end), leo);
}

int partition_truncate(struct partition *p, int64_t offset)
{
    ASSERT(p->role == PARTITION_FOLLOWER);
    int rc = log_truncate_to(p->log, offset);
    p->high_watermark = MIN(p->high_watermark, log_end_offset(p->log));
    return rc;
}

int partition_restart_at(struct partition *p, int64_t offset)
{
    ASSERT(p->role == PARTITION_FOLLOWER);
    int rc = log_restart_at(p->log, offset);
    p->high_watermark = MIN(p->high_watermark, log_end_offset(p->log));
    return rc;
}

int partition_append_as_follower(struct partition *p, const uint8_t *records, size_t len,
                                 int64_t now_ms, struct log_append_result *out)
{
    ASSERT(p->role == PARTITION_FOLLOWER);
    return log_append_as_follower(p->log, records, len, now_ms, out);
}

int partition_append_fetched(struct partition *p, const uint8_t *records, size_t len,
                             int64_t now_ms, struct slice *appended)
{
    const uint8_t *at = records, *start = NULL;
    size_t left = len, whole = 0;
    int64_t next = log_end_offset(p->log);
    *appended = (struct slice){records, 0};
    while (left > 0) {
        struct batch_info bi;
        int rc = batch_validate(at, left, &bi);
        if (rc == STORAGE_ERR_SHORT)
            break;
        if (rc != 0)
            return rc;
        if (batch_last_offset(&bi) < next && !start) { /* already here */
            at += bi.size_bytes;
            left -= bi.size_bytes;
            continue;
        }
        if (!start) {
            if (bi.base_offset < next && log_start_offset(p->log) == next) {
                if ((rc = partition_restart_at(p, bi.base_offset)) != 0)
                    return rc;
                next = bi.base_offset;
            }
            if (bi.base_offset != next)
                return STORAGE_ERR_CORRUPT;
            start = at;
        }
        whole += bi.size_bytes;
        at += bi.size_bytes;
        left -= bi.size_bytes;
    }
    if (whole == 0)
        return 0;
    struct log_append_result res;
    int rc = partition_append_as_follower(p, start, whole, now_ms, &res);
    if (rc == 0)
        *appended = (struct slice){start, whole};
    return rc;
}

void partition_follower_high_watermark(struct partition *p, int64_t leader_high_watermark)
{
    p->high_watermark = MIN(leader_high_watermark, log_end_offset(p->log));
}

static void partition_free(struct partition *p)
{
    free(p->replicas);
    free(p->isr);
    free(p->followers);
    free(p->pending_isr);
    free(p);
}

void partition_hold(struct partition *p)
{
    ASSERT(!p->closed);
    p->holds++;
}

bool partition_release(struct partition *p)
{
    ASSERT(p->holds > 0);
    p->holds--;
    if (!p->closed)
        return true;
    if (p->holds == 0)
        partition_free(p); /* the last holder of a closed partition frees it */
    return false;
}

/* The log is gone; p itself lives until the last holder lets go. */
static void closed(struct partition *p)
{
    p->log = NULL;
    p->closed = true;
    if (p->holds == 0)
        partition_free(p);
}

void partition_close(struct partition *p)
{
    log_close(p->log);
    closed(p);
}

int partition_delete(struct partition *p, const char *dir, char **renamed)
{
    /* Syncing data about to be deleted would only stall the event loop. */
    log_discard(p->log);
    closed(p);
    *renamed = NULL;
    return log_rename_for_delete(dir, renamed);
}
