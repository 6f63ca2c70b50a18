/* OffsetCommit (key 8), v0-v9: store consumers' positions durably in
 * __consumer_offsets. Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION
 * here; the rest go to the coordinator, which answers once its records are synced.
 * The answer is laid out as Kafka's (refusals.h). When nothing is left for the
 * coordinator it is not called at all, as in Kafka, so such a request makes no
 * group.
 *
 * TxnOffsetCommit (key 28, handlers/txn_offset_commit.c) goes the same way, inside a
 * producer's transaction (offset_commit_start with its producer id). */
#include "server/handlers/refusals.h"

struct commit_state {
    struct refusals refused;
};

static bool known_partition(const struct topic_state *ts, int32_t partition)
{
    return ts && partition >= 0 && partition < ts->partition_count;
}

void handle_offset_commit(struct request *req)
{
    struct offset_commit_request in;
    if (offset_commit_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    offset_commit_start(req, &in, -1, -1);
}

void offset_commit_start(struct request *req, const struct offset_commit_request *request,
                         int64_t txn_producer_id, int16_t txn_producer_epoch)
{
    struct server *s = req->srv;
    const struct offset_commit_request in = *request;
    size_t nt = (size_t)MAX(in.topics_count, 0);
    struct commit_state *st = REQ_ALLOC(req, struct commit_state, 1);
    req->state = st;
    /* Two passes: the refused partitions per topic name are counted before they are
     * stored, so each name's list is one arena array. */
    const struct topic_state **ts = REQ_ALLOC(req, const struct topic_state *, nt);
    size_t *n_known = REQ_ALLOC(req, size_t, nt);
    refusals_init(&st->refused, &req->arena, nt);
    for (size_t ti = 0; ti < nt; ti++) {
        const struct offset_commit_request_topics *t = &in.topics[ti];
        size_t np = (size_t)MAX(t->partitions_count, 0);
        ts[ti] = server_topic(s, t->name);
        for (size_t pi = 0; pi < np; pi++)
            n_known[ti] += known_partition(ts[ti], t->partitions[pi].partition_index);
        if (!ts[ti] || n_known[ti] < np)
            refusals_count(&st->refused, t->name, np - n_known[ti]);
    }
    refusals_alloc(&st->refused, &req->arena);
    struct grp_commit_topic *topics = REQ_ALLOC(req, struct grp_commit_topic, nt);
    size_t n_topics = 0;
    for (size_t ti = 0; ti < nt; ti++) {
        const struct offset_commit_request_topics *t = &in.topics[ti];
        size_t np = (size_t)MAX(t->partitions_count, 0);
        struct grp_commit_partition *parts =
            REQ_ALLOC(req, struct grp_commit_partition, n_known[ti]);
        size_t n_parts = 0;
        for (size_t pi = 0; pi < np; pi++) {
            const struct offset_commit_request_topics_partitions *p = &t->partitions[pi];
            if (!known_partition(ts[ti], p->partition_index)) {
                refusals_add(&st->refused, t->name, p->partition_index);
                continue;
            }
            parts[n_parts++] =
                (struct grp_commit_partition){p->partition_index, p->committed_offset,
                                              p->committed_leader_epoch, p->committed_metadata};
        }
        if (n_parts > 0)
            topics[n_topics++] = (struct grp_commit_topic){t->name, parts, n_parts};
    }
    refusals_free(&st->refused);
    if (n_topics == 0) {
        group_commit_done(req, &(struct grp_commit_resp){NULL, 0});
        return;
    }
    struct grp_commit_req g = {
        .group_id = in.group_id,
        .generation_id = in.generation_id_or_member_epoch,
        .member_id = in.member_id.ptr ? in.member_id : slice_from_cstr(""),
        .group_instance_id = in.group_instance_id,
        .topics = topics,
        .n_topics = n_topics,
        .missing_group_not_found =
            req->hdr.api_key == API_KEY_OFFSET_COMMIT && req->hdr.api_version >= 9,
    };
    if (txn_producer_id >= 0)
        grp_txn_commit(s->groups, time_wall_ms(), &g, txn_producer_id, txn_producer_epoch, req);
    else
        grp_commit(s->groups, time_wall_ms(), &g, req);
    server_groups_called(s);
}

/* Also called by the handler itself, with no topics, when the coordinator is not. */
void group_commit_done(void *ctx, const struct grp_commit_resp *g)
{
    struct request *req = ctx;
    struct commit_state *st = req->state;
    const struct grp_commit_resp_topic *topics;
    size_t n = refusals_merge(&st->refused, &req->arena, g->topics, g->n_topics, &topics);
    if (req->hdr.api_key == API_KEY_TXN_OFFSET_COMMIT) {
        txn_offset_commit_respond(req, topics, n);
        return;
    }
    struct offset_commit_response resp;
    offset_commit_response_init(&resp);
    resp.topics_count = (int32_t)n;
    resp.topics = REQ_ALLOC(req, struct offset_commit_response_topics, n);
    for (size_t t = 0; t < n; t++) {
        struct offset_commit_response_topics *rt = &resp.topics[t];
        offset_commit_response_topics_init(rt);
        rt->name = topics[t].name;
        rt->partitions_count = (int32_t)topics[t].n_partitions;
        rt->partitions =
            REQ_ALLOC(req, struct offset_commit_response_topics_partitions, topics[t].n_partitions);
        for (size_t p = 0; p < topics[t].n_partitions; p++) {
            offset_commit_response_topics_partitions_init(&rt->partitions[p]);
            rt->partitions[p].partition_index = topics[t].partitions[p].partition;
            rt->partitions[p].error_code = topics[t].partitions[p].error;
        }
    }
    REQUEST_RESPOND(req, offset_commit_response, &resp);
}
