/* `samsa cluster status`: the nodes (id, address, rack, partitions led), the metadata
 * quorum (leader, epoch, high watermark, each voter's log end and lag, observers), the
 * partitions without a leader, the under-replicated ones (fewer in sync than assigned)
 * and each replica's lag behind its leader, as text tables or --json.
 *
 * Four requests answer it. Metadata (through librdkafka) gives every partition's
 * leader. librdkafka 2.0.2 has neither DescribeCluster nor DescribeQuorum, so those two
 * go over a connection of our own to the first reachable bootstrap server, encoded
 * with the broker's generated codec (wire.h). A Kafka broker forwards DescribeQuorum to
 * the active controller, so this works against Kafka 4.x as well as Samsa; a broker
 * that does not offer it, or refuses it, still gets the rest of the report with a line
 * saying why the quorum is missing. DescribeLogDirs goes to every broker, each over a
 * connection of its own (replica_lag.h).
 *
 * Fenced brokers: DescribeCluster v2 (KIP-1073) lists them too when asked
 * (IncludeFencedBrokers), each marked; a broker that answers only v0-v1 lists unfenced
 * brokers only, and the report says so rather than marking every row "unfenced". */
#include "cli.h"
#include "replica_lag.h"
#include "wire.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define METADATA_TOPIC "__cluster_metadata"

static const char cluster_usage[] =
    "usage: samsa cluster status [--json]\n"
    "  (also takes -b HOST:PORT)\n"
    "       samsa cluster up [--nodes N] [--dir DIR] [--base-port PORT] [--server PATH]\n"
    "       samsa cluster down [--dir DIR] [--purge]\n"
    "       samsa cluster drain NODE [--wait] [--timeout SECONDS]\n"
    "\n"
    "status shows the nodes (id, address, rack, partitions led), the metadata quorum\n"
    "(leader, epoch, high watermark, each voter's log end offset and lag, observers), the\n"
    "partitions without a leader, the under-replicated ones and the replicas behind their\n"
    "leader (DescribeLogDirs from every broker, 3 s each). up starts a local\n"
    "cluster of N nodes on 127.0.0.1 (default 3, in ./samsa-cluster) and down stops it:\n"
    "`samsa cluster up -h`. drain moves every replica off NODE (`samsa cluster drain -h`).\n";

/* Everything the report shows. The decoded responses borrow their frames and arena,
 * which live as long as this struct (status_free). */
struct status {
    const struct rd_kafka_metadata *md; /* owned */
    struct arena arena;
    struct buf cluster_frame, quorum_frame;

    /* DescribeCluster, or NULL when the broker did not answer it (then the nodes come
     * from md, without racks, and cluster_why says why). */
    const struct describe_cluster_response *cluster;
    bool fenced_listed; /* the broker answered DescribeCluster v2: fenced ones are listed */
    char cluster_why[512];
    char *cluster_id; /* from librdkafka when cluster is NULL; malloc'd, may be NULL */
    int32_t controller_id;

    /* min.insync.replicas of each topic with an under-replicated partition (-1: not
     * known), parallel to md->topics; NULL when none is under-replicated. */
    int *min_isr;

    /* DescribeQuorum's one partition, or NULL with quorum_why saying why. */
    const struct describe_quorum_response *quorum_resp;
    const struct describe_quorum_response_topics_partitions *quorum;
    int16_t quorum_err; /* the error DescribeQuorum answered, when it did */
    char quorum_why[512];

    struct replica_lag *lag; /* owned; borrows md */
};

static void status_free(struct status *st)
{
    replica_lag_free(st->lag);
    free(st->min_isr);
    if (st->md != NULL) {
        rd_kafka_metadata_destroy(st->md);
    }
    arena_free(&st->arena);
    buf_free(&st->cluster_frame);
    buf_free(&st->quorum_frame);
    free(st->cluster_id);
}

