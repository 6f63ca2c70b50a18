/* ISR maintenance, the leader's side and the controller's (internal.h, "ISR").
 *
 * A leader checks its replicated partitions' ISR after each follower fetch (a follower
 * that caught up joins) and every replica.lag.time.max.ms / 2 (one that fell behind
 * leaves), as Kafka's ReplicaManager does. A change goes to the active controller as
 * AlterPartition (key 56), directly when this node is the active controller; the
 * controller checks the leader's epochs and writes a PartitionChangeRecord; the new
 * ISR takes effect on every node when the metadata log delivers it. One request per
 * partition is out at a time (partition_isr_requested). */
#include "server/internal.h"

#include <stdlib.h>
#include <string.h>

static bool is_active_controller(struct server *s)
{
    return cluster_controller_id(s->cluster) == s->cfg->node_id;
}

/* A request with no answer goes again after this long, with the same epochs and ISR
 * (the ISR asked for stays pending meanwhile), as Kafka's AlterPartitionManager retries. */
#define ISR_RESEND_MS 1000

/* What a leader waits for: the partition by name (it may close meanwhile), and which of
 * its requests this is (only the newest one's answer counts). */
struct isr_request {
    struct server *s;
    char *topic;
    int32_t partition;
    uint64_t id;
};

/* How a request ended, as far as the leader can tell. */
enum isr_outcome {
    ISR_WRITTEN,  /* the controller took it (or it changed nothing) */
    ISR_REFUSED,  /* the controller refused it */
    ISR_NO_ANSWER /* not sent, the connection closed, or another node answered */
};

/* The answer to a leader's request. Only the newest request of the partition counts:
 * an older one's answer says nothing about what is pending now. The pending ISR (which
 * the high watermark counts) ends only when its fate is known:
 *   - written: when this node's metadata reaches the epoch written (at once if it has);
 *   - refused at a partition epoch newer than this node's metadata: the change that
 *     made it newer may be this very request, sent before and answered never, so it
 *     stays until the metadata says;
 *   - refused otherwise: nothing was written; the next check may ask again, not before
 *     replica.fetch.backoff.ms (a follower the controller will not take, fenced for
 *     one, would otherwise be asked for at every fetch);
 *   - no answer: the same request goes again after ISR_RESEND_MS. */
static void isr_answered(struct isr_request *q, enum isr_outcome how, int16_t error,
                         int32_t partition_epoch)
{
    struct server *s = q->s;
    struct partition *p = server_partition(s, slice_from_cstr(q->topic), q->partition);
    if (p && p->isr_request_id == q->id && p->pending_isr_count > 0) {
        int64_t now = net_loop_now_ms(s->loop);
        if (how == ISR_NO_ANSWER) {
            p->isr_retry_at_ms = now + ISR_RESEND_MS;
        } else if (how == ISR_WRITTEN || partition_epoch > p->partition_epoch) {
            if (p->partition_epoch >= partition_epoch)
                partition_isr_answered(p);
        } else {
            say_info_ratelimited("replica",
                                 "partition %s-%d: the controller refused an ISR change: %s",
                                 q->topic, q->partition, kafka_error_name(error));
            partition_isr_answered(p);
            p->isr_retry_at_ms = now + s->cfg->replica_fetch_backoff_ms;
        }
    }
    free(q->topic);
    free(q);
}

static void on_local_answer(void *arg, const struct cluster_result *res)
{
    if (res->err == CLUSTER_ERR_NOT_CONTROLLER)
        isr_answered(arg, ISR_NO_ANSWER, KERR_NOT_CONTROLLER, -1);
    else
        isr_answered(arg, res->err == CLUSTER_OK ? ISR_WRITTEN : ISR_REFUSED,
                     kerr_from_cluster(res->err), res->partition_epoch);
}

static void on_remote_answer(void *arg, struct reader *r)
{
    struct alter_partition_response resp;
    struct arena a;
    arena_init(&a);
    enum isr_outcome how = ISR_NO_ANSWER;
    int16_t error = KERR_NONE;
    int32_t epoch = -1;
    if (r && alter_partition_response_decode(r, 0, &a, &resp) == 0 &&
        resp.error_code == KERR_NONE && resp.topics_count == 1 &&
        resp.topics[0].partitions_count == 1) {
        const struct alter_partition_response_topics_partitions *pr = &resp.topics[0].partitions[0];
        error = pr->error_code;
        epoch = pr->partition_epoch;
        how = error == KERR_NONE ? ISR_WRITTEN : ISR_REFUSED;
    }
    arena_free(&a);
    isr_answered(arg, how, error, epoch);
}

