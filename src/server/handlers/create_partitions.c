/* CreatePartitions (key 37), v0-v3: grows a topic's partition count. Explicit
 * assignments must name this node once per new partition. */
#include "server/internal.h"

struct partitions_wait {
    struct change_wait w; /* first: respond gets it */
    struct create_partitions_response resp;
};

static void partitions_respond(struct change_wait *w)
{
    struct partitions_wait *pw = (struct partitions_wait *)w;
    REQUEST_RESPOND(w->req, create_partitions_response, &pw->resp);
}

void handle_create_partitions(struct request *req)
{
    struct server *s = req->srv;
    struct create_partitions_request in;
    if (create_partitions_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct partitions_wait *pw = REQ_ALLOC(req, struct partitions_wait, 1);
    change_wait_begin(&pw->w, req, partitions_respond);
    struct create_partitions_response *resp = &pw->resp;
    create_partitions_response_init(resp);
    resp->results_count = MAX(in.topics_count, 0);
    resp->results = REQ_ALLOC(req, struct create_partitions_response_results, resp->results_count);
    for (int32_t i = 0; i < resp->results_count; i++) {
        const struct create_partitions_request_topics *t = &in.topics[i];
        struct create_partitions_response_results *r = &resp->results[i];
        create_partitions_response_results_init(r);
        r->name = t->name;
        const struct mtopic *mt = cluster_topic_find(s->cluster, t->name);
        if (mt && mt->internal) {
            /* Groups are placed by hash modulo the partition count of
             * __consumer_offsets: growing it would move them. */
            r->error_code = KERR_INVALID_REQUEST;
            r->error_message = slice_from_cstr("partitions of internal topics cannot be added");
            continue;
        }
        if (mt && t->assignments_count >= 0) {
            bool ok = t->assignments_count == t->count - mt->partition_count;
            for (int32_t a = 0; ok && a < t->assignments_count; a++)
                ok = t->assignments[a].broker_ids_count == 1 &&
                     t->assignments[a].broker_ids[0] == s->cfg->node_id;
            if (!ok) {
                r->error_code = KERR_INVALID_REPLICA_ASSIGNMENT;
                r->error_message =
                    slice_from_cstr("assignments must name this node once for each new partition");
                continue;
            }
        }
        void *arg;
        cluster_done_fn done = change_wait_slot(&pw->w, &r->error_code, &r->error_message, &arg);
        cluster_create_partitions(s->cluster, t->name, t->count, in.validate_only, done, arg);
    }
    change_wait_end(&pw->w);
}