static void describe_cluster(struct wire_conn *c, struct status *st)
{
    int16_t v = wire_version(c, API_KEY_DESCRIBE_CLUSTER);
    if (v < 0) {
        snprintf(st->cluster_why, sizeof st->cluster_why, "%s does not offer DescribeCluster",
                 c->peer);
        return;
    }
    struct describe_cluster_request req;
    describe_cluster_request_init(&req);
    req.endpoint_type = 1;             /* brokers */
    req.include_fenced_brokers = true; /* v2+ */
    st->fenced_listed = v >= 2;
    struct buf body;
    buf_init(&body);
    describe_cluster_request_encode(&body, v, &req);
    struct reader r;
    const char *why;
    int rc = wire_call(c, API_KEY_DESCRIBE_CLUSTER, v, &body, &st->cluster_frame, &r, &why);
    buf_free(&body);
    if (rc != 0) {
        snprintf(st->cluster_why, sizeof st->cluster_why, "DescribeCluster: %s", why);
        return;
    }
    struct describe_cluster_response *resp = arena_alloc(&st->arena, sizeof *resp);
    if (describe_cluster_response_decode(&r, v, &st->arena, resp) != 0) {
        snprintf(st->cluster_why, sizeof st->cluster_why, "DescribeCluster: malformed response");
    } else if (resp->error_code != KERR_NONE) {
        snprintf(st->cluster_why, sizeof st->cluster_why, "DescribeCluster: %s%s%.*s",
                 kafka_error_name(resp->error_code), resp->error_message.len ? ": " : "",
                 (int)resp->error_message.len, (const char *)resp->error_message.ptr);
    } else {
        st->cluster = resp;
        st->controller_id = resp->controller_id;
    }
}

static void describe_quorum(struct wire_conn *c, struct status *st)
{
    int16_t v = wire_version(c, API_KEY_DESCRIBE_QUORUM);
    if (v < 0) {
        snprintf(st->quorum_why, sizeof st->quorum_why, "%s does not offer DescribeQuorum",
                 c->peer);
        return;
    }
    struct describe_quorum_request_topics_partitions part = {.partition_index = 0};
    struct describe_quorum_request_topics topic = {
        .topic_name = slice_from_cstr(METADATA_TOPIC),
        .partitions_count = 1,
        .partitions = &part,
    };
    struct describe_quorum_request req = {.topics_count = 1, .topics = &topic};
    struct buf body;
    buf_init(&body);
    describe_quorum_request_encode(&body, v, &req);
    struct reader r;
    const char *why;
    int rc = wire_call(c, API_KEY_DESCRIBE_QUORUM, v, &body, &st->quorum_frame, &r, &why);
    buf_free(&body);
    if (rc != 0) {
        snprintf(st->quorum_why, sizeof st->quorum_why, "DescribeQuorum: %s", why);
        return;
    }
    struct describe_quorum_response *resp = arena_alloc(&st->arena, sizeof *resp);
    if (describe_quorum_response_decode(&r, v, &st->arena, resp) != 0) {
        snprintf(st->quorum_why, sizeof st->quorum_why, "DescribeQuorum: malformed response");
        return;
    }
    int16_t err = resp->error_code;
    struct slice msg = resp->error_message;
    const struct describe_quorum_response_topics_partitions *p = NULL;
    if (err == KERR_NONE) {
        if (resp->topics_count == 1 && resp->topics[0].partitions_count == 1) {
            p = &resp->topics[0].partitions[0];
            err = p->error_code;
            msg = p->error_message;
        } else {
            snprintf(st->quorum_why, sizeof st->quorum_why,
                     "DescribeQuorum: the answer does not name " METADATA_TOPIC "-0");
            return;
        }
    }
    if (err != KERR_NONE) {
        st->quorum_err = err;
        snprintf(st->quorum_why, sizeof st->quorum_why, "DescribeQuorum: %s%s%.*s",
                 kafka_error_name(err), msg.len ? ": " : "", (int)msg.len, (const char *)msg.ptr);
        return;
    }
    st->quorum_resp = resp;
    st->quorum = p;
}

