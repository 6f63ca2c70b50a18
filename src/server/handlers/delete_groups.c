/* DeleteGroups (key 42), v0-v2: removes empty groups and their offsets (tombstones in
 * __consumer_offsets); NON_EMPTY_GROUP while members remain. A group named twice is
 * deleted and answered once (Kafka takes the distinct names), not found the second
 * time. */
#include "server/internal.h"

void handle_delete_groups(struct request *req)
{
    struct server *s = req->srv;
    struct delete_groups_request in;
    if (delete_groups_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    size_t n = (size_t)MAX(in.groups_names_count, 0);
    struct slice *ids = REQ_ALLOC(req, struct slice, n);
    size_t n_ids = 0;
    struct hmap seen;
    hmap_init(&seen);
    for (size_t i = 0; i < n; i++) {
        if (hmap_get(&seen, in.groups_names[i]))
            continue;
        hmap_put(&seen, in.groups_names[i], &ids[n_ids]);
        ids[n_ids++] = in.groups_names[i];
    }
    hmap_free(&seen);
    struct grp_delete_groups_req g = {.group_ids = ids, .n_groups = n_ids};
    grp_delete_groups(s->groups, time_wall_ms(), &g, req);
    server_groups_called(s);
}

void group_delete_groups_done(void *ctx, const struct grp_delete_groups_resp *g)
{
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
