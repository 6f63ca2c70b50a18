/* A partition's leader, or a group coordinator for transactional offsets, asks its
 * producer's transaction coordinator about the partition as the first transactional
 * batch for it arrives (server_txn_add_partitions, internal.h): whether the batch may
 * open the transaction there (KIP-890 part 1), or, for transaction version 2 (part 2),
 * to add the partition. This node's coordinator is asked directly, another broker's with
 * AddPartitionsToTxn v5 (VerifyOnly for the first).
 *
 * The asks for one transactional id form a queue (s->txn_adds holds the first of each):
 * the next is started only once the one before is answered and its batches appended, so
 * a producer's pipelined requests append in the order they came.
 *
 * CONCURRENT_TRANSACTIONS (the id's previous transaction is still completing) is asked
 * again ADD_RETRY_MS later, as Kafka's add.partitions.to.txn.retry.backoff.ms, or at once
 * when this node's coordinator completes a transition (server_txn_adds_wake): the next
 * transaction's first batches then wait no longer than its Complete state. */
#include "server/internal.h"

#include <stdlib.h>
#include <string.h>

#define ADD_RETRY_MS 20
#define ADD_RETRY_MAX_MS 100

struct add_wait {
    struct txn_call call;    /* first: the local coordinator's ctx (call.req unused) */
    struct add_wait *next;   /* s->txn_adds: the first ask of each id */
    struct add_wait *behind; /* the next ask for the same id, started after this one */
    struct server *s;
    char *id;
    size_t id_len;
    int64_t producer_id;
    int16_t producer_epoch;
    size_t n;
    struct txn_partition *parts; /* topics owned */
    int16_t *errors;
    int64_t deadline_ms;
    uint64_t timer; /* a retry (sleeping) or a deferred answer, else 0 */
    bool sleeping;  /* timer is a retry: server_txn_adds_wake may bring it forward */
    bool asked;     /* the coordinator (local or remote) holds it: it will answer */
    bool stopped;   /* answered at shutdown: freed by the answer still to come */
    enum txn_ask ask;
    void (*done)(void *arg, const int16_t *errors);
    void *arg;
};

static void add_try(struct add_wait *w);

static void add_free(struct add_wait *w)
{
    for (size_t i = 0; i < w->n; i++)
        free((void *)w->parts[i].topic.ptr);
    free(w->parts);
    free(w->errors);
    free(w->id);
    free(w);
}

static void add_retry(struct net_loop *loop, void *arg)
{
    (void)loop;
    struct add_wait *w = arg;
    w->timer = 0;
    w->sleeping = false;
    add_try(w);
}

void server_txn_adds_wake(struct server *s)
{
    for (struct add_wait *w = s->txn_adds; w; w = w->next)
        if (w->sleeping) {
            net_timer_cancel(s->loop, w->timer);
            w->timer = net_timer_add(s->loop, 0, add_retry, w);
        }
}

/* The coordinator answered (errors filled): again later while it is busy with the
 * previous transaction, else done. */
static void add_answered(struct add_wait *w)
{
    bool busy = false;
    for (size_t i = 0; i < w->n; i++)
        busy |= w->errors[i] == KERR_CONCURRENT_TRANSACTIONS;
    if (busy && time_wall_ms() + ADD_RETRY_MS <= w->deadline_ms && !w->s->stopping) {
        w->timer = net_timer_add(w->s->loop, ADD_RETRY_MS, add_retry, w);
        w->sleeping = true;
        return;
    }
    /* The next ask for the id takes this one's place, and starts once this one's batches
     * are appended (done appends them). */
    struct add_wait **pp = &w->s->txn_adds;
    while (*pp != w)
        pp = &(*pp)->next;
    *pp = w->behind ? w->behind : w->next;
    if (w->behind)
        w->behind->next = w->next;
    w->done(w->arg, w->errors);
    if (w->behind) {
        w->behind->deadline_ms = time_wall_ms() + ADD_RETRY_MAX_MS;
        add_try(w->behind);
    }
    add_free(w);
}

static void add_fill(struct add_wait *w, int16_t error)
{
    for (size_t i = 0; i < w->n; i++)
        w->errors[i] = error;
}