/* Samsa answers DescribeQuorum only on the quorum leader (NOT_LEADER_OR_FOLLOWER
 * elsewhere), where a Kafka broker forwards it to the active controller. The controller
 * DescribeCluster names is that leader, so ask it there; if that fails too, the first
 * answer's reason stands, with the second's added. */
static void describe_quorum_at_controller(struct status *st)
{
    const struct describe_cluster_response_brokers *b = NULL;
    for (int32_t i = 0; i < st->cluster->brokers_count; i++) {
        if (st->cluster->brokers[i].broker_id == st->controller_id)
            b = &st->cluster->brokers[i];
    }
    if (b == NULL)
        return;
    char addr[300], first_why[sizeof st->quorum_why];
    snprintf(addr, sizeof addr, "%.*s:%d", (int)b->host.len, (const char *)b->host.ptr, b->port);
    snprintf(first_why, sizeof first_why, "%s", st->quorum_why);
    struct wire_conn c;
    const char *why;
    if (wire_connect(&c, addr, &why) != 0) {
        snprintf(st->quorum_why, sizeof st->quorum_why, "%.200s; the controller at %.64s: %.200s",
                 first_why, addr, why);
        return;
    }
    buf_free(&st->quorum_frame); /* the refusal's frame: nothing decoded from it is kept */
    buf_init(&st->quorum_frame);
    describe_quorum(&c, st);
    wire_close(&c);
    if (st->quorum == NULL) {
        char second_why[sizeof st->quorum_why];
        snprintf(second_why, sizeof second_why, "%s", st->quorum_why);
        snprintf(st->quorum_why, sizeof st->quorum_why, "%.200s; the controller at %.64s: %.200s",
                 first_why, addr, second_why);
    }
}

/* Partitions led by node id, counted from the metadata. */
static int partitions_led(const struct rd_kafka_metadata *md, int32_t id)
{
    int n = 0;
    for (int t = 0; t < md->topic_cnt; t++) {
        for (int p = 0; p < md->topics[t].partition_cnt; p++) {
            n += md->topics[t].partitions[p].leader == id;
        }
    }
    return n;
}

static bool leaderless(const struct rd_kafka_metadata_partition *p)
{
    return p->leader < 0 || p->err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE;
}

/* Fewer replicas in sync than assigned (Kafka's UnderReplicatedPartitions). */
static bool under_replicated(const struct rd_kafka_metadata_partition *p)
{
    return p->isr_cnt < p->replica_cnt;
}

/* min.insync.replicas of topic `name` (DescribeConfigs), or -1 if not known. */
static int topic_min_isr(rd_kafka_t *rk, const char *name)
{
    rd_kafka_event_t *ev;
    const rd_kafka_ConfigResource_t *res;
    if (cli_describe_topic_configs(rk, name, &ev, &res) != 0)
        return -1;
    int v = -1;
    size_t n;
    const rd_kafka_ConfigEntry_t **e = rd_kafka_ConfigResource_configs(res, &n);
    for (size_t i = 0; i < n; i++) {
        const char *value = rd_kafka_ConfigEntry_value(e[i]);
        if (strcmp(rd_kafka_ConfigEntry_name(e[i]), "min.insync.replicas") == 0 && value)
            v = atoi(value);
    }
    rd_kafka_event_destroy(ev);
    return v;
}

/* Looks up min.insync.replicas for every topic that has an under-replicated partition. */
static void load_min_isr(rd_kafka_t *rk, struct status *st)
{
    const struct rd_kafka_metadata *md = st->md;
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *tp = &md->topics[i];
        for (int p = 0; p < tp->partition_cnt; p++) {
            if (!under_replicated(&tp->partitions[p]))
                continue;
            if (!st->min_isr) {
                st->min_isr = xcalloc((size_t)md->topic_cnt, sizeof *st->min_isr);
                for (int k = 0; k < md->topic_cnt; k++)
                    st->min_isr[k] = -1;
            }
            st->min_isr[i] = topic_min_isr(rk, tp->topic);
            break;
        }
    }
}

