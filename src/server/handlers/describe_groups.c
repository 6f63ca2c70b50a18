/* DescribeGroups (key 15), v0-v5: state, protocol and members of groups. */
#include "server/internal.h"

void handle_describe_groups(struct request *req)
{
    struct server *s = req->srv;
    struct describe_groups_request in;
    if (describe_groups_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    bool *include_ops = REQ_ALLOC(req, bool, 1);
    *include_ops = in.include_authorized_operations;
    req->state = include_ops;
    struct grp_describe_req g = {.group_ids = in.groups,
                                 .n_groups = (size_t)MAX(in.groups_count, 0)};
    grp_describe(s->groups, time_wall_ms(), &g, req);
    server_groups_called(s);
}

void group_describe_done(void *ctx, const struct grp_describe_resp *g)
{
    struct request *req = ctx;
    struct describe_groups_response resp;
    describe_groups_response_init(&resp);
    resp.groups_count = (int32_t)g->n_groups;
    resp.groups = REQ_ALLOC(req, struct describe_groups_response_groups, g->n_groups);
    for (size_t i = 0; i < g->n_groups; i++) {
        const struct grp_describe_group *gg = &g->groups[i];
        struct describe_groups_response_groups *rg = &resp.groups[i];
        describe_groups_response_groups_init(rg);
        rg->error_code = gg->error;
        rg->group_id = gg->group_id;
        rg->group_state = gg->state;
        rg->protocol_type = gg->protocol_type;
        rg->protocol_data = gg->protocol;
        if (*(const bool *)req->state && gg->error == KERR_NONE)
            rg->authorized_operations = GROUP_AUTHORIZED_OPS;
        rg->members_count = (int32_t)gg->n_members;
        rg->members = REQ_ALLOC(req, struct describe_groups_response_groups_members, gg->n_members);
        for (size_t m = 0; m < gg->n_members; m++) {
            struct describe_groups_response_groups_members *rm = &rg->members[m];
            describe_groups_response_groups_members_init(rm);
            rm->member_id = gg->members[m].member_id;
            rm->group_instance_id = gg->members[m].group_instance_id;
            rm->client_id = gg->members[m].client_id;
            rm->client_host = gg->members[m].client_host;
            rm->member_metadata = gg->members[m].metadata;
            rm->member_assignment = gg->members[m].assignment;
        }
    }
    REQUEST_RESPOND(req, describe_groups_response, &resp);
}
