/* FindCoordinator (key 10), v0-v6: a group's coordinator is the leader of its partition of
 * __consumer_offsets (server_group_coordinator), a transactional id's (key type 1) the
 * leader of its partition of __transaction_state (server_txn_coordinator, which creates
 * the topic on the first ask). v4+ looks up several keys in one request. */
#include "server/internal.h"

/* The coordinator of a group or transactional id. COORDINATOR_NOT_AVAILABLE (retriable)
 * while its topic is not there yet or the partition has no leader. */
static int16_t coordinator_for(struct server *s, int8_t key_type, struct slice key,
                               const struct mbroker **out)
{
    if (key_type == 1)
        return server_txn_coordinator(s, key, out);
    if (key_type != 0)
        return KERR_INVALID_REQUEST;
    *out = server_group_coordinator(s, key);
    return *out ? KERR_NONE : KERR_COORDINATOR_NOT_AVAILABLE;
}

void handle_find_coordinator(struct request *req)
{
    struct server *s = req->srv;
    struct find_coordinator_request in;
    if (find_coordinator_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct find_coordinator_response resp;
    find_coordinator_response_init(&resp);
    if (req->hdr.api_version < 4) {
        const struct mbroker *b = NULL;
        int16_t err = coordinator_for(s, in.key_type, in.key, &b);
        resp.error_code = err;
        resp.node_id = err ? -1 : b->node_id;
        resp.host = slice_from_cstr(err ? "" : b->host);
        resp.port = err ? -1 : b->port;
        if (err)
            resp.error_message = slice_from_cstr(kafka_error_name(err));
        REQUEST_RESPOND(req, find_coordinator_response, &resp);
        return;
    }
    resp.coordinators_count = MAX(in.coordinator_keys_count, 0);
    resp.coordinators =
        REQ_ALLOC(req, struct find_coordinator_response_coordinators, resp.coordinators_count);
    for (int32_t i = 0; i < resp.coordinators_count; i++) {
        struct find_coordinator_response_coordinators *c = &resp.coordinators[i];
        find_coordinator_response_coordinators_init(c);
        c->key = in.coordinator_keys[i];
        const struct mbroker *b = NULL;
        int16_t err = coordinator_for(s, in.key_type, c->key, &b);
        c->error_code = err;
        c->node_id = err ? -1 : b->node_id;
        c->host = slice_from_cstr(err ? "" : b->host);
        c->port = err ? -1 : b->port;
        if (err)
            c->error_message = slice_from_cstr(kafka_error_name(err));
    }
    REQUEST_RESPOND(req, find_coordinator_response, &resp);
}