/* Fewer in sync than the topic's min.insync.replicas: acks=all is refused. */
static bool under_min_isr(const struct status *st, int topic,
                          const struct rd_kafka_metadata_partition *p)
{
    return st->min_isr && st->min_isr[topic] > 0 && p->isr_cnt < st->min_isr[topic];
}

/* "1,2,3" into out. */
static const char *id_list(char *out, size_t cap, const int32_t *ids, int n)
{
    size_t at = 0;
    out[0] = '\0';
    for (int i = 0; i < n && at < cap; i++)
        at += (size_t)snprintf(out + at, cap - at, "%s%d", i ? "," : "", ids[i]);
    return out;
}

/* The address of voter `id` from DescribeQuorum v2's Nodes (its first listener), written
 * into buf; "-" when the version has no Nodes. */
static const char *voter_address(const struct describe_quorum_response *q, int32_t id, char *buf,
                                 size_t size)
{
    snprintf(buf, size, "-");
    for (int32_t i = 0; i < q->nodes_count; i++) {
        const struct describe_quorum_response_nodes *n = &q->nodes[i];
        if (n->node_id == id && n->listeners_count > 0) {
            snprintf(buf, size, "%.*s:%u", (int)n->listeners[0].host.len,
                     (const char *)n->listeners[0].host.ptr, n->listeners[0].port);
        }
    }
    return buf;
}

/* Lag as Kafka's kafka-metadata-quorum.sh computes it: the leader's log end offset minus
 * the replica's. If the leader is not among the voters (it always should be), the high
 * watermark stands in for its log end. */
