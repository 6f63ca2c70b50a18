/* DescribeQuorum (key 55), v0-v2: the metadata quorum (KIP-595; v1 timestamps, KIP-836;
 * v2 error messages, directory ids and the voters' listeners, KIP-853), as
 * Admin.describeMetadataQuorum and kafka-metadata-quorum.sh ask for it.
 *
 * Kafka's KRaft leader answers (RaftUtil.singletonDescribeQuorumResponse): a request that
 * is not exactly one topic __cluster_metadata with exactly partition 0 gets
 * UNKNOWN_TOPIC_OR_PARTITION for every partition it names; a node that does not lead the
 * quorum NOT_LEADER_OR_FOLLOWER. A Kafka broker forwards the request to the active
 * controller, and so does a Samsa node that does not lead (server_forward_to_controller);
 * only when no controller can be asked does it answer NOT_LEADER_OR_FOLLOWER itself. The
 * leader reports itself as caught up and fetching now (both timestamps the current
 * time), each peer's log end as far as it knows it matches, and their times as unknown.
 * Every voter is a Node with its controller listener (controller.quorum.voters); a single
 * node without that uses its one listener. Static voters have no directory id (the zero
 * uuid). */
#include "server/internal.h"

#define METADATA_TOPIC "__cluster_metadata"
#define METADATA_PARTITION 0

static bool names_the_metadata_partition(const struct describe_quorum_request *in)
{
    return in->topics_count == 1 && slice_eq_cstr(in->topics[0].topic_name, METADATA_TOPIC) &&
           in->topics[0].partitions_count == 1 &&
           in->topics[0].partitions[0].partition_index == METADATA_PARTITION;
}

/* Every partition asked for, with the error (Kafka's getPartitionLevelErrorResponse). */
static void respond_unknown(struct request *req, const struct describe_quorum_request *in)
{
    struct describe_quorum_response resp;
    describe_quorum_response_init(&resp);
    resp.topics_count = in->topics_count;
    resp.topics = REQ_ALLOC(req, struct describe_quorum_response_topics, in->topics_count);
    for (int32_t i = 0; i < in->topics_count; i++) {
        const struct describe_quorum_request_topics *t = &in->topics[i];
        struct describe_quorum_response_topics *rt = &resp.topics[i];
        describe_quorum_response_topics_init(rt);
        rt->topic_name = t->topic_name;
        rt->partitions_count = t->partitions_count;
        rt->partitions =
            REQ_ALLOC(req, struct describe_quorum_response_topics_partitions, t->partitions_count);
        for (int32_t k = 0; k < t->partitions_count; k++) {
            struct describe_quorum_response_topics_partitions *p = &rt->partitions[k];
            describe_quorum_response_topics_partitions_init(p);
            p->partition_index = t->partitions[k].partition_index;
            p->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            p->error_message = slice_from_cstr("the metadata quorum is " METADATA_TOPIC
                                               " partition 0, and only it");
        }
    }
    REQUEST_RESPOND(req, describe_quorum_response, &resp);
}

/* One replica's state. The leader is caught up and fetching now, as Kafka reports
 * itself; a peer's times are unknown here (-1, the field's default). */
static void replica_state(const struct cluster_quorum_replica *r, int32_t self, int64_t now_ms,
                          int32_t *replica_id, int64_t *log_end_offset, int64_t *last_fetch_ms,
                          int64_t *last_caught_up_ms)
{
    *replica_id = r->node_id;
    *log_end_offset = r->log_end_offset;
    if (r->node_id == self)
        *last_fetch_ms = *last_caught_up_ms = now_ms;
}

/* A response about the metadata partition: resp initialized with its one topic and
 * partition, which is returned to be filled. */
static struct describe_quorum_response_topics_partitions *
metadata_partition_response(struct request *req, struct describe_quorum_response *resp)
{
    describe_quorum_response_init(resp);
    struct describe_quorum_response_topics *t =
        REQ_ALLOC(req, struct describe_quorum_response_topics, 1);
    describe_quorum_response_topics_init(t);
    t->topic_name = slice_from_cstr(METADATA_TOPIC);
    struct describe_quorum_response_topics_partitions *p =
        REQ_ALLOC(req, struct describe_quorum_response_topics_partitions, 1);
    describe_quorum_response_topics_partitions_init(p);
    p->partition_index = METADATA_PARTITION;
    t->partitions = p;
    t->partitions_count = 1;
    resp->topics = t;
    resp->topics_count = 1;
    return p;
}

