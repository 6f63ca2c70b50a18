/* Follower lag from DescribeLogDirs, for `samsa cluster status`; see replica_lag.h for
 * what the lag is and why it is measured in bytes.
 *
 * Three steps: ask (one thread per broker in flight, each with its own connection, arena
 * and frame, so the workers share nothing but the next-broker counter), match (every
 * answered partition replica into a slot per replica of md, in metadata order), and
 * print (each replica's lag worked out against its leader's slot). */
#include "replica_lag.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

/* Why a replica's size is not known. */
enum unknown {
    KNOWN = 0,
    UNKNOWN_NOT_LISTED,   /* its broker is not among the brokers listed */
    UNKNOWN_FENCED,       /* its broker is fenced, so not asked */
    UNKNOWN_NOT_ASKED,    /* past REPLICA_LAG_MAX_BROKERS */
    UNKNOWN_UNREACHABLE,  /* its broker did not answer DescribeLogDirs */
    UNKNOWN_NOT_REPORTED, /* its broker answered without it */
};

static const char *const unknown_names[] = {
    [KNOWN] = "known",
    [UNKNOWN_NOT_LISTED] = "not listed",
    [UNKNOWN_FENCED] = "fenced",
    [UNKNOWN_NOT_ASKED] = "not asked",
    [UNKNOWN_UNREACHABLE] = "unreachable",
    [UNKNOWN_NOT_REPORTED] = "not reported",
};

/* One broker and what it answered. Written only by the worker that asks it, read only
 * after every worker has been joined. */
struct asked {
    int32_t id;
    char addr[300];     /* "host:port" */
    enum unknown state; /* KNOWN once it answered */
    char why[512];      /* why it did not answer */
    struct buf frame;   /* the answer's bytes, which resp borrows */
    struct arena arena; /* resp and what it points to */
    const struct describe_log_dirs_response *resp;
};

/* One replica of one partition, as its broker reported it. */
struct replica_obs {
    int64_t size_bytes; /* PartitionSize; -1 while unknown */
    int64_t offset_lag; /* OffsetLag as reported; -1 while unknown */
    enum unknown unknown;
};

struct replica_lag {
    const struct rd_kafka_metadata *md; /* borrowed */
    struct asked *brokers;              /* sorted by id */
    int n_brokers;
    size_t *topic_part0; /* per topic: the index of its first partition in part_obs0 */
    size_t *part_obs0;   /* per partition, metadata order: its first replica in obs */
    struct replica_obs *obs;
};

/* The slots of the replicas of md's topic t, partition position p. */
static struct replica_obs *obs_of(const struct replica_lag *rl, int t, int p)
{
    return &rl->obs[rl->part_obs0[rl->topic_part0[t] + (size_t)p]];
}

/* ---- ask ---- */

struct pool {
    struct asked **brokers;
    int n;
    int next; /* the next broker to ask, under lock */
    pthread_mutex_t lock;
};

static void ask(struct asked *b)
{
    struct wire_conn c;
    const char *why;
    b->state = UNKNOWN_UNREACHABLE;
    if (wire_connect_within(&c, b->addr, REPLICA_LAG_TIMEOUT_MS, &why) != 0) {
        snprintf(b->why, sizeof b->why, "%s", why);
        return;
    }
    int16_t v = wire_version(&c, API_KEY_DESCRIBE_LOG_DIRS);
    if (v < 0) {
        snprintf(b->why, sizeof b->why, "%.300s does not offer DescribeLogDirs", c.peer);
        wire_close(&c);
        return;
    }
    struct describe_log_dirs_request req;
    describe_log_dirs_request_init(&req);
    req.topics_count = -1; /* null: every partition the broker holds */
    struct buf body;
    buf_init(&body);
    describe_log_dirs_request_encode(&body, v, &req);
    struct reader r;
    int rc = wire_call(&c, API_KEY_DESCRIBE_LOG_DIRS, v, &body, &b->frame, &r, &why);
    buf_free(&body);
    wire_close(&c);
    if (rc != 0) {
        snprintf(b->why, sizeof b->why, "%s", why);
        return;
    }
    struct describe_log_dirs_response *resp = arena_alloc(&b->arena, sizeof *resp);
    if (describe_log_dirs_response_decode(&r, v, &b->arena, resp) != 0) {
        snprintf(b->why, sizeof b->why, "%.300s answered a malformed DescribeLogDirs", b->addr);
    } else if (resp->error_code != KERR_NONE) {
        snprintf(b->why, sizeof b->why, "DescribeLogDirs: %s", kafka_error_name(resp->error_code));
    } else {
        b->resp = resp;
        b->state = KNOWN;
    }
}

