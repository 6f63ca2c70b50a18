/* The group coordinator's place in the broker: its configuration from the broker's,
 * and the adapters that let the state-machine host (internal_topics.c) keep it in
 * __consumer_offsets: loading that topic at start-up, its timer, and the durable
 * appends it asks for.
 *
 * The coordinator (src/group) is a pure state machine; the host queues its appends and
 * starts them from the idle hook, so it is never re-entered from inside cfg->append,
 * and grp_append_done always arrives from outside any coordinator call. */
#include "server/internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OFFSETS_TOPIC "__consumer_offsets"

static const struct config_entry offsets_topic_configs[] = {
    {"cleanup.policy", "compact"},
    {"segment.bytes", "104857600"},
};

void server_groups_called(struct server *s)
{
    itopic_host_called(s->groups_host);
}

/* cfg->append: the host copies and queues the records. */
static void queue_append(void *arg, int32_t partition, const struct grp_record *records, size_t n,
                         void *token)
{
    struct record_in *recs = xcalloc(n ? n : 1, sizeof *recs);
    for (size_t i = 0; i < n; i++)
        recs[i] = (struct record_in){records[i].key, records[i].value};
    itopic_host_append(arg, partition, recs, n, token);
    free(recs);
}

/* cfg->append_txn: the same, as one transactional batch of the producer. */
static void queue_append_txn(void *arg, int32_t partition, const struct grp_record *records,
                             size_t n, int64_t producer_id, int16_t producer_epoch, void *token)
{
    struct record_in *recs = xcalloc(n ? n : 1, sizeof *recs);
    for (size_t i = 0; i < n; i++)
        recs[i] = (struct record_in){records[i].key, records[i].value};
    itopic_host_append_txn(arg, partition, recs, n, producer_id, producer_epoch, token);
    free(recs);
}

/* The coordinator as the host's machine. */
static void sm_load_begin(void *sm, int32_t partition, int64_t now_ms)
{
    grp_load_begin(sm, now_ms, partition);
}

static int sm_load_record(void *sm, int32_t partition, int64_t offset, struct slice key,
                          struct slice value)
{
    (void)offset;
    return grp_load_record(sm, partition, key, value);
}

static int sm_load_txn_record(void *sm, int32_t partition, struct slice key, struct slice value,
                              int64_t producer_id)
{
    return grp_load_txn_record(sm, partition, key, value, producer_id);
}

static void sm_load_marker(void *sm, int32_t partition, int64_t producer_id, bool commit)
{
    grp_txn_marker(sm, partition, producer_id, commit);
}

static void sm_load_end(void *sm, int32_t partition, int64_t now_ms)
{
    grp_load_end(sm, now_ms, partition);
}

static void sm_unload(void *sm, int32_t partition)
{
    grp_unload(sm, partition);
}

static void sm_append_done(void *sm, int64_t now_ms, void *token, int16_t error)
{
    grp_append_done(sm, now_ms, token, error);
}

static void sm_tick(void *sm, int64_t now_ms)
{
    grp_tick(sm, now_ms);
}

static int64_t sm_next_deadline(void *sm)
{
    return grp_next_deadline(sm);
}

static void sm_destroy(void *sm)
{
    grp_coordinator_destroy(sm);
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

    if (itopic_host_open(s, OFFSETS_TOPIC, gc.offsets_num_partitions, offsets_topic_configs,
                         ARRAY_LEN(offsets_topic_configs), &s->groups_host) != 0)
        return -1;
    gc.append = queue_append;
    gc.append_txn = queue_append_txn;
    gc.append_arg = s->groups_host;
    /* An existing topic keeps its partition count (as in Kafka: changing it would move
     * groups to other partitions). */
    gc.offsets_num_partitions = itopic_host_partitions(s->groups_host);
    if (grp_coordinator_create(&gc, &s->groups) != 0)
        return -1;
    /* Nothing between create and load: from load on, the host destroys the coordinator. */
    const struct itopic_machine m = {
        .sm = s->groups,
        .what = "group",
        .load_begin = sm_load_begin,
        .load_record = sm_load_record,
        .load_txn_record = sm_load_txn_record,
        .load_marker = sm_load_marker,
        .load_end = sm_load_end,
        .unload = sm_unload,
        .append_done = sm_append_done,
        .tick = sm_tick,
        .next_deadline = sm_next_deadline,
        .destroy = sm_destroy,
    };
    struct itopic_load_stats st;
    if (itopic_host_load(s->groups_host, &m, &st) != 0)
        return -1;
    say_info("server", "group coordinator loaded %zu groups from %zu records in %lld ms",
             grp_group_count(s->groups), st.records, (long long)st.elapsed_ms);
    return 0;
}

