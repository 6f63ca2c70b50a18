/* CreateTopics (key 19), v0-v7. Each topic is validated (name, partitions, replication
 * factor, configs) and created atomically in the metadata log, or gets Kafka's error
 * code and message. A manual replica assignment names the same number of brokers for
 * each of partitions 0..n-1 (in any order); the metadata checks the brokers.
 * num_partitions / replication_factor of -1 mean the broker defaults (KIP-464).
 * As in Kafka, a name given twice gets one INVALID_REQUEST entry (after the others) and
 * nothing created, a name equal to an existing topic's once '.' and '_' are unified is
 * INVALID_TOPIC_EXCEPTION (their metric names would collide), and validate_only answers
 * what a creation would (a fresh topic id, the configs) without writing anything.
 * The answer waits until the created topics' partitions are open (they are opened a
 * slice at a time, partitions.c), so a success means the topic can be served. */
#include "server/internal.h"

#include <string.h>

typedef struct create_topics_response_topics topic_resp;

/* The answer for a topic created (or, validate_only, that would be created) with rf
 * replicas: its id, shape and effective configs. */
static void describe_created(struct request *req, topic_resp *out, const struct mtopic *t,
                             int16_t rf)
{
    struct server *s = req->srv;
    memcpy(out->topic_id, t->id, 16);
    out->num_partitions = t->partition_count;
    out->replication_factor = rf;
    size_t n = tcfg_count();
    out->configs_count = (int32_t)n;
    out->configs = REQ_ALLOC(req, struct create_topics_response_topics_configs, n);
    for (size_t i = 0; i < n; i++) {
        const struct tcfg_def *d = tcfg_at(i);
        struct create_topics_response_topics_configs *c = &out->configs[i];
        create_topics_response_topics_configs_init(c);
        int8_t source;
        c->name = slice_from_cstr(d->name);
        /* Copied: the value may live in a buffer the next lookup reuses. */
        const char *v = server_topic_config_value(s, t, d->name, &source);
        c->value = slice_from_cstr(arena_strndup(&req->arena, v, strlen(v)));
        c->config_source = source;
        c->read_only = false;
        c->is_sensitive = false;
    }
}

/* validate_only: Kafka answers with the topic id it would have given the topic (a fresh
 * random one, never used afterwards), so clients see the same shape of answer as for a
 * real creation. */
static void describe_validated(struct request *req, topic_resp *out, struct slice name,
                               int32_t partitions, int16_t rf, struct config_entry *cfgs,
                               size_t ncfg)
{
    struct mtopic t = {.name = REQ_CSTR(req, name),
                       .partition_count = partitions,
                       .configs = cfgs,
                       .config_count = ncfg};
    cluster_uuid_random(t.id);
    describe_created(req, out, &t, rf);
}

/* Kafka 4 (KAFKA-17870) refuses a whole CreateTopics request that would create more
 * than this many partitions, before looking at any topic. */
#define MAX_PARTITIONS_PER_REQUEST 10000

static int64_t requested_partitions(const struct server *s, const struct create_topics_request *in)
{
    int64_t total = 0;
    for (int32_t i = 0; i < in->topics_count; i++) {
        const struct create_topics_request_topics *t = &in->topics[i];
        if (t->assignments_count > 0)
            total += t->assignments_count;
        else if (t->num_partitions == -1)
            total += s->cfg->num_partitions;
        else if (t->num_partitions > 0)
            total += t->num_partitions;
    }
    return total;
}

/* The response while topics are being created: each is written to the metadata log
 * (off the event loop), then its partitions are opened. It is sent when the last one is
 * open, or at the request's TimeoutMs, whichever comes first; topics not done then get
 * REQUEST_TIMED_OUT, as Kafka answers a creation that did not finish in time (they are
 * still created). TimeoutMs <= 0 answers once the creations are written, without
 * waiting for the partitions to open. */
struct create_wait {
    struct request *req;
    struct create_topics_response resp;
    int32_t pending; /* topics not done, plus one while the handler runs */
    int32_t timeout_ms;
    uint64_t timer;
    struct created_topic *topics; /* one per response topic */
};

enum create_stage { CT_NONE, CT_WRITING, CT_OPENING };

