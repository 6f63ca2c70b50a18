/* The transaction coordinator's place in the broker (docs/architecture.md,
 * "Transactions"): its configuration, its host in __transaction_state (loading, appends,
 * timer: internal_topics.c), the producer ids it asks for, and the markers it writes.
 *
 * The coordinator (src/txn) is a pure state machine that must never be re-entered from
 * inside a call it makes: producer ids and marker completions that could arrive at once
 * are queued here and delivered from the idle hook, as the host does for appends.
 *
 * __transaction_state is created when a client first looks for a transaction
 * coordinator (FindCoordinator with key type 1), as Kafka does, so a broker whose clients
 * never use transactions keeps no such topic.
 *
 * Markers: each partition of an ending transaction gets a control batch (storage.h,
 * batch_encode_marker) appended by its leader with acks=all. This node appends to the
 * partitions it leads; those led elsewhere go to their leaders in one WriteTxnMarkers per
 * broker (handlers/write_txn_markers.c). Failures are retried every MARKER_RETRY_MS
 * until each partition has its marker or its topic is gone, as Kafka's
 * TransactionMarkerChannelManager does. */
#include "server/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TXN_TOPIC "__transaction_state"
#define MARKER_RETRY_MS 100

/* A completion for the coordinator, delivered from the idle hook. */
struct txn_deferred {
    struct txn_deferred *next;
    bool markers; /* else a producer id */
    void *token;
    int16_t error;
    int64_t producer_id;
};

/* The markers of one transaction, partition by partition. */
struct marker_job {
    struct server *s;
    void *token;
    int32_t state_partition;
    int64_t producer_id;
    int16_t producer_epoch;
    bool commit;
    int16_t txn_version; /* the client's: 2 makes the partitions check the epoch bumped */
    size_t n, remaining;
    struct marker_part {
        char *topic;
        int32_t partition;
        bool done;
        bool in_flight;
        int32_t remote; /* the broker last asked to write it (-1: this node) */
    } * parts;
    uint64_t retry_timer;
    bool trying;             /* inside markers_try: completions do not call it again */
    struct marker_job *next; /* s->marker_jobs */
};

static void deferred_push(struct server *s, bool markers, void *token, int16_t error,
                          int64_t producer_id)
{
    struct txn_deferred *d = xcalloc(1, sizeof *d);
    *d = (struct txn_deferred){NULL, markers, token, error, producer_id};
    if (s->txn_deferred_tail)
        s->txn_deferred_tail->next = d;
    else
        s->txn_deferred = d;
    s->txn_deferred_tail = d;
}

void server_txns_called(struct server *s)
{
    itopic_host_called(s->txns_host);
}

/* ---- the coordinator's services ---- */

static void queue_append(void *arg, int32_t partition, struct slice key, struct slice value,
                         void *token)
{
    struct server *s = arg;
    struct record_in r = {key, value};
    itopic_host_append(s->txns_host, partition, &r, 1, token);
}

struct pid_ask {
    struct server *s;
    void *token;
    uint64_t generation;
};

static void pid_given(void *arg, int16_t error, int64_t producer_id)
{
    struct pid_ask *a = arg;
    /* A coordinator stopped since it asked gets nothing: its tokens are gone. */
    if (a->s->txns && a->generation == a->s->txns_generation)
        deferred_push(a->s, false, a->token, error, producer_id);
    free(a);
}

static void new_producer_id(void *arg, void *token)
{
    struct server *s = arg;
    struct pid_ask *a = xcalloc(1, sizeof *a);
    *a = (struct pid_ask){s, token, s->txns_generation};
    server_new_producer_id(s, pid_given, a);
}

static void marker_job_free(struct marker_job *j)
{
    for (size_t i = 0; i < j->n; i++)
        free(j->parts[i].topic);
    free(j->parts);
    free(j);
}

static void markers_try(struct marker_job *j);

/* The written (or never to be written) marker of part i. */
static void marker_part_done(struct marker_job *j, size_t i, int16_t error)
{
    struct marker_part *mp = &j->parts[i];
    if (error != KERR_NONE)
        say_warn("server", "transaction marker for producer %lld in %s-%d refused: %s",
                 (long long)j->producer_id, mp->topic, mp->partition, kafka_error_name(error));
    mp->done = true;
    j->remaining--;
}

/* A marker refused for good: a newer coordinator or epoch has taken over this producer
 * (Kafka drops it too). */
