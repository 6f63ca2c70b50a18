/* AddOffsetsToTxn (key 25), v0-v4: a transactional producer adds the partition of
 * __consumer_offsets that holds a group's offsets to its transaction, before it commits
 * offsets in it (TxnOffsetCommit): the transaction's marker then completes them. */
#include "server/internal.h"

static void respond(struct txn_call *call, const struct txn_answer *a)
{
    struct add_offsets_to_txn_response resp;
    add_offsets_to_txn_response_init(&resp);
    resp.error_code = server_txn_error(a->error, call->req->hdr.api_version, 2);
    REQUEST_RESPOND(call->req, add_offsets_to_txn_response, &resp);
}

void handle_add_offsets_to_txn(struct request *req)
{
    struct server *s = req->srv;
    struct add_offsets_to_txn_request in;
    if (add_offsets_to_txn_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) !=
        0) {
        request_malformed(req);
        return;
    }
    struct txn_call *call = REQ_ALLOC(req, struct txn_call, 1);
    call->req = req;
    call->respond = respond;
    int16_t err = server_txns_ready(s);
    const struct mtopic *offsets =
        cluster_topic_find(s->cluster, slice_from_cstr("__consumer_offsets"));
    if (err == KERR_NONE && (!offsets || offsets->partition_count <= 0))
        err = KERR_COORDINATOR_NOT_AVAILABLE; /* no groups yet (a cluster starting) */
    if (err != KERR_NONE) {
        respond(call, &(struct txn_answer){.error = err, .producer_id = -1});
        return;
    }
    struct txn_partition part = {slice_from_cstr("__consumer_offsets"),
                                 grp_partition_for_n(in.group_id, offsets->partition_count)};
    struct txn_add_req r = {.transactional_id = in.transactional_id,
                            .producer_id = in.producer_id,
                            .producer_epoch = in.producer_epoch,
                            .partitions = &part,
                            .n_partitions = 1};
    txn_add_partitions(s->txns, time_wall_ms(), &r, call);
    server_txns_called(s);
}
