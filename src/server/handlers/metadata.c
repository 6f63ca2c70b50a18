/* Metadata (key 3), v0-v12: brokers, cluster id, controller, topics and partitions.
 * A topic named twice (by name, or by id) is answered once, as Kafka does. A v12
 * request naming topics by id is answered by id (answer_by_id).
 * Topics named in the request that do not exist are auto-created when both the request
 * (v4+) and auto.create.topics.enable allow it, as Kafka does: the creation starts and
 * the topic is answered UNKNOWN_TOPIC_OR_PARTITION without partitions, as Kafka 4.4
 * answers a topic its controller is still creating; the client asks again.
 * At most AUTO_CREATE_PER_REQUEST creations start per request. */
#include "server/internal.h"

#include <string.h>

/* A bound on the metadata-log writes one request can queue. */
#define AUTO_CREATE_PER_REQUEST 16

static void fill_topic(struct request *req, struct metadata_response_topics *out,
                       const struct mtopic *t, bool include_ops)
{
    out->name = slice_from_cstr(arena_strndup(&req->arena, t->name, strlen(t->name)));
    if (include_ops)
        out->topic_authorized_operations = TOPIC_AUTHORIZED_OPS;
    memcpy(out->topic_id, t->id, 16);
    out->is_internal = t->internal;
    out->partitions_count = t->partition_count;
    out->partitions =
        REQ_ALLOC(req, struct metadata_response_topics_partitions, t->partition_count);
    /* Partitions this node leads but is still opening (partitions.c) have no leader
     * yet; another broker's partition is that broker's to answer for. */
    const struct topic_state *ts = server_topic(req->srv, slice_from_cstr(t->name));
    int32_t opened = ts ? ts->partition_count : 0;
    for (int32_t i = 0; i < t->partition_count; i++) {
        const struct mpartition *mp = &t->partitions[i];
        struct metadata_response_topics_partitions *p = &out->partitions[i];
        metadata_response_topics_partitions_init(p);
        p->partition_index = mp->id;
        p->leader_id = mp->leader;
        p->leader_epoch = mp->leader_epoch;
        p->replica_nodes = mp->replicas;
        p->replica_nodes_count = mp->replica_count;
        p->isr_nodes = mp->isr;
        p->isr_nodes_count = mp->isr_count;
        p->offline_replicas_count = 0;
        if (i >= opened && mp->leader == req->srv->cfg->node_id) {
            p->error_code = KERR_LEADER_NOT_AVAILABLE;
            p->leader_id = -1;
        }
    }
}

static bool any_topic_id(const struct metadata_request *in)
{
    static const uint8_t zero[16];
    for (int32_t i = 0; i < in->topics_count; i++)
        if (memcmp(in->topics[i].topic_id, zero, 16) != 0)
            return true;
    return false;
}

/* v12+ with topic ids, as Kafka: the ids decide and names are ignored; entries without
 * an id are left out, an unknown id gets UNKNOWN_TOPIC_ID with the id echoed and a null
 * name (the Java client checks both). Never auto-creates. */
static void answer_by_id(struct request *req, const struct metadata_request *in,
                         struct metadata_response *resp)
{
    static const uint8_t zero[16];
    resp->topics_count = 0;
    struct hmap seen; /* ids answered: Kafka answers each topic once */
    hmap_init(&seen);
    for (int32_t i = 0; i < in->topics_count; i++) {
        const uint8_t *id = in->topics[i].topic_id;
        struct slice key = {id, 16};
        if (memcmp(id, zero, 16) == 0 || hmap_get(&seen, key))
            continue;
        struct metadata_response_topics *out = &resp->topics[resp->topics_count++];
        metadata_response_topics_init(out);
        hmap_put(&seen, key, out);
        const struct mtopic *t = cluster_topic_find_id(req->srv->cluster, id);
        if (t) {
            fill_topic(req, out, t, in->include_topic_authorized_operations);
            continue;
        }
        out->error_code = KERR_UNKNOWN_TOPIC_ID;
        out->name = SLICE_NULL;
        memcpy(out->topic_id, id, 16);
    }
    hmap_free(&seen);
}