struct created_topic {
    struct create_wait *w;
    int32_t index;
    enum create_stage stage; /* CT_NONE: answered */
    /* What validate_only describes. */
    int32_t partitions;
    int16_t rf;
    struct config_entry *cfgs;
    size_t ncfg;
    bool validate_only;
};

static void create_respond(struct create_wait *w)
{
    net_timer_cancel(w->req->srv->loop, w->timer);
    REQUEST_RESPOND(w->req, create_topics_response, &w->resp);
}

static void topic_answered(struct created_topic *ct)
{
    ct->stage = CT_NONE;
    if (--ct->w->pending == 0)
        create_respond(ct->w);
}

static void topic_opened(void *arg, int16_t error)
{
    struct created_topic *ct = arg;
    struct create_wait *w = ct->w;
    struct request *req = w->req;
    topic_resp *out = &w->resp.topics[ct->index];
    const struct mtopic *mt = error ? NULL : cluster_topic_find(req->srv->cluster, out->name);
    if (mt) {
        describe_created(req, out, mt,
                         (int16_t)(mt->partition_count ? mt->partitions[0].replica_count : 1));
    } else {
        out->error_code = error ? error : KERR_UNKNOWN_TOPIC_OR_PARTITION;
        out->error_message = slice_from_cstr(
            error == KERR_KAFKA_STORAGE_ERROR
                ? "the broker could not open the topic's partitions (its log says why); "
                  "nothing was created"
                : "the topic was deleted while it was being created");
    }
    topic_answered(ct);
}

/* The creation is durable and applied (or refused). */
static void topic_written(void *arg, const struct cluster_result *res)
{
    struct created_topic *ct = arg;
    struct create_wait *w = ct->w;
    struct request *req = w->req;
    struct server *s = req->srv;
    topic_resp *out = &w->resp.topics[ct->index];
    if (res->err != CLUSTER_OK) {
        const char *why = res->why ? res->why : "metadata log write failed";
        out->error_code = kerr_from_cluster(res->err);
        out->error_message = slice_from_cstr(arena_strndup(&req->arena, why, strlen(why)));
        say_info("server", "CreateTopics %.*s refused: %s", (int)out->name.len,
                 (const char *)out->name.ptr, why);
        topic_answered(ct);
        return;
    }
    if (ct->validate_only) {
        describe_validated(req, out, out->name, ct->partitions, ct->rf, ct->cfgs, ct->ncfg);
        topic_answered(ct);
        return;
    }
    say_info("server", "created topic %.*s with %d partitions", (int)out->name.len,
             (const char *)out->name.ptr, ct->partitions);
    ct->stage = CT_OPENING;
    if (w->timeout_ms <= 0 || !server_topic_wait_open(s, out->name, topic_opened, ct))
        topic_opened(ct, KERR_NONE);
}

static void create_timed_out(struct net_loop *loop, void *arg)
{
    (void)loop;
    struct create_wait *w = arg;
    w->timer = 0;
    struct server *s = w->req->srv;
    for (int32_t i = 0; i < w->resp.topics_count; i++) {
        struct created_topic *ct = &w->topics[i];
        topic_resp *out = &w->resp.topics[i];
        if (ct->stage == CT_NONE)
            continue;
        if (ct->stage == CT_WRITING) {
            cluster_forget(s->cluster, ct);
            out->error_message = slice_from_cstr(
                "the topic is being created; its metadata was not yet written at the timeout");
        } else {
            server_topic_wait_cancel(s, out->name, ct);
            out->error_message = slice_from_cstr(
                "the topic is created; its partitions were still being opened at the timeout");
        }
        ct->stage = CT_NONE;
        out->error_code = KERR_REQUEST_TIMED_OUT;
    }
    create_respond(w);
}

static bool has_collision_chars(struct slice name)
{
    return memchr(name.ptr, '.', name.len) || memchr(name.ptr, '_', name.len);
}

/* Kafka's unifyCollisionChars: '.' and '_' are the same character in metric names. */
static struct slice unify_collision_chars(struct request *req, struct slice name)
{
    char *u = REQ_CSTR(req, name);
    for (size_t i = 0; i < name.len; i++)
        if (u[i] == '.')
            u[i] = '_';
    return (struct slice){(const uint8_t *)u, name.len};
}

