/* DescribeTransactions (key 65), v0 (KIP-664): the state of transactional ids this node
 * coordinates (kafka-transactions.sh describe, samsa txn describe). An id of another
 * coordinator gets NOT_COORDINATOR, an unknown one TRANSACTIONAL_ID_NOT_FOUND. */
#include "server/internal.h"

typedef struct describe_transactions_response_transaction_states txn_state_resp;

static void describe_one(struct request *req, struct slice id, txn_state_resp *out)
{
    struct server *s = req->srv;
    describe_transactions_response_transaction_states_init(out);
    out->transactional_id = id;
    /* An id answered with an error carries zeros, as from Kafka. */
    out->transaction_state = slice_from_cstr("");
    struct txn_meta m;
    out->error_code = s->txns ? txn_describe(s->txns, id, &m) : KERR_NOT_COORDINATOR;
    if (out->error_code != KERR_NONE)
        return;
    out->transaction_state = slice_from_cstr(txn_state_name(m.state));
    out->transaction_timeout_ms = m.timeout_ms;
    out->transaction_start_time_ms = m.start_ms;
    out->producer_id = m.producer_id;
    out->producer_epoch = m.producer_epoch;
    /* The partitions are sorted by topic: one entry per topic. */
    size_t topics = 0;
    for (size_t i = 0; i < m.n_partitions; i++)
        topics += i == 0 || !slice_eq(m.partitions[i].topic, m.partitions[i - 1].topic);
    out->topics = REQ_ALLOC(req, struct describe_transactions_response_transaction_states_topics,
                            MAX(topics, 1));
    for (size_t i = 0; i < m.n_partitions;) {
        size_t j = i;
        while (j < m.n_partitions && slice_eq(m.partitions[j].topic, m.partitions[i].topic))
            j++;
        struct describe_transactions_response_transaction_states_topics *t =
            &out->topics[out->topics_count++];
        describe_transactions_response_transaction_states_topics_init(t);
        t->topic = (struct slice){
            arena_memdup(&req->arena, m.partitions[i].topic.ptr, m.partitions[i].topic.len),
            m.partitions[i].topic.len};
        t->partitions = REQ_ALLOC(req, int32_t, j - i);
        for (size_t k = i; k < j; k++)
            t->partitions[t->partitions_count++] = m.partitions[k].partition;
        i = j;
    }
}

void handle_describe_transactions(struct request *req)
{
    struct describe_transactions_request in;
    if (describe_transactions_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) !=
        0) {
        request_malformed(req);
        return;
    }
    server_txns_poll(req->srv);
    struct describe_transactions_response resp;
    describe_transactions_response_init(&resp);
    int32_t n = MAX(in.transactional_ids_count, 0);
    resp.transaction_states = REQ_ALLOC(req, txn_state_resp, MAX(n, 1));
    resp.transaction_states_count = n;
    for (int32_t i = 0; i < n; i++)
        describe_one(req, in.transactional_ids[i], &resp.transaction_states[i]);
    REQUEST_RESPOND(req, describe_transactions_response, &resp);
}
