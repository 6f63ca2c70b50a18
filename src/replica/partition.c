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
    set_epoch(p, leader_epoch);
    p->role = PARTITION_LEADER;
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
    return log_end_offset(p->log);
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
        free(p); /* the last holder of a closed partition frees it */
    return false;
}

/* The log is gone; p itself lives until the last holder lets go. */
static void closed(struct partition *p)
{
    p->log = NULL;
    p->closed = true;
    if (p->holds == 0)
        free(p);
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
