/* FindCoordinator (key 10), v0-v6: every group's coordinator is this node. Transaction
 * coordinators (key type 1) do not exist yet: COORDINATOR_NOT_AVAILABLE. v4+ looks up
 * several keys in one request. */
#include "server/internal.h"

static int16_t coordinator_error(int8_t key_type)
{
    if (key_type == 0)
        return KERR_NONE;
    return key_type == 1 ? KERR_COORDINATOR_NOT_AVAILABLE : KERR_INVALID_REQUEST;
}

void handle_find_coordinator(struct request *req)
{
    struct server *s = req->srv;
    struct find_coordinator_request in;
    if (find_coordinator_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    const struct mbroker *self = cluster_broker_find(s->cluster, s->cfg->node_id);
    struct find_coordinator_response resp;
    find_coordinator_response_init(&resp);
    int16_t err = coordinator_error(in.key_type);
    if (!err && (!s->groups || !self))
        err = KERR_COORDINATOR_NOT_AVAILABLE; /* no group coordinator here (server.c) */
    if (req->hdr.api_version < 4) {
        resp.error_code = err;
        resp.node_id = err ? -1 : self->node_id;
        resp.host = slice_from_cstr(err ? "" : self->host);
        resp.port = err ? -1 : self->port;
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
        c->error_code = err;
        c->node_id = err ? -1 : self->node_id;
        c->host = slice_from_cstr(err ? "" : self->host);
        c->port = err ? -1 : self->port;
        if (err)
            c->error_message = slice_from_cstr(kafka_error_name(err));
    }
    REQUEST_RESPOND(req, find_coordinator_response, &resp);
}