/* Answered here when no controller could be asked. */
static void answer_not_leader(struct request *req)
{
    struct describe_quorum_response resp;
    struct describe_quorum_response_topics_partitions *p = metadata_partition_response(req, &resp);
    p->error_code = KERR_NOT_LEADER_OR_FOLLOWER;
    p->error_message = slice_from_cstr("this node does not lead the metadata quorum");
    REQUEST_RESPOND(req, describe_quorum_response, &resp);
}

void handle_describe_quorum(struct request *req)
{
    struct server *s = req->srv;
    struct describe_quorum_request in;
    if (describe_quorum_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    if (!names_the_metadata_partition(&in)) {
        respond_unknown(req, &in);
        return;
    }
    struct cluster_quorum_state q;
    cluster_quorum_state(s->cluster, &q);

    if (!q.leading) {
        if (!server_forward_to_controller(s, req, answer_not_leader))
            answer_not_leader(req);
        return;
    }
    struct describe_quorum_response resp;
    struct describe_quorum_response_topics_partitions *p = metadata_partition_response(req, &resp);
    int32_t self = cluster_controller_id(s->cluster);
    int64_t now_ms = time_wall_ms();
    p->leader_id = q.leader_id;
    p->leader_epoch = q.leader_epoch;
    p->high_watermark = q.high_watermark;
    p->current_voters_count = (int32_t)q.voter_count;
    p->current_voters = REQ_ALLOC(
        req, struct describe_quorum_response_topics_partitions_current_voters, q.voter_count);
    for (size_t i = 0; i < q.voter_count; i++) {
        struct describe_quorum_response_topics_partitions_current_voters *v = &p->current_voters[i];
        describe_quorum_response_topics_partitions_current_voters_init(v);
        replica_state(&q.voters[i], self, now_ms, &v->replica_id, &v->log_end_offset,
                      &v->last_fetch_timestamp, &v->last_caught_up_timestamp);
    }
    p->observers_count = (int32_t)q.observer_count;
    p->observers = REQ_ALLOC(req, struct describe_quorum_response_topics_partitions_observers,
                             q.observer_count);
    for (size_t i = 0; i < q.observer_count; i++) {
        struct describe_quorum_response_topics_partitions_observers *o = &p->observers[i];
        describe_quorum_response_topics_partitions_observers_init(o);
        replica_state(&q.observers[i], self, now_ms, &o->replica_id, &o->log_end_offset,
                      &o->last_fetch_timestamp, &o->last_caught_up_timestamp);
    }

    /* v2: the voters' endpoints: their controller listeners, as controller.quorum.voters
     * names them; a single node without that list, its one listener. */
    resp.nodes = REQ_ALLOC(req, struct describe_quorum_response_nodes, q.voter_count);
    for (size_t i = 0; i < q.voter_count; i++) {
        const char *name = s->cfg->listener_name, *host = NULL;
        int32_t port = 0;
        for (size_t k = 0; k < s->cfg->voter_count; k++) {
            if (s->cfg->voters[k].id == q.voters[i].node_id && s->cfg->voter_count > 1) {
                name = s->cfg->controller_listener_name;
                host = s->cfg->voters[k].host;
                port = s->cfg->voters[k].port;
            }
        }
        const struct mbroker *b = cluster_broker_find(s->cluster, q.voters[i].node_id);
        if (!host && b) {
            host = b->host;
            port = b->port;
        }
        if (!host)
            continue;
        struct describe_quorum_response_nodes *n = &resp.nodes[resp.nodes_count++];
        describe_quorum_response_nodes_init(n);
        n->node_id = q.voters[i].node_id;
        n->listeners = REQ_ALLOC(req, struct describe_quorum_response_nodes_listeners, 1);
        n->listeners_count = 1;
        describe_quorum_response_nodes_listeners_init(&n->listeners[0]);
        n->listeners[0].name = slice_from_cstr(name);
        n->listeners[0].host = slice_from_cstr(host);
        n->listeners[0].port = (uint16_t)port;
    }
    REQUEST_RESPOND(req, describe_quorum_response, &resp);
}
