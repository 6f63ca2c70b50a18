/* EndTxn (key 26), v0-v5: a transactional producer commits or aborts its transaction.
 * Answered once the coordinator's PrepareCommit/PrepareAbort is durable; the markers
 * follow (txns.c). v5 is transaction version 2: the epoch is bumped, and the answer
 * carries the producer id and epoch of the next transaction. */
#include "server/internal.h"

static void respond(struct txn_call *call, const struct txn_answer *a)
{
    struct end_txn_response resp;
    end_txn_response_init(&resp);
    resp.error_code = server_txn_error(a->error, call->req->hdr.api_version, 2);
    resp.producer_id = a->error ? -1 : a->producer_id;
    resp.producer_epoch = a->error ? -1 : a->producer_epoch;
    REQUEST_RESPOND(call->req, end_txn_response, &resp);
}

void handle_end_txn(struct request *req)
{
    struct server *s = req->srv;
    struct end_txn_request in;
    if (end_txn_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct txn_call *call = REQ_ALLOC(req, struct txn_call, 1);
    call->req = req;
    call->respond = respond;
    int16_t err = server_txns_ready(s);
    if (err != KERR_NONE) {
        respond(call, &(struct txn_answer){.error = err, .producer_id = -1});
        return;
    }
    struct txn_end_req r = {.transactional_id = in.transactional_id,
                            .producer_id = in.producer_id,
                            .producer_epoch = in.producer_epoch,
                            .commit = in.committed,
                            .client_version = req->hdr.api_version >= 5 ? 2 : 0};
    txn_end(s->txns, time_wall_ms(), &r, call);
    server_txns_called(s);
}
