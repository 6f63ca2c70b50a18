/* AlterPartitionReassignments (key 45, v0-v1) and ListPartitionReassignments (key 46, v0),
 * KIP-455: the active controller starts, replaces or cancels a partition's reassignment
 * (cluster_reassign_partition says how one runs) and lists those under way. Brokers
 * forward both to the active controller (dispatch.c), whose image is the one that is
 * current. */
#include "server/internal.h"

typedef struct alter_partition_reassignments_response_responses topic_result;
typedef struct alter_partition_reassignments_response_responses_partitions part_result;
typedef struct list_partition_reassignments_response_topics listed_topic;
typedef struct list_partition_reassignments_response_topics_partitions listed_part;

struct reassign_wait {
    struct change_wait w; /* first: respond gets it */
    struct alter_partition_reassignments_response resp;
};

static void reassign_respond(struct change_wait *w)
{
    struct reassign_wait *rw = (struct reassign_wait *)w;
    REQUEST_RESPOND(w->req, alter_partition_reassignments_response, &rw->resp);
}

void handle_alter_partition_reassignments(struct request *req)
{
    struct alter_partition_reassignments_request in;
    if (alter_partition_reassignments_request_decode(&req->body, req->hdr.api_version, &req->arena,
                                                     &in) != 0) {
        request_malformed(req);
        return;
    }
    struct cluster *c = req->srv->cluster;
    struct reassign_wait *rw = REQ_ALLOC(req, struct reassign_wait, 1);
    change_wait_begin(&rw->w, req, reassign_respond);
    alter_partition_reassignments_response_init(&rw->resp);
    rw->resp.allow_replication_factor_change = in.allow_replication_factor_change;
    int32_t nt = MAX(in.topics_count, 0);
    rw->resp.responses = REQ_ALLOC(req, topic_result, nt);
    rw->resp.responses_count = nt;
    for (int32_t ti = 0; ti < nt; ti++) {
        const struct alter_partition_reassignments_request_topics *t = &in.topics[ti];
        topic_result *tr = &rw->resp.responses[ti];
        alter_partition_reassignments_response_responses_init(tr);
        tr->name = t->name;
        int32_t np = MAX(t->partitions_count, 0);
        tr->partitions = REQ_ALLOC(req, part_result, np);
        tr->partitions_count = np;
        const struct mtopic *mt = cluster_topic_find(c, t->name);
        for (int32_t pi = 0; pi < np; pi++) {
            const struct alter_partition_reassignments_request_topics_partitions *p =
                &t->partitions[pi];
            part_result *out = &tr->partitions[pi];
            alter_partition_reassignments_response_responses_partitions_init(out);
            out->partition_index = p->partition_index;
            if (!mt || p->partition_index < 0 || p->partition_index >= mt->partition_count) {
                out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                out->error_message = slice_from_cstr("The topic or partition does not exist.");
                continue;
            }
            void *arg;
            cluster_done_fn done =
                change_wait_slot(&rw->w, &out->error_code, &out->error_message, &arg);
            cluster_reassign_partition(
                c, t->name, p->partition_index, p->replicas_count < 0 ? NULL : p->replicas,
                p->replicas_count, in.allow_replication_factor_change, done, arg);
        }
    }
    change_wait_end(&rw->w);
}

static bool reassigning(const struct mpartition *p)
{
    return p->adding_count > 0 || p->removing_count > 0;
}

static void list_partition(const struct mpartition *p, listed_part *out)
{
    list_partition_reassignments_response_topics_partitions_init(out);
    out->partition_index = p->id;
    out->replicas = p->replicas;
    out->replicas_count = p->replica_count;
    out->adding_replicas = p->adding;
    out->adding_replicas_count = p->adding_count;
    out->removing_replicas = p->removing;
    out->removing_replicas_count = p->removing_count;
}

/* Topic t's partitions under reassignment into out (those of `only`, if not NULL):
 * whether there were any. */
static bool list_topic(struct request *req, const struct mtopic *t, const int32_t *only,
                       int32_t only_count, listed_topic *out)
{
    int32_t n = 0;
    for (int32_t k = 0; k < t->partition_count; k++)
        n += reassigning(&t->partitions[k]);
    if (n == 0)
        return false;
    list_partition_reassignments_response_topics_init(out);
    out->name = slice_from_cstr(t->name);
    out->partitions = REQ_ALLOC(req, listed_part, n);
    out->partitions_count = 0;
    if (!only) {
        for (int32_t k = 0; k < t->partition_count; k++)
            if (reassigning(&t->partitions[k]))
                list_partition(&t->partitions[k], &out->partitions[out->partitions_count++]);
    } else {
        for (int32_t i = 0; i < only_count && out->partitions_count < n; i++) {
            int32_t k = only[i];
            if (k >= 0 && k < t->partition_count && reassigning(&t->partitions[k]))
                list_partition(&t->partitions[k], &out->partitions[out->partitions_count++]);
        }
    }
    return out->partitions_count > 0;
}

/* Answers from the image as it is now (the response is encoded before it can change). */
void handle_list_partition_reassignments(struct request *req)
{
    struct list_partition_reassignments_request in;
    if (list_partition_reassignments_request_decode(&req->body, req->hdr.api_version, &req->arena,
                                                    &in) != 0) {
        request_malformed(req);
        return;
    }
    struct cluster *c = req->srv->cluster;
    struct list_partition_reassignments_response resp;
    list_partition_reassignments_response_init(&resp);
    size_t cap = in.topics_count < 0 ? cluster_topic_count(c) : (size_t)in.topics_count;
    resp.topics = REQ_ALLOC(req, listed_topic, cap);
    resp.topics_count = 0;
    if (in.topics_count < 0) {
        for (size_t i = 0; i < cap; i++)
            resp.topics_count +=
                list_topic(req, cluster_topic_at(c, i), NULL, 0, &resp.topics[resp.topics_count]);
    } else {
        for (int32_t i = 0; i < in.topics_count; i++) {
            const struct mtopic *t = cluster_topic_find(c, in.topics[i].name);
            if (t)
                resp.topics_count += list_topic(req, t, in.topics[i].partition_indexes,
                                                MAX(in.topics[i].partition_indexes_count, 0),
                                                &resp.topics[resp.topics_count]);
        }
    }
    REQUEST_RESPOND(req, list_partition_reassignments_response, &resp);
}