static bool marker_final(int16_t error)
{
    return error == KERR_NONE || error == KERR_TRANSACTION_COORDINATOR_FENCED ||
           error == KERR_INVALID_PRODUCER_EPOCH || error == KERR_UNKNOWN_TOPIC_OR_PARTITION;
}

/* ---- one marker ---- */

struct marker_wait {
    struct server *s;
    struct txn_marker m;
    int32_t partition;
    bool offsets; /* in __consumer_offsets */
    void (*done)(void *arg, int16_t error);
    void *arg;
};

static void marker_durable(void *arg, int16_t error)
{
    struct marker_wait *w = arg;
    if (error == KERR_NONE && w->offsets)
        server_groups_txn_marker(w->s, w->partition, w->m.producer_id, w->m.commit);
    w->done(w->arg, error);
    free(w);
}

void server_append_marker(struct server *s, struct partition *p, const struct txn_marker *m,
                          void (*done)(void *arg, int16_t error), void *arg)
{
    /* Transaction version 2 bumps the epoch at every end, so a marker whose epoch the
     * producer already has, while it has a transaction open, is a late one of an
     * earlier transaction: it must not end this one (Kafka's checkProducerEpoch; the
     * log itself refuses only older epochs). 32767 has no successor: allowed. */
    struct pstate_batch last;
    if (m->txn_version >= 2 && m->producer_epoch != INT16_MAX &&
        log_producer_last(p->log, m->producer_id, &last) && last.epoch == m->producer_epoch &&
        last.txn_first_offset >= 0) {
        say_warn_ratelimited("server",
                             "transaction marker for producer %lld epoch %d in %s-%d refused: "
                             "a transaction of that epoch is open there",
                             (long long)m->producer_id, m->producer_epoch, p->topic, p->index);
        done(arg, KERR_INVALID_PRODUCER_EPOCH);
        return;
    }
    struct buf b;
    buf_init(&b);
    batch_encode_marker(&b, m->producer_id, m->producer_epoch,
                        m->commit ? TXN_MARKER_COMMIT : TXN_MARKER_ABORT, m->coordinator_epoch,
                        time_wall_ms());
    struct marker_wait *w = xcalloc(1, sizeof *w);
    *w = (struct marker_wait){s,    *m, p->index, strcmp(p->topic, "__consumer_offsets") == 0,
                              done, arg};
    server_append_durable(s, p, b.data, b.len, marker_durable, w);
    buf_free(&b);
}

/* ---- the markers of a transaction ---- */

/* WriteTxnMarkers sent to one broker for some of a job's partitions. */
struct remote_markers {
    struct marker_job *job;
    int32_t node;
};

static void remote_answered(void *arg, int err, struct reader *body)
{
    struct remote_markers *rm = arg;
    struct marker_job *j = rm->job;
    int32_t node = rm->node;
    free(rm);
    struct arena a;
    arena_init(&a);
    struct write_txn_markers_response resp;
    bool decoded = err == 0 && write_txn_markers_response_decode(body, 2, &a, &resp) == 0;
    if (decoded) {
        for (int32_t m = 0; m < resp.markers_count; m++)
            for (int32_t t = 0; t < resp.markers[m].topics_count; t++) {
                const struct write_txn_markers_response_markers_topics *rt =
                    &resp.markers[m].topics[t];
                for (int32_t k = 0; k < rt->partitions_count; k++)
                    for (size_t i = 0; i < j->n; i++) {
                        struct marker_part *mp = &j->parts[i];
                        if (mp->in_flight && mp->remote == node && !mp->done &&
                            mp->partition == rt->partitions[k].partition_index &&
                            slice_eq_cstr(rt->name, mp->topic)) {
                            mp->in_flight = false;
                            if (marker_final(rt->partitions[k].error_code))
                                marker_part_done(j, i, rt->partitions[k].error_code);
                        }
                    }
            }
    } else if (err != -ECANCELED) {
        say_warn_ratelimited("server", "WriteTxnMarkers to broker %d failed: %s", node,
                             err ? strerror(-err) : "a malformed answer");
    }
    arena_free(&a);
    for (size_t i = 0; i < j->n; i++) /* whatever the answer did not settle: again */
        if (j->parts[i].in_flight && j->parts[i].remote == node)
            j->parts[i].in_flight = false;
    markers_try(j);
}

