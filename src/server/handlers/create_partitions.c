/* CreatePartitions (key 37), v0-v3: grows a topic's partition count. The new partitions
 * are placed as the topic's first ones were, or as the request assigns them: the same
 * number of brokers for each new partition, in order; the metadata checks the brokers and
 * that there is one assignment per new partition with the topic's number of replicas. */
#include "server/internal.h"

#include <string.h>

struct partitions_wait {
    struct change_wait w; /* first: respond gets it */
    struct create_partitions_response resp;
};

static void partitions_respond(struct change_wait *w)
{
    struct partitions_wait *pw = (struct partitions_wait *)w;
    REQUEST_RESPOND(w->req, create_partitions_response, &pw->resp);
}

/* The request's assignments as a flat array (*out: count × *rf node ids, in the request's
 * arena; a non-NULL array even for none, which the metadata then refuses unless no
 * partition is added), each new partition with as many brokers as the first, as Kafka
 * requires. NULL, or why not (Kafka's message, in the arena). */
static const char *flat_assignment(struct request *req,
                                   const struct create_partitions_request_topics *t, int32_t **out,
                                   int16_t *rf)
{
    int32_t n = t->assignments_count, width = -1;
    for (int32_t a = 0; a < n; a++) {
        int32_t count = MAX(t->assignments[a].broker_ids_count, 0);
        const char *bad = request_assignment_width_error(req, count, &width);
        if (bad)
            return bad;
    }
    width = MAX(width, 1);
    int32_t *flat = REQ_ALLOC(req, int32_t, (size_t)MAX(n, 1) * (size_t)width);
    for (int32_t a = 0; a < n; a++)
        memcpy(&flat[(size_t)a * (size_t)width], t->assignments[a].broker_ids,
               (size_t)width * sizeof *flat);
    *out = flat;
    *rf = (int16_t)width;
    return NULL;
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
        int32_t *assigned = NULL;
        int16_t rf = 0;
        if (t->assignments_count >= 0) {
            const char *bad = flat_assignment(req, t, &assigned, &rf);
            if (bad) {
                r->error_code = KERR_INVALID_REPLICA_ASSIGNMENT;
                r->error_message = slice_from_cstr(bad);
                continue;
            }
        }
        void *arg;
        cluster_done_fn done = change_wait_slot(&pw->w, &r->error_code, &r->error_message, &arg);
        cluster_create_partitions(s->cluster, t->name, t->count, assigned,
                                  MAX(t->assignments_count, 0), rf, in.validate_only, done, arg);
    }
    change_wait_end(&pw->w);
}