static int64_t leader_log_end(const struct describe_quorum_response_topics_partitions *q)
{
    for (int32_t i = 0; i < q->current_voters_count; i++) {
        if (q->current_voters[i].replica_id == q->leader_id) {
            return q->current_voters[i].log_end_offset;
        }
    }
    return q->high_watermark;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "N ms ago" for a broker timestamp, "-" for none (-1, or v0 which has no times). A
 * clock behind the broker's shows 0. */
static const char *ago(char *buf, size_t size, int64_t ts_ms, int64_t now)
{
    if (ts_ms < 0) {
        snprintf(buf, size, "-");
    } else {
        snprintf(buf, size, "%lld ms ago", (long long)(now > ts_ms ? now - ts_ms : 0));
    }
    return buf;
}

/* Voters and observers share one layout in the schema but not one C type. */
struct replica_view {
    int32_t id;
    int64_t log_end_offset, last_fetch_ms, last_caught_up_ms;
};

static struct replica_view voter_at(const struct describe_quorum_response_topics_partitions *q,
                                    int32_t i)
{
    const struct describe_quorum_response_topics_partitions_current_voters *r =
        &q->current_voters[i];
    return (struct replica_view){r->replica_id, r->log_end_offset, r->last_fetch_timestamp,
                                 r->last_caught_up_timestamp};
}

static struct replica_view observer_at(const struct describe_quorum_response_topics_partitions *q,
                                       int32_t i)
{
    const struct describe_quorum_response_topics_partitions_observers *r = &q->observers[i];
    return (struct replica_view){r->replica_id, r->log_end_offset, r->last_fetch_timestamp,
                                 r->last_caught_up_timestamp};
}

/* Asks every broker for its replicas' sizes: those DescribeCluster lists (fenced ones
 * marked, not asked), else those Metadata lists. */
static void load_replica_lag(struct status *st)
{
    int n = st->cluster != NULL ? st->cluster->brokers_count : st->md->broker_cnt;
    struct replica_lag_broker *b = xcalloc((size_t)MAX(n, 1), sizeof *b);
    for (int i = 0; i < n; i++) {
        if (st->cluster != NULL) {
            const struct describe_cluster_response_brokers *cb = &st->cluster->brokers[i];
            b[i] =
                (struct replica_lag_broker){cb->broker_id, (const char *)cb->host.ptr, cb->host.len,
                                            cb->port, st->fenced_listed && cb->is_fenced};
        } else {
            const struct rd_kafka_metadata_broker *mb = &st->md->brokers[i];
            b[i] = (struct replica_lag_broker){mb->id, mb->host, strlen(mb->host), mb->port, false};
        }
    }
    st->lag = replica_lag_collect(st->md, b, n);
    free(b);
}

/* ---- text ---- */

static void print_nodes_text(const struct status *st)
{
    struct table *t = table_new(5, "NODE", "ADDRESS", "RACK", "FENCED", "PARTITIONS-LED");
    char id[16], addr[300], rack[256], led[16];
    const char *fenced_unknown = "?";
    if (st->cluster != NULL) {
        for (int32_t i = 0; i < st->cluster->brokers_count; i++) {
            const struct describe_cluster_response_brokers *b = &st->cluster->brokers[i];
            snprintf(id, sizeof id, "%d", b->broker_id);
            snprintf(addr, sizeof addr, "%.*s:%d", (int)b->host.len, (const char *)b->host.ptr,
                     b->port);
            snprintf(rack, sizeof rack, "%.*s", (int)b->rack.len, (const char *)b->rack.ptr);
            snprintf(led, sizeof led, "%d", partitions_led(st->md, b->broker_id));
            table_add(t, id, addr, b->rack.ptr != NULL ? rack : NULL,
                      !st->fenced_listed ? fenced_unknown
                      : b->is_fenced     ? "yes"
                                         : "no",
                      led);
        }
    } else {
        for (int i = 0; i < st->md->broker_cnt; i++) {
            const struct rd_kafka_metadata_broker *b = &st->md->brokers[i];
            snprintf(id, sizeof id, "%d", b->id);
            snprintf(addr, sizeof addr, "%s:%d", b->host, b->port);
            snprintf(led, sizeof led, "%d", partitions_led(st->md, b->id));
            table_add(t, id, addr, NULL, fenced_unknown, led);
        }
    }
    table_print(t);
    table_free(t);
    if (st->cluster == NULL) {
        printf("(nodes from Metadata, racks unknown: %s)\n", st->cluster_why);
    }
    if (!st->fenced_listed)
        printf("Fenced brokers are not listed (DescribeCluster before v2 reports only "
               "unfenced ones).\n");
}

static void print_replicas_text(const struct status *st, bool voters)
{
    const struct describe_quorum_response_topics_partitions *q = st->quorum;
    int32_t n = voters ? q->current_voters_count : q->observers_count;
    if (!voters && n == 0) {
        printf("\nObservers: none\n");
        return;
    }
    int64_t leader_end = leader_log_end(q), now = now_ms();
    struct table *t = table_new(6, voters ? "VOTER" : "OBSERVER", "ADDRESS", "LOG-END", "LAG",
                                "LAST-FETCH", "LAST-CAUGHT-UP");
    for (int32_t i = 0; i < n; i++) {
        struct replica_view r = voters ? voter_at(q, i) : observer_at(q, i);
        char id[16], addr[300], end[24], lag[24], fetch[32], caught[32];
        snprintf(id, sizeof id, "%d", r.id);
        snprintf(lag, sizeof lag, "%lld", (long long)(leader_end - r.log_end_offset));
        table_add(t, id, voter_address(st->quorum_resp, r.id, addr, sizeof addr),
                  fmt_offset(end, sizeof end, r.log_end_offset), r.log_end_offset < 0 ? NULL : lag,
                  ago(fetch, sizeof fetch, r.last_fetch_ms, now),
                  ago(caught, sizeof caught, r.last_caught_up_ms, now));
    }
    if (!voters) {
        printf("\nObservers:\n");
    }
    table_print(t);
    table_free(t);
}

static void print_leaderless_text(const struct rd_kafka_metadata *md)
{
    struct table *t = table_new(3, "TOPIC", "PARTITION", "ERROR");
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *tp = &md->topics[i];
        for (int p = 0; p < tp->partition_cnt; p++) {
            if (leaderless(&tp->partitions[p])) {
                char id[16];
                snprintf(id, sizeof id, "%d", tp->partitions[p].id);
                table_add(t, tp->topic, id,
                          tp->partitions[p].err ? rd_kafka_err2name(tp->partitions[p].err) : NULL);
            }
        }
    }
    if (table_rows(t) == 0) {
        printf("Partitions without a leader: none\n");
    } else {
        printf("Partitions without a leader: %d\n", table_rows(t));
        table_print(t);
    }
    table_free(t);
}