/* The existing topic whose name equals `name` once '.' and '_' are unified, if any.
 * Kafka refuses such a topic (INVALID_TOPIC_EXCEPTION): their metrics would collide.
 * The map of existing names is built on the first call of a request that needs it (one
 * pass over at most MAX_TOPICS topics), not kept up to date across requests. */
static const char *colliding_topic(struct request *req, struct hmap *unified, bool *built,
                                   struct slice name)
{
    if (!has_collision_chars(name))
        return NULL;
    struct cluster *c = req->srv->cluster;
    if (!*built) {
        *built = true;
        for (size_t i = 0; i < cluster_topic_count(c); i++) {
            const struct mtopic *t = cluster_topic_at(c, i);
            struct slice tn = slice_from_cstr(t->name);
            if (has_collision_chars(tn))
                hmap_put(unified, unify_collision_chars(req, tn), t->name);
        }
    }
    return hmap_get(unified, unify_collision_chars(req, name));
}

/* A manual replica assignment as a flat array (*out: *partitions × *rf node ids, in the
 * request's arena), its shape checked as Kafka checks it: partitions 0..n-1 once each,
 * every one with the same number of replicas, at least one. The brokers themselves (each
 * registered, none twice, not all fenced) are the metadata's to check. NULL, or why not
 * (Kafka's message, in the arena). */
static const char *manual_assignment(struct request *req,
                                     const struct create_topics_request_topics *t, int32_t **out,
                                     int32_t *partitions, int16_t *rf)
{
    int32_t n = t->assignments_count, width = -1;
    bool *seen = REQ_ALLOC(req, bool, n);
    bool consecutive = true;
    for (int32_t a = 0; a < n; a++) {
        const struct create_topics_request_topics_assignments *as = &t->assignments[a];
        int32_t index = as->partition_index, count = MAX(as->broker_ids_count, 0);
        if (index >= 0 && index < n && seen[index])
            return arena_printf(
                &req->arena, "Found multiple manual partition assignments for partition %d", index);
        const char *bad = request_assignment_width_error(req, count, &width);
        if (bad)
            return bad;
        if (index >= 0 && index < n)
            seen[index] = true;
        else
            consecutive = false;
    }
    if (!consecutive)
        return "partitions should be a consecutive 0-based integer sequence";
    int32_t *flat = REQ_ALLOC(req, int32_t, (size_t)n * (size_t)width);
    for (int32_t a = 0; a < n; a++) {
        const struct create_topics_request_topics_assignments *as = &t->assignments[a];
        memcpy(&flat[(size_t)as->partition_index * (size_t)width], as->broker_ids,
               (size_t)width * sizeof *flat);
    }
    *out = flat;
    *partitions = n;
    *rf = (int16_t)width;
    return NULL;
}

struct name_count {
    int32_t count; /* occurrences of the name in the request */
    bool answered; /* its duplicate-name entry is in the response */
};

