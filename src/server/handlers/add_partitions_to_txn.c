/* AddPartitionsToTxn (key 24), v0-v5.
 *
 * v0-v3: a transactional producer adds partitions to its transaction before it writes to
 * them (transaction version 1). As Kafka: partitions of topics this cluster does not have
 * are answered UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED, without
 * asking the coordinator; otherwise every partition gets the coordinator's one answer.
 *
 * v4-v5 (between brokers): a partition's leader asks, with VerifyOnly (KIP-890 part 1),
 * whether a transactional batch may open its producer's transaction there; each
 * partition gets txn_verify's verdict. Without VerifyOnly (transaction version 2, KIP-890
 * part 2) it asks the coordinator to add the partitions (server_txn_add_partitions);
 * each of the request's transactions gets the coordinator's answer. */
#include "server/internal.h"

typedef struct add_partitions_to_txn_response_results_results part_result;

static bool server_partition_exists(struct server *s, struct slice topic, int32_t partition)
{
    const struct mtopic *t = cluster_topic_find(s->cluster, topic);
    return t && partition >= 0 && partition < t->partition_count;
}

struct add_call {
    struct txn_call call; /* first: the coordinator's ctx */
    struct add_partitions_to_txn_request in;
};

static void respond(struct txn_call *call, const struct txn_answer *a)
{
    struct add_call *ac = (struct add_call *)call;
    struct request *req = call->req;
    const struct add_partitions_to_txn_request *in = &ac->in;
    struct add_partitions_to_txn_response resp;
    add_partitions_to_txn_response_init(&resp);
    resp.results_count = in->topics_count;
    resp.results =
        REQ_ALLOC(req, struct add_partitions_to_txn_response_results, MAX(in->topics_count, 1));
    int16_t error = server_txn_error(a->error, req->hdr.api_version, 2);
    bool unknown_any = false;
    for (int32_t i = 0; i < in->topics_count; i++)
        for (int32_t k = 0; k < in->topics[i].partitions_count; k++)
            unknown_any |=
                !server_partition_exists(req->srv, in->topics[i].name, in->topics[i].partitions[k]);
    for (int32_t i = 0; i < in->topics_count; i++) {
        struct add_partitions_to_txn_response_results *r = &resp.results[i];
        add_partitions_to_txn_response_results_init(r);
        r->name = in->topics[i].name;
        r->results_count = in->topics[i].partitions_count;
        r->results = REQ_ALLOC(req, part_result, MAX(r->results_count, 1));
        for (int32_t k = 0; k < r->results_count; k++) {
            part_result *pr = &r->results[k];
            add_partitions_to_txn_response_results_results_init(pr);
            pr->partition_index = in->topics[i].partitions[k];
            if (!unknown_any)
                pr->partition_error_code = error;
            else if (!server_partition_exists(req->srv, in->topics[i].name, pr->partition_index))
                pr->partition_error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            else
                pr->partition_error_code = KERR_OPERATION_NOT_ATTEMPTED;
        }
    }
    REQUEST_RESPOND(req, add_partitions_to_txn_response, &resp);
}

/* A v4+ request: its answer once every transaction to add has the coordinator's. */
struct broker_call {
    struct request *req;
    struct add_partitions_to_txn_response resp;
    int waiting;
};

/* One transaction to add: its partitions' results. */
struct broker_add {
    struct broker_call *bc;
    struct add_partitions_to_txn_response_results_by_transaction *rt;
};

static void broker_release(struct broker_call *bc)
{
    if (--bc->waiting == 0)
        REQUEST_RESPOND(bc->req, add_partitions_to_txn_response, &bc->resp);
}

/* The coordinator's answers, in the order of the transaction's partitions. */
static void added(void *arg, const int16_t *errors)
{
    struct broker_add *ba = arg;
    size_t i = 0;
    for (int32_t k = 0; k < ba->rt->topic_results_count; k++)
        for (int32_t j = 0; j < ba->rt->topic_results[k].results_by_partition_count; j++)
            ba->rt->topic_results[k].results_by_partition[j].partition_error_code = errors[i++];
    broker_release(ba->bc);
}

/* t's partitions, added to its transaction by this node's coordinator (waiting, as a
 * partition's leader would, while the id's previous transaction completes). */
static void add_for_broker(struct request *req, struct broker_call *bc,
                           const struct add_partitions_to_txn_request_transactions *t,
                           struct add_partitions_to_txn_response_results_by_transaction *rt)
{
    struct server *s = req->srv;
    size_t n = 0;
    bool unknown_any = false;
    for (int32_t k = 0; k < t->topics_count; k++)
        for (int32_t j = 0; j < t->topics[k].partitions_count; j++) {
            n++;
            unknown_any |=
                !server_partition_exists(s, t->topics[k].name, t->topics[k].partitions[j]);
        }
    if (unknown_any) { /* as the client's versions: nothing added */
        for (int32_t k = 0; k < rt->topic_results_count; k++)
            for (int32_t j = 0; j < rt->topic_results[k].results_by_partition_count; j++)
                rt->topic_results[k].results_by_partition[j].partition_error_code =
                    server_partition_exists(
                        s, t->topics[k].name,
                        rt->topic_results[k].results_by_partition[j].partition_index)
                        ? KERR_OPERATION_NOT_ATTEMPTED
                        : KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return;
    }
    struct txn_partition *parts = REQ_ALLOC(req, struct txn_partition, MAX(n, 1));
    size_t i = 0;
    for (int32_t k = 0; k < t->topics_count; k++)
        for (int32_t j = 0; j < t->topics[k].partitions_count; j++)
            parts[i++] = (struct txn_partition){t->topics[k].name, t->topics[k].partitions[j]};
    struct broker_add *ba = REQ_ALLOC(req, struct broker_add, 1);
    *ba = (struct broker_add){bc, rt};
    bc->waiting++;
    server_txn_add_partitions(s, t->transactional_id, t->producer_id, t->producer_epoch, parts, n,
                              TXN_ASK_ADD_HERE, added, ba);
}

