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
 * partitions it leads; a partition led elsewhere gets WriteTxnMarkers sent to its leader
 * (markers.c... not yet: see server_write_markers). Failures are retried every
 * MARKER_RETRY_MS until each partition has its marker or its topic is gone, as Kafka's
 * TransactionMarkerChannelManager does. */
#include "server/internal.h"

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
    size_t n, remaining;
    struct marker_part {
        char *topic;
        int32_t partition;
        bool done;
        bool in_flight;
    } * parts;
    uint64_t retry_timer;
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
    free(a);
    mp->in_flight = false;
    if (error == KERR_NONE || error == KERR_TRANSACTION_COORDINATOR_FENCED ||
        error == KERR_INVALID_PRODUCER_EPOCH) {
        /* A fenced or superseded marker will never be written: a newer coordinator or
         * epoch has taken over this producer (Kafka drops it too). */
        if (error != KERR_NONE)
            say_warn("server", "transaction marker for producer %lld in %s-%d refused: %s",
                     (long long)j->producer_id, mp->topic, mp->partition, kafka_error_name(error));
        else if (strcmp(mp->topic, "__consumer_offsets") == 0)
            server_groups_txn_marker(j->s, mp->partition, j->producer_id, j->commit);
        mp->done = true;
        j->remaining--;
    }
    markers_try(j);
}

/* Writes the markers not yet written; when all are, tells the coordinator. */
static void markers_try(struct marker_job *j)
{
    struct server *s = j->s;
    if (!s->txns || s->stopping) {
        return; /* freed with the coordinator's jobs (server_txns_stop) */
    }
    if (j->remaining == 0) {
        bool in_flight = false;
        for (size_t i = 0; i < j->n; i++)
            in_flight |= j->parts[i].in_flight;
        if (in_flight)
            return;
        /* Unlinked from the job list, the completion goes to the idle hook. */
        for (struct marker_job **pp = &s->marker_jobs; *pp; pp = &(*pp)->next)
            if (*pp == j) {
                *pp = j->next;
                break;
            }
        deferred_push(s, true, j->token, KERR_NONE, -1);
        marker_job_free(j);
        return;
    }
    int32_t leader, coordinator_epoch;
    bool coordinating = server_partition_leader(s, slice_from_cstr(TXN_TOPIC), j->state_partition,
                                                &leader, &coordinator_epoch) &&
                        leader == s->cfg->node_id;
    bool retry = false;
    for (size_t i = 0; i < j->n; i++) {
        struct marker_part *mp = &j->parts[i];
        if (mp->done || mp->in_flight)
            continue;
        if (!coordinating) {
            retry = true; /* the coordinator moves: the new one writes them */
            continue;
        }
        const struct mtopic *t = cluster_topic_find(s->cluster, slice_from_cstr(mp->topic));
        if (!t || mp->partition >= t->partition_count) {
            mp->done = true; /* deleted: nothing to mark */
            j->remaining--;
            continue;
        }
        struct partition *p = server_partition(s, slice_from_cstr(mp->topic), mp->partition);
        if (!p || partition_check_leader(p, -1) != KERR_NONE) {
            /* Led elsewhere, or moving. *Differs*: WriteTxnMarkers to other brokers is
             * not sent yet; a transaction over partitions this node does not lead waits
             * until it does (docs/compatibility.md). */
            retry = true;
            continue;
        }
        struct buf b;
        buf_init(&b);
        batch_encode_marker(&b, j->producer_id, j->producer_epoch,
                            j->commit ? TXN_MARKER_COMMIT : TXN_MARKER_ABORT, coordinator_epoch,
                            time_wall_ms());
        struct marker_append *a = xcalloc(1, sizeof *a);
        *a = (struct marker_append){j, i};
        mp->in_flight = true;
        server_append_durable(s, p, b.data, b.len, marker_written, a);
        buf_free(&b);
        if (!mp->in_flight && !mp->done)
            retry = true; /* failed at once */
    }
    if (j->remaining == 0) {
        markers_try(j);
        return;
    }
    if (retry && !j->retry_timer)
        j->retry_timer = net_timer_add(s->loop, MARKER_RETRY_MS, marker_retry, j);
}

static void write_markers(void *arg, int32_t state_partition, int64_t producer_id,
                          int16_t producer_epoch, bool commit, const struct txn_partition *parts,
                          size_t n, void *token)
{
    struct server *s = arg;
    struct marker_job *j = xcalloc(1, sizeof *j);
    *j = (struct marker_job){.s = s,
                             .token = token,
                             .state_partition = state_partition,
                             .producer_id = producer_id,
                             .producer_epoch = producer_epoch,
                             .commit = commit,
                             .n = n,
                             .remaining = n};
    j->parts = xcalloc(n ? n : 1, sizeof *j->parts);
    for (size_t i = 0; i < n; i++) {
        j->parts[i].topic = xstrndup((const char *)parts[i].topic.ptr, parts[i].topic.len);
        j->parts[i].partition = parts[i].partition;
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
    int32_t h = java_string_hash(transactional_id);
    int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h);
    const struct mpartition *p = &t->partitions[a % t->partition_count];
    const struct mbroker *b = p->leader >= 0 ? cluster_broker_find(s->cluster, p->leader) : NULL;
    if (!b || b->fenced)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    *out = b;
    return KERR_NONE;
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
    resp.error_code = a->error;
    /* Before v4 a fenced producer hears INVALID_PRODUCER_EPOCH (Kafka's mapping). */
    if (a->error == KERR_PRODUCER_FENCED && call->req->hdr.api_version < 4)
        resp.error_code = KERR_INVALID_PRODUCER_EPOCH;
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