/* Sends the markers of j's partitions led by node (marked with remote == node and not yet
 * in flight) in one request. */
static void send_remote(struct marker_job *j, int32_t node, int32_t coordinator_epoch)
{
    struct server *s = j->s;
    size_t n = 0;
    for (size_t i = 0; i < j->n; i++)
        n += !j->parts[i].done && !j->parts[i].in_flight && j->parts[i].remote == node;
    if (n == 0)
        return;
    struct write_txn_markers_request_markers_topics *topics = xcalloc(n, sizeof *topics);
    int32_t *indexes = xcalloc(n, sizeof *indexes);
    size_t k = 0;
    for (size_t i = 0; i < j->n; i++) {
        struct marker_part *mp = &j->parts[i];
        if (mp->done || mp->in_flight || mp->remote != node)
            continue;
        /* One topic entry per partition: simple, and Kafka's handler takes it. */
        write_txn_markers_request_markers_topics_init(&topics[k]);
        topics[k].name = slice_from_cstr(mp->topic);
        indexes[k] = mp->partition;
        topics[k].partition_indexes = &indexes[k];
        topics[k].partition_indexes_count = 1;
        mp->in_flight = true;
        k++;
    }
    struct write_txn_markers_request_markers marker;
    write_txn_markers_request_markers_init(&marker);
    marker.producer_id = j->producer_id;
    marker.producer_epoch = j->producer_epoch;
    marker.transaction_result = j->commit;
    marker.topics = topics;
    marker.topics_count = (int32_t)n;
    marker.coordinator_epoch = coordinator_epoch;
    marker.transaction_version = (int8_t)j->txn_version;
    struct write_txn_markers_request req;
    write_txn_markers_request_init(&req);
    req.markers = &marker;
    req.markers_count = 1;
    struct buf frame;
    buf_init(&frame);
    proto_request_header_encode(&frame,
                                &(struct request_header){.api_key = API_KEY_WRITE_TXN_MARKERS,
                                                         .api_version = 2,
                                                         .client_id = slice_from_cstr("samsa")});
    write_txn_markers_request_encode(&frame, 2, &req);
    struct remote_markers *rm = xcalloc(1, sizeof *rm);
    *rm = (struct remote_markers){j, node};
    if (server_peer_send(s, node, &frame, 30000, remote_answered, rm) != 0) {
        free(rm);
        for (size_t i = 0; i < j->n; i++)
            if (j->parts[i].in_flight && j->parts[i].remote == node)
                j->parts[i].in_flight = false;
    }
    buf_free(&frame);
    free(topics);
    free(indexes);
}

static void marker_retry(struct net_loop *loop, void *arg)
{
    (void)loop;
    struct marker_job *j = arg;
    j->retry_timer = 0;
    markers_try(j);
}

struct marker_append {
    struct marker_job *job;
    size_t i;
};

static void marker_written(void *arg, int16_t error)
{
    struct marker_append *a = arg;
    struct marker_job *j = a->job;
    struct marker_part *mp = &j->parts[a->i];
    size_t i = a->i;
    free(a);
    mp->in_flight = false;
    if (marker_final(error))
        marker_part_done(j, i, error);
    if (!j->trying) /* an append that failed at once: the loop under way sees to it */
        markers_try(j);
}

/* Writes the markers not yet written; when all are (or this node no longer coordinates
 * the transaction: its new coordinator writes them), tells the coordinator. */