/* Sends p's pending ISR to the active controller (directly when it is this node). */
static void send_pending(struct server *s, struct partition *p)
{
    struct isr_request *q = xcalloc(1, sizeof *q);
    q->s = s;
    q->topic = xstrdup(p->topic);
    q->partition = p->index;
    q->id = p->isr_request_id = ++s->isr_request_seq;
    p->isr_retry_at_ms = 0;
    struct cluster_isr_change change = {.leader = s->cfg->node_id,
                                        .leader_epoch = p->leader_epoch,
                                        .partition_epoch = p->partition_epoch,
                                        .isr = p->pending_isr,
                                        .isr_count = p->pending_isr_count};
    if (is_active_controller(s)) {
        cluster_alter_partition(s->cluster, slice_from_cstr(p->topic), p->index, &change,
                                on_local_answer, q);
        return;
    }
    struct alter_partition_request req;
    alter_partition_request_init(&req);
    req.broker_id = s->cfg->node_id;
    req.broker_epoch = server_broker_epoch(s);
    struct alter_partition_request_topics t;
    alter_partition_request_topics_init(&t);
    t.topic_name = slice_from_cstr(p->topic);
    struct alter_partition_request_topics_partitions pr;
    alter_partition_request_topics_partitions_init(&pr);
    pr.partition_index = p->index;
    pr.leader_epoch = p->leader_epoch;
    pr.partition_epoch = p->partition_epoch;
    pr.new_isr = p->pending_isr;
    pr.new_isr_count = p->pending_isr_count;
    t.partitions = &pr;
    t.partitions_count = 1;
    req.topics = &t;
    req.topics_count = 1;
    struct buf body;
    buf_init(&body);
    alter_partition_request_encode(&body, 0, &req);
    bool sent =
        server_controller_send(s, SERVER_API_ALTER_PARTITION, 0, &body, on_remote_answer, q);
    buf_free(&body);
    if (!sent)
        isr_answered(q, ISR_NO_ANSWER, KERR_NOT_CONTROLLER, -1);
}

void server_isr_check(struct server *s, struct partition *p, int32_t fetched_from)
{
    int64_t now = net_loop_now_ms(s->loop);
    if (p->pending_isr_count > 0) {
        if (p->isr_retry_at_ms && now >= p->isr_retry_at_ms)
            send_pending(s, p); /* the last one went unanswered */
        return;
    }
    if (p->isr_retry_at_ms && now < p->isr_retry_at_ms)
        return; /* refused a moment ago */
    int32_t few[16];
    int32_t *isr = p->replica_count <= 16 ? few : xcalloc((size_t)p->replica_count, sizeof *isr);
    int32_t n = 0;
    if (partition_isr_change(p, now, s->cfg->replica_lag_time_max_ms, fetched_from, isr, &n)) {
        say_info("replica", "partition %s-%d: asking for %d in-sync replicas (now %d)", p->topic,
                 p->index, n, p->isr_count);
        partition_isr_requested(p, isr, n);
        send_pending(s, p);
    }
    if (isr != few)
        free(isr);
}

static void on_isr_timer(struct net_loop *loop, void *arg)
{
    struct server *s = arg;
    size_t it = 0;
    struct slice k;
    void *v;
    while (hmap_next(&s->topics, &it, &k, &v)) {
        struct topic_state *ts = v;
        for (int32_t i = 0; i < ts->partition_count; i++) {
            struct partition *p = ts->partitions[i];
            if (p && p->role == PARTITION_LEADER && partition_replicated(p))
                server_isr_check(s, p, -1);
        }
    }
    s->isr_timer =
        net_timer_add(loop, MAX(s->cfg->replica_lag_time_max_ms / 2, 1), on_isr_timer, s);
}

void server_isr_start(struct server *s)
{
    s->isr_timer =
        net_timer_add(s->loop, MAX(s->cfg->replica_lag_time_max_ms / 2, 1), on_isr_timer, s);
}

void server_isr_stop(struct server *s)
{
    if (s->isr_timer)
        net_timer_cancel(s->loop, s->isr_timer);
    s->isr_timer = 0;
}

/* ---- the controller's side ---- */

struct alter_answer {
    struct net_reply *reply;
    int32_t correlation_id;
    struct alter_partition_response resp;
    int32_t pending;
    struct arena arena;
};

