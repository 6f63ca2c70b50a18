/* OffsetDelete (key 47), v0: removes a group's committed offsets for partitions its
 * members are not subscribed to (GROUP_SUBSCRIBED_TO_TOPIC otherwise). */
#include "server/internal.h"

void handle_offset_delete(struct request *req) {
    struct server *s = req->srv;
    struct offset_delete_request in;
    if (offset_delete_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    int32_t nt = MAX(in.topics_count, 0);
    struct grp_fetch_topic *topics = REQ_ALLOC(req, struct grp_fetch_topic, nt);
    for (int32_t t = 0; t < nt; t++) {
        int32_t np = MAX(in.topics[t].partitions_count, 0);
        int32_t *parts = REQ_ALLOC(req, int32_t, np);
        for (int32_t p = 0; p < np; p++)
            parts[p] = in.topics[t].partitions[p].partition_index;
        topics[t] = (struct grp_fetch_topic){in.topics[t].name, parts, (size_t)np};
    }
    struct grp_offset_delete_req g = {.group_id = in.group_id, .topics = topics,
                                      .n_topics = (size_t)nt};
    grp_offset_delete(s->groups, time_wall_ms(), &g, req);
    server_groups_called(s);
}

void group_offset_delete_done(void *ctx, const struct grp_offset_delete_resp *g) {
    struct request *req = ctx;
    struct offset_delete_response resp;
    offset_delete_response_init(&resp);
    resp.error_code = g->error;
    resp.topics_count = (int32_t)g->n_topics;
    resp.topics = REQ_ALLOC(req, struct offset_delete_response_topics, g->n_topics);
    for (size_t t = 0; t < g->n_topics; t++) {
        struct offset_delete_response_topics *rt = &resp.topics[t];
        offset_delete_response_topics_init(rt);
        rt->name = g->topics[t].name;
        rt->partitions_count = (int32_t)g->topics[t].n_partitions;
        rt->partitions =
            REQ_ALLOC(req, struct offset_delete_response_topics_partitions, rt->partitions_count);
        for (size_t p = 0; p < g->topics[t].n_partitions; p++) {
            offset_delete_response_topics_partitions_init(&rt->partitions[p]);
            rt->partitions[p].partition_index = g->topics[t].partitions[p].partition;
            rt->partitions[p].error_code = g->topics[t].partitions[p].error;
        }
    }
    REQUEST_RESPOND(req, offset_delete_response, &resp);
}