static void *ask_worker(void *arg)
{
    struct pool *pool = arg;
    for (;;) {
        pthread_mutex_lock(&pool->lock);
        int i = pool->next++;
        pthread_mutex_unlock(&pool->lock);
        if (i >= pool->n)
            return NULL;
        ask(pool->brokers[i]);
    }
}

/* Asks the n brokers of b, REPLICA_LAG_PARALLEL at a time. The calling thread is one of
 * the workers, so a thread that cannot be created only makes the asking slower. */
static void ask_all(struct asked **b, int n)
{
    struct pool pool = {.brokers = b, .n = n};
    pthread_mutex_init(&pool.lock, NULL);
    pthread_t threads[REPLICA_LAG_PARALLEL - 1];
    int started = 0;
    for (int i = 0; i < REPLICA_LAG_PARALLEL - 1 && i < n - 1; i++) {
        if (pthread_create(&threads[started], NULL, ask_worker, &pool) == 0)
            started++;
    }
    ask_worker(&pool);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    pthread_mutex_destroy(&pool.lock);
}

/* ---- match ---- */

static int by_id(const void *a, const void *b)
{
    int32_t x = ((const struct asked *)a)->id, y = ((const struct asked *)b)->id;
    return (x > y) - (x < y);
}

static const struct asked *find_broker(const struct replica_lag *rl, int32_t id)
{
    struct asked key = {.id = id};
    return bsearch(&key, rl->brokers, (size_t)rl->n_brokers, sizeof key, by_id);
}

/* A topic's name and its index in md, for looking answers up by name. */
struct topic_ix {
    const char *name;
    int t;
};

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct topic_ix *)a)->name, ((const struct topic_ix *)b)->name);
}

/* The index in md of the topic called name, or -1. ix is sorted by name. */
static int find_topic(const struct topic_ix *ix, int n, struct slice name)
{
    if (name.ptr == NULL)
        return -1;
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        size_t len = strlen(ix[mid].name);
        int c = memcmp(ix[mid].name, name.ptr, MIN(len, name.len));
        if (c == 0)
            c = (len > name.len) - (len < name.len);
        if (c == 0)
            return ix[mid].t;
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -1;
}

/* The position of partition `index` in tp->partitions (librdkafka lists them in order,
 * but does not promise it), or -1. */
static int find_partition(const struct rd_kafka_metadata_topic *tp, int32_t index)
{
    if (index >= 0 && index < tp->partition_cnt && tp->partitions[index].id == index)
        return index;
    for (int p = 0; p < tp->partition_cnt; p++) {
        if (tp->partitions[p].id == index)
            return p;
    }
    return -1;
}

/* The position of broker id among mp's replicas, or -1. */
static int replica_pos(const struct rd_kafka_metadata_partition *mp, int32_t id)
{
    for (int r = 0; r < mp->replica_cnt; r++) {
        if (mp->replicas[r] == id)
            return r;
    }
    return -1;
}

static bool in_isr(const struct rd_kafka_metadata_partition *mp, int32_t id)
{
    for (int i = 0; i < mp->isr_cnt; i++) {
        if (mp->isrs[i] == id)
            return true;
    }
    return false;
}

/* Puts what broker b reported into the slots of its replicas. */
static void take_answer(struct replica_lag *rl, const struct asked *b, const struct topic_ix *ix)
{
    const struct describe_log_dirs_response *resp = b->resp;
    for (int32_t d = 0; d < resp->results_count; d++) {
        const struct describe_log_dirs_response_results *dir = &resp->results[d];
        if (dir->error_code != KERR_NONE)
            continue; /* an offline dir lists nothing: its replicas stay "not reported" */
        for (int32_t i = 0; i < dir->topics_count; i++) {
            const struct describe_log_dirs_response_results_topics *to = &dir->topics[i];
            int t = find_topic(ix, rl->md->topic_cnt, to->name);
            if (t < 0)
                continue; /* created since the metadata was read */
            const struct rd_kafka_metadata_topic *tp = &rl->md->topics[t];
            for (int32_t j = 0; j < to->partitions_count; j++) {
                const struct describe_log_dirs_response_results_topics_partitions *pa =
                    &to->partitions[j];
                int p = pa->is_future_key || pa->partition_size < 0
                            ? -1
                            : find_partition(tp, pa->partition_index);
                int r = p < 0 ? -1 : replica_pos(&tp->partitions[p], b->id);
                if (r < 0)
                    continue; /* a future replica, no size, or one md does not give b */
                struct replica_obs *o = obs_of(rl, t, p) + r;
                o->size_bytes = pa->partition_size;
                o->offset_lag = pa->offset_lag; /* Kafka: -1 when it has none */
                o->unknown = KNOWN;
            }
        }
    }
}

