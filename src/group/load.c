/*
 * Loading and unloading partitions of __consumer_offsets. When this node becomes the
 * leader of a partition the server replays its records in log order; the last record
 * per key wins and tombstones delete (the log may not be compacted yet). Group
 * metadata and offsets are independent keys: offsets without live metadata make an
 * Empty group (a simple consumer's), metadata tombstones keep the offsets that follow.
 * Requests for groups of a loading partition get COORDINATOR_LOAD_IN_PROGRESS.
 */
#include "group/group_int.h"

#include <stdlib.h>
#include <string.h>

static void clear_metadata(struct grp_group *g)
{
    for (size_t i = 0; i < g->n_members; i++)
        grp__member_free(g->members[i]);
    g->n_members = 0;
    g->n_awaiting_join = 0;
    grp__bytes_free(&g->protocol_type);
    grp__bytes_free(&g->protocol);
    grp__bytes_free(&g->leader);
    g->generation = 0;
    g->state_ts_ms = -1;
    g->has_metadata = false;
}

void grp_load_begin(struct grp_coordinator *c, int64_t now_ms, int32_t partition)
{
    ASSERT(!c->in_callback);
    ASSERT(partition >= 0 && partition < c->cfg.offsets_num_partitions);
    (void)now_ms;
    if (c->partitions[partition] != GRP_PART_NOT_OWNED)
        grp_unload(c, partition);
    c->partitions[partition] = GRP_PART_LOADING;
    say_info("group", "loading groups and offsets of __consumer_offsets-%d", partition);
}

static void load_group_value(struct grp_coordinator *c, struct grp_group *g,
                             const struct grp_group_value *v)
{
    clear_metadata(g);
    g->has_metadata = true;
    g->protocol_type = grp__bytes_dup(v->protocol_type);
    g->generation = v->generation;
    g->protocol = grp__bytes_dup(v->protocol);
    g->state_ts_ms = v->current_state_timestamp_ms;
    if (!v->protocol.ptr && v->n_members > 0) {
        say_warn("group",
                 "group %.*s: metadata record has %zu members but no protocol; "
                 "members dropped",
                 (int)g->id.len, g->id.ptr, v->n_members);
        return;
    }
    if (v->n_members > g->cap_members) {
        g->cap_members = v->n_members;
        g->members = xrealloc(g->members, g->cap_members * sizeof(g->members[0]));
    }
    for (size_t i = 0; i < v->n_members; i++) {
        const struct grp_member_value *mv = &v->members[i];
        struct grp_member *m = grp__member_new(c);
        m->id = grp__bytes_dup(mv->member_id);
        m->instance_id = grp__bytes_dup(mv->group_instance_id);
        m->client_id = grp__bytes_dup(mv->client_id);
        m->client_host = grp__bytes_dup(mv->client_host);
        m->session_timeout_ms = mv->session_timeout_ms;
        m->rebalance_timeout_ms = mv->rebalance_timeout_ms;
        m->protocols = xcalloc(1, sizeof(*m->protocols));
        m->protocols[0].name = grp__bytes_dup(v->protocol);
        m->protocols[0].metadata = grp__bytes_dup(mv->subscription);
        m->n_protocols = 1;
        m->assignment = grp__bytes_dup(mv->assignment);
        grp__member_account(m);
        g->members[g->n_members++] = m;
    }
    if (g->n_members > 0)
        g->leader = grp__bytes_dup(
            v->leader.ptr && grp__member(g, v->leader) ? v->leader : grp__bs(g->members[0]->id));
}