static void alter_answer_send(struct alter_answer *aa)
{
    struct buf *b = net_reply_buf(aa->reply);
    proto_response_header_encode(b, SERVER_API_ALTER_PARTITION, 0, aa->correlation_id);
    alter_partition_response_encode(b, 0, &aa->resp);
    net_reply_send(aa->reply);
    arena_free(&aa->arena);
    free(aa);
}

struct alter_slot {
    struct alter_answer *aa;
    struct alter_partition_response_topics_partitions *out;
    struct server *s;
    const char *topic;
};

static void partition_altered(void *arg, const struct cluster_result *res)
{
    struct alter_slot *slot = arg;
    struct alter_partition_response_topics_partitions *out = slot->out;
    out->error_code = kerr_from_cluster(res->err);
    const struct mtopic *t = cluster_topic_find(slot->s->cluster, slice_from_cstr(slot->topic));
    if (t && out->partition_index >= 0 && out->partition_index < t->partition_count) {
        const struct mpartition *mp = &t->partitions[out->partition_index];
        out->leader_id = mp->leader;
        out->leader_epoch = mp->leader_epoch;
        out->partition_epoch = mp->partition_epoch;
        out->isr = arena_alloc(&slot->aa->arena, (size_t)MAX(mp->isr_count, 1) * sizeof *out->isr);
        memcpy(out->isr, mp->isr, (size_t)mp->isr_count * sizeof *out->isr);
        out->isr_count = mp->isr_count;
    }
    struct alter_answer *aa = slot->aa;
    free(slot);
    if (--aa->pending == 0)
        alter_answer_send(aa);
}

int server_serve_alter_partition(struct server *s, const struct request_header *hdr,
                                 struct reader *rd, struct net_reply *r)
{
    struct alter_answer *aa = xcalloc(1, sizeof *aa);
    arena_init(&aa->arena);
    struct alter_partition_request req;
    if (alter_partition_request_decode(rd, hdr->api_version, &aa->arena, &req) != 0) {
        arena_free(&aa->arena);
        free(aa);
        return -1;
    }
    aa->reply = r;
    aa->correlation_id = hdr->correlation_id;
    aa->pending = 1;
    alter_partition_response_init(&aa->resp);
    const struct mbroker *b = cluster_broker_find(s->cluster, req.broker_id);
    if (!is_active_controller(s))
        aa->resp.error_code = KERR_NOT_CONTROLLER;
    else if (!b || b->epoch != req.broker_epoch)
        aa->resp.error_code = KERR_STALE_BROKER_EPOCH;
    int32_t nt = aa->resp.error_code == KERR_NONE ? MAX(req.topics_count, 0) : 0;
    aa->resp.topics_count = nt;
    aa->resp.topics = arena_alloc(&aa->arena, (size_t)MAX(nt, 1) * sizeof *aa->resp.topics);
    for (int32_t ti = 0; ti < nt; ti++) {
        const struct alter_partition_request_topics *t = &req.topics[ti];
        struct alter_partition_response_topics *ot = &aa->resp.topics[ti];
        alter_partition_response_topics_init(ot);
        /* The request's frame is gone when the answer goes: names are copied. */
        const char *topic =
            arena_strndup(&aa->arena, (const char *)t->topic_name.ptr, t->topic_name.len);
        ot->topic_name = slice_from_cstr(topic);
        int32_t np = MAX(t->partitions_count, 0);
        ot->partitions_count = np;
        ot->partitions = arena_alloc(&aa->arena, (size_t)MAX(np, 1) * sizeof *ot->partitions);
        for (int32_t pi = 0; pi < np; pi++) {
            const struct alter_partition_request_topics_partitions *ip = &t->partitions[pi];
            struct alter_partition_response_topics_partitions *op = &ot->partitions[pi];
            alter_partition_response_topics_partitions_init(op);
            op->partition_index = ip->partition_index;
            struct alter_slot *slot = xcalloc(1, sizeof *slot);
            *slot = (struct alter_slot){aa, op, s, topic};
            aa->pending++;
            struct cluster_isr_change change = {.leader = req.broker_id,
                                                .leader_epoch = ip->leader_epoch,
                                                .partition_epoch = ip->partition_epoch,
                                                .isr = ip->new_isr,
                                                .isr_count = MAX(ip->new_isr_count, 0)};
            cluster_alter_partition(s->cluster, t->topic_name, ip->partition_index, &change,
                                    partition_altered, slot);
        }
    }
    if (--aa->pending == 0)
        alter_answer_send(aa);
    return 0;
}