static void add_answered_later(struct net_loop *loop, void *arg)
{
    (void)loop;
    struct add_wait *w = arg;
    w->timer = 0;
    add_answered(w);
}

/* The answer goes on from the loop: never from inside the coordinator's call (it must
 * not be re-entered), nor from inside whatever closed a peer connection (which fails
 * its requests at once, maybe inside one of the coordinator's calls). */
static void add_answered_soon(struct add_wait *w)
{
    w->timer = net_timer_add(w->s->loop, 0, add_answered_later, w);
}

static void add_local_answer(struct txn_call *call, const struct txn_answer *a)
{
    struct add_wait *w = (struct add_wait *)call;
    w->asked = false;
    if (w->stopped) {
        add_free(w);
        return;
    }
    add_fill(w, a->error);
    add_answered_soon(w);
}

static void add_remote_answer(void *arg, int err, struct reader *body)
{
    struct add_wait *w = arg;
    w->asked = false;
    if (w->stopped) {
        add_free(w);
        return;
    }
    struct arena a;
    arena_init(&a);
    struct add_partitions_to_txn_response resp;
    add_fill(w, KERR_COORDINATOR_NOT_AVAILABLE);
    if (err == 0 && add_partitions_to_txn_response_decode(body, 5, &a, &resp) == 0)
        for (int32_t t = 0; t < resp.results_by_transaction_count; t++)
            for (int32_t k = 0; k < resp.results_by_transaction[t].topic_results_count; k++) {
                const struct add_partitions_to_txn_response_results_by_transaction_topic_results
                    *tr = &resp.results_by_transaction[t].topic_results[k];
                for (int32_t j = 0; j < tr->results_by_partition_count; j++)
                    for (size_t i = 0; i < w->n; i++)
                        if (slice_eq(tr->name, w->parts[i].topic) &&
                            tr->results_by_partition[j].partition_index == w->parts[i].partition)
                            w->errors[i] = tr->results_by_partition[j].partition_error_code;
            }
    arena_free(&a);
    add_answered_soon(w);
}

static void add_ask_remote(struct add_wait *w, int32_t node)
{
    struct add_partitions_to_txn_request_transactions_topics *topics =
        xcalloc(w->n, sizeof *topics);
    int32_t *indexes = xcalloc(w->n, sizeof *indexes);
    for (size_t i = 0; i < w->n; i++) { /* one topic entry per partition, as for markers */
        add_partitions_to_txn_request_transactions_topics_init(&topics[i]);
        topics[i].name = w->parts[i].topic;
        indexes[i] = w->parts[i].partition;
        topics[i].partitions = &indexes[i];
        topics[i].partitions_count = 1;
    }
    struct add_partitions_to_txn_request_transactions t;
    add_partitions_to_txn_request_transactions_init(&t);
    t.transactional_id = (struct slice){(const uint8_t *)w->id, w->id_len};
    t.producer_id = w->producer_id;
    t.producer_epoch = w->producer_epoch;
    t.verify_only = w->ask == TXN_ASK_VERIFY;
    t.topics = topics;
    t.topics_count = (int32_t)w->n;
    struct add_partitions_to_txn_request req;
    add_partitions_to_txn_request_init(&req);
    req.transactions = &t;
    req.transactions_count = 1;
    struct buf frame;
    buf_init(&frame);
    proto_request_header_encode(&frame,
                                &(struct request_header){.api_key = API_KEY_ADD_PARTITIONS_TO_TXN,
                                                         .api_version = 5,
                                                         .client_id = slice_from_cstr("samsa")});
    add_partitions_to_txn_request_encode(&frame, 5, &req);
    w->asked = true;
    int rc = server_peer_send(w->s, node, &frame, 10000, add_remote_answer, w);
    buf_free(&frame);
    free(topics);
    free(indexes);
    if (rc != 0) {
        w->asked = false;
        add_fill(w, KERR_COORDINATOR_NOT_AVAILABLE);
        add_answered_soon(w);
    }
}

