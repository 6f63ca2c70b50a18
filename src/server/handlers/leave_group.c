/* LeaveGroup (key 13), v0-v5: members leave (v3+: several, by member id or instance
 * id), which starts a rebalance for the rest at once. */
#include "server/internal.h"

void handle_leave_group(struct request *req)
{
    struct server *s = req->srv;
    struct leave_group_request in;
    if (leave_group_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct grp_member_identity *members;
    size_t n;
    if (req->hdr.api_version < 3) {
        n = 1;
        members = REQ_ALLOC(req, struct grp_member_identity, 1);
        members[0] = (struct grp_member_identity){in.member_id, SLICE_NULL};
    } else {
        n = (size_t)MAX(in.members_count, 0);
        members = REQ_ALLOC(req, struct grp_member_identity, n);
        for (size_t i = 0; i < n; i++)
            members[i] = (struct grp_member_identity){in.members[i].member_id,
                                                      in.members[i].group_instance_id};
    }
    struct grp_leave_req g = {.group_id = in.group_id, .members = members, .n_members = n};
    if (!s->groups) { /* a cluster node whose coordinator is still starting: retriable */
        group_leave_done(req,
                         &(struct grp_leave_resp){.error = GRP_ERR_COORDINATOR_LOAD_IN_PROGRESS});
        return;
    }
    grp_leave(s->groups, time_wall_ms(), &g, req);
    server_groups_called(s);
}

void group_leave_done(void *ctx, const struct grp_leave_resp *g)
{
    struct request *req = ctx;
    struct leave_group_response resp;
    leave_group_response_init(&resp);
    resp.error_code = g->error;
    if (req->hdr.api_version < 3) {
        /* One member, no member list: its error is the answer. */
        if (g->error == KERR_NONE && g->n_members > 0)
            resp.error_code = g->members[0].error;
    } else {
        resp.members_count = (int32_t)g->n_members;
        resp.members = REQ_ALLOC(req, struct leave_group_response_members, g->n_members);
        for (size_t i = 0; i < g->n_members; i++) {
            leave_group_response_members_init(&resp.members[i]);
            resp.members[i].member_id = g->members[i].member_id;
            resp.members[i].group_instance_id = g->members[i].group_instance_id;
            resp.members[i].error_code = g->members[i].error;
        }
    }
    REQUEST_RESPOND(req, leave_group_response, &resp);
}
