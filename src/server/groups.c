/* The group coordinator's place in the broker: its configuration, the internal topic
 * __consumer_offsets it persists to, loading that topic at start-up, its timer, and
 * the durable appends it asks for.
 *
 * The coordinator (src/group) is a pure state machine. It asks for records to be
 * appended with cfg->append, and must not be re-entered from inside that call; so
 * appends are queued here and started from the idle hook, and their completion
 * (grp_append_done) always arrives from outside any coordinator call. */
#include "server/internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OFFSETS_TOPIC "__consumer_offsets"

struct group_append {
    struct group_append *next;
    int32_t partition;
    struct record_in *records;
    size_t n;
    struct buf bytes; /* keys and values of records, copied */
    void *token;
    struct server *srv;
};

static void schedule_tick(struct server *s);

static void on_group_tick(struct net_loop *loop, void *arg)
{
    (void)loop;
    struct server *s = arg;
    s->group_timer = 0;
    grp_tick(s->groups, time_wall_ms());
    schedule_tick(s);
}

/* Re-arms the coordinator's timer for its next deadline (after every call into it). */
static void schedule_tick(struct server *s)
{
    if (!s->groups)
        return;
    int64_t deadline = grp_next_deadline(s->groups);
    if (s->group_timer) {
        if (deadline == s->group_deadline)
            return;
        net_timer_cancel(s->loop, s->group_timer);
        s->group_timer = 0;
    }
    if (deadline == INT64_MAX)
        return;
    s->group_deadline = deadline;
    s->group_timer = net_timer_add(s->loop, deadline - time_wall_ms(), on_group_tick, s);
}

void server_groups_called(struct server *s)
{
    schedule_tick(s);
}

static void append_done(void *arg, int16_t error)
{
    struct group_append *a = arg;
    struct server *s = a->srv;
    if (s->groups)
        grp_append_done(s->groups, time_wall_ms(), a->token, error);
    buf_free(&a->bytes);
    free(a->records);
    free(a);
    schedule_tick(s);
}

/* Appends bytes to b (which has room: no reallocation) and returns them as a non-null
 * slice, even when empty. */
static struct slice copy_bytes(struct buf *b, struct slice src)
{
    ASSERT(b->cap - b->len >= src.len);
    uint8_t *at = b->data + b->len;
    buf_append(b, src.ptr, src.len);
    return (struct slice){at, src.len};
}

/* cfg->append: copy the records and queue them for the idle hook. */
static void queue_append(void *arg, int32_t partition, const struct grp_record *records, size_t n,
                         void *token)
{
    struct server *s = arg;
    struct group_append *a = xcalloc(1, sizeof *a);
    a->srv = s;
    a->partition = partition;
    a->token = token;
    a->n = n;
    a->records = xcalloc(n ? n : 1, sizeof *a->records);
    buf_init(&a->bytes);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += records[i].key.len + records[i].value.len;
    buf_reserve(&a->bytes, total + 1); /* no growth below: slices stay valid */
    for (size_t i = 0; i < n; i++) {
        a->records[i].key = copy_bytes(&a->bytes, records[i].key);
        a->records[i].value =
            records[i].value.ptr ? copy_bytes(&a->bytes, records[i].value) : SLICE_NULL;
    }
    if (s->group_appends_tail)
        s->group_appends_tail->next = a;
    else
        s->group_appends = a;
    s->group_appends_tail = a;
}

void server_groups_idle(struct server *s)
{
    while (s->group_appends) {
        struct group_append *a = s->group_appends;
        s->group_appends = a->next;
        if (!s->group_appends)
            s->group_appends_tail = NULL;
        struct partition *p = server_partition(s, slice_from_cstr(OFFSETS_TOPIC), a->partition);
        if (!p) {
            append_done(a, KERR_NOT_COORDINATOR);
            continue;
        }
        server_append_internal(s, p, a->records, a->n, append_done, a);
    }
}

struct load_ctx {
    struct server *srv;
    int32_t partition;
    size_t records;
    size_t bad;
};

static void load_one(void *arg, const struct record *r)
{
    struct load_ctx *l = arg;
    l->records++;
    if (!r->key.ptr)
        return;
    if (grp_load_record(l->srv->groups, l->partition, r->key, r->value) != 0)
        l->bad++;
}