static void print_under_replicated_text(const struct status *st)
{
    const struct rd_kafka_metadata *md = st->md;
    struct table *t = table_new(6, "TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "MIN-ISR");
    int below = 0;
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *tp = &md->topics[i];
        for (int p = 0; p < tp->partition_cnt; p++) {
            const struct rd_kafka_metadata_partition *mp = &tp->partitions[p];
            if (!under_replicated(mp))
                continue;
            char id[16], leader[16], replicas[256], isr[256], min[24];
            snprintf(id, sizeof id, "%d", mp->id);
            snprintf(leader, sizeof leader, "%d", mp->leader);
            int m = st->min_isr ? st->min_isr[i] : -1;
            snprintf(min, sizeof min, "%d%s", m, under_min_isr(st, i, mp) ? " (under)" : "");
            below += under_min_isr(st, i, mp);
            table_add(t, tp->topic, id, leader,
                      id_list(replicas, sizeof replicas, mp->replicas, mp->replica_cnt),
                      id_list(isr, sizeof isr, mp->isrs, mp->isr_cnt), m < 0 ? NULL : min);
        }
    }
    if (table_rows(t) == 0) {
        printf("Under-replicated partitions: none\n");
    } else {
        printf("Under-replicated partitions: %d, under min.insync.replicas: %d (acks=all "
               "refused there)\n",
               table_rows(t), below);
        table_print(t);
    }
    table_free(t);
}

static void print_text(const struct status *st)
{
    if (st->cluster != NULL) {
        printf("Cluster:     %.*s\n", (int)st->cluster->cluster_id.len,
               (const char *)st->cluster->cluster_id.ptr);
    } else {
        printf("Cluster:     %s\n", st->cluster_id != NULL ? st->cluster_id : "-");
    }
    printf("Controller:  %d\n", st->controller_id);
    if (st->quorum != NULL && st->quorum->leader_id != st->controller_id) {
        /* KRaft brokers name a random live broker as the controller to clients. */
        printf("             (as brokers report it to clients; the active controller is the "
               "quorum leader, %d)\n",
               st->quorum->leader_id);
    }
    printf("\n");
    print_nodes_text(st);

    printf("\nMetadata quorum (" METADATA_TOPIC "-0):\n");
    if (st->quorum == NULL) {
        printf("not available from this broker: %s\n", st->quorum_why);
    } else {
        printf("Leader:          %d\n", st->quorum->leader_id);
        printf("Epoch:           %d\n", st->quorum->leader_epoch);
        printf("High watermark:  %lld\n\n", (long long)st->quorum->high_watermark);
        print_replicas_text(st, true);
        print_replicas_text(st, false);
    }
    printf("\n");
    print_leaderless_text(st->md);
    print_under_replicated_text(st);
    replica_lag_print_text(st->lag);
}

/* ---- JSON ---- */

static void json_slice(struct slice s)
{
    if (s.ptr == NULL) {
        fputs("null", stdout);
    } else {
        json_str((const char *)s.ptr, s.len);
    }
}

