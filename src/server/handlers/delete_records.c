/* DeleteRecords (key 21), v0-v2: raises partitions' log start offsets. Offset -1 means
 * the high watermark. The new start offsets are checkpointed (on the metadata thread)
 * before the answer, so they survive a crash. */
#include "server/internal.h"

/* The checkpoint is written: answer, with KAFKA_STORAGE_ERROR where it was not. */
static void checkpointed(void *arg, int rc)
{
    struct request *req = arg;
    struct delete_records_response *resp = req->state;
    for (int32_t ti = 0; rc != 0 && ti < resp->topics_count; ti++)
        for (int32_t pi = 0; pi < resp->topics[ti].partitions_count; pi++)
            if (resp->topics[ti].partitions[pi].error_code == KERR_NONE)
                resp->topics[ti].partitions[pi].error_code = KERR_KAFKA_STORAGE_ERROR;
    REQUEST_RESPOND(req, delete_records_response, resp);
}

void handle_delete_records(struct request *req)
{
    struct server *s = req->srv;
    struct delete_records_request in;
    if (delete_records_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct delete_records_response *resp = REQ_ALLOC(req, struct delete_records_response, 1);
    delete_records_response_init(resp);
    resp->topics_count = MAX(in.topics_count, 0);
    resp->topics = REQ_ALLOC(req, struct delete_records_response_topics, resp->topics_count);
    bool changed = false;
    for (int32_t ti = 0; ti < resp->topics_count; ti++) {
        const struct delete_records_request_topics *t = &in.topics[ti];
        struct delete_records_response_topics *tr = &resp->topics[ti];
        delete_records_response_topics_init(tr);
        tr->name = t->name;
        tr->partitions_count = MAX(t->partitions_count, 0);
        tr->partitions =
            REQ_ALLOC(req, struct delete_records_response_topics_partitions, tr->partitions_count);
        for (int32_t pi = 0; pi < tr->partitions_count; pi++) {
            struct delete_records_response_topics_partitions *pr = &tr->partitions[pi];
            delete_records_response_topics_partitions_init(pr);
            pr->partition_index = t->partitions[pi].partition_index;
            pr->low_watermark = -1;
            struct partition *p = server_partition(s, t->name, pr->partition_index);
            if (!p) {
                pr->error_code = server_partition_absent(s, t->name, pr->partition_index);
                continue;
            }
            if ((pr->error_code = partition_check_leader(p, -1)) != KERR_NONE)
                continue;
            int64_t offset = t->partitions[pi].offset;
            if (offset == -1)
                offset = partition_high_watermark(p);
            if (offset < 0 || offset > partition_high_watermark(p)) {
                pr->error_code = KERR_OFFSET_OUT_OF_RANGE;
                continue;
            }
            int rc = log_delete_records(p->log, offset);
            pr->error_code = kerr_from_storage(rc);
            pr->low_watermark = log_start_offset(p->log);
            if (rc == 0) {
                changed = true;
                say_info("server", "DeleteRecords: %s-%d log start offset is now %lld", p->topic,
                         p->index, (long long)pr->low_watermark);
            }
        }
    }
    req->state = resp;
    if (!changed) {
        checkpointed(req, 0);
        return;
    }
    server_write_checkpoints(req->srv, CHECKPOINT_START_OFFSETS, false, checkpointed, req);
}
