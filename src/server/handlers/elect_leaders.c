/* ElectLeaders (key 43), v0-v2 (KIP-183, KIP-460): the active controller elects the
 * preferred replica (type 0, and v0) or, for a partition without a leader, any live
 * replica (type 1: unclean when none is in sync). A request for every partition (null
 * TopicPartitions) elects the preferred replica where it does not lead and could, and
 * answers for those only, as Kafka does. Brokers forward it to the active controller
 * (dispatch.c). */
#include "server/internal.h"

#include <string.h>

typedef struct elect_leaders_response_replica_election_results topic_result;
typedef struct elect_leaders_response_replica_election_results_partition_result part_result;

struct elect_wait {
    struct change_wait w; /* first: respond gets it */
    struct elect_leaders_response resp;
};

static void elect_respond(struct change_wait *w)
{
    struct elect_wait *ew = (struct elect_wait *)w;
    REQUEST_RESPOND(w->req, elect_leaders_response, &ew->resp);
}

static void elect_one(struct elect_wait *ew, struct slice topic, int32_t partition,
                      enum cluster_election how, part_result *out)
{
    elect_leaders_response_replica_election_results_partition_result_init(out);
    out->partition_id = partition;
    void *arg;
    cluster_done_fn done = change_wait_slot(&ew->w, &out->error_code, &out->error_message, &arg);
    cluster_elect_leader(ew->w.req->srv->cluster, topic, partition, how, done, arg);
}

/* Every partition whose preferred replica could lead and does not. */
static void elect_all_preferred(struct request *req, struct elect_wait *ew)
{
    struct cluster *c = req->srv->cluster;
    size_t n = cluster_topic_count(c);
    ew->resp.replica_election_results = REQ_ALLOC(req, topic_result, n);
    ew->resp.replica_election_results_count = 0;
    for (size_t i = 0; i < n; i++) {
        const struct mtopic *t = cluster_topic_at(c, i);
        int32_t wanted = 0;
        for (int32_t k = 0; k < t->partition_count; k++)
            wanted += server_preferred_leader_wanted(req->srv, &t->partitions[k]);
        if (wanted == 0)
            continue;
        topic_result *tr =
            &ew->resp.replica_election_results[ew->resp.replica_election_results_count++];
        elect_leaders_response_replica_election_results_init(tr);
        tr->topic = slice_from_cstr(arena_strndup(&req->arena, t->name, strlen(t->name)));
        tr->partition_result = REQ_ALLOC(req, part_result, wanted);
        tr->partition_result_count = 0;
        for (int32_t k = 0; k < t->partition_count; k++)
            if (server_preferred_leader_wanted(req->srv, &t->partitions[k]))
                elect_one(ew, tr->topic, k, CLUSTER_ELECT_PREFERRED,
                          &tr->partition_result[tr->partition_result_count++]);
    }
}

void handle_elect_leaders(struct request *req)
{
    struct elect_leaders_request in;
    if (elect_leaders_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct elect_wait *ew = REQ_ALLOC(req, struct elect_wait, 1);
    change_wait_begin(&ew->w, req, elect_respond);
    elect_leaders_response_init(&ew->resp);
    int8_t type = req->hdr.api_version >= 1 ? in.election_type : 0;
    if (type != 0 && type != 1) {
        ew->resp.error_code = KERR_INVALID_REQUEST;
        ew->resp.replica_election_results_count = 0;
        change_wait_end(&ew->w);
        return;
    }
    enum cluster_election how = type == 0 ? CLUSTER_ELECT_PREFERRED : CLUSTER_ELECT_UNCLEAN;
    if (in.topic_partitions_count < 0) {
        if (how == CLUSTER_ELECT_PREFERRED)
            elect_all_preferred(req, ew);
        else
            ew->resp.replica_election_results_count = 0; /* Kafka: nothing is leaderless */
        change_wait_end(&ew->w);
        return;
    }
    int32_t nt = in.topic_partitions_count;
    ew->resp.replica_election_results = REQ_ALLOC(req, topic_result, nt);
    ew->resp.replica_election_results_count = nt;
    for (int32_t ti = 0; ti < nt; ti++) {
        const struct elect_leaders_request_topic_partitions *t = &in.topic_partitions[ti];
        topic_result *tr = &ew->resp.replica_election_results[ti];
        elect_leaders_response_replica_election_results_init(tr);
        tr->topic = t->topic;
        int32_t np = MAX(t->partition_id_count, 0);
        tr->partition_result = REQ_ALLOC(req, part_result, np);
        tr->partition_result_count = np;
        for (int32_t pi = 0; pi < np; pi++)
            elect_one(ew, t->topic, t->partition_id[pi], how, &tr->partition_result[pi]);
    }
    change_wait_end(&ew->w);
}