static void print_replicas_json(const struct status *st, bool voters)
{
    const struct describe_quorum_response_topics_partitions *q = st->quorum;
    int32_t n = voters ? q->current_voters_count : q->observers_count;
    int64_t leader_end = leader_log_end(q);
    printf("[");
    for (int32_t i = 0; i < n; i++) {
        struct replica_view r = voters ? voter_at(q, i) : observer_at(q, i);
        char addr[300];
        voter_address(st->quorum_resp, r.id, addr, sizeof addr);
        printf("%s{\"id\": %d, \"address\": ", i ? ", " : "", r.id);
        json_cstr(strcmp(addr, "-") != 0 ? addr : NULL);
        printf(", \"log_end_offset\": %lld, \"lag\": %lld, \"last_fetch_timestamp\": %lld, "
               "\"last_caught_up_timestamp\": %lld}",
               (long long)r.log_end_offset, (long long)(leader_end - r.log_end_offset),
               (long long)r.last_fetch_ms, (long long)r.last_caught_up_ms);
    }
    printf("]");
}

static void print_json(const struct status *st)
{
    const struct rd_kafka_metadata *md = st->md;
    printf("{\"cluster_id\": ");
    if (st->cluster != NULL) {
        json_slice(st->cluster->cluster_id);
    } else {
        json_cstr(st->cluster_id);
    }
    printf(", \"controller_id\": %d, \"fenced_brokers_listed\": %s, \"nodes\": [",
           st->controller_id, st->fenced_listed ? "true" : "false");
    int n = st->cluster != NULL ? st->cluster->brokers_count : md->broker_cnt;
    for (int i = 0; i < n; i++) {
        int32_t id;
        printf("%s{\"id\": ", i ? ", " : "");
        if (st->cluster != NULL) {
            const struct describe_cluster_response_brokers *b = &st->cluster->brokers[i];
            id = b->broker_id;
            printf("%d, \"host\": ", id);
            json_slice(b->host);
            printf(", \"port\": %d, \"rack\": ", b->port);
            json_slice(b->rack);
            if (st->fenced_listed)
                printf(", \"fenced\": %s", b->is_fenced ? "true" : "false");
        } else {
            id = md->brokers[i].id;
            printf("%d, \"host\": ", id);
            json_cstr(md->brokers[i].host);
            printf(", \"port\": %d, \"rack\": null", md->brokers[i].port);
        }
        printf(", \"partitions_led\": %d}", partitions_led(md, id));
    }
    printf("], \"quorum\": ");
    if (st->quorum == NULL) {
        printf("{\"available\": false, \"reason\": ");
        json_cstr(st->quorum_why);
        printf("}");
    } else {
        printf("{\"available\": true, \"leader_id\": %d, \"leader_epoch\": %d, "
               "\"high_watermark\": %lld, \"voters\": ",
               st->quorum->leader_id, st->quorum->leader_epoch,
               (long long)st->quorum->high_watermark);
        print_replicas_json(st, true);
        printf(", \"observers\": ");
        print_replicas_json(st, false);
        printf("}");
    }
    printf(", \"partitions_without_leader\": [");
    const char *sep = "";
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *tp = &md->topics[i];
        for (int p = 0; p < tp->partition_cnt; p++) {
            if (leaderless(&tp->partitions[p])) {
                printf("%s{\"topic\": ", sep);
                json_cstr(tp->topic);
                printf(", \"partition\": %d, \"error\": ", tp->partitions[p].id);
                json_cstr(tp->partitions[p].err ? rd_kafka_err2name(tp->partitions[p].err) : NULL);
                printf("}");
                sep = ", ";
            }
        }
    }
    printf("], \"under_replicated_partitions\": [");
    sep = "";
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *tp = &md->topics[i];
        for (int p = 0; p < tp->partition_cnt; p++) {
            const struct rd_kafka_metadata_partition *mp = &tp->partitions[p];
            if (!under_replicated(mp))
                continue;
            char replicas[256], isr[256];
            printf("%s{\"topic\": ", sep);
            json_cstr(tp->topic);
            printf(", \"partition\": %d, \"leader\": %d, \"replicas\": [%s], \"isr\": [%s], "
                   "\"min_insync_replicas\": %d, \"under_min_isr\": %s}",
                   mp->id, mp->leader,
                   id_list(replicas, sizeof replicas, mp->replicas, mp->replica_cnt),
                   id_list(isr, sizeof isr, mp->isrs, mp->isr_cnt),
                   st->min_isr ? st->min_isr[i] : -1, under_min_isr(st, i, mp) ? "true" : "false");
            sep = ", ";
        }
    }
    printf("], \"replica_lag\": ");
    replica_lag_print_json(st->lag);
    printf("}\n");
}