static void offsets_topic_created(void *arg, const struct cluster_result *res)
{
    struct server *s = arg;
    s->groups_topic_asked = false;
    if (res->err != CLUSTER_OK && res->err != CLUSTER_ERR_TOPIC_EXISTS)
        say_warn("server", "cannot create %s yet: %s", OFFSETS_TOPIC, res->why ? res->why : "");
}

/* Whether every voter's broker is registered and unfenced, so that the partitions of
 * __consumer_offsets can be spread over them all. */
static bool every_voter_serving(struct server *s)
{
    for (size_t i = 0; i < s->cfg->voter_count; i++) {
        if (s->cfg->voters[i].id == s->cfg->node_id && !s->cfg->broker)
            continue; /* this controller-only node is no broker */
        const struct mbroker *b = cluster_broker_find(s->cluster, s->cfg->voters[i].id);
        if (!b || b->fenced)
            return false;
    }
    return true;
}

void server_groups_poll(struct server *s)
{
    if (s->groups || s->stopping)
        return;
    const struct mtopic *t = cluster_topic_find(s->cluster, slice_from_cstr(OFFSETS_TOPIC));
    if (!t) {
        /* The active controller creates it once every voter serves, or once a broker
         * session has passed since it took over (a voter that is down does not hold up
         * the groups of the others). */
        int64_t now = net_loop_now_ms(s->loop);
        if (cluster_controller_id(s->cluster) != s->cfg->node_id) {
            s->groups_controller_since_ms = 0;
            return;
        }
        if (!s->groups_controller_since_ms)
            s->groups_controller_since_ms = now;
        bool ready = cluster_broker_count(s->cluster) > 0 &&
                     (every_voter_serving(s) ||
                      now - s->groups_controller_since_ms >= s->cfg->broker_session_timeout_ms);
        if (ready && !s->groups_topic_asked) {
            s->groups_topic_asked = true;
            cluster_create_topic(s->cluster, slice_from_cstr(OFFSETS_TOPIC),
                                 s->cfg->offsets_topic_num_partitions,
                                 server_internal_replication_factor(s), offsets_topic_configs,
                                 ARRAY_LEN(offsets_topic_configs), false, offsets_topic_created, s);
        }
        return;
    }
    if (!s->cfg->broker)
        return; /* a controller-only node coordinates no groups */
    struct topic_state *ts = server_topic(s, slice_from_cstr(OFFSETS_TOPIC));
    if (!ts || ts->partition_count != ts->target_count)
        return; /* its partitions are still being opened */
    if (server_groups_start(s) != 0) {
        say_error("server", "the group coordinator could not start; trying again");
        server_groups_stop(s);
    }
}

void server_groups_leadership(struct server *s, const char *topic, int32_t partition)
{
    if (s->groups_host && strcmp(topic, OFFSETS_TOPIC) == 0) {
        itopic_host_leadership(s->groups_host, partition);
        server_groups_called(s);
    }
}

const struct mbroker *server_group_coordinator(struct server *s, struct slice group_id)
{
    const struct mtopic *t = cluster_topic_find(s->cluster, slice_from_cstr(OFFSETS_TOPIC));
    if (!t || t->partition_count <= 0)
        return NULL;
    const struct mpartition *p = &t->partitions[grp_partition_for_n(group_id, t->partition_count)];
    const struct mbroker *b = p->leader >= 0 ? cluster_broker_find(s->cluster, p->leader) : NULL;
    return b && !b->fenced ? b : NULL;
}

void server_groups_txn_marker(struct server *s, int32_t partition, int64_t producer_id, bool commit)
{
    if (!s->groups)
        return;
    grp_txn_marker(s->groups, partition, producer_id, commit);
    server_groups_called(s);
}

void server_groups_topic_deleted(struct server *s, const char *topic)
{
    if (!s->groups || !strcmp(topic, OFFSETS_TOPIC))
        return;
    grp_topic_deleted(s->groups, time_wall_ms(), slice_from_cstr(topic));
    server_groups_called(s);
}

/* The host stops in the order the coordinator needs: its timer cancelled, then it is
 * destroyed (answering what waits with NOT_COORDINATOR), then its queued appends are
 * dropped without calling back. */
void server_groups_stop(struct server *s)
{
    itopic_host_stop(s->groups_host);
    s->groups_host = NULL;
    s->groups = NULL;
}