/* One slot per replica of every partition of md, each unknown for its broker's reason
 * until an answer fills it. */
static void make_slots(struct replica_lag *rl)
{
    const struct rd_kafka_metadata *md = rl->md;
    size_t n_parts = 0, n_obs = 0;
    rl->topic_part0 = xcalloc((size_t)MAX(md->topic_cnt, 1), sizeof *rl->topic_part0);
    for (int t = 0; t < md->topic_cnt; t++) {
        rl->topic_part0[t] = n_parts;
        n_parts += (size_t)MAX(md->topics[t].partition_cnt, 0);
    }
    rl->part_obs0 = xcalloc(MAX(n_parts, 1), sizeof *rl->part_obs0);
    for (int t = 0; t < md->topic_cnt; t++) {
        for (int p = 0; p < md->topics[t].partition_cnt; p++) {
            rl->part_obs0[rl->topic_part0[t] + (size_t)p] = n_obs;
            n_obs += (size_t)MAX(md->topics[t].partitions[p].replica_cnt, 0);
        }
    }
    rl->obs = xcalloc(MAX(n_obs, 1), sizeof *rl->obs);
    for (int t = 0; t < md->topic_cnt; t++) {
        for (int p = 0; p < md->topics[t].partition_cnt; p++) {
            const struct rd_kafka_metadata_partition *mp = &md->topics[t].partitions[p];
            struct replica_obs *o = obs_of(rl, t, p);
            for (int r = 0; r < mp->replica_cnt; r++) {
                const struct asked *b = find_broker(rl, mp->replicas[r]);
                o[r] = (struct replica_obs){
                    .size_bytes = -1,
                    .offset_lag = -1,
                    .unknown = b == NULL           ? UNKNOWN_NOT_LISTED
                               : b->state == KNOWN ? UNKNOWN_NOT_REPORTED
                                                   : b->state,
                };
            }
        }
    }
}

struct replica_lag *replica_lag_collect(const struct rd_kafka_metadata *md,
                                        const struct replica_lag_broker *brokers, int n)
{
    struct replica_lag *rl = xcalloc(1, sizeof *rl);
    rl->md = md;
    rl->n_brokers = MAX(n, 0);
    rl->brokers = xcalloc((size_t)MAX(n, 1), sizeof *rl->brokers);
    for (int i = 0; i < n; i++) {
        struct asked *b = &rl->brokers[i];
        const struct replica_lag_broker *in = &brokers[i];
        b->id = in->id;
        bool v6 = in->host_len > 0 && memchr(in->host, ':', in->host_len) != NULL;
        snprintf(b->addr, sizeof b->addr, "%s%.*s%s:%d", v6 ? "[" : "", (int)in->host_len, in->host,
                 v6 ? "]" : "", in->port);
        b->state = in->fenced ? UNKNOWN_FENCED : UNKNOWN_NOT_ASKED;
        buf_init(&b->frame);
        arena_init(&b->arena);
    }
    qsort(rl->brokers, (size_t)rl->n_brokers, sizeof *rl->brokers, by_id);

    /* Every unfenced broker, up to the bound (the rest stay "not asked"). */
    struct asked **todo = xcalloc((size_t)MAX(n, 1), sizeof *todo);
    int n_todo = 0;
    for (int i = 0; i < rl->n_brokers && n_todo < REPLICA_LAG_MAX_BROKERS; i++) {
        if (rl->brokers[i].state == UNKNOWN_NOT_ASKED)
            todo[n_todo++] = &rl->brokers[i];
    }
    ask_all(todo, n_todo);
    free(todo);

    make_slots(rl);

    struct topic_ix *ix = xcalloc((size_t)MAX(md->topic_cnt, 1), sizeof *ix);
    for (int t = 0; t < md->topic_cnt; t++)
        ix[t] = (struct topic_ix){md->topics[t].topic, t};
    qsort(ix, (size_t)md->topic_cnt, sizeof *ix, by_name);
    for (int i = 0; i < rl->n_brokers; i++) {
        if (rl->brokers[i].state == KNOWN)
            take_answer(rl, &rl->brokers[i], ix);
    }
    free(ix);
    return rl;
}

void replica_lag_free(struct replica_lag *rl)
{
    if (rl == NULL)
        return;
    for (int i = 0; i < rl->n_brokers; i++) {
        buf_free(&rl->brokers[i].frame);
        arena_free(&rl->brokers[i].arena);
    }
    free(rl->brokers);
    free(rl->topic_part0);
    free(rl->part_obs0);
    free(rl->obs);
    free(rl);
}

