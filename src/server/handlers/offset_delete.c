/* OffsetDelete (key 47), v0: removes a group's committed offsets for partitions its
 * members are not subscribed to (GROUP_SUBSCRIBED_TO_TOPIC otherwise). Partitions of
 * unknown topics get UNKNOWN_TOPIC_OR_PARTITION here; the coordinator is called even
 * when nothing is left for it, since it alone answers for the group (as Kafka). The
 * answer is laid out as Kafka's (refusals.h); a group-level error replaces it. */
#include "server/handlers/refusals.h"

struct offset_delete_state {
    struct refusals refused;
};

static bool known_partition(const struct topic_state *ts, int32_t partition)
{
    return ts && partition >= 0 && partition < ts->partition_count;
}

void handle_offset_delete(struct request *req)
{
    struct server *s = req->srv;
    struct offset_delete_request in;
    if (offset_delete_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    size_t nt = (size_t)MAX(in.topics_count, 0);
    struct offset_delete_state *st = REQ_ALLOC(req, struct offset_delete_state, 1);
    req->state = st;
    const struct topic_state **ts = REQ_ALLOC(req, const struct topic_state *, nt);
    size_t *n_known = REQ_ALLOC(req, size_t, nt);
    refusals_init(&st->refused, &req->arena, nt);
    for (size_t t = 0; t < nt; t++) {
        size_t np = (size_t)MAX(in.topics[t].partitions_count, 0);
        ts[t] = server_topic(s, in.topics[t].name);
        for (size_t p = 0; p < np; p++)
            n_known[t] += known_partition(ts[t], in.topics[t].partitions[p].partition_index);
        if (!ts[t] || n_known[t] < np)
            refusals_count(&st->refused, in.topics[t].name, np - n_known[t]);
    }
    refusals_alloc(&st->refused, &req->arena);
    struct grp_fetch_topic *topics = REQ_ALLOC(req, struct grp_fetch_topic, nt);
    size_t n_topics = 0;
    for (size_t t = 0; t < nt; t++) {
        size_t np = (size_t)MAX(in.topics[t].partitions_count, 0);
        int32_t *parts = REQ_ALLOC(req, int32_t, n_known[t]);
        size_t n_parts = 0;
        for (size_t p = 0; p < np; p++) {
            int32_t idx = in.topics[t].partitions[p].partition_index;
            if (known_partition(ts[t], idx))
                parts[n_parts++] = idx;
            else
                refusals_add(&st->refused, in.topics[t].name, idx);
        }
        if (n_parts > 0)
            topics[n_topics++] = (struct grp_fetch_topic){in.topics[t].name, parts, n_parts};
    }
    refusals_free(&st->refused);
    struct grp_offset_delete_req g = {
        .group_id = in.group_id, .topics = topics, .n_topics = n_topics};
    grp_offset_delete(s->groups, time_wall_ms(), &g, req);
    server_groups_called(s);
}

void group_offset_delete_done(void *ctx, const struct grp_offset_delete_resp *g)
{
    struct request *req = ctx;
    struct offset_delete_state *st = req->state;
    struct offset_delete_response resp;
    offset_delete_response_init(&resp);
    resp.error_code = g->error;
    const struct grp_commit_resp_topic *topics = NULL;
    size_t n = 0;
    if (g->error == 0)
        n = refusals_merge(&st->refused, &req->arena, g->topics, g->n_topics, &topics);
    resp.topics_count = (int32_t)n;
    resp.topics = REQ_ALLOC(req, struct offset_delete_response_topics, n);
    for (size_t t = 0; t < n; t++) {
        struct offset_delete_response_topics *rt = &resp.topics[t];
        offset_delete_response_topics_init(rt);
        rt->name = topics[t].name;
        rt->partitions_count = (int32_t)topics[t].n_partitions;
        rt->partitions =
            REQ_ALLOC(req, struct offset_delete_response_topics_partitions, topics[t].n_partitions);
        for (size_t p = 0; p < topics[t].n_partitions; p++) {
            offset_delete_response_topics_partitions_init(&rt->partitions[p]);
            rt->partitions[p].partition_index = topics[t].partitions[p].partition;
            rt->partitions[p].error_code = topics[t].partitions[p].error;
        }
    }
    REQUEST_RESPOND(req, offset_delete_response, &resp);
}
