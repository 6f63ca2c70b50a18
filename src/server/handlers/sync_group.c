/* SyncGroup (key 14), v0-v5: the leader hands out assignments; every member gets its
 * own once the group's state is durable. */
#include "server/internal.h"

void handle_sync_group(struct request *req)
{
    struct server *s = req->srv;
    struct sync_group_request in;
    if (sync_group_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    int32_t n = MAX(in.assignments_count, 0);
    struct grp_assignment *as = REQ_ALLOC(req, struct grp_assignment, n);
    for (int32_t i = 0; i < n; i++)
        as[i] = (struct grp_assignment){in.assignments[i].member_id, in.assignments[i].assignment};
    struct grp_sync_req g = {
        .group_id = in.group_id,
        .generation_id = in.generation_id,
        .member_id = in.member_id,
        .group_instance_id = in.group_instance_id,
        .protocol_type = in.protocol_type,
        .protocol_name = in.protocol_name,
        .assignments = as,
        .n_assignments = (size_t)n,
    };
    if (!s->groups) { /* a cluster node whose coordinator is still starting: retriable */
        group_sync_done(req, &(struct grp_sync_resp){.error = GRP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
                                                     .assignment = slice_from_cstr("")});
        return;
    }
    grp_sync(s->groups, time_wall_ms(), &g, req);
    server_groups_called(s);
}

void group_sync_done(void *ctx, const struct grp_sync_resp *g)
{
    struct request *req = ctx;
    struct sync_group_response resp;
    sync_group_response_init(&resp);
    resp.error_code = g->error;
    resp.protocol_type = g->protocol_type;
    resp.protocol_name = g->protocol_name;
    resp.assignment = g->assignment.ptr ? g->assignment : slice_from_cstr("");
    REQUEST_RESPOND(req, sync_group_response, &resp);
}