/* ---- print ---- */

/* One replica as the report shows it. */
struct view {
    int32_t id;
    bool in_isr;
    int64_t size_bytes; /* -1: unknown */
    int64_t offset_lag; /* -1: unknown */
    int64_t lag_bytes;  /* the leader's size minus this one's, at least 0; -1: unknown */
    char why[48];       /* why lag_bytes is unknown ("" when known) */
};

static struct view view_of(const struct replica_lag *rl, int t, int p, int r)
{
    const struct rd_kafka_metadata_partition *mp = &rl->md->topics[t].partitions[p];
    const struct replica_obs *o = obs_of(rl, t, p);
    struct view v = {
        .id = mp->replicas[r],
        .in_isr = in_isr(mp, mp->replicas[r]),
        .size_bytes = o[r].size_bytes,
        .offset_lag = o[r].offset_lag,
        .lag_bytes = -1,
    };
    int lead = mp->leader < 0 ? -1 : replica_pos(mp, mp->leader);
    if (o[r].unknown != KNOWN) {
        snprintf(v.why, sizeof v.why, "%s", unknown_names[o[r].unknown]);
    } else if (lead < 0) {
        snprintf(v.why, sizeof v.why, "no leader");
    } else if (o[lead].unknown != KNOWN) {
        snprintf(v.why, sizeof v.why, "leader %s", unknown_names[o[lead].unknown]);
    } else {
        v.lag_bytes = MAX(o[lead].size_bytes - o[r].size_bytes, 0);
    }
    return v;
}

/* Behind its leader, out of the ISR, or its broker did not tell: the text table lists
 * it. One whose lag is unknown only for want of its leader's size is left out: the
 * leader's own row says why. */
static bool notable(const struct view *v)
{
    return v->lag_bytes > 0 || v->offset_lag > 0 || !v->in_isr || v->size_bytes < 0;
}

/* "0", "512 B", "4.0 KiB", "1.3 GiB". */
static const char *fmt_bytes(char *buf, size_t size, int64_t n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (n < 1024) {
        snprintf(buf, size, n == 0 ? "0" : "%lld B", (long long)n);
        return buf;
    }
    double v = (double)n;
    size_t u = 0;
    while (v >= 1024 && u + 1 < ARRAY_LEN(units)) {
        v /= 1024;
        u++;
    }
    snprintf(buf, size, "%.1f %s", v, units[u]);
    return buf;
}

/* A row of the text table, with what it is sorted by: user topics before internal
 * ones, then the replicas known to be behind (most first), then those out of the ISR,
 * then the unknown; metadata order within each. */
struct row {
    int t, p, r;
    bool internal;
    int rank; /* 0 behind, 1 caught up but out of the ISR, 2 unknown */
    int64_t lag_bytes;
    size_t order;
};

