/* DeleteGroups (key 42), v0-v2: removes empty groups and their offsets (tombstones in
 * __consumer_offsets); NON_EMPTY_GROUP while members remain. */
#include "server/internal.h"

void handle_delete_groups(struct request *req) {
    struct server *s = req->srv;
    struct delete_groups_request in;
    if (delete_groups_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct grp_delete_groups_req g = {.group_ids = in.groups_names,
                                      .n_groups = (size_t)MAX(in.groups_names_count, 0)};
    grp_delete_groups(s->groups, time_wall_ms(), &g, req);
    server_groups_called(s);
}

void group_delete_groups_done(void *ctx, const struct grp_delete_groups_resp *g) {
    struct request *req = ctx;
    struct delete_groups_response resp;
    delete_groups_response_init(&resp);
    resp.results_count = (int32_t)g->n_results;
    resp.results = REQ_ALLOC(req, struct delete_groups_response_results, g->n_results);
    for (size_t i = 0; i < g->n_results; i++) {
        delete_groups_response_results_init(&resp.results[i]);
        resp.results[i].group_id = g->results[i].group_id;
        resp.results[i].error_code = g->results[i].error;
    }
    REQUEST_RESPOND(req, delete_groups_response, &resp);
}
