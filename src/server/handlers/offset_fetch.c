/* OffsetFetch (key 9), v0-v9: committed positions. v0-v7 ask for one group; v8+ for
 * several. A null topic list (v2+) means every partition the group committed. */
#include "server/internal.h"

void handle_offset_fetch(struct request *req)
{
    struct server *s = req->srv;
    struct offset_fetch_request in;
    if (offset_fetch_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct grp_fetch_group *groups;
    size_t n_groups;
    if (req->hdr.api_version < 8) {
        n_groups = 1;
        groups = REQ_ALLOC(req, struct grp_fetch_group, 1);
        groups[0].group_id = in.group_id;
        if (in.topics_count >= 0) {
            struct grp_fetch_topic *t = REQ_ALLOC(req, struct grp_fetch_topic, in.topics_count);
            for (int32_t i = 0; i < in.topics_count; i++)
                t[i] =
                    (struct grp_fetch_topic){in.topics[i].name, in.topics[i].partition_indexes,
                                             (size_t)MAX(in.topics[i].partition_indexes_count, 0)};
            groups[0].topics = t;
            groups[0].n_topics = (size_t)in.topics_count;
        }
    } else {
        n_groups = (size_t)MAX(in.groups_count, 0);
        groups = REQ_ALLOC(req, struct grp_fetch_group, n_groups);
        for (size_t g = 0; g < n_groups; g++) {
            const struct offset_fetch_request_groups *rg = &in.groups[g];
            groups[g].group_id = rg->group_id;
            if (rg->topics_count < 0)
                continue;
            struct grp_fetch_topic *t = REQ_ALLOC(req, struct grp_fetch_topic, rg->topics_count);
            for (int32_t i = 0; i < rg->topics_count; i++)
                t[i] =
                    (struct grp_fetch_topic){rg->topics[i].name, rg->topics[i].partition_indexes,
                                             (size_t)MAX(rg->topics[i].partition_indexes_count, 0)};
            groups[g].topics = t;
            groups[g].n_topics = (size_t)rg->topics_count;
        }
    }
    struct grp_fetch_req g = {
        .groups = groups, .n_groups = n_groups, .require_stable = in.require_stable};
    grp_fetch(s->groups, time_wall_ms(), &g, req);
    server_groups_called(s);
}

void group_fetch_done(void *ctx, const struct grp_fetch_resp *g)
{
    struct request *req = ctx;
    struct offset_fetch_response resp;
    offset_fetch_response_init(&resp);
    if (req->hdr.api_version >= 8) {
        resp.groups_count = (int32_t)g->n_groups;
        resp.groups = REQ_ALLOC(req, struct offset_fetch_response_groups, g->n_groups);
        for (size_t i = 0; i < g->n_groups; i++) {
            const struct grp_fetch_resp_group *gg = &g->groups[i];
            struct offset_fetch_response_groups *rg = &resp.groups[i];
            offset_fetch_response_groups_init(rg);
            rg->group_id = gg->group_id;
            rg->error_code = gg->error;
            rg->topics_count = (int32_t)gg->n_topics;
            rg->topics = REQ_ALLOC(req, struct offset_fetch_response_groups_topics, gg->n_topics);
            for (size_t t = 0; t < gg->n_topics; t++) {
                const struct grp_fetch_resp_topic *gt = &gg->topics[t];
                struct offset_fetch_response_groups_topics *rt = &rg->topics[t];
                offset_fetch_response_groups_topics_init(rt);
                rt->name = gt->name;
                rt->partitions_count = (int32_t)gt->n_partitions;
                rt->partitions = REQ_ALLOC(
                    req, struct offset_fetch_response_groups_topics_partitions, gt->n_partitions);
                for (size_t p = 0; p < gt->n_partitions; p++) {
                    struct offset_fetch_response_groups_topics_partitions *rp = &rt->partitions[p];
                    offset_fetch_response_groups_topics_partitions_init(rp);
                    rp->partition_index = gt->partitions[p].partition;
                    rp->committed_offset = gt->partitions[p].offset;
                    rp->committed_leader_epoch = gt->partitions[p].leader_epoch;
                    rp->metadata = gt->partitions[p].metadata;
                    rp->error_code = gt->partitions[p].error;
                }
            }
        }
        REQUEST_RESPOND(req, offset_fetch_response, &resp);
        return;
    }
    ASSERT(g->n_groups == 1);
    const struct grp_fetch_resp_group *gg = &g->groups[0];
    resp.error_code = gg->error;
    resp.topics_count = (int32_t)gg->n_topics;
    resp.topics = REQ_ALLOC(req, struct offset_fetch_response_topics, gg->n_topics);
    for (size_t t = 0; t < gg->n_topics; t++) {
        const struct grp_fetch_resp_topic *gt = &gg->topics[t];
        struct offset_fetch_response_topics *rt = &resp.topics[t];
        offset_fetch_response_topics_init(rt);
        rt->name = gt->name;
        rt->partitions_count = (int32_t)gt->n_partitions;
        rt->partitions =
            REQ_ALLOC(req, struct offset_fetch_response_topics_partitions, gt->n_partitions);
        for (size_t p = 0; p < gt->n_partitions; p++) {
            struct offset_fetch_response_topics_partitions *rp = &rt->partitions[p];
            offset_fetch_response_topics_partitions_init(rp);
            rp->partition_index = gt->partitions[p].partition;
            rp->committed_offset = gt->partitions[p].offset;
            rp->committed_leader_epoch = gt->partitions[p].leader_epoch;
            rp->metadata = gt->partitions[p].metadata;
            /* v0-v1 have no group-level error: a group error goes to each partition. */
            rp->error_code = gt->partitions[p].error    ? gt->partitions[p].error
                             : req->hdr.api_version < 2 ? gg->error
                                                        : KERR_NONE;
        }
    }
    REQUEST_RESPOND(req, offset_fetch_response, &resp);
}