static int row_cmp(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    if (x->internal != y->internal)
        return x->internal ? 1 : -1;
    if (x->rank != y->rank)
        return x->rank - y->rank;
    if (x->lag_bytes != y->lag_bytes)
        return x->lag_bytes > y->lag_bytes ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

void replica_lag_print_text(const struct replica_lag *rl)
{
    const struct rd_kafka_metadata *md = rl->md;
    size_t n_rows = 0, cap = 0, n_replicas = 0;
    int n_partitions = 0;
    struct row *rows = NULL;
    for (int t = 0; t < md->topic_cnt; t++) {
        for (int p = 0; p < md->topics[t].partition_cnt; p++) {
            const struct rd_kafka_metadata_partition *mp = &md->topics[t].partitions[p];
            if (mp->replica_cnt < 2)
                continue;
            n_partitions++;
            for (int r = 0; r < mp->replica_cnt; r++) {
                struct view v = view_of(rl, t, p, r);
                n_replicas++;
                if (!notable(&v))
                    continue;
                if (n_rows == cap) {
                    cap = cap ? cap * 2 : 64;
                    rows = xrealloc(rows, cap * sizeof *rows);
                }
                rows[n_rows] = (struct row){
                    .t = t,
                    .p = p,
                    .r = r,
                    .internal = strncmp(md->topics[t].topic, "__", 2) == 0,
                    .rank = v.lag_bytes > 0    ? 0
                            : v.lag_bytes == 0 ? 1
                                               : 2,
                    .lag_bytes = v.lag_bytes,
                    .order = n_rows,
                };
                n_rows++;
            }
        }
    }
    if (n_partitions == 0) {
        printf("Replica lag: no partition has more than one replica\n");
    } else if (n_rows == 0) {
        printf("Replica lag: none (all %zu replicas of %d replicated partitions caught up)\n",
               n_replicas, n_partitions);
    } else {
        qsort(rows, n_rows, sizeof *rows, row_cmp);
        printf("Replica lag: %zu of %zu replicas behind their leader, out of the ISR or "
               "unknown\n",
               n_rows, n_replicas);
        struct table *tab =
            table_new(7, "TOPIC", "PARTITION", "REPLICA", "LEADER", "IN-ISR", "SIZE", "LAG");
        for (size_t i = 0; i < n_rows && i < REPLICA_LAG_TEXT_ROWS; i++) {
            const struct rd_kafka_metadata_topic *tp = &md->topics[rows[i].t];
            const struct rd_kafka_metadata_partition *mp = &tp->partitions[rows[i].p];
            struct view v = view_of(rl, rows[i].t, rows[i].p, rows[i].r);
            char part[16], id[16], leader[16], size[32], lag[80];
            snprintf(part, sizeof part, "%d", mp->id);
            snprintf(id, sizeof id, "%d", v.id);
            snprintf(leader, sizeof leader, "%d", mp->leader);
            if (v.lag_bytes < 0) {
                snprintf(lag, sizeof lag, "unknown (%s)", v.why);
            } else {
                fmt_bytes(lag, sizeof lag, v.lag_bytes);
            }
            table_add(tab, tp->topic, part, id, leader, v.in_isr ? "yes" : "no",
                      v.size_bytes < 0 ? NULL : fmt_bytes(size, sizeof size, v.size_bytes), lag);
        }
        table_print(tab);
        table_free(tab);
        if (n_rows > REPLICA_LAG_TEXT_ROWS)
            printf("... and %zu more (--json lists every replica)\n",
                   n_rows - REPLICA_LAG_TEXT_ROWS);
    }
    free(rows);
    for (int i = 0; i < rl->n_brokers; i++) {
        const struct asked *b = &rl->brokers[i];
        if (b->state == UNKNOWN_UNREACHABLE) {
            printf("Broker %d did not answer DescribeLogDirs: %s\n", b->id, b->why);
        } else if (b->state == UNKNOWN_NOT_ASKED) {
            printf("Broker %d was not asked (more than %d brokers)\n", b->id,
                   REPLICA_LAG_MAX_BROKERS);
        }
    }
}

static void json_i64_or_null(int64_t v)
{
    if (v < 0) {
        fputs("null", stdout);
    } else {
        printf("%lld", (long long)v);
    }
}

void replica_lag_print_json(const struct replica_lag *rl)
{
    const struct rd_kafka_metadata *md = rl->md;
    printf("{\"brokers\": [");
    for (int i = 0; i < rl->n_brokers; i++) {
        const struct asked *b = &rl->brokers[i];
        printf("%s{\"id\": %d, \"address\": ", i ? ", " : "", b->id);
        json_cstr(b->addr);
        printf(", \"answered\": %s, \"reason\": ", b->state == KNOWN ? "true" : "false");
        json_cstr(b->state == KNOWN                 ? NULL
                  : b->state == UNKNOWN_UNREACHABLE ? b->why
                                                    : unknown_names[b->state]);
        printf("}");
    }
    printf("], \"partitions\": [");
    const char *sep = "";
    for (int t = 0; t < md->topic_cnt; t++) {
        for (int p = 0; p < md->topics[t].partition_cnt; p++) {
            const struct rd_kafka_metadata_partition *mp = &md->topics[t].partitions[p];
            printf("%s{\"topic\": ", sep);
            json_cstr(md->topics[t].topic);
            printf(", \"partition\": %d, \"leader\": %d, \"replicas\": [", mp->id, mp->leader);
            for (int r = 0; r < mp->replica_cnt; r++) {
                struct view v = view_of(rl, t, p, r);
                printf("%s{\"id\": %d, \"in_isr\": %s, \"size_bytes\": ", r ? ", " : "", v.id,
                       v.in_isr ? "true" : "false");
                json_i64_or_null(v.size_bytes);
                printf(", \"offset_lag\": ");
                json_i64_or_null(v.offset_lag);
                printf(", \"lag_bytes\": ");
                json_i64_or_null(v.lag_bytes);
                printf(", \"unknown\": ");
                json_cstr(v.lag_bytes < 0 ? v.why : NULL);
                printf("}");
            }
            printf("]}");
            sep = ", ";
        }
    }
    printf("]}");
}
