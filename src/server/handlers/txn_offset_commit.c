/* TxnOffsetCommit (key 28), v0-v4: a consumer group's positions committed inside a
 * producer's transaction (sendOffsetsToTransaction). The group coordinator validates it
 * as an OffsetCommit and writes its records as a transactional batch of the producer
 * (handlers/offset_commit.c); they become the group's committed offsets when the
 * transaction's COMMIT marker reaches that partition, and are dropped by an ABORT. An
 * OffsetFetch with RequireStable meanwhile gets UNSTABLE_OFFSET_COMMIT for them. */
#include "server/internal.h"

void handle_txn_offset_commit(struct request *req)
{
    struct txn_offset_commit_request in;
    if (txn_offset_commit_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
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
    offset_commit_start(req, &oc, in.producer_id, in.producer_epoch);
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
