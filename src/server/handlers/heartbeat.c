/* Heartbeat (key 12), v0-v4: keeps a member's session alive; REBALANCE_IN_PROGRESS
 * tells it to rejoin. */
#include "server/internal.h"

void handle_heartbeat(struct request *req)
{
    struct server *s = req->srv;
    struct heartbeat_request in;
    if (heartbeat_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct grp_heartbeat_req g = {
        .group_id = in.group_id,
        .generation_id = in.generation_id,
        .member_id = in.member_id,
        .group_instance_id = in.group_instance_id,
    };
    if (!s->groups) { /* a cluster node whose coordinator is still starting: retriable */
        group_heartbeat_done(
            req, &(struct grp_heartbeat_resp){.error = GRP_ERR_COORDINATOR_LOAD_IN_PROGRESS});
        return;
    }
    grp_heartbeat(s->groups, time_wall_ms(), &g, req);
    server_groups_called(s);
}

void group_heartbeat_done(void *ctx, const struct grp_heartbeat_resp *g)
{
    struct request *req = ctx;
    struct heartbeat_response resp;
    heartbeat_response_init(&resp);
    resp.error_code = g->error;
    REQUEST_RESPOND(req, heartbeat_response, &resp);
}
