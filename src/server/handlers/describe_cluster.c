/* DescribeCluster (key 60), v0-v2: cluster id, controller and brokers (KIP-700; v2 lists
 * fenced brokers when asked, KIP-1073). Endpoint type 2 (controllers, KIP-919, what an
 * Admin client bootstrapped with bootstrap.controllers asks) lists the voters of
 * controller.quorum.voters at their controller listeners; a single node without that
 * list is its own controller, at its one listener. */
#include "server/internal.h"

void handle_describe_cluster(struct request *req)
{
    struct server *s = req->srv;
    struct describe_cluster_request in;
    if (describe_cluster_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct describe_cluster_response resp;
    describe_cluster_response_init(&resp);
    if (in.endpoint_type != 1 && in.endpoint_type != 2) {
        resp.error_code = KERR_UNSUPPORTED_ENDPOINT_TYPE;
        resp.error_message =
            slice_from_cstr("endpoint type must be 1 (brokers) or 2 (controllers)");
        resp.cluster_id = slice_from_cstr(cluster_id(s->cluster));
        REQUEST_RESPOND(req, describe_cluster_response, &resp);
        return;
    }
    resp.endpoint_type = in.endpoint_type;
    if (in.include_cluster_authorized_operations)
        resp.cluster_authorized_operations = CLUSTER_AUTHORIZED_OPS;
    resp.cluster_id = slice_from_cstr(cluster_id(s->cluster));
    resp.controller_id =
        in.endpoint_type == 2 ? cluster_controller_id(s->cluster) : server_client_controller_id(s);
    if (in.endpoint_type == 2 && s->cfg->voter_count > 1) {
        resp.brokers =
            REQ_ALLOC(req, struct describe_cluster_response_brokers, s->cfg->voter_count);
        resp.brokers_count = (int32_t)s->cfg->voter_count;
        for (size_t i = 0; i < s->cfg->voter_count; i++) {
            struct describe_cluster_response_brokers *o = &resp.brokers[i];
            describe_cluster_response_brokers_init(o);
            o->broker_id = s->cfg->voters[i].id;
            o->host = slice_from_cstr(s->cfg->voters[i].host);
            o->port = s->cfg->voters[i].port;
        }
        REQUEST_RESPOND(req, describe_cluster_response, &resp);
        return;
    }
    size_t n = cluster_broker_count(s->cluster);
    resp.brokers = REQ_ALLOC(req, struct describe_cluster_response_brokers, n);
    resp.brokers_count = 0;
    for (size_t i = 0; i < n; i++) {
        const struct mbroker *b = cluster_broker_at(s->cluster, i);
        if (b->fenced && !in.include_fenced_brokers)
            continue; /* as Kafka: fenced brokers only when asked for (v2) */
        struct describe_cluster_response_brokers *o = &resp.brokers[resp.brokers_count++];
        describe_cluster_response_brokers_init(o);
        o->broker_id = b->node_id;
        o->host = slice_from_cstr(b->host);
        o->port = b->port;
        o->rack = b->rack ? slice_from_cstr(b->rack) : SLICE_NULL;
        o->is_fenced = b->fenced;
    }
    REQUEST_RESPOND(req, describe_cluster_response, &resp);
}
