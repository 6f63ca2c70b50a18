/* OffsetCommit (key 8), v0-v9: store consumers' positions durably in
 * __consumer_offsets. Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION
 * here; the rest go to the coordinator, which answers once its records are synced. */
#include "server/internal.h"

void handle_offset_commit(struct request *req) {
    struct server *s = req->srv;
    struct offset_commit_request *in = REQ_ALLOC(req, struct offset_commit_request, 1);
    if (offset_commit_request_decode(&req->body, req->hdr.api_version, &req->arena, in) != 0) {
        request_malformed(req);
        return;
    }
    req->state = in;
    int32_t nt = MAX(in->topics_count, 0);
    struct grp_commit_topic *topics = REQ_ALLOC(req, struct grp_commit_topic, nt);
    size_t n_topics = 0;
    for (int32_t ti = 0; ti < nt; ti++) {
        const struct offset_commit_request_topics *t = &in->topics[ti];
        struct topic_state *ts = server_topic(s, t->name);
        int32_t np = MAX(t->partitions_count, 0);
        struct grp_commit_partition *parts = REQ_ALLOC(req, struct grp_commit_partition, np);
        size_t n_parts = 0;
        for (int32_t pi = 0; ts && pi < np; pi++) {
            const struct offset_commit_request_topics_partitions *p = &t->partitions[pi];
            if (p->partition_index < 0 || p->partition_index >= ts->partition_count)
                continue;
            parts[n_parts++] = (struct grp_commit_partition){
                p->partition_index, p->committed_offset, p->committed_leader_epoch,
                p->committed_metadata};
        }
        if (n_parts > 0)
            topics[n_topics++] = (struct grp_commit_topic){t->name, parts, n_parts};
    }
    struct grp_commit_req g = {
        .group_id = in->group_id,
        .generation_id = in->generation_id_or_member_epoch,
        .member_id = in->member_id.ptr ? in->member_id : slice_from_cstr(""),
        .group_instance_id = in->group_instance_id,
        .topics = topics,
        .n_topics = n_topics,
    };
    grp_commit(s->groups, time_wall_ms(), &g, req);
    server_groups_called(s);
}

/* The coordinator's error for (topic, partition), or UNKNOWN_TOPIC_OR_PARTITION if it
 * never saw it (filtered above). */
static int16_t commit_error(const struct grp_commit_resp *g, struct slice topic, int32_t part) {
    for (size_t t = 0; t < g->n_topics; t++) {
        if (!slice_eq(g->topics[t].name, topic))
            continue;
        for (size_t p = 0; p < g->topics[t].n_partitions; p++)
            if (g->topics[t].partitions[p].partition == part)
                return g->topics[t].partitions[p].error;
    }
    return KERR_UNKNOWN_TOPIC_OR_PARTITION;
}

void group_commit_done(void *ctx, const struct grp_commit_resp *g) {
    struct request *req = ctx;
    const struct offset_commit_request *in = req->state;
    struct offset_commit_response resp;
    offset_commit_response_init(&resp);
    resp.topics_count = MAX(in->topics_count, 0);
    resp.topics = REQ_ALLOC(req, struct offset_commit_response_topics, resp.topics_count);
    for (int32_t ti = 0; ti < resp.topics_count; ti++) {
        const struct offset_commit_request_topics *t = &in->topics[ti];
        struct offset_commit_response_topics *rt = &resp.topics[ti];
        offset_commit_response_topics_init(rt);
        rt->name = t->name;
        rt->partitions_count = MAX(t->partitions_count, 0);
        rt->partitions =
            REQ_ALLOC(req, struct offset_commit_response_topics_partitions, rt->partitions_count);
        for (int32_t pi = 0; pi < rt->partitions_count; pi++) {
            offset_commit_response_topics_partitions_init(&rt->partitions[pi]);
            rt->partitions[pi].partition_index = t->partitions[pi].partition_index;
            rt->partitions[pi].error_code =
                commit_error(g, t->name, t->partitions[pi].partition_index);
        }
    }
    REQUEST_RESPOND(req, offset_commit_response, &resp);
}
