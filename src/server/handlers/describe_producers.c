/* DescribeProducers (key 61), v0 (KIP-664): each partition's active idempotent
 * producers as this node (every partition's leader) knows them: id, epoch, last
 * sequence, the timestamp of its newest batch, the coordinator epoch of its last
 * transaction marker and the first offset of its open transaction (-1: none), which is
 * what kafka-transactions.sh find-hanging looks for. */
#include "server/internal.h"

typedef struct describe_producers_response_topics_partitions part_resp;
typedef struct describe_producers_response_topics_partitions_active_producers prod_resp;

static void describe_partition(struct request *req, struct slice topic, part_resp *out)
{
    struct partition *p = server_partition(req->srv, topic, out->partition_index);
    if (!p) {
        out->error_code = server_partition_absent(req->srv, topic, out->partition_index);
        return;
    }
    size_t n = log_producer_count(p->log);
    struct pstate_batch *b = REQ_ALLOC(req, struct pstate_batch, n);
    log_producers(p->log, b, n);
    out->active_producers_count = (int32_t)n;
    out->active_producers = REQ_ALLOC(req, prod_resp, n);
    for (size_t i = 0; i < n; i++) {
        prod_resp *r = &out->active_producers[i];
        describe_producers_response_topics_partitions_active_producers_init(r);
        r->producer_id = b[i].producer_id;
        r->producer_epoch = b[i].epoch;
        r->last_sequence = b[i].last_seq;
        r->last_timestamp = b[i].timestamp_ms;
        r->coordinator_epoch = b[i].coordinator_epoch;
        r->current_txn_start_offset = b[i].txn_first_offset;
    }
}

void handle_describe_producers(struct request *req)
{
    struct describe_producers_request in;
    if (describe_producers_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) !=
        0) {
        request_malformed(req);
        return;
    }
    struct describe_producers_response resp;
    describe_producers_response_init(&resp);
    resp.topics_count = in.topics_count < 0 ? 0 : in.topics_count;
    resp.topics = REQ_ALLOC(req, struct describe_producers_response_topics, resp.topics_count);
    for (int32_t t = 0; t < resp.topics_count; t++) {
        const struct describe_producers_request_topics *it = &in.topics[t];
        struct describe_producers_response_topics *ot = &resp.topics[t];
        describe_producers_response_topics_init(ot);
        ot->name = it->name;
        ot->partitions_count = it->partition_indexes_count < 0 ? 0 : it->partition_indexes_count;
        ot->partitions = REQ_ALLOC(req, part_resp, ot->partitions_count);
        for (int32_t i = 0; i < ot->partitions_count; i++) {
            part_resp *op = &ot->partitions[i];
            describe_producers_response_topics_partitions_init(op);
            op->partition_index = it->partition_indexes[i];
            describe_partition(req, it->name, op);
        }
    }
    REQUEST_RESPOND(req, describe_producers_response, &resp);
}