static void markers_try(struct marker_job *j)
{
    struct server *s = j->s;
    if (!s->txns || s->stopping) {
        return; /* freed with the coordinator's jobs (server_txns_stop) */
    }
    int32_t leader, coordinator_epoch;
    bool coordinating = server_partition_leader(s, slice_from_cstr(TXN_TOPIC), j->state_partition,
                                                &leader, &coordinator_epoch) &&
                        leader == s->cfg->node_id;
    for (size_t i = 0; !coordinating && i < j->n; i++) {
        if (!j->parts[i].done && !j->parts[i].in_flight) {
            j->parts[i].done = true; /* left to the new coordinator */
            j->remaining--;
        }
    }
    if (j->remaining == 0) {
        bool in_flight = false;
        for (size_t i = 0; i < j->n; i++)
            in_flight |= j->parts[i].in_flight;
        if (in_flight)
            return;
        /* Unlinked from the job list, the completion goes to the idle hook. */
        if (j->retry_timer)
            net_timer_cancel(s->loop, j->retry_timer);
        for (struct marker_job **pp = &s->marker_jobs; *pp; pp = &(*pp)->next)
            if (*pp == j) {
                *pp = j->next;
                break;
            }
        deferred_push(s, true, j->token, KERR_NONE, -1);
        marker_job_free(j);
        return;
    }
    bool retry = false;
    j->trying = true;
    for (size_t i = 0; i < j->n; i++) {
        struct marker_part *mp = &j->parts[i];
        if (mp->done || mp->in_flight)
            continue;
        const struct mtopic *t = cluster_topic_find(s->cluster, slice_from_cstr(mp->topic));
        if (!t || mp->partition >= t->partition_count) {
            mp->done = true; /* deleted: nothing to mark */
            j->remaining--;
            continue;
        }
        struct partition *p = server_partition(s, slice_from_cstr(mp->topic), mp->partition);
        if (!p || partition_check_leader(p, -1) != KERR_NONE) {
            int32_t part_leader = -1, part_epoch;
            server_partition_leader(s, slice_from_cstr(mp->topic), mp->partition, &part_leader,
                                    &part_epoch);
            if (part_leader >= 0 && part_leader != s->cfg->node_id)
                mp->remote = part_leader; /* sent below, with the others it leads */
            else
                retry = true; /* no leader now, or this node is becoming it */
            continue;
        }
        mp->remote = -1;
        struct marker_append *a = xcalloc(1, sizeof *a);
        *a = (struct marker_append){j, i};
        mp->in_flight = true;
        struct txn_marker m = {j->producer_id, j->producer_epoch, j->commit, coordinator_epoch,
                               j->txn_version};
        server_append_marker(s, p, &m, marker_written, a);
        if (!mp->in_flight && !mp->done)
            retry = true; /* failed at once */
    }
    for (size_t i = 0; i < j->n; i++) {
        struct marker_part *mp = &j->parts[i];
        if (!mp->done && !mp->in_flight && mp->remote >= 0)
            send_remote(j, mp->remote, coordinator_epoch);
    }
    j->trying = false;
    if (j->remaining == 0) {
        markers_try(j);
        return;
    }
    if (retry && !j->retry_timer)
        j->retry_timer = net_timer_add(s->loop, MARKER_RETRY_MS, marker_retry, j);
}

static void write_markers(void *arg, int32_t state_partition, int64_t producer_id,
                          int16_t producer_epoch, bool commit, int16_t txn_version,
                          const struct txn_partition *parts, size_t n, void *token)
{
    struct server *s = arg;
    struct marker_job *j = xcalloc(1, sizeof *j);
    *j = (struct marker_job){.s = s,
                             .token = token,
                             .state_partition = state_partition,
                             .producer_id = producer_id,
                             .producer_epoch = producer_epoch,
                             .commit = commit,
                             .txn_version = txn_version,
                             .n = n,
                             .remaining = n};
    j->parts = xcalloc(n ? n : 1, sizeof *j->parts);
    for (size_t i = 0; i < n; i++) {
        j->parts[i].topic = xstrndup((const char *)parts[i].topic.ptr, parts[i].topic.len);
        j->parts[i].partition = parts[i].partition;
        j->parts[i].remote = -1;
    }
    j->next = s->marker_jobs;
    s->marker_jobs = j;
    /* Started from a timer at 0 ms: the coordinator must not hear back inside this call. */
    j->retry_timer = net_timer_add(s->loop, 0, marker_retry, j);
}

static void answered(void *ctx, const struct txn_answer *a)
{
    struct txn_call *call = ctx;
    call->respond(call, a);
}

/* ---- the coordinator as the host's machine ---- */

static void sm_load_begin(void *sm, int32_t partition, int64_t now_ms)
{
    (void)now_ms;
    txn_load_begin(sm, partition);
}

static int sm_load_record(void *sm, int32_t partition, int64_t offset, struct slice key,
                          struct slice value)
{
    (void)offset;
    return txn_load_record(sm, partition, key, value);
}

static void sm_load_end(void *sm, int32_t partition, int64_t now_ms)
{
    txn_load_end(sm, now_ms, partition);
}

static void sm_unload(void *sm, int32_t partition)
{
    txn_unload(sm, partition);
}