/* v4+: one verdict per partition of each transaction, at once for VerifyOnly, else once
 * the coordinator has added them. */
static void from_broker(struct request *req, const struct add_partitions_to_txn_request *in)
{
    struct server *s = req->srv;
    struct broker_call *bc = REQ_ALLOC(req, struct broker_call, 1);
    bc->req = req;
    bc->waiting = 1;
    struct add_partitions_to_txn_response resp;
    add_partitions_to_txn_response_init(&resp);
    int32_t nt = MAX(in->transactions_count, 0);
    resp.results_by_transaction_count = nt;
    resp.results_by_transaction =
        REQ_ALLOC(req, struct add_partitions_to_txn_response_results_by_transaction, MAX(nt, 1));
    server_txns_poll(s);
    for (int32_t i = 0; i < nt; i++) {
        const struct add_partitions_to_txn_request_transactions *t = &in->transactions[i];
        struct add_partitions_to_txn_response_results_by_transaction *rt =
            &resp.results_by_transaction[i];
        add_partitions_to_txn_response_results_by_transaction_init(rt);
        rt->transactional_id = t->transactional_id;
        rt->topic_results_count = t->topics_count;
        rt->topic_results = REQ_ALLOC(
            req, struct add_partitions_to_txn_response_results_by_transaction_topic_results,
            (size_t)MAX(t->topics_count, 1));
        for (int32_t k = 0; k < t->topics_count; k++) {
            const struct add_partitions_to_txn_request_transactions_topics *tt = &t->topics[k];
            struct add_partitions_to_txn_response_results_by_transaction_topic_results *tr =
                &rt->topic_results[k];
            add_partitions_to_txn_response_results_by_transaction_topic_results_init(tr);
            tr->name = tt->name;
            tr->results_by_partition_count = tt->partitions_count;
            tr->results_by_partition = REQ_ALLOC(
                req,
                struct
                add_partitions_to_txn_response_results_by_transaction_topic_results_results_by_partition,
                (size_t)MAX(tt->partitions_count, 1));
            for (int32_t j = 0; j < tt->partitions_count; j++) {
                struct
                    add_partitions_to_txn_response_results_by_transaction_topic_results_results_by_partition
                        *pr = &tr->results_by_partition[j];
                add_partitions_to_txn_response_results_by_transaction_topic_results_results_by_partition_init(
                    pr);
                pr->partition_index = tt->partitions[j];
                if (!t->verify_only)
                    continue; /* answered by add_for_broker */
                if (!s->txns)
                    pr->partition_error_code = KERR_NOT_COORDINATOR;
                else
                    pr->partition_error_code =
                        txn_verify(s->txns, t->transactional_id, t->producer_id, t->producer_epoch,
                                   (struct txn_partition){tt->name, tt->partitions[j]});
            }
        }
    }
    bc->resp = resp;
    for (int32_t i = 0; i < nt; i++)
        if (!in->transactions[i].verify_only)
            add_for_broker(req, bc, &in->transactions[i], &bc->resp.results_by_transaction[i]);
    broker_release(bc);
}

void handle_add_partitions_to_txn(struct request *req)
{
    struct server *s = req->srv;
    struct add_call *ac = REQ_ALLOC(req, struct add_call, 1);
    if (add_partitions_to_txn_request_decode(&req->body, req->hdr.api_version, &req->arena,
                                             &ac->in) != 0) {
        request_malformed(req);
        return;
    }
    if (req->hdr.api_version >= 4) {
        from_broker(req, &ac->in);
        return;
    }
    ac->call.req = req;
    ac->call.respond = respond;
    const struct add_partitions_to_txn_request *in = &ac->in;
    size_t n = 0;
    bool unknown_any = false;
    for (int32_t i = 0; i < in->topics_count; i++)
        for (int32_t k = 0; k < in->topics[i].partitions_count; k++) {
            n++;
            unknown_any |=
                !server_partition_exists(s, in->topics[i].name, in->topics[i].partitions[k]);
        }
    int16_t err = server_txns_ready(s);
    if (unknown_any || err != KERR_NONE) {
        respond(&ac->call, &(struct txn_answer){.error = err, .producer_id = -1});
        return;
    }
    struct txn_partition *parts = REQ_ALLOC(req, struct txn_partition, MAX(n, 1));
    size_t k = 0;
    for (int32_t i = 0; i < in->topics_count; i++)
        for (int32_t j = 0; j < in->topics[i].partitions_count; j++)
            parts[k++] = (struct txn_partition){in->topics[i].name, in->topics[i].partitions[j]};
    struct txn_add_req r = {.transactional_id = in->transactional_id,
                            .producer_id = in->producer_id,
                            .producer_epoch = in->producer_epoch,
                            .partitions = parts,
                            .n_partitions = n};
    txn_add_partitions(s->txns, time_wall_ms(), &r, &ac->call);
    server_txns_called(s);
}