void handle_metadata(struct request *req)
{
    struct server *s = req->srv;
    int16_t v = req->hdr.api_version;
    struct metadata_request in;
    if (metadata_request_decode(&req->body, v, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct metadata_response resp;
    metadata_response_init(&resp);
    size_t nb = cluster_broker_count(s->cluster);
    resp.brokers = REQ_ALLOC(req, struct metadata_response_brokers, nb);
    resp.brokers_count = 0;
    for (size_t i = 0; i < nb; i++) {
        const struct mbroker *b = cluster_broker_at(s->cluster, i);
        if (b->fenced)
            continue; /* as Kafka: clients are told of live brokers only */
        struct metadata_response_brokers *o = &resp.brokers[resp.brokers_count++];
        metadata_response_brokers_init(o);
        o->node_id = b->node_id;
        o->host = slice_from_cstr(b->host);
        o->port = b->port;
        o->rack = b->rack ? slice_from_cstr(b->rack) : SLICE_NULL;
    }
    resp.cluster_id = slice_from_cstr(cluster_id(s->cluster));
    resp.controller_id = server_client_controller_id(s);
    if (in.include_cluster_authorized_operations)
        resp.cluster_authorized_operations = CLUSTER_AUTHORIZED_OPS;

    /* v0: an empty list means all topics; v1+: null means all, empty means none. */
    bool all = in.topics_count < 0 || (v == 0 && in.topics_count == 0);
    if (all) {
        size_t n = cluster_topic_count(s->cluster);
        resp.topics_count = (int32_t)n;
        resp.topics = REQ_ALLOC(req, struct metadata_response_topics, n);
        for (size_t i = 0; i < n; i++) {
            metadata_response_topics_init(&resp.topics[i]);
            fill_topic(req, &resp.topics[i], cluster_topic_at(s->cluster, i),
                       in.include_topic_authorized_operations);
        }
        REQUEST_RESPOND(req, metadata_response, &resp);
        return;
    }
    resp.topics = REQ_ALLOC(req, struct metadata_response_topics, in.topics_count);
    if (v >= 12 && any_topic_id(&in)) {
        answer_by_id(req, &in, &resp);
        REQUEST_RESPOND(req, metadata_response, &resp);
        return;
    }
    bool allow_create = s->cfg->auto_create_topics && in.allow_auto_topic_creation;
    int created = 0;
    /* Kafka takes the names as a set: a name given twice is answered once. */
    struct hmap seen;
    hmap_init(&seen);
    resp.topics_count = 0;
    for (int32_t i = 0; i < in.topics_count; i++) {
        struct slice name = in.topics[i].name;
        if (name.ptr && hmap_get(&seen, name))
            continue;
        struct metadata_response_topics *out = &resp.topics[resp.topics_count++];
        metadata_response_topics_init(out);
        out->name = name;
        if (!name.ptr) {
            out->error_code = KERR_INVALID_REQUEST; /* neither a name nor an id */
            continue;
        }
        hmap_put(&seen, name, out);
        const struct mtopic *t = cluster_topic_find(s->cluster, name);
        if (!t && cluster_topic_name_error(name)) {
            out->error_code = KERR_INVALID_TOPIC_EXCEPTION;
            continue;
        }
        if (!t && allow_create) {
            /* Being created: the client's retry finds it. */
            if (created++ < AUTO_CREATE_PER_REQUEST)
                server_auto_create_topic(s, name);
            out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            continue;
        }
        if (!t) {
            out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            continue;
        }
        fill_topic(req, out, t, in.include_topic_authorized_operations);
    }
    hmap_free(&seen);
    REQUEST_RESPOND(req, metadata_response, &resp);
}