static void sm_append_done(void *sm, int64_t now_ms, void *token, int16_t error)
{
    txn_append_done(sm, now_ms, token, error);
    struct server *s = txn_coordinator_arg(sm);
    s->txn_transitioned = true; /* the idle hook wakes the asks that wait on one */
}

static void sm_tick(void *sm, int64_t now_ms)
{
    txn_tick(sm, now_ms);
}

static int64_t sm_next_deadline(void *sm)
{
    return txn_next_deadline(sm);
}

static void sm_destroy(void *sm)
{
    txn_coordinator_destroy(sm);
}

/* The topic's configs, from the broker's transaction.state.log.* (Kafka's). */
struct txn_topic_configs {
    char segment_bytes[24], min_isr[24];
    struct config_entry e[3];
};

static void topic_configs(const struct server *s, struct txn_topic_configs *c)
{
    snprintf(c->segment_bytes, sizeof c->segment_bytes, "%d", s->cfg->txn_state_segment_bytes);
    snprintf(c->min_isr, sizeof c->min_isr, "%d", s->cfg->txn_state_min_isr);
    c->e[0] = (struct config_entry){"cleanup.policy", "compact"};
    c->e[1] = (struct config_entry){"segment.bytes", c->segment_bytes};
    c->e[2] = (struct config_entry){"min.insync.replicas", c->min_isr};
}

int server_txns_start(struct server *s)
{
    const struct broker_config *cfg = s->cfg;
    struct txn_topic_configs tc;
    topic_configs(s, &tc);
    if (itopic_host_open(s, TXN_TOPIC, cfg->txn_state_num_partitions, tc.e, ARRAY_LEN(tc.e),
                         &s->txns_host) != 0)
        return -1;
    struct txn_config c = {
        /* An existing topic keeps its partition count (ids would move otherwise). */
        .partitions = itopic_host_partitions(s->txns_host),
        .max_timeout_ms = cfg->txn_max_timeout_ms,
        .id_expiration_ms = cfg->txn_id_expiration_ms,
        .abort_check_interval_ms = cfg->txn_abort_check_interval_ms,
        .expiration_check_interval_ms = cfg->txn_expiration_check_interval_ms,
        .arg = s,
        .append = queue_append,
        .new_producer_id = new_producer_id,
        .write_markers = write_markers,
        .answer = answered,
    };
    s->txns = txn_coordinator_new(&c);
    s->txns_generation++;
    const struct itopic_machine m = {
        .sm = s->txns,
        .what = "transaction",
        .load_begin = sm_load_begin,
        .load_record = sm_load_record,
        .load_end = sm_load_end,
        .unload = sm_unload,
        .append_done = sm_append_done,
        .tick = sm_tick,
        .next_deadline = sm_next_deadline,
        .destroy = sm_destroy,
    };
    struct itopic_load_stats st;
    if (itopic_host_load(s->txns_host, &m, &st) != 0)
        return -1;
    say_info("server", "transaction coordinator loaded %zu records in %lld ms", st.records,
             (long long)st.elapsed_ms);
    return 0;
}

/* Stops in the order the coordinator needs: the host cancels its timer and destroys it
 * (answering what waits with NOT_COORDINATOR); then nothing may answer its tokens, so
 * the marker jobs and queued completions are dropped. */
void server_txns_stop(struct server *s)
{
    itopic_host_stop(s->txns_host);
    s->txns_host = NULL;
    s->txns = NULL;
    while (s->marker_jobs) {
        struct marker_job *j = s->marker_jobs;
        s->marker_jobs = j->next;
        if (j->retry_timer)
            net_timer_cancel(s->loop, j->retry_timer);
        /* Appends in flight still call marker_written with this job: keep it (leaked
         * until they do, at most one per partition, only at shutdown). */
        bool in_flight = false;
        for (size_t i = 0; i < j->n; i++)
            in_flight |= j->parts[i].in_flight;
        if (!in_flight)
            marker_job_free(j);
    }
    while (s->txn_deferred) {
        struct txn_deferred *d = s->txn_deferred;
        s->txn_deferred = d->next;
        free(d);
    }
    s->txn_deferred_tail = NULL;
}

void server_txns_idle(struct server *s)
{
    if (!s->txns)
        return;
    itopic_host_idle(s->txns_host);
    if (!s->txn_deferred)
        return;
    int64_t now = time_wall_ms();
    while (s->txn_deferred && s->txns) {
        struct txn_deferred *d = s->txn_deferred;
        s->txn_deferred = d->next;
        if (!s->txn_deferred)
            s->txn_deferred_tail = NULL;
        if (d->markers)
            txn_markers_done(s->txns, now, d->token);
        else
            txn_producer_id_done(s->txns, now, d->token, d->error, d->producer_id);
        free(d);
    }
    server_txns_called(s);
}

