/* JoinGroup (key 11), v0-v9: a member joins (or rejoins) a group; the answer comes when
 * the rebalance completes (group coordinator, src/group). */
#include "server/internal.h"

void handle_join_group(struct request *req)
{
    struct server *s = req->srv;
    struct join_group_request in;
    if (join_group_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    int32_t n = MAX(in.protocols_count, 0);
    struct grp_protocol *protocols = REQ_ALLOC(req, struct grp_protocol, n);
    for (int32_t i = 0; i < n; i++)
        protocols[i] = (struct grp_protocol){in.protocols[i].name, in.protocols[i].metadata};
    struct grp_join_req g = {
        .group_id = in.group_id,
        .session_timeout_ms = in.session_timeout_ms,
        /* v0 has no rebalance timeout: Kafka uses the session timeout. */
        .rebalance_timeout_ms =
            req->hdr.api_version == 0 ? in.session_timeout_ms : in.rebalance_timeout_ms,
        .member_id = in.member_id,
        .group_instance_id = in.group_instance_id,
        .protocol_type = in.protocol_type,
        .protocols = protocols,
        .n_protocols = (size_t)n,
        .require_known_member_id = req->hdr.api_version >= 4,
        .client_id = req->hdr.client_id.ptr ? req->hdr.client_id : slice_from_cstr(""),
        .client_host = request_peer(req),
    };
    if (!s->groups) { /* a cluster node whose coordinator is still starting: retriable */
        group_join_done(req, &(struct grp_join_resp){.error = GRP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
                                                     .generation_id = -1,
                                                     .leader = slice_from_cstr(""),
                                                     .member_id = in.member_id});
        return;
    }
    grp_join(s->groups, time_wall_ms(), &g, req);
    server_groups_called(s);
}

void group_join_done(void *ctx, const struct grp_join_resp *g)
{
    struct request *req = ctx;
    struct join_group_response resp;
    join_group_response_init(&resp);
    resp.error_code = g->error;
    resp.generation_id = g->generation_id;
    resp.protocol_type = g->protocol_type;
    /* Before v7 the protocol name is not nullable: an unknown one is "". */
    resp.protocol_name =
        g->protocol_name.ptr || req->hdr.api_version >= 7 ? g->protocol_name : slice_from_cstr("");
    resp.leader = g->leader;
    resp.skip_assignment = g->skip_assignment;
    resp.member_id = g->member_id;
    resp.members_count = (int32_t)g->n_members;
    resp.members = REQ_ALLOC(req, struct join_group_response_members, g->n_members);
    for (size_t i = 0; i < g->n_members; i++) {
        join_group_response_members_init(&resp.members[i]);
        resp.members[i].member_id = g->members[i].member_id;
        resp.members[i].group_instance_id = g->members[i].group_instance_id;
        resp.members[i].metadata = g->members[i].metadata;
    }
    REQUEST_RESPOND(req, join_group_response, &resp);
}
