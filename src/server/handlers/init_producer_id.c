/* InitProducerId (key 22), v0-v5: a producer id and epoch for an idempotent producer.
 *
 * Only idempotent producers (null TransactionalId) are served; a transactional id gets
 * TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as transactional produce does, until
 * transactions exist. As in Kafka, an idempotent producer always gets a fresh id with
 * epoch 0, also when it passes its current id and epoch (v3+, KIP-360): for it, a new
 * id is the epoch bump. Ids come from blocks the metadata log reserves for this node
 * (cluster_allocate_producer_ids), so no id is handed out twice, across restarts. */
#include "server/internal.h"

/* Kafka's block size (ProducerIdManager): one metadata-log write per 1,000 producers. */
#define PRODUCER_ID_BLOCK 1000

void handle_init_producer_id(struct request *req)
{
    struct server *s = req->srv;
    struct init_producer_id_request in;
    if (init_producer_id_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct init_producer_id_response resp;
    init_producer_id_response_init(&resp);
    resp.producer_id = -1;
    resp.producer_epoch = -1;
    if (in.transactional_id.ptr) {
        resp.error_code = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED; /* no transactions yet */
        REQUEST_RESPOND(req, init_producer_id_response, &resp);
        return;
    }
    if (s->next_producer_id == s->producer_id_block_end) {
        int64_t first = 0;
        int rc =
            cluster_allocate_producer_ids(s->cluster, s->cfg->node_id, PRODUCER_ID_BLOCK, &first);
        if (rc != 0) {
            log_error("server", "cannot reserve producer ids: %s",
                      rc == CLUSTER_ERR_LIMIT ? "producer ids exhausted"
                                              : "the metadata log could not be written");
            /* Retriable for clients: they ask again. */
            resp.error_code = KERR_COORDINATOR_NOT_AVAILABLE;
            REQUEST_RESPOND(req, init_producer_id_response, &resp);
            return;
        }
        s->next_producer_id = first;
        s->producer_id_block_end = first + PRODUCER_ID_BLOCK;
    }
    resp.producer_id = s->next_producer_id++;
    resp.producer_epoch = 0;
    log_debug("server", "producer id %lld (epoch 0) handed out", (long long)resp.producer_id);
    REQUEST_RESPOND(req, init_producer_id_response, &resp);
}