static void add_try(struct add_wait *w)
{
    struct server *s = w->s;
    struct slice id = {(const uint8_t *)w->id, w->id_len};
    const struct mbroker *coordinator;
    int16_t err = server_txn_coordinator(s, id, &coordinator);
    if (err == KERR_NONE && coordinator->node_id != s->cfg->node_id) {
        if (w->ask != TXN_ASK_ADD_HERE) {
            add_ask_remote(w, coordinator->node_id);
            return;
        }
        err = KERR_NOT_COORDINATOR;
    }
    if (err == KERR_NONE)
        err = server_txns_ready(s);
    if (err != KERR_NONE) {
        add_fill(w, err);
        add_answered_soon(w);
        return;
    }
    if (w->ask == TXN_ASK_VERIFY) {
        for (size_t i = 0; i < w->n; i++)
            w->errors[i] = txn_verify(s->txns, id, w->producer_id, w->producer_epoch, w->parts[i]);
        add_answered_soon(w);
        return;
    }
    struct txn_add_req r = {.transactional_id = id,
                            .producer_id = w->producer_id,
                            .producer_epoch = w->producer_epoch,
                            .partitions = w->parts,
                            .n_partitions = w->n,
                            .client_version = 2};
    w->asked = true;
    txn_add_partitions(s->txns, time_wall_ms(), &r, &w->call);
    server_txns_called(s);
}

void server_txn_add_partitions(struct server *s, struct slice transactional_id, int64_t producer_id,
                               int16_t producer_epoch, const struct txn_partition *parts, size_t n,
                               enum txn_ask ask, void (*done)(void *arg, const int16_t *errors),
                               void *arg)
{
    struct add_wait *w = xcalloc(1, sizeof *w);
    w->call.respond = add_local_answer;
    w->s = s;
    w->id = xstrndup((const char *)transactional_id.ptr, transactional_id.len);
    w->id_len = transactional_id.len;
    w->producer_id = producer_id;
    w->producer_epoch = producer_epoch;
    w->n = n;
    w->parts = xcalloc(n ? n : 1, sizeof *w->parts);
    for (size_t i = 0; i < n; i++) {
        char *topic = xstrndup((const char *)parts[i].topic.ptr, parts[i].topic.len);
        w->parts[i] = (struct txn_partition){{(const uint8_t *)topic, parts[i].topic.len},
                                             parts[i].partition};
    }
    w->errors = xcalloc(n ? n : 1, sizeof *w->errors);
    w->deadline_ms = time_wall_ms() + ADD_RETRY_MAX_MS;
    w->ask = ask;
    w->done = done;
    w->arg = arg;
    for (struct add_wait *first = s->txn_adds; first; first = first->next)
        if (first->id_len == w->id_len && memcmp(first->id, w->id, w->id_len) == 0) {
            struct add_wait *last = first;
            while (last->behind)
                last = last->behind;
            last->behind = w;
            return;
        }
    w->next = s->txn_adds;
    s->txn_adds = w;
    add_try(w);
}

void server_txn_adds_stop(struct server *s)
{
    while (s->txn_adds) {
        struct add_wait *w = s->txn_adds;
        s->txn_adds = w->next;
        while (w) {
            struct add_wait *behind = w->behind;
            if (w->timer)
                net_timer_cancel(s->loop, w->timer);
            add_fill(w, KERR_COORDINATOR_NOT_AVAILABLE);
            w->done(w->arg, w->errors);
            if (w->asked)
                w->stopped = true; /* its coordinator's answer frees it */
            else
                add_free(w);
            w = behind;
        }
    }
}

int16_t server_txn_ask_error(int16_t error, enum txn_ask ask)
{
    switch (error) {
    case KERR_NOT_COORDINATOR:
    case KERR_COORDINATOR_NOT_AVAILABLE:
    case KERR_COORDINATOR_LOAD_IN_PROGRESS: return KERR_NOT_ENOUGH_REPLICAS;
    case KERR_PRODUCER_FENCED: return KERR_INVALID_PRODUCER_EPOCH;
    case KERR_CONCURRENT_TRANSACTIONS:
        return ask == TXN_ASK_VERIFY ? KERR_NOT_ENOUGH_REPLICAS : error;
    default: return error;
    }
}