void handle_create_topics(struct request *req)
{
    struct server *s = req->srv;
    struct create_topics_request in;
    if (create_topics_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct create_wait *w = REQ_ALLOC(req, struct create_wait, 1);
    w->req = req;
    w->pending = 1; /* this handler's own, dropped at the end */
    w->timeout_ms = in.timeout_ms;
    struct create_topics_response *resp = &w->resp;
    create_topics_response_init(resp);
    int32_t nt = MAX(in.topics_count, 0);
    /* A name given more than once is not created; as Kafka, it gets one INVALID_REQUEST
     * entry, after the answers to the other topics (those in request order). */
    struct hmap seen; /* name -> struct name_count */
    hmap_init(&seen);
    int32_t unique = 0, dup_names = 0;
    for (int32_t i = 0; i < nt; i++) {
        struct name_count *cnt = hmap_get(&seen, in.topics[i].name);
        if (!cnt) {
            cnt = REQ_ALLOC(req, struct name_count, 1);
            hmap_put(&seen, in.topics[i].name, cnt);
            unique++;
        } else if (cnt->count == 1) {
            unique--;
            dup_names++;
        }
        cnt->count++;
    }
    resp->topics_count = unique + dup_names;
    resp->topics = REQ_ALLOC(req, topic_resp, resp->topics_count);
    w->topics = REQ_ALLOC(req, struct created_topic, resp->topics_count);
    for (int32_t i = 0, at = unique; i < nt; i++) {
        struct name_count *cnt = hmap_get(&seen, in.topics[i].name);
        if (cnt->count == 1 || cnt->answered)
            continue;
        cnt->answered = true;
        topic_resp *out = &resp->topics[at++];
        create_topics_response_topics_init(out);
        out->name = in.topics[i].name;
        out->error_code = KERR_INVALID_REQUEST;
        out->error_message = slice_from_cstr("Duplicate topic name.");
    }
    struct hmap unified; /* existing names with '.' and '_' unified -> name */
    hmap_init(&unified);
    bool unified_built = false;
    bool too_many = requested_partitions(s, &in) > MAX_PARTITIONS_PER_REQUEST;
    for (int32_t ri = 0, i = 0; i < nt; i++) {
        const struct create_topics_request_topics *t = &in.topics[i];
        if (((struct name_count *)hmap_get(&seen, t->name))->count != 1)
            continue;
        int32_t at = ri++; /* this topic's entry in the response */
        topic_resp *out = &resp->topics[at];
        create_topics_response_topics_init(out);
        out->name = t->name;
        if (too_many) {
            out->error_code = KERR_POLICY_VIOLATION;
            out->error_message =
                slice_from_cstr("Excessively large number of partitions per request.");
            continue;
        }
        const char *collides = cluster_topic_find(s->cluster, t->name)
                                   ? NULL /* exists: TOPIC_ALREADY_EXISTS below */
                                   : colliding_topic(req, &unified, &unified_built, t->name);
        if (collides) {
            out->error_code = KERR_INVALID_TOPIC_EXCEPTION;
            out->error_message = slice_from_cstr(
                arena_printf(&req->arena, "Topic '%.*s' collides with existing topic: %s",
                             (int)t->name.len, (const char *)t->name.ptr, collides));
            continue;
        }
        int32_t partitions = t->num_partitions;
        int16_t rf = t->replication_factor;
        int32_t *assigned = NULL; /* a manual assignment: partitions × rf brokers */
        if (t->assignments_count > 0) {
            if (partitions != -1 || rf != -1) {
                out->error_code = KERR_INVALID_REQUEST;
                out->error_message = slice_from_cstr(
                    rf != -1 ? "A manual partition assignment was specified, but replication "
                               "factor was not set to -1."
                             : "A manual partition assignment was specified, but numPartitions "
                               "was not set to -1.");
                continue;
            }
            const char *bad = manual_assignment(req, t, &assigned, &partitions, &rf);
            if (bad) {
                out->error_code = KERR_INVALID_REPLICA_ASSIGNMENT;
                out->error_message = slice_from_cstr(bad);
                continue;
            }
        }
        if (partitions == -1)
            partitions = s->cfg->num_partitions;
        if (rf == -1)
            rf = s->cfg->default_replication_factor;
        int32_t nc = MAX(t->configs_count, 0);
        struct config_entry *cfgs = REQ_ALLOC(req, struct config_entry, nc);
        for (int32_t c = 0; c < nc; c++) {
            cfgs[c].name = REQ_CSTR(req, t->configs[c].name);
            cfgs[c].value = t->configs[c].value.ptr ? REQ_CSTR(req, t->configs[c].value) : NULL;
        }
        struct created_topic *ct = &w->topics[at];
        *ct = (struct created_topic){w,  at,   CT_WRITING, partitions,
                                     rf, cfgs, (size_t)nc, in.validate_only};
        w->pending++;
        if (assigned)
            cluster_create_topic_assigned(s->cluster, t->name, assigned, partitions, rf, cfgs,
                                          (size_t)nc, in.validate_only, topic_written, ct);
        else
            cluster_create_topic(s->cluster, t->name, partitions, rf, cfgs, (size_t)nc,
                                 in.validate_only, topic_written, ct);
    }
    hmap_free(&unified);
    hmap_free(&seen);
    if (--w->pending == 0)
        create_respond(w);
    else if (in.timeout_ms > 0)
        w->timer = net_timer_add(s->loop, in.timeout_ms, create_timed_out, w);
}