/* A JoinGroup whose connection closed can never be answered (grp_config.join_abandoned). */
static bool join_abandoned(void *ctx)
{
    const struct request *req = ctx;
    return net_reply_orphaned(req->reply);
}

int server_groups_start(struct server *s)
{
    const struct broker_config *cfg = s->cfg;
    struct grp_config gc;
    grp_config_defaults(&gc);
    gc.min_session_timeout_ms = cfg->group_min_session_timeout_ms;
    gc.max_session_timeout_ms = cfg->group_max_session_timeout_ms;
    gc.initial_rebalance_delay_ms = cfg->group_initial_rebalance_delay_ms;
    gc.max_group_size = cfg->group_max_size;
    gc.max_total_member_bytes = cfg->group_max_member_metadata_bytes;
    gc.offsets_retention_ms = cfg->offsets_retention_minutes * 60000;
    gc.offsets_retention_check_interval_ms = cfg->offsets_retention_check_interval_ms;
    gc.offsets_num_partitions = cfg->offsets_topic_num_partitions;
    gc.max_offset_metadata_bytes = cfg->offset_metadata_max_bytes;
    gc.member_id_seed = (uint64_t)time_mono_ns() ^ ((uint64_t)getpid() << 32);
    gc.append = queue_append;
    gc.append_arg = s;
    gc.join_abandoned = join_abandoned;
    gc.on_join_done = group_join_done;
    gc.on_sync_done = group_sync_done;
    gc.on_heartbeat_done = group_heartbeat_done;
    gc.on_leave_done = group_leave_done;
    gc.on_commit_done = group_commit_done;
    gc.on_fetch_done = group_fetch_done;
    gc.on_describe_done = group_describe_done;
    gc.on_list_done = group_list_done;
    gc.on_delete_groups_done = group_delete_groups_done;
    gc.on_offset_delete_done = group_offset_delete_done;

    /* An existing topic keeps its partition count (as in Kafka: changing it would move
     * groups to other partitions). */
    const struct mtopic *t = cluster_topic_find(s->cluster, slice_from_cstr(OFFSETS_TOPIC));
    if (!t) {
        struct config_entry configs[] = {
            {"cleanup.policy", "compact"},
            {"segment.bytes", "104857600"},
        };
        if (server_ensure_internal_topic(s, OFFSETS_TOPIC, gc.offsets_num_partitions, configs,
                                         ARRAY_LEN(configs)) != 0)
            return -1;
        t = cluster_topic_find(s->cluster, slice_from_cstr(OFFSETS_TOPIC));
    }
    gc.offsets_num_partitions = t->partition_count;
    if (grp_coordinator_create(&gc, &s->groups) != 0)
        return -1;
    int64_t t0 = time_mono_ms();
    size_t total = 0;
    for (int32_t i = 0; i < t->partition_count; i++) {
        struct partition *p = server_partition(s, slice_from_cstr(OFFSETS_TOPIC), i);
        if (!p)
            return -1;
        struct load_ctx l = {s, i, 0, 0};
        grp_load_begin(s->groups, time_wall_ms(), i);
        int rc = server_scan_partition(s, p, load_one, &l);
        grp_load_end(s->groups, time_wall_ms(), i);
        if (rc != 0)
            return -1;
        if (l.bad)
            log_warn("server", "%s-%d: skipped %zu malformed records while loading groups",
                     OFFSETS_TOPIC, i, l.bad);
        total += l.records;
    }
    log_info("server", "group coordinator loaded %zu groups from %zu records in %lld ms",
             grp_group_count(s->groups), total, (long long)(time_mono_ms() - t0));
    schedule_tick(s);
    return 0;
}

void server_groups_topic_deleted(struct server *s, const char *topic)
{
    if (!s->groups || !strcmp(topic, OFFSETS_TOPIC))
        return;
    grp_topic_deleted(s->groups, time_wall_ms(), slice_from_cstr(topic));
    server_groups_called(s);
}

void server_groups_stop(struct server *s)
{
    if (!s->groups)
        return;
    if (s->group_timer)
        net_timer_cancel(s->loop, s->group_timer);
    s->group_timer = 0;
    grp_coordinator_destroy(s->groups);
    s->groups = NULL;
    while (s->group_appends) {
        struct group_append *a = s->group_appends;
        s->group_appends = a->next;
        buf_free(&a->bytes);
        free(a->records);
        free(a);
    }
    s->group_appends_tail = NULL;
}
