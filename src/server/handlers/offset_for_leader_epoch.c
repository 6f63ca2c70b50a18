/* OffsetForLeaderEpoch (key 23), v0-v4: the end offset of a leader epoch, which
 * consumers use to detect log truncation after a leader change. */
#include "server/internal.h"

void handle_offset_for_leader_epoch(struct request *req)
{
    struct server *s = req->srv;
    struct offset_for_leader_epoch_request in;
    if (offset_for_leader_epoch_request_decode(&req->body, req->hdr.api_version, &req->arena,
                                               &in) != 0) {
        request_malformed(req);
        return;
    }
    struct offset_for_leader_epoch_response resp;
    offset_for_leader_epoch_response_init(&resp);
    resp.topics_count = MAX(in.topics_count, 0);
    resp.topics = REQ_ALLOC(req, struct offset_for_leader_epoch_response_topics, resp.topics_count);
    for (int32_t ti = 0; ti < resp.topics_count; ti++) {
        const struct offset_for_leader_epoch_request_topics *t = &in.topics[ti];
        struct offset_for_leader_epoch_response_topics *tr = &resp.topics[ti];
        offset_for_leader_epoch_response_topics_init(tr);
        tr->topic = t->topic;
        tr->partitions_count = MAX(t->partitions_count, 0);
        tr->partitions = REQ_ALLOC(req, struct offset_for_leader_epoch_response_topics_partitions,
                                   tr->partitions_count);
        for (int32_t pi = 0; pi < tr->partitions_count; pi++) {
            const struct offset_for_leader_epoch_request_topics_partitions *rp = &t->partitions[pi];
            struct offset_for_leader_epoch_response_topics_partitions *pr = &tr->partitions[pi];
            offset_for_leader_epoch_response_topics_partitions_init(pr);
            pr->partition = rp->partition;
            struct partition *p = server_partition_at_epoch(
                s, t->topic, rp->partition, rp->current_leader_epoch, &pr->error_code);
            if (!p)
                continue;
            int32_t epoch = -1;
            int64_t end = -1;
            int rc = log_end_offset_for_epoch(p->log, rp->leader_epoch, &epoch, &end);
            if (rc != 0) {
                pr->error_code = kerr_from_storage(rc);
                continue;
            }
            if (epoch < 0 && log_latest_epoch(p->log) < 0 && rp->leader_epoch >= 0) {
                /* Nothing written yet: the whole (empty) log is epoch 0. */
                epoch = 0;
                end = log_end_offset(p->log);
            }
            pr->leader_epoch = epoch;
            pr->end_offset = end;
        }
    }
    REQUEST_RESPOND(req, offset_for_leader_epoch_response, &resp);
}
