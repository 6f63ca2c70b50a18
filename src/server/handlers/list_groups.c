/* ListGroups (key 16), v0-v5: every group with its protocol type and (v4+) state,
 * filtered by state (v4+) and type (v5+: all groups here are "classic"). */
#include "server/internal.h"

#include <strings.h>

static bool classic_wanted(const struct list_groups_request *in)
{
    if (in->types_filter_count <= 0)
        return true;
    for (int32_t i = 0; i < in->types_filter_count; i++)
        if (in->types_filter[i].len == 7 &&
            strncasecmp((const char *)in->types_filter[i].ptr, "classic", 7) == 0)
            return true;
    return false;
}

void handle_list_groups(struct request *req)
{
    struct server *s = req->srv;
    struct list_groups_request *in = REQ_ALLOC(req, struct list_groups_request, 1);
    if (list_groups_request_decode(&req->body, req->hdr.api_version, &req->arena, in) != 0) {
        request_malformed(req);
        return;
    }
    req->state = in;
    if (!s->groups) { /* no group coordinator on this node (server.c): no groups */
        group_list_done(req, &(struct grp_list_resp){0});
        return;
    }
    struct grp_list_req g = {.states_filter = in->states_filter,
                             .n_states_filter = (size_t)MAX(in->states_filter_count, 0)};
    grp_list(s->groups, time_wall_ms(), &g, req);
    server_groups_called(s);
}

void group_list_done(void *ctx, const struct grp_list_resp *g)
{
    struct request *req = ctx;
    const struct list_groups_request *in = req->state;
    struct list_groups_response resp;
    list_groups_response_init(&resp);
    resp.error_code = g->error;
    size_t n = classic_wanted(in) ? g->n_groups : 0;
    resp.groups_count = (int32_t)n;
    resp.groups = REQ_ALLOC(req, struct list_groups_response_groups, n);
    for (size_t i = 0; i < n; i++) {
        list_groups_response_groups_init(&resp.groups[i]);
        resp.groups[i].group_id = g->groups[i].group_id;
        resp.groups[i].protocol_type = g->groups[i].protocol_type;
        resp.groups[i].group_state = g->groups[i].state;
        resp.groups[i].group_type = slice_from_cstr("classic");
    }
    REQUEST_RESPOND(req, list_groups_response, &resp);
}
