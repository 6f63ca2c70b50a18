/* WriteTxnMarkers (key 27), v1-v2: a transaction coordinator on another broker asks
 * this one, the leader of the named partitions, to append transaction markers (v2: of
 * the client's transaction version). Each partition's marker is appended with acks=all
 * (server_append_marker); the answer goes once every one is durable or failed. A
 * partition this node does not lead gets NOT_LEADER_OR_FOLLOWER (the coordinator asks
 * its new leader), an unknown one UNKNOWN_TOPIC_OR_PARTITION. */
#include "server/internal.h"

#include <string.h>

typedef struct write_txn_markers_response_markers_topics_partitions part_result;

struct markers_call {
    struct request *req;
    struct write_txn_markers_request in;
    struct write_txn_markers_response resp;
    size_t waiting; /* appends in flight, plus one while they are started */
};

struct marker_append {
    struct markers_call *call;
    part_result *out;
};

static void call_release(struct markers_call *mc)
{
    if (--mc->waiting > 0)
        return;
    REQUEST_RESPOND(mc->req, write_txn_markers_response, &mc->resp);
}

static void marker_written(void *arg, int16_t error)
{
    struct marker_append *a = arg;
    a->out->error_code = error;
    call_release(a->call);
}

void handle_write_txn_markers(struct request *req)
{
    struct server *s = req->srv;
    struct markers_call *mc = REQ_ALLOC(req, struct markers_call, 1);
    mc->req = req;
    if (write_txn_markers_request_decode(&req->body, req->hdr.api_version, &req->arena, &mc->in) !=
        0) {
        request_malformed(req);
        return;
    }
    const struct write_txn_markers_request *in = &mc->in;
    write_txn_markers_response_init(&mc->resp);
    mc->resp.markers_count = in->markers_count;
    mc->resp.markers = REQ_ALLOC(req, struct write_txn_markers_response_markers,
                                 (size_t)MAX(in->markers_count, 1));
    mc->waiting = 1;
    for (int32_t m = 0; m < in->markers_count; m++) {
        const struct write_txn_markers_request_markers *rm = &in->markers[m];
        struct write_txn_markers_response_markers *om = &mc->resp.markers[m];
        write_txn_markers_response_markers_init(om);
        om->producer_id = rm->producer_id;
        om->topics_count = rm->topics_count;
        om->topics = REQ_ALLOC(req, struct write_txn_markers_response_markers_topics,
                               (size_t)MAX(rm->topics_count, 1));
        for (int32_t t = 0; t < rm->topics_count; t++) {
            const struct write_txn_markers_request_markers_topics *rt = &rm->topics[t];
            struct write_txn_markers_response_markers_topics *ot = &om->topics[t];
            write_txn_markers_response_markers_topics_init(ot);
            ot->name = rt->name;
            ot->partitions_count = rt->partition_indexes_count;
            ot->partitions =
                REQ_ALLOC(req, part_result, (size_t)MAX(rt->partition_indexes_count, 1));
            for (int32_t i = 0; i < rt->partition_indexes_count; i++) {
                part_result *pr = &ot->partitions[i];
                write_txn_markers_response_markers_topics_partitions_init(pr);
                pr->partition_index = rt->partition_indexes[i];
                struct partition *p = server_partition(s, rt->name, pr->partition_index);
                if (!p) {
                    pr->error_code = server_partition_absent(s, rt->name, pr->partition_index);
                    continue;
                }
                pr->error_code = partition_check_leader(p, -1);
                if (pr->error_code != KERR_NONE)
                    continue;
                struct marker_append *a = REQ_ALLOC(req, struct marker_append, 1);
                *a = (struct marker_append){mc, pr};
                struct txn_marker mk = {rm->producer_id, rm->producer_epoch, rm->transaction_result,
                                        rm->coordinator_epoch, rm->transaction_version};
                mc->waiting++;
                server_append_marker(s, p, &mk, marker_written, a);
            }
        }
    }
    call_release(mc);
}