void server_txns_poll(struct server *s)
{
    if (s->txns || s->stopping || !s->cfg->broker ||
        !cluster_topic_find(s->cluster, slice_from_cstr(TXN_TOPIC)))
        return;
    struct topic_state *ts = server_topic(s, slice_from_cstr(TXN_TOPIC));
    if (ts && ts->partition_count == ts->target_count && server_txns_start(s) != 0) {
        say_error("server", "the transaction coordinator could not start; trying again");
        server_txns_stop(s);
    }
}

void server_txns_leadership(struct server *s, const char *topic, int32_t partition)
{
    if (s->txns_host && strcmp(topic, TXN_TOPIC) == 0) {
        itopic_host_leadership(s->txns_host, partition);
        server_txns_called(s);
    }
}

int16_t server_txn_coordinator(struct server *s, struct slice transactional_id,
                               const struct mbroker **out)
{
    *out = NULL;
    const struct mtopic *t = cluster_topic_find(s->cluster, slice_from_cstr(TXN_TOPIC));
    if (!t) {
        struct txn_topic_configs tc;
        topic_configs(s, &tc);
        if (broker_config_alone(s->cfg)) {
            cluster_create_topic(s->cluster, slice_from_cstr(TXN_TOPIC),
                                 s->cfg->txn_state_num_partitions, 1, tc.e, ARRAY_LEN(tc.e), false,
                                 NULL, NULL);
        } else {
            int16_t rf =
                MIN(s->cfg->txn_state_replication_factor, server_internal_replication_factor(s));
            server_ask_for_topic(s, TXN_TOPIC, s->cfg->txn_state_num_partitions, rf, tc.e,
                                 ARRAY_LEN(tc.e), &s->txn_topic_asked);
        }
        return KERR_COORDINATOR_NOT_AVAILABLE; /* clients look again */
    }
    if (t->partition_count <= 0)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    server_txns_poll(s); /* a single node starts it here, once the partitions are open */
    const struct mpartition *p =
        &t->partitions[kafka_partition_for(transactional_id, t->partition_count)];
    const struct mbroker *b = p->leader >= 0 ? cluster_broker_find(s->cluster, p->leader) : NULL;
    if (!b || b->fenced)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    *out = b;
    return KERR_NONE;
}

int16_t server_txn_error(int16_t error, int16_t version, int16_t fenced_since)
{
    return error == KERR_PRODUCER_FENCED && version < fenced_since ? KERR_INVALID_PRODUCER_EPOCH
                                                                   : error;
}

/* A request for the coordinator: KERR_NONE when it can be asked, else why not. */
int16_t server_txns_ready(struct server *s)
{
    server_txns_poll(s);
    return s->txns ? KERR_NONE : KERR_NOT_COORDINATOR;
}

/* ---- InitProducerId with a transactional id ---- */

static void init_respond(struct txn_call *call, const struct txn_answer *a)
{
    struct init_producer_id_response resp;
    init_producer_id_response_init(&resp);
    resp.error_code = server_txn_error(a->error, call->req->hdr.api_version, 4);
    resp.producer_id = a->error ? -1 : a->producer_id;
    resp.producer_epoch = a->error ? -1 : a->producer_epoch;
    REQUEST_RESPOND(call->req, init_producer_id_response, &resp);
}

void server_txn_init_producer_id(struct request *req, const struct init_producer_id_request *in)
{
    struct server *s = req->srv;
    struct txn_call *call = REQ_ALLOC(req, struct txn_call, 1);
    call->req = req;
    call->respond = init_respond;
    int16_t err = server_txns_ready(s);
    if (err != KERR_NONE) {
        init_respond(call, &(struct txn_answer){.error = err, .producer_id = -1});
        return;
    }
    struct txn_init_req r = {.transactional_id = in->transactional_id,
                             .timeout_ms = in->transaction_timeout_ms,
                             .producer_id = in->producer_id,
                             .producer_epoch = in->producer_epoch};
    txn_init_producer_id(s->txns, time_wall_ms(), &r, call);
    server_txns_called(s);
}