/* A record of a plain batch (producer_id -1) or of producer_id's transactional batch. */
static int load_record(struct grp_coordinator *c, int32_t partition, struct slice key,
                       struct slice value, int64_t producer_id)
{
    ASSERT(!c->in_callback);
    ASSERT(partition >= 0 && partition < c->cfg.offsets_num_partitions);
    ASSERT(c->partitions[partition] == GRP_PART_LOADING);
    struct grp_key k;
    if (grp_key_decode(key, &k) != 0) {
        say_warn("group", "__consumer_offsets-%d: malformed record key (%zu bytes) skipped",
                 partition, key.len);
        return -1;
    }
    if (k.kind == GRP_KEY_OTHER)
        return 0;
    if (grp_partition_for(c, k.group) != partition) {
        say_warn("group",
                 "__consumer_offsets-%d: record for group %.*s belongs to partition %d; "
                 "skipped",
                 partition, (int)k.group.len, k.group.ptr, grp_partition_for(c, k.group));
        return -1;
    }
    struct grp_group *g = grp__get(c, k.group);
    if (k.kind == GRP_KEY_OFFSET) {
        if (!value.ptr) {
            if (g) {
                struct buf kb;
                buf_init(&kb);
                struct grp_offset_entry *e =
                    hmap_remove(&g->offsets, grp__offset_key(&kb, k.topic, k.partition));
                if (e)
                    grp__offset_entry_free(e);
                buf_free(&kb);
            }
            return 0;
        }
        struct grp_offset_value v;
        if (grp_offset_value_decode(value, &v) != 0) {
            say_warn("group", "__consumer_offsets-%d: malformed offset of group %.*s skipped",
                     partition, (int)k.group.len, k.group.ptr);
            return -1;
        }
        if (!g) {
            g = grp__create(c, k.group, -1);
            g->state_ts_ms = -1;
        }
        struct grp_offset_entry e = {
            .topic = {(uint8_t *)k.topic.ptr, k.topic.len},
            .partition = k.partition,
            .offset = v.offset,
            .leader_epoch = v.leader_epoch,
            .metadata = {(uint8_t *)v.metadata.ptr, v.metadata.len},
            .commit_ts_ms = v.commit_timestamp_ms,
            .expire_ts_ms = v.expire_timestamp_ms,
        };
        if (producer_id >= 0)
            grp__txn_offset_put(g, producer_id, &e); /* until the producer's marker */
        else
            grp__set_offset(g, &e);
        return 0;
    }
    if (!value.ptr) {
        if (g)
            clear_metadata(g);
        return 0;
    }
    struct arena a;
    arena_init(&a);
    struct grp_group_value v;
    if (grp_group_value_decode(value, &a, &v) != 0) {
        arena_free(&a);
        say_warn("group", "__consumer_offsets-%d: malformed metadata of group %.*s skipped",
                 partition, (int)k.group.len, k.group.ptr);
        return -1;
    }
    if (!g)
        g = grp__create(c, k.group, -1);
    load_group_value(c, g, &v);
    arena_free(&a);
    return 0;
}

int grp_load_record(struct grp_coordinator *c, int32_t partition, struct slice key,
                    struct slice value)
{
    return load_record(c, partition, key, value, -1);
}

int grp_load_txn_record(struct grp_coordinator *c, int32_t partition, struct slice key,
                        struct slice value, int64_t producer_id)
{
    return load_record(c, partition, key, value, producer_id);
}

void grp_load_end(struct grp_coordinator *c, int64_t now_ms, int32_t partition)
{
    ASSERT(!c->in_callback);
    ASSERT(c->partitions[partition] == GRP_PART_LOADING);
    c->partitions[partition] = GRP_PART_OWNED;
    size_t n_groups = 0;
    struct slice k;
    void *v;
    for (size_t it = 0; hmap_next(&c->groups, &it, &k, &v);) {
        struct grp_group *g = v;
        if (g->partition != partition)
            continue;
        if (!g->has_metadata && g->offsets.count == 0) {
            grp__remove_from_map(c, g);
            continue;
        }
        n_groups++;
        g->state = g->n_members > 0 ? GRP_STATE_STABLE : GRP_STATE_EMPTY;
        if (g->n_members == 0)
            grp__bytes_free(&g->protocol);
        for (size_t i = 0; i < g->n_members; i++)
            grp__schedule_heartbeat(c, g->members[i], now_ms);
        grp__compute_subscriptions(g);
        if (g->n_members > (size_t)c->cfg.max_group_size) {
            /* group.max.size was lowered: rebalance so that only that many rejoin (the
             * rest get GROUP_MAX_SIZE_REACHED), giving everyone a chance to commit. */
            say_info("group",
                     "loaded group %.*s has %zu members, over group.max.size %d; "
                     "rebalancing",
                     (int)g->id.len, g->id.ptr, g->n_members, c->cfg.max_group_size);
            grp__prepare_rebalance(c, g, now_ms);
        }
    }
    if (c->next_expiry_check_ms == GRP_NO_DEADLINE)
        c->next_expiry_check_ms = now_ms + c->cfg.offsets_retention_check_interval_ms;
    grp__note_deadline(c, c->next_expiry_check_ms);
    say_info("group", "loaded %zu groups of __consumer_offsets-%d", n_groups, partition);
}

void grp_unload(struct grp_coordinator *c, int32_t partition)
{
    ASSERT(!c->in_callback);
    ASSERT(partition >= 0 && partition < c->cfg.offsets_num_partitions);
    struct slice k;
    void *v;
    size_t n = 0;
    for (size_t it = 0; hmap_next(&c->groups, &it, &k, &v);) {
        struct grp_group *g = v;
        if (g->partition != partition)
            continue;
        grp__fail_waiters(c, g, GRP_ERR_NOT_COORDINATOR);
        grp__remove_from_map(c, g);
        n++;
    }
    c->partitions[partition] = GRP_PART_NOT_OWNED;
    say_info("group", "unloaded %zu groups of __consumer_offsets-%d", n, partition);
}