static int cluster_status(struct cli_opts *o, bool json)
{
    struct status st = {.controller_id = -1};
    arena_init(&st.arena);
    buf_init(&st.cluster_frame);
    buf_init(&st.quorum_frame);
    rd_kafka_t *rk = cli_client(o, RD_KAFKA_PRODUCER, NULL, NULL);
    if (rk == NULL) {
        status_free(&st);
        return CLI_EXIT_FAIL;
    }
    if (cli_metadata(rk, &st.md) != 0) {
        rd_kafka_destroy(rk);
        status_free(&st);
        return CLI_EXIT_FAIL;
    }
    struct wire_conn c;
    const char *why;
    if (wire_connect(&c, o->bootstrap, &why) != 0) {
        snprintf(st.cluster_why, sizeof st.cluster_why, "%s", why);
        snprintf(st.quorum_why, sizeof st.quorum_why, "%s", why);
    } else {
        describe_cluster(&c, &st);
        describe_quorum(&c, &st);
        wire_close(&c);
        if (st.quorum == NULL && st.quorum_err == KERR_NOT_LEADER_OR_FOLLOWER && st.cluster != NULL)
            describe_quorum_at_controller(&st);
    }
    if (st.cluster == NULL) {
        /* Metadata carries the cluster id and controller too; librdkafka has them. */
        st.cluster_id = rd_kafka_clusterid(rk, CLI_TIMEOUT_MS);
        st.controller_id = rd_kafka_controllerid(rk, CLI_TIMEOUT_MS);
    }
    load_min_isr(rk, &st);
    load_replica_lag(&st);
    if (json) {
        print_json(&st);
    } else {
        print_text(&st);
    }
    status_free(&st);
    rd_kafka_destroy(rk);
    return 0;
}

int cluster_main(struct cli_opts *o, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(cluster_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : 0;
    }
    if (strcmp(argv[1], "up") == 0) {
        return cluster_up_main(o, argc, argv);
    }
    if (strcmp(argv[1], "down") == 0) {
        return cluster_down_main(o, argc, argv);
    }
    if (strcmp(argv[1], "drain") == 0) {
        return cluster_drain_main(o, argc, argv);
    }
    if (strcmp(argv[1], "status") != 0) {
        cli_err("unknown cluster command '%s'", argv[1]);
        fputs(cluster_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    static const struct option longopts[] = {
        {"bootstrap-server", required_argument, NULL, 'b'},
        {"verbose", no_argument, NULL, 'v'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    optind = 2;
    opterr = 1;
    int c;
    while ((c = getopt_long(argc, argv, "b:vh", longopts, NULL)) != -1) {
        if (cli_common_opt(o, c, optarg)) {
            continue;
        }
        switch (c) {
        case 'j': json = true; break;
        case 'h': fputs(cluster_usage, stdout); return 0;
        default: fputs(cluster_usage, stderr); return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        cli_err("cluster status takes no arguments ('%s')", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    return cluster_status(o, json);
}
