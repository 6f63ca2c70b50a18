/* TxnOffsetCommit (key 28), v0-v5: a consumer group's positions committed inside a
 * producer's transaction (sendOffsetsToTransaction). The group coordinator validates it
 * as an OffsetCommit and writes its records as a transactional batch of the producer
 * (handlers/offset_commit.c); they become the group's committed offsets when the
 * transaction's COMMIT marker reaches that partition, and are dropped by an ABORT. An
 * OffsetFetch with RequireStable meanwhile gets UNSTABLE_OFFSET_COMMIT for them.
 *
 * v5 is transaction version 2: the client sent no AddOffsetsToTxn, so the group's
 * partition of __consumer_offsets is first added to the transaction by its coordinator
 * (server_txn_add_partitions), as a partition's leader does for a produce. */
#include "server/internal.h"

struct txn_commit {
    struct request *req;
    struct txn_offset_commit_request in;
    struct offset_commit_request oc;
};

/* Every partition of the request refused with error. */
static void refuse_all(struct request *req, const struct txn_offset_commit_request *in,
                       int16_t error)
{
    size_t nt = (size_t)MAX(in->topics_count, 0);
    struct grp_commit_resp_topic *topics = REQ_ALLOC(req, struct grp_commit_resp_topic, MAX(nt, 1));
    for (size_t t = 0; t < nt; t++) {
        size_t np = (size_t)MAX(in->topics[t].partitions_count, 0);
        struct grp_commit_resp_partition *parts =
            REQ_ALLOC(req, struct grp_commit_resp_partition, MAX(np, 1));
        for (size_t p = 0; p < np; p++)
            parts[p] = (struct grp_commit_resp_partition){
                in->topics[t].partitions[p].partition_index, error};
        topics[t] = (struct grp_commit_resp_topic){in->topics[t].name, parts, np};
    }
    txn_offset_commit_respond(req, topics, nt);
}

static void offsets_added(void *arg, const int16_t *errors)
{
    struct txn_commit *tc = arg;
    int16_t e = server_txn_ask_error(errors[0], TXN_ASK_ADD);
    if (e == KERR_NONE)
        offset_commit_start(tc->req, &tc->oc, tc->in.producer_id, tc->in.producer_epoch);
    else
        refuse_all(tc->req, &tc->in, e);
}

void handle_txn_offset_commit(struct request *req)
{
    struct server *s = req->srv;
    struct txn_commit *tc = REQ_ALLOC(req, struct txn_commit, 1);
    tc->req = req;
    struct txn_offset_commit_request *inp = &tc->in;
    if (txn_offset_commit_request_decode(&req->body, req->hdr.api_version, &req->arena, inp) != 0) {
        request_malformed(req);
        return;
    }
    const struct txn_offset_commit_request in = *inp;
    /* The same request as an OffsetCommit of the same positions. */
    struct offset_commit_request oc;
    offset_commit_request_init(&oc);
    oc.group_id = in.group_id;
    oc.generation_id_or_member_epoch = in.generation_id;
    oc.member_id = in.member_id;
    oc.group_instance_id = in.group_instance_id;
    oc.topics_count = in.topics_count;
    oc.topics =
        REQ_ALLOC(req, struct offset_commit_request_topics, (size_t)MAX(in.topics_count, 1));
    for (int32_t t = 0; t < in.topics_count; t++) {
        const struct txn_offset_commit_request_topics *it = &in.topics[t];
        struct offset_commit_request_topics *ot = &oc.topics[t];
        offset_commit_request_topics_init(ot);
        ot->name = it->name;
        ot->partitions_count = it->partitions_count;
        ot->partitions = REQ_ALLOC(req, struct offset_commit_request_topics_partitions,
                                   (size_t)MAX(it->partitions_count, 1));
        for (int32_t p = 0; p < it->partitions_count; p++) {
            offset_commit_request_topics_partitions_init(&ot->partitions[p]);
            ot->partitions[p].partition_index = it->partitions[p].partition_index;
            ot->partitions[p].committed_offset = it->partitions[p].committed_offset;
            ot->partitions[p].committed_leader_epoch = it->partitions[p].committed_leader_epoch;
            ot->partitions[p].committed_metadata = it->partitions[p].committed_metadata;
        }
    }
    if (req->hdr.api_version < 5) {
        offset_commit_start(req, &oc, in.producer_id, in.producer_epoch);
        return;
    }
    const struct mtopic *offsets =
        cluster_topic_find(s->cluster, slice_from_cstr("__consumer_offsets"));
    if (!offsets || offsets->partition_count <= 0) {
        refuse_all(req, &in, KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    tc->oc = oc;
    struct txn_partition part = {slice_from_cstr("__consumer_offsets"),
                                 grp_partition_for_n(in.group_id, offsets->partition_count)};
    /* Not the group's coordinator: nothing is added to the transaction for it. */
    int32_t leader, leader_epoch;
    if (!server_partition_leader(s, part.topic, part.partition, &leader, &leader_epoch) ||
        leader != s->cfg->node_id) {
        refuse_all(req, &in, KERR_NOT_COORDINATOR);
        return;
    }
    server_txn_add_partitions(s, in.transactional_id, in.producer_id, in.producer_epoch, &part, 1,
                              TXN_ASK_ADD, offsets_added, tc);
}

void txn_offset_commit_respond(struct request *req, const struct grp_commit_resp_topic *topics,
                               size_t n)
{
    struct txn_offset_commit_response resp;
    txn_offset_commit_response_init(&resp);
    resp.topics_count = (int32_t)n;
    resp.topics = REQ_ALLOC(req, struct txn_offset_commit_response_topics, MAX(n, 1));
    for (size_t t = 0; t < n; t++) {
        struct txn_offset_commit_response_topics *rt = &resp.topics[t];
        txn_offset_commit_response_topics_init(rt);
        rt->name = topics[t].name;
        rt->partitions_count = (int32_t)topics[t].n_partitions;
        rt->partitions = REQ_ALLOC(req, struct txn_offset_commit_response_topics_partitions,
                                   MAX(topics[t].n_partitions, 1));
        for (size_t p = 0; p < topics[t].n_partitions; p++) {
            txn_offset_commit_response_topics_partitions_init(&rt->partitions[p]);
            rt->partitions[p].partition_index = topics[t].partitions[p].partition;
            rt->partitions[p].error_code = topics[t].partitions[p].error;
        }
    }
    REQUEST_RESPOND(req, txn_offset_commit_response, &resp);
}
