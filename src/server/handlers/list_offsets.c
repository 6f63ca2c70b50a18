/* ListOffsets (key 2), v1-v10: offsets by timestamp. Special timestamps: -1 latest
 * (the high watermark), -2 earliest (log start), -3 the record with the largest
 * timestamp (v7+), -4 earliest local (= earliest: no tiered storage), -5 latest tiered
 * (none: -1). read_committed sees the same as read_uncommitted until transactions
 * exist. */
#include "server/internal.h"

typedef struct list_offsets_response_topics_partitions part_resp;

static void lookup(struct partition *p, int64_t ts, part_resp *out) {
    int rc = 0;
    int64_t offset = -1, found_ts = -1;
    switch (ts) {
    case -1:
        offset = log_end_offset(p->log);
        break;
    case -2:
    case -4:
        offset = log_start_offset(p->log);
        break;
    case -3:
        rc = log_max_timestamp(p->log, &offset, &found_ts);
        break;
    case -5:
        offset = -1;
        break;
    default:
        if (ts < 0) {
            out->error_code = KERR_INVALID_REQUEST;
            return;
        }
        rc = log_offset_for_timestamp(p->log, ts, &offset, &found_ts);
        break;
    }
    if (rc != 0) {
        out->error_code = kerr_from_storage(rc);
        return;
    }
    out->offset = offset;
    out->timestamp = found_ts;
    out->leader_epoch = offset >= 0 ? 0 : -1;
}

void handle_list_offsets(struct request *req) {
    struct server *s = req->srv;
    struct list_offsets_request in;
    if (list_offsets_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct list_offsets_response resp;
    list_offsets_response_init(&resp);
    resp.topics_count = MAX(in.topics_count, 0);
    resp.topics = REQ_ALLOC(req, struct list_offsets_response_topics, resp.topics_count);
    for (int32_t ti = 0; ti < resp.topics_count; ti++) {
        const struct list_offsets_request_topics *t = &in.topics[ti];
        struct list_offsets_response_topics *tr = &resp.topics[ti];
        list_offsets_response_topics_init(tr);
        tr->name = t->name;
        tr->partitions_count = MAX(t->partitions_count, 0);
        tr->partitions = REQ_ALLOC(req, part_resp, tr->partitions_count);
        for (int32_t pi = 0; pi < tr->partitions_count; pi++) {
            const struct list_offsets_request_topics_partitions *rp = &t->partitions[pi];
            part_resp *pr = &tr->partitions[pi];
            list_offsets_response_topics_partitions_init(pr);
            pr->partition_index = rp->partition_index;
            pr->offset = -1;
            pr->timestamp = -1;
            struct partition *p = server_partition_at_epoch(
                s, t->name, rp->partition_index, rp->current_leader_epoch, &pr->error_code);
            if (!p)
                continue;
            lookup(p, rp->timestamp, pr);
        }
    }
    REQUEST_RESPOND(req, list_offsets_response, &resp);
}
