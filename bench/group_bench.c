/* samsa-group-bench: consumer-group and compaction benchmarks on librdkafka (bench/run.sh).
 *
 *   samsa-group-bench rebalance [-m 10] [-p 100] [-r 3] [--heartbeat-ms 1000]
 *       MEMBERS librdkafka consumers in one group (one process, each polled from its own
 *       thread, eager protocol: range/roundrobin) subscribe to a P-partition topic. Once
 *       every partition is owned, each repetition (a) subscribes one more member and times
 *       until every member's rebalance callback has run with the new assignment and all P
 *       partitions are owned exactly once, then (b) closes the longest-standing member
 *       (rd_kafka_consumer_close) and times until the remaining MEMBERS own all P again.
 *       Ownership is tracked from the rebalance callbacks; a partition handed to a member
 *       while another still owns it, a lost assignment or a rebalance that does not settle
 *       within 3 session timeouts fails the run. One line per event:
 *         join: T ms, detect D ms, sync S ms [...]      leave: T ms, detect D ms, ...
 *       T = start (subscribe / consumer_close) -> the last member's assign callback;
 *       D = start -> the last existing member's revoke callback (when the last member
 *       noticed the rebalance, at its next heartbeat); S = T - D (rejoin, JoinGroup and
 *       SyncGroup round trips, the leader's assignment, the callbacks).
 *
 *   samsa-group-bench commits [-c 16] [-k 4] [-p 16] [-d 8] [-w 8]
 *       C consumers, each in its own group, assign() K partitions of a P-partition topic
 *       (at the end, it stays empty) and commit explicit offsets asynchronously in a loop
 *       (offset n on every partition for the n-th commit), at most W commits in flight each,
 *       for D seconds. Counts partition offsets acknowledged without error in the
 *       commit callbacks: one commit = one partition's offset, so an OffsetCommit request
 *       for K partitions counts K. Then reads every consumer's committed offsets back
 *       (rd_kafka_committed) and checks they equal the last values committed.
 *         commits: N commits in T s: R commits/s, Q requests/s, errors E, verified V of V [...]
 *
 *   samsa-group-bench compact [--policy compact|delete] [--keys 1000000] [-d 30] [-p 4]
 *                             [--segment-bytes 8388608] [--dirty-ratio 0.1] [-s 100]
 *                             [--producers 2] [-a 1] [--verify]
 *       Creates the topic with that cleanup.policy, segment.bytes and
 *       min.cleanable.dirty.ratio, then PRODUCERS producers (threads) write keyed records for
 *       D seconds without throttling: key k (8 bytes, 0 <= k < KEYS) in rounds over the key
 *       space, producer j owning the keys k % PRODUCERS == j, partition k % P. The value
 *       (S bytes) carries the round and the key. With --verify, a consumer then reads every
 *       partition up to its end and checks that each key's records come in increasing
 *       rounds and the last one is the last round produced for it (compaction may drop
 *       older rounds, never the newest), and that no unknown key shows up.
 *         produce: N records B bytes in T s: R records/s, M MB/s, errors E [...]
 *         verify: N records read, K keys, errors E [...]
 *
 * Exit status: 0 when everything checked out, 1 on a failed check (a failed commit or
 * produce, a partition owned twice, a lost or wrong record, a timeout), 2 on bad usage or
 * a setup failure.
 */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PARTITIONS 1024
#define MAX_MEMBERS 256
#define MAX_COMMITTERS 256
#define MAX_COMMIT_PARTS 64
#define LAT_RING 4096     /* > the commits one consumer may have in flight */
#define LAT_BUCKETS 20000 /* 0.1 ms each: up to 2 s */
#define MAX_PRODUCERS 16
#define MAX_VALUE_BYTES 1024
#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull

static struct {
    const char *brokers, *topic, *policy, *acks;
    long partitions, members, reps, heartbeat_ms, session_ms;
    long committers, commit_parts, seconds, window;
    long keys, segment_bytes, value_bytes, producers;
    const char *dirty_ratio;
    int verify, quiet;
    const char *xk[32], *xv[32]; /* -X librdkafka properties, applied to every client */
    int nx;
} opt = {.brokers = "127.0.0.1:9092",
         .policy = "compact",
         .acks = "1",
         .partitions = -1,
         .members = 10,
         .reps = 3,
         .heartbeat_ms = 1000,
         .session_ms = 10000,
         .committers = 16,
         .commit_parts = 4,
         .seconds = -1,
         .window = 8,
         .keys = 1000000,
         .segment_bytes = 8388608,
         .value_bytes = 100,
         .producers = 2,
         .dirty_ratio = "0.1"};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Wall-clock time as the broker's log prints it (2026-01-31T12:34:56.789Z), so that
 * bench/run.sh can tell which of its log lines fall inside a phase. */
static void wall_iso(char *out, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%.19s.%03dZ", buf, (int)(ts.tv_nsec / 1000000L) % 1000);
}

static double ms_since(uint64_t t0, uint64_t t)
{
    return (double)(t - t0) / 1e6;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "samsa-group-bench: %s: %s\n", what, detail);
    exit(2);
}

static void fail(const char *what)
{
    fprintf(stderr, "samsa-group-bench: FAILED: %s\n", what);
    fflush(stdout);
    exit(1);
}

static void set_conf(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[512];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK)
        die(k, err);
}

static void set_conf_long(rd_kafka_conf_t *c, const char *k, long v)
{
    char num[32];
    snprintf(num, sizeof num, "%ld", v);
    set_conf(c, k, num);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    if (!opt.quiet)
        fprintf(stderr, "samsa-group-bench: client %s: %s: %s\n", rd_kafka_name(rk),
                rd_kafka_err2name(err), reason);
}

static rd_kafka_conf_t *base_conf(void)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    set_conf(c, "bootstrap.servers", opt.brokers);
    rd_kafka_conf_set_error_cb(c, error_cb);
    for (int i = 0; i < opt.nx; i++)
        set_conf(c, opt.xk[i], opt.xv[i]);
    return c;
}

static rd_kafka_t *new_client(rd_kafka_type_t type, rd_kafka_conf_t *c)
{
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof err);
    if (!rk)
        die("rd_kafka_new", err);
    return rk;
}

/* ---------- topics ---------- */

/* Creates opt.topic with PARTITIONS partitions and the given configs (NULL-terminated
 * name/value pairs); an existing topic is fine. */
static void create_topic(rd_kafka_t *rk, long partitions, const char *const *configs)
{
    char err[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(opt.topic, (int)partitions, 1, err, sizeof err);
    if (!nt)
        die("NewTopic", err);
    for (int i = 0; configs && configs[i]; i += 2)
        if (rd_kafka_NewTopic_set_config(nt, configs[i], configs[i + 1]))
            die("NewTopic config", configs[i]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    if (!ev)
        die("CreateTopics", "no answer within 15 s");
    if (rd_kafka_event_error(ev))
        die("CreateTopics", rd_kafka_event_error_string(ev));
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t cnt = 0;
    const rd_kafka_topic_result_t **tr =
        res ? rd_kafka_CreateTopics_result_topics(res, &cnt) : NULL;
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            die("CreateTopics", rd_kafka_topic_result_error_string(tr[i]));
    }
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
}

/* Waits until metadata shows opt.topic with PARTITIONS led partitions. */
static void wait_for_partitions(rd_kafka_t *rk, long partitions)
{
    int n = 0;
    for (int tries = 0; tries < 150; tries++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *t = rd_kafka_topic_new(rk, opt.topic, NULL);
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 5000);
        rd_kafka_topic_destroy(t);
        int led = 0;
        n = 0;
        if (!e && md->topic_cnt == 1 && !md->topics[0].err) {
            n = md->topics[0].partition_cnt;
            for (int p = 0; p < n; p++)
                led += md->topics[0].partitions[p].leader >= 0;
        }
        if (!e)
            rd_kafka_metadata_destroy(md);
        if (n > 0 && led == n)
            break;
        n = 0;
        usleep(100000);
    }
    if (n != partitions) {
        fprintf(stderr, "samsa-group-bench: topic %s has %d led partitions, expected %ld\n",
                opt.topic, n, partitions);
        exit(2);
    }
}

static void setup_topic(long partitions, const char *const *configs)
{
    rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, base_conf());
    create_topic(rk, partitions, configs);
    wait_for_partitions(rk, partitions);
    rd_kafka_destroy(rk);
}

static int median_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    if (n == 0)
        return -1;
    qsort(v, (size_t)n, sizeof *v, median_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---------- rebalance ---------- */

struct member {
    int id;
    rd_kafka_t *rk;
    pthread_t thread;
    atomic_int stop;
    int live;        /* counted in the group (set before subscribe, cleared before close) */
    int assigned;    /* holds an assignment (last callback was an assign) */
    int owned;       /* partitions in that assignment */
    uint64_t rev_ns; /* first revoke callback since the event started (0: none) */
    uint64_t asg_ns; /* last assign callback since the event started (0: none) */
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct member m[MAX_MEMBERS];
    int n; /* slots used */
    int owner[MAX_PARTITIONS];
    long errors;
    char first_error[512];
} rb = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

__attribute__((format(printf, 1, 2))) static void rb_error(const char *fmt, ...)
{
    /* under rb.mu */
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (rb.errors++ == 0)
        snprintf(rb.first_error, sizeof rb.first_error, "%s", msg);
    if (rb.errors <= 5)
        fprintf(stderr, "samsa-group-bench: %s\n", msg);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct member *m = opaque;
    uint64_t t = now_ns();
    pthread_mutex_lock(&rb.mu);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (m->assigned)
            rb_error("member %d: assigned again without a revoke (%d partitions, then %d)", m->id,
                     m->owned, parts->cnt);
        for (int i = 0; i < parts->cnt; i++) {
            int p = parts->elems[i].partition;
            if (strcmp(parts->elems[i].topic, opt.topic) || p < 0 || p >= opt.partitions) {
                rb_error("member %d: assigned an unknown partition %d (of %d)", m->id, p,
                         (int)opt.partitions);
                continue;
            }
            if (rb.owner[p] >= 0 && rb.owner[p] != m->id)
                rb_error("partition %d owned twice: assigned to member %d while member %d "
                         "still owns it",
                         p, m->id, rb.owner[p]);
            rb.owner[p] = m->id;
        }
        m->assigned = 1;
        m->owned = parts->cnt;
        m->asg_ns = t;
    } else {
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            rb_error("member %d: rebalance error: %s", m->id, rd_kafka_err2str(err));
        else if (rd_kafka_assignment_lost(rk))
            rb_error("member %d: assignment lost (evicted from the group?), %d partitions", m->id,
                     m->owned);
        for (int p = 0; p < opt.partitions; p++)
            if (rb.owner[p] == m->id)
                rb.owner[p] = -1;
        m->assigned = 0;
        m->owned = 0;
        if (!m->rev_ns)
            m->rev_ns = t;
    }
    pthread_cond_broadcast(&rb.cv);
    pthread_mutex_unlock(&rb.mu);
    rd_kafka_resp_err_t e =
        rd_kafka_assign(rk, err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? parts : NULL);
    if (e) {
        pthread_mutex_lock(&rb.mu);
        rb_error("member %d: rd_kafka_assign failed: %s", m->id, rd_kafka_err2str(e));
        pthread_mutex_unlock(&rb.mu);
    }
}

static void *member_thread(void *arg)
{
    struct member *m = arg;
    while (!atomic_load(&m->stop)) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(m->rk, 100);
        if (!msg)
            continue;
        if (msg->err && msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            pthread_mutex_lock(&rb.mu);
            rb_error("member %d: consumer error: %s", m->id, rd_kafka_message_errstr(msg));
            pthread_mutex_unlock(&rb.mu);
        }
        rd_kafka_message_destroy(msg);
    }
    return NULL;
}

/* Creates a member in a new slot and starts its poll thread (not yet subscribed). */
static struct member *member_new(const char *group)
{
    if (rb.n >= MAX_MEMBERS)
        die("rebalance", "too many members");
    struct member *m = &rb.m[rb.n];
    m->id = rb.n++;
    rd_kafka_conf_t *c = base_conf();
    char name[32];
    snprintf(name, sizeof name, "member-%d", m->id);
    set_conf(c, "client.id", name);
    set_conf(c, "group.id", group);
    set_conf_long(c, "session.timeout.ms", opt.session_ms);
    set_conf_long(c, "heartbeat.interval.ms", opt.heartbeat_ms);
    set_conf(c, "partition.assignment.strategy", "range");
    set_conf(c, "enable.auto.commit", "false");
    rd_kafka_conf_set_rebalance_cb(c, rebalance_cb);
    rd_kafka_conf_set_opaque(c, m);
    m->rk = new_client(RD_KAFKA_CONSUMER, c);
    rd_kafka_poll_set_consumer(m->rk);
    wait_for_partitions(m->rk, opt.partitions); /* connected, metadata known */
    if (pthread_create(&m->thread, NULL, member_thread, m))
        die("pthread_create", "member");
    return m;
}

static void member_subscribe(struct member *m)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, opt.topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(m->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        die("subscribe", rd_kafka_err2str(e));
}

/* Under rb.mu: every live member has been assigned since the event started and holds its
 * assignment, the live members own all partitions, and no partition has a dead owner. */
static int rb_settled(void)
{
    int sum = 0;
    for (int i = 0; i < rb.n; i++) {
        struct member *m = &rb.m[i];
        if (!m->live)
            continue;
        if (!m->asg_ns || !m->assigned)
            return 0;
        sum += m->owned;
    }
    if (sum != opt.partitions)
        return 0;
    for (int p = 0; p < opt.partitions; p++)
        if (rb.owner[p] < 0 || !rb.m[rb.owner[p]].live)
            return 0;
    return 1;
}

static void rb_mark(void)
{ /* under rb.mu: an event starts */
    for (int i = 0; i < rb.n; i++)
        rb.m[i].rev_ns = rb.m[i].asg_ns = 0;
}

struct rb_result {
    double total_ms, detect_ms, sync_ms;
    int members;
};

/* Waits until the group settles after an event started at T0; fills R or fails. */
static void rb_wait(uint64_t t0, const char *what, struct rb_result *r)
{
    uint64_t deadline = t0 + 3ull * (uint64_t)opt.session_ms * NS_PER_MS;
    pthread_mutex_lock(&rb.mu);
    while (!rb_settled() && !rb.errors) {
        if (now_ns() > deadline) {
            int live = 0, asg = 0, owned = 0, unowned = 0;
            for (int i = 0; i < rb.n; i++)
                if (rb.m[i].live) {
                    live++;
                    asg += rb.m[i].asg_ns && rb.m[i].assigned;
                    owned += rb.m[i].owned;
                }
            for (int p = 0; p < opt.partitions; p++)
                unowned += rb.owner[p] < 0;
            fprintf(stderr,
                    "samsa-group-bench: %s: not settled after %.0f s: %d live members, %d "
                    "assigned since, %d partitions owned, %d unowned\n",
                    what, ms_since(t0, now_ns()) / 1000, live, asg, owned, unowned);
            pthread_mutex_unlock(&rb.mu);
            fail("rebalance did not settle within 3 session timeouts");
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&rb.cv, &rb.mu, &ts);
    }
    if (rb.errors) {
        pthread_mutex_unlock(&rb.mu);
        fail(rb.first_error);
    }
    uint64_t last_asg = 0, last_rev = t0;
    r->members = 0;
    for (int i = 0; i < rb.n; i++) {
        struct member *m = &rb.m[i];
        if (!m->live)
            continue;
        r->members++;
        if (m->asg_ns > last_asg)
            last_asg = m->asg_ns;
        if (m->rev_ns > last_rev)
            last_rev = m->rev_ns;
    }
    pthread_mutex_unlock(&rb.mu);
    r->total_ms = ms_since(t0, last_asg);
    r->detect_ms = ms_since(t0, last_rev);
    r->sync_ms = r->total_ms - r->detect_ms;
}

/* 300 ms plus a random fraction of the heartbeat interval: the members' heartbeats are
 * in step after a rebalance, so a fixed pause would always start the next event at the
 * same point of their heartbeat cycle and bias the detection time. */
static void pause_random(void)
{
    usleep((useconds_t)(300 * 1000 + (long)(rand() % 1000) * opt.heartbeat_ms));
}

static double max_of(const double *v, int n)
{
    double m = -1;
    for (int i = 0; i < n; i++)
        if (v[i] > m)
            m = v[i];
    return m;
}

static int run_rebalance(void)
{
    srand((unsigned)getpid() ^ (unsigned)time(NULL));
    if (opt.partitions < 0)
        opt.partitions = 100;
    if (opt.partitions > MAX_PARTITIONS || opt.members < 1 ||
        opt.members + opt.reps + 1 > MAX_MEMBERS)
        die("rebalance", "bad -p/-m/-r");
    if (!opt.topic)
        opt.topic = "samsa-group-bench-rebalance";
    for (int p = 0; p < MAX_PARTITIONS; p++)
        rb.owner[p] = -1;
    setup_topic(opt.partitions, NULL);
    char group[96];
    snprintf(group, sizeof group, "samsa-group-bench-%d-%lld", (int)getpid(),
             (long long)time(NULL));

    /* The initial group: MEMBERS members, until every partition is owned. */
    uint64_t t0 = now_ns();
    for (long i = 0; i < opt.members; i++) {
        struct member *m = member_new(group);
        pthread_mutex_lock(&rb.mu);
        m->live = 1;
        pthread_mutex_unlock(&rb.mu);
        member_subscribe(m);
    }
    struct rb_result r;
    rb_wait(t0, "initial group", &r);
    printf("form: %.1f ms [members %d partitions %ld]\n", r.total_ms, r.members, opt.partitions);
    fflush(stdout);

    double join_t[MAX_MEMBERS], join_d[MAX_MEMBERS], join_s[MAX_MEMBERS];
    double leave_t[MAX_MEMBERS], leave_d[MAX_MEMBERS], leave_s[MAX_MEMBERS];
    int oldest = 0;
    for (long rep = 0; rep < opt.reps; rep++) {
        pause_random(); /* let the group sit stable, for a random part of a heartbeat */
        /* (a) one more member subscribes */
        struct member *m = member_new(group);
        pthread_mutex_lock(&rb.mu);
        rb_mark();
        m->live = 1;
        pthread_mutex_unlock(&rb.mu);
        t0 = now_ns();
        member_subscribe(m);
        rb_wait(t0, "join", &r);
        join_t[rep] = r.total_ms;
        join_d[rep] = r.detect_ms;
        join_s[rep] = r.sync_ms;
        printf("join: %.1f ms, detect %.1f ms, sync %.1f ms [rep %ld members %d partitions %ld "
               "heartbeat_ms %ld]\n",
               r.total_ms, r.detect_ms, r.sync_ms, rep + 1, r.members, opt.partitions,
               opt.heartbeat_ms);
        fflush(stdout);

        pause_random();
        /* (b) the longest-standing member leaves */
        while (!rb.m[oldest].live)
            oldest++;
        struct member *o = &rb.m[oldest];
        atomic_store(&o->stop, 1);
        pthread_join(o->thread, NULL);
        pthread_mutex_lock(&rb.mu);
        rb_mark();
        o->live = 0;
        pthread_mutex_unlock(&rb.mu);
        t0 = now_ns();
        rd_kafka_resp_err_t e = rd_kafka_consumer_close(o->rk);
        double close_ms = ms_since(t0, now_ns());
        if (e) {
            fprintf(stderr, "samsa-group-bench: consumer_close of member %d: %s\n", o->id,
                    rd_kafka_err2str(e));
            fail("consumer_close failed");
        }
        rb_wait(t0, "leave", &r);
        rd_kafka_destroy(o->rk);
        o->rk = NULL;
        leave_t[rep] = r.total_ms;
        leave_d[rep] = r.detect_ms;
        leave_s[rep] = r.sync_ms;
        printf("leave: %.1f ms, detect %.1f ms, sync %.1f ms, close %.1f ms [rep %ld members %d "
               "partitions %ld heartbeat_ms %ld]\n",
               r.total_ms, r.detect_ms, r.sync_ms, close_ms, rep + 1, r.members, opt.partitions,
               opt.heartbeat_ms);
        fflush(stdout);
    }

    for (int i = 0; i < rb.n; i++) {
        struct member *m = &rb.m[i];
        if (!m->rk)
            continue;
        pthread_mutex_lock(&rb.mu);
        m->live = 0;
        pthread_mutex_unlock(&rb.mu);
        atomic_store(&m->stop, 1);
    }
    for (int i = 0; i < rb.n; i++) {
        struct member *m = &rb.m[i];
        if (!m->rk)
            continue;
        pthread_join(m->thread, NULL);
        rd_kafka_consumer_close(m->rk);
        rd_kafka_destroy(m->rk);
        m->rk = NULL;
    }
    if (rb.errors)
        fail(rb.first_error);
    int n = (int)opt.reps;
    double jmax = max_of(join_t, n), lmax = max_of(leave_t, n);
    printf("rebalance: join median %.1f ms max %.1f (detect %.1f, sync %.1f), leave median %.1f "
           "ms max %.1f (detect %.1f, sync %.1f), errors 0 [reps %d members %ld partitions %ld "
           "heartbeat_ms %ld session_ms %ld]\n",
           median(join_t, n), jmax, median(join_d, n), median(join_s, n), median(leave_t, n), lmax,
           median(leave_d, n), median(leave_s, n), n, opt.members, opt.partitions, opt.heartbeat_ms,
           opt.session_ms);
    return 0;
}

/* ---------- commits ---------- */

struct committer {
    int id;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q; /* where the asynchronous commits' results arrive */
    pthread_t thread;
    int parts[MAX_COMMIT_PARTS];
    int64_t sent;                    /* commits issued: the n-th commits offset n everywhere */
    int64_t acked[MAX_COMMIT_PARTS]; /* highest offset acknowledged per partition */
    long ok, failed, requests_ok, inflight;
    uint64_t last_cb_ns;
    uint64_t sent_ns[LAT_RING];     /* when commit n was issued, at n % LAT_RING */
    uint32_t lat_hist[LAT_BUCKETS]; /* request latency, issue -> result, 0.1 ms buckets */
};

static struct committer cm[MAX_COMMITTERS];
static pthread_barrier_t cm_barrier;
static uint64_t cm_t0, cm_deadline;

/* One commit's result: ERR for the whole request, else each partition's own error. */
static void commit_result(struct committer *c, rd_kafka_resp_err_t err,
                          const rd_kafka_topic_partition_list_t *offsets)
{
    c->last_cb_ns = now_ns();
    c->inflight--;
    if (offsets && offsets->cnt > 0 && offsets->elems[0].offset > 0) {
        uint64_t lat = (c->last_cb_ns - c->sent_ns[offsets->elems[0].offset % LAT_RING]) / 100000;
        c->lat_hist[lat < LAT_BUCKETS ? lat : LAT_BUCKETS - 1]++;
    }
    int all_ok = !err && offsets && offsets->cnt == opt.commit_parts;
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &offsets->elems[i];
        rd_kafka_resp_err_t e = err ? err : tp->err;
        if (e) {
            if (c->failed++ < 3)
                fprintf(stderr,
                        "samsa-group-bench: committer %d: commit of %s [%d] offset %lld "
                        "failed: %s\n",
                        c->id, tp->topic, tp->partition, (long long)tp->offset,
                        rd_kafka_err2str(e));
            all_ok = 0;
            continue;
        }
        c->ok++;
        for (int k = 0; k < opt.commit_parts; k++)
            if (c->parts[k] == tp->partition && tp->offset > c->acked[k])
                c->acked[k] = tp->offset;
    }
    if (!all_ok && (!offsets || offsets->cnt != opt.commit_parts)) {
        if (c->failed++ < 3)
            fprintf(stderr,
                    "samsa-group-bench: committer %d: commit answered for %d of %ld "
                    "partitions: %s\n",
                    c->id, offsets ? offsets->cnt : 0, opt.commit_parts, rd_kafka_err2str(err));
    }
    c->requests_ok += all_ok;
}

static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    commit_result(opaque, err, offsets);
}

static rd_kafka_topic_partition_list_t *commit_list(struct committer *c, int64_t off)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)opt.commit_parts);
    for (int k = 0; k < opt.commit_parts; k++)
        rd_kafka_topic_partition_list_add(l, opt.topic, c->parts[k])->offset = off;
    return l;
}

/* Serves the commit results (waiting up to TIMEOUT_MS for the first) and the consumer's
 * own queue (an assigned, empty topic: nothing but possible errors). */
static void serve(struct committer *c, int timeout_ms)
{
    rd_kafka_event_t *ev;
    while ((ev = rd_kafka_queue_poll(c->q, timeout_ms)) != NULL) {
        timeout_ms = 0;
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT)
            commit_result(c, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev));
        else if (rd_kafka_event_error(ev) && c->failed++ < 3)
            fprintf(stderr, "samsa-group-bench: committer %d: event %s: %s\n", c->id,
                    rd_kafka_event_name(ev), rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 0);
    if (!m)
        return;
    if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && c->failed++ < 3)
        fprintf(stderr, "samsa-group-bench: committer %d: consumer error: %s\n", c->id,
                rd_kafka_message_errstr(m));
    rd_kafka_message_destroy(m);
}

static void *committer_thread(void *arg)
{
    struct committer *c = arg;
    /* Warm-up: the coordinator is known and the group exists before the clock starts. */
    rd_kafka_topic_partition_list_t *l = commit_list(c, ++c->sent);
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, l, 0);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        fprintf(stderr, "samsa-group-bench: committer %d: first (synchronous) commit: %s\n", c->id,
                rd_kafka_err2str(e));
        c->failed++;
    } else {
        for (int k = 0; k < opt.commit_parts; k++)
            c->acked[k] = c->sent;
    }
    pthread_barrier_wait(&cm_barrier);
    pthread_barrier_wait(&cm_barrier); /* main thread sets the clock in between */
    while (now_ns() < cm_deadline && !c->failed) {
        while (c->inflight < opt.window) {
            l = commit_list(c, ++c->sent);
            c->sent_ns[c->sent % LAT_RING] = now_ns();
            e = rd_kafka_commit_queue(c->rk, l, c->q, commit_cb, c);
            rd_kafka_topic_partition_list_destroy(l);
            if (e) {
                fprintf(stderr, "samsa-group-bench: committer %d: commit: %s\n", c->id,
                        rd_kafka_err2str(e));
                c->failed++;
                break;
            }
            c->inflight++;
        }
        serve(c, 10);
    }
    uint64_t give_up = now_ns() + 30 * NS_PER_S;
    while (c->inflight > 0 && now_ns() < give_up)
        serve(c, 50);
    if (c->inflight > 0) {
        fprintf(stderr, "samsa-group-bench: committer %d: %ld commits unanswered after 30 s\n",
                c->id, c->inflight);
        c->failed += c->inflight * opt.commit_parts;
    }
    return NULL;
}

static int run_commits(void)
{
    if (opt.partitions < 0)
        opt.partitions = 16;
    if (opt.seconds < 0)
        opt.seconds = 8;
    if (opt.committers < 1 || opt.committers > MAX_COMMITTERS || opt.commit_parts < 1 ||
        opt.commit_parts > MAX_COMMIT_PARTS || opt.commit_parts > opt.partitions ||
        opt.window < 1 || opt.window >= LAT_RING || opt.partitions > MAX_PARTITIONS)
        die("commits", "bad -c/-k/-p/-w");
    if (!opt.topic)
        opt.topic = "samsa-group-bench-commits";
    setup_topic(opt.partitions, NULL);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "samsa-group-bench-commit-%d-%lld", (int)getpid(),
             (long long)time(NULL));

    for (long i = 0; i < opt.committers; i++) {
        struct committer *c = &cm[i];
        c->id = (int)i;
        rd_kafka_conf_t *conf = base_conf();
        char group[128];
        snprintf(group, sizeof group, "%s-%ld", prefix, i);
        set_conf(conf, "group.id", group);
        set_conf(conf, "enable.auto.commit", "false");
        set_conf(conf, "enable.auto.offset.store", "false");
        c->rk = new_client(RD_KAFKA_CONSUMER, conf);
        c->q = rd_kafka_queue_new(c->rk);
        rd_kafka_poll_set_consumer(c->rk);
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new((int)opt.commit_parts);
        for (int k = 0; k < opt.commit_parts; k++) {
            c->parts[k] = (int)((i * opt.commit_parts + k) % opt.partitions);
            c->acked[k] = -1;
            rd_kafka_topic_partition_list_add(l, opt.topic, c->parts[k])->offset =
                RD_KAFKA_OFFSET_END;
        }
        rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        if (e)
            die("assign", rd_kafka_err2str(e));
    }
    pthread_barrier_init(&cm_barrier, NULL, (unsigned)opt.committers + 1);
    for (long i = 0; i < opt.committers; i++)
        if (pthread_create(&cm[i].thread, NULL, committer_thread, &cm[i]))
            die("pthread_create", "committer");
    pthread_barrier_wait(&cm_barrier);
    cm_t0 = now_ns();
    cm_deadline = cm_t0 + (uint64_t)opt.seconds * NS_PER_S;
    pthread_barrier_wait(&cm_barrier);
    long ok = 0, failed = 0, requests = 0;
    uint64_t t_end = cm_t0;
    for (long i = 0; i < opt.committers; i++) {
        pthread_join(cm[i].thread, NULL);
        ok += cm[i].ok;
        failed += cm[i].failed;
        requests += cm[i].requests_ok;
        if (cm[i].last_cb_ns > t_end)
            t_end = cm[i].last_cb_ns;
    }
    double secs = (double)(t_end - cm_t0) / 1e9;
    static uint64_t hist[LAT_BUCKETS];
    uint64_t nlat = 0;
    for (long i = 0; i < opt.committers; i++)
        for (int b = 0; b < LAT_BUCKETS; b++) {
            hist[b] += cm[i].lat_hist[b];
            nlat += cm[i].lat_hist[b];
        }
    double p50 = -1, p99 = -1;
    uint64_t acc = 0;
    for (int b = 0; b < LAT_BUCKETS && nlat; b++) {
        acc += hist[b];
        if (p50 < 0 && acc * 2 >= nlat)
            p50 = (b + 1) / 10.0;
        if (p99 < 0 && acc * 100 >= nlat * 99)
            p99 = (b + 1) / 10.0;
    }

    /* Read back: every consumer's committed offsets equal the last ones committed. */
    long checked = 0, mismatched = 0;
    for (long i = 0; i < opt.committers; i++) {
        struct committer *c = &cm[i];
        rd_kafka_topic_partition_list_t *l = commit_list(c, RD_KAFKA_OFFSET_INVALID);
        rd_kafka_resp_err_t e = rd_kafka_committed(c->rk, l, 10000);
        for (int k = 0; k < l->cnt; k++) {
            checked++;
            rd_kafka_topic_partition_t *tp = &l->elems[k];
            int64_t want = c->acked[k];
            if (e || tp->err || tp->offset != want || want != c->sent) {
                if (mismatched++ < 5)
                    fprintf(stderr,
                            "samsa-group-bench: committer %d %s [%d]: committed reads "
                            "back %lld (%s), last acknowledged %lld, last sent %lld\n",
                            c->id, tp->topic, tp->partition, (long long)tp->offset,
                            rd_kafka_err2str(e ? e : tp->err), (long long)want, (long long)c->sent);
            }
        }
        rd_kafka_topic_partition_list_destroy(l);
    }
    for (long i = 0; i < opt.committers; i++) {
        rd_kafka_queue_destroy(cm[i].q);
        rd_kafka_consumer_close(cm[i].rk);
        rd_kafka_destroy(cm[i].rk);
    }
    long errors = failed + mismatched;
    printf("commits: %ld commits in %.3f s: %.0f commits/s, %.0f requests/s, p50 %.1f ms, "
           "p99 %.1f ms, errors %ld, verified %ld of %ld [consumers %ld partitions_per_commit %ld "
           "window %ld]\n",
           ok, secs, (double)ok / secs, (double)requests / secs, p50, p99, errors,
           checked - mismatched, checked, opt.committers, opt.commit_parts, opt.window);
    return errors ? 1 : 0;
}

/* ---------- compact ---------- */

static unsigned char *pool; /* random filler for values */
#define POOL_BYTES (1u << 20)
static uint32_t *last_round; /* per key: the last round enqueued (UINT32_MAX: none) */

struct producer {
    int id;
    rd_kafka_t *rk;
    pthread_t thread;
    long acked, failed, enqueued;
    uint64_t last_dr_ns;
};
static struct producer pr[MAX_PRODUCERS];
static pthread_barrier_t pr_barrier;
static uint64_t pr_t0, pr_deadline;

static void put_be64(unsigned char *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (56 - 8 * i));
}

static uint64_t get_be64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

/* Value of key K in round R: round (8 bytes), key (8 bytes), then filler that depends on
 * both, so a record cut or mixed up with another is noticed. */
static void make_value(unsigned char *v, uint64_t k, uint64_t r)
{
    put_be64(v, r);
    put_be64(v + 8, k);
    size_t off = (size_t)((k * 7919 + r * 104729) % (POOL_BYTES - 16));
    memcpy(v + 16, pool + off, (size_t)opt.value_bytes - 16);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct producer *p = opaque;
    p->last_dr_ns = now_ns();
    if (m->err) {
        if (p->failed++ < 3)
            fprintf(stderr, "samsa-group-bench: producer %d: record not acknowledged: %s\n", p->id,
                    rd_kafka_err2str(m->err));
        return;
    }
    p->acked++;
}

static void *producer_thread(void *arg)
{
    struct producer *p = arg;
    unsigned char key[8], *val = malloc((size_t)opt.value_bytes);
    if (!val)
        die("producer", "out of memory");
    pthread_barrier_wait(&pr_barrier);
    pthread_barrier_wait(&pr_barrier);
    uint64_t round = 0, k = (uint64_t)p->id;
    long n = 0;
    while (!p->failed) {
        if ((n & 255) == 0 && now_ns() >= pr_deadline)
            break;
        put_be64(key, k);
        make_value(val, k, round);
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                p->rk, RD_KAFKA_V_TOPIC(opt.topic),
                RD_KAFKA_V_PARTITION((int32_t)(k % (uint64_t)opt.partitions)),
                RD_KAFKA_V_KEY(key, sizeof key), RD_KAFKA_V_VALUE(val, (size_t)opt.value_bytes),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (!e)
                break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "samsa-group-bench: produce: %s\n", rd_kafka_err2str(e));
                p->failed++;
                break;
            }
            rd_kafka_poll(p->rk, 1);
        }
        last_round[k] = (uint32_t)round;
        n++;
        if ((n & 1023) == 0)
            rd_kafka_poll(p->rk, 0);
        k += (uint64_t)opt.producers;
        if (k >= (uint64_t)opt.keys) {
            k = (uint64_t)p->id;
            round++;
        }
    }
    p->enqueued = n;
    uint64_t idle_since = now_ns();
    long last_done = -1;
    while (rd_kafka_outq_len(p->rk) > 0) {
        rd_kafka_poll(p->rk, 50);
        long done = p->acked + p->failed;
        if (done != last_done) {
            last_done = done;
            idle_since = now_ns();
        } else if (now_ns() - idle_since > 20 * NS_PER_S) {
            fprintf(stderr, "samsa-group-bench: producer %d: no delivery report for 20 s\n", p->id);
            break;
        }
    }
    free(val);
    return NULL;
}

/* Reads every partition from its start to its end and checks the rounds per key. */
static long verify_compacted(const int64_t *hw)
{
    rd_kafka_conf_t *c = base_conf();
    char group[96];
    snprintf(group, sizeof group, "samsa-group-bench-verify-%d", (int)getpid());
    set_conf(c, "group.id", group);
    set_conf(c, "enable.auto.commit", "false");
    set_conf(c, "enable.auto.offset.store", "false");
    set_conf(c, "enable.partition.eof", "false");
    rd_kafka_t *rk = new_client(RD_KAFKA_CONSUMER, c);
    rd_kafka_poll_set_consumer(rk);
    uint32_t *seen = malloc((size_t)opt.keys * sizeof *seen);
    if (!seen)
        die("verify", "out of memory");
    memset(seen, 0xff, (size_t)opt.keys * sizeof *seen);
    int64_t last_off[MAX_PARTITIONS];
    int remaining = 0;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)opt.partitions);
    for (int p = 0; p < opt.partitions; p++) {
        last_off[p] = -1;
        if (hw[p] > 0) {
            rd_kafka_topic_partition_list_add(l, opt.topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
            remaining++;
        }
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        die("assign", rd_kafka_err2str(e));
    long got = 0, bad = 0;
    uint64_t t0 = now_ns(), idle_since = t0;
    while (remaining > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            if (now_ns() - idle_since > 20 * NS_PER_S) {
                fprintf(stderr,
                        "samsa-group-bench: verify: idle for 20 s after %ld records, "
                        "%d partitions not read to their end\n",
                        got, remaining);
                bad++;
                break;
            }
            continue;
        }
        idle_since = now_ns();
        if (m->err) {
            if (bad++ < 5)
                fprintf(stderr, "samsa-group-bench: verify: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        int p = m->partition;
        got++;
        uint64_t k = m->key_len == 8 ? get_be64(m->key) : UINT64_MAX;
        const unsigned char *v = m->payload;
        int ok = p >= 0 && p < opt.partitions && k < (uint64_t)opt.keys &&
                 k % (uint64_t)opt.partitions == (uint64_t)p && m->offset > last_off[p] &&
                 (long)m->len == opt.value_bytes && get_be64(v + 8) == k;
        if (ok) {
            uint64_t r = get_be64(v);
            unsigned char want[MAX_VALUE_BYTES];
            make_value(want, k, r);
            ok = r <= last_round[k] && (seen[k] == UINT32_MAX || r > seen[k]) &&
                 memcmp(v, want, (size_t)opt.value_bytes) == 0;
            if (ok)
                seen[k] = (uint32_t)r;
        }
        if (!ok && bad++ < 5)
            fprintf(stderr,
                    "samsa-group-bench: verify: partition %d offset %lld: unexpected "
                    "record (key %llu, %zu bytes)\n",
                    p, (long long)m->offset, (unsigned long long)k, m->len);
        if (p >= 0 && p < opt.partitions) {
            last_off[p] = m->offset;
            if (m->offset >= hw[p] - 1)
                remaining--; /* only once: nothing lies beyond hw-1 */
        }
        rd_kafka_message_destroy(m);
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    long keys_seen = 0, lost = 0;
    for (long k = 0; k < opt.keys; k++) {
        keys_seen += seen[k] != UINT32_MAX;
        if (seen[k] != last_round[k]) {
            if (lost++ < 5)
                fprintf(stderr,
                        "samsa-group-bench: verify: key %ld: newest round read %ld, "
                        "last produced %ld\n",
                        k, seen[k] == UINT32_MAX ? -1L : (long)seen[k],
                        last_round[k] == UINT32_MAX ? -1L : (long)last_round[k]);
        }
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    free(seen);
    long errors = bad + lost;
    printf("verify: %ld records read in %.3f s, %ld keys, newest record of every key present: "
           "%s, errors %ld [policy=%s]\n",
           got, secs, keys_seen, lost ? "no" : "yes", errors, opt.policy);
    return errors;
}

static int run_compact(void)
{
    if (opt.partitions < 0)
        opt.partitions = 4;
    if (opt.seconds < 0)
        opt.seconds = 30;
    if (opt.partitions > MAX_PARTITIONS || opt.keys < 1 || opt.keys > 100000000 ||
        opt.value_bytes < 16 || opt.value_bytes > MAX_VALUE_BYTES || opt.producers < 1 ||
        opt.producers > MAX_PRODUCERS)
        die("compact", "bad -p/--keys/-s/--producers");
    char topic[128];
    if (!opt.topic) {
        snprintf(topic, sizeof topic, "samsa-group-bench-%s-%d", opt.policy, (int)getpid());
        opt.topic = topic;
    }
    char seg[32];
    snprintf(seg, sizeof seg, "%ld", opt.segment_bytes);
    const char *configs[] = {
        "cleanup.policy", opt.policy, "segment.bytes", seg, "min.cleanable.dirty.ratio",
        opt.dirty_ratio,  NULL};
    setup_topic(opt.partitions, configs);

    pool = malloc(POOL_BYTES);
    last_round = malloc((size_t)opt.keys * sizeof *last_round);
    if (!pool || !last_round)
        die("compact", "out of memory");
    memset(last_round, 0xff, (size_t)opt.keys * sizeof *last_round);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i + 8 <= POOL_BYTES; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(pool + i, &x, 8);
    }

    pthread_barrier_init(&pr_barrier, NULL, (unsigned)opt.producers + 1);
    for (long i = 0; i < opt.producers; i++) {
        struct producer *p = &pr[i];
        p->id = (int)i;
        rd_kafka_conf_t *c = base_conf();
        set_conf(c, "acks", opt.acks);
        set_conf(c, "linger.ms", "5");
        set_conf(c, "batch.size", "1000000");
        set_conf(c, "compression.codec", "none");
        set_conf(c, "queue.buffering.max.messages", "200000");
        rd_kafka_conf_set_dr_msg_cb(c, dr_cb);
        rd_kafka_conf_set_opaque(c, p);
        p->rk = new_client(RD_KAFKA_PRODUCER, c);
        wait_for_partitions(p->rk, opt.partitions);
        if (pthread_create(&p->thread, NULL, producer_thread, p))
            die("pthread_create", "producer");
    }
    char wall_start[40], wall_end[40];
    pthread_barrier_wait(&pr_barrier);
    wall_iso(wall_start, sizeof wall_start);
    pr_t0 = now_ns();
    pr_deadline = pr_t0 + (uint64_t)opt.seconds * NS_PER_S;
    pthread_barrier_wait(&pr_barrier);
    long acked = 0, failed = 0, enqueued = 0;
    uint64_t t_end = pr_t0;
    for (long i = 0; i < opt.producers; i++) {
        pthread_join(pr[i].thread, NULL);
        acked += pr[i].acked;
        failed += pr[i].failed;
        enqueued += pr[i].enqueued;
        if (pr[i].last_dr_ns > t_end)
            t_end = pr[i].last_dr_ns;
    }
    wall_iso(wall_end, sizeof wall_end);
    double secs = (double)(t_end - pr_t0) / 1e9;
    long errors = failed + (enqueued - acked - failed);
    double bytes = (double)acked * (double)opt.value_bytes;
    printf("produce: %ld records %.0f bytes in %.3f s: %.0f records/s, %.1f MB/s, errors %ld "
           "[policy=%s keys=%ld partitions=%ld segment_bytes=%ld dirty_ratio=%s size=%ld "
           "producers=%ld acks=%s topic=%s from=%s to=%s]\n",
           acked, bytes, secs, (double)acked / secs, bytes / 1e6 / secs, errors, opt.policy,
           opt.keys, opt.partitions, opt.segment_bytes, opt.dirty_ratio, opt.value_bytes,
           opt.producers, opt.acks, opt.topic, wall_start, wall_end);
    fflush(stdout);

    int64_t hw[MAX_PARTITIONS];
    for (int p = 0; p < opt.partitions; p++) {
        int64_t lo;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(pr[0].rk, opt.topic, p, &lo, &hw[p], 10000);
        if (e)
            die("watermarks", rd_kafka_err2str(e));
    }
    for (long i = 0; i < opt.producers; i++)
        rd_kafka_destroy(pr[i].rk);
    if (!errors && opt.verify)
        errors += verify_compacted(hw);
    free(pool);
    free(last_round);
    return errors ? 1 : 0;
}

/* ---------- main ---------- */

static void usage(void)
{
    fprintf(
        stderr,
        "usage: samsa-group-bench rebalance|commits|compact [-b brokers] [-t topic] [-q]\n"
        "                         [-X librdkafka.property=value]...\n"
        "  rebalance: [-m members] [-p partitions] [-r reps] [--heartbeat-ms N] [--session-ms N]\n"
        "  commits:   [-c consumers] [-k partitions_per_commit] [-p partitions] [-d seconds]\n"
        "             [-w commits_in_flight_per_consumer]\n"
        "  compact:   [--policy compact|delete] [--keys N] [-d seconds] [-p partitions]\n"
        "             [--segment-bytes N] [--dirty-ratio R] [-s value_bytes] [--producers N]\n"
        "             [-a 0|1|all] [--verify]\n");
    exit(2);
}

static long parse_long(const char *s, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0')
        die(what, "not a number");
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *mode = argv[1];
    static const struct option longopts[] = {{"heartbeat-ms", required_argument, 0, 'H'},
                                             {"session-ms", required_argument, 0, 'S'},
                                             {"policy", required_argument, 0, 'P'},
                                             {"keys", required_argument, 0, 'K'},
                                             {"segment-bytes", required_argument, 0, 'G'},
                                             {"dirty-ratio", required_argument, 0, 'R'},
                                             {"producers", required_argument, 0, 'N'},
                                             {"verify", no_argument, 0, 'V'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "b:t:m:p:r:c:k:d:w:s:a:X:qh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'b': opt.brokers = optarg; break;
        case 't': opt.topic = optarg; break;
        case 'm': opt.members = parse_long(optarg, "-m"); break;
        case 'p': opt.partitions = parse_long(optarg, "-p"); break;
        case 'r': opt.reps = parse_long(optarg, "-r"); break;
        case 'c': opt.committers = parse_long(optarg, "-c"); break;
        case 'k': opt.commit_parts = parse_long(optarg, "-k"); break;
        case 'd': opt.seconds = parse_long(optarg, "-d"); break;
        case 'w': opt.window = parse_long(optarg, "-w"); break;
        case 's': opt.value_bytes = parse_long(optarg, "-s"); break;
        case 'a': opt.acks = optarg; break;
        case 'q': opt.quiet = 1; break;
        case 'H': opt.heartbeat_ms = parse_long(optarg, "--heartbeat-ms"); break;
        case 'S': opt.session_ms = parse_long(optarg, "--session-ms"); break;
        case 'P': opt.policy = optarg; break;
        case 'K': opt.keys = parse_long(optarg, "--keys"); break;
        case 'G': opt.segment_bytes = parse_long(optarg, "--segment-bytes"); break;
        case 'R': opt.dirty_ratio = optarg; break;
        case 'N': opt.producers = parse_long(optarg, "--producers"); break;
        case 'V': opt.verify = 1; break;
        case 'X': {
            char *eq = strchr(optarg, '=');
            if (!eq || opt.nx >= 32)
                usage();
            *eq = '\0';
            opt.xk[opt.nx] = optarg;
            opt.xv[opt.nx++] = eq + 1;
            break;
        }
        default: usage();
        }
    }
    if (optind != argc || opt.partitions == 0 || opt.reps < 1)
        usage();
    if (!strcmp(mode, "rebalance"))
        return run_rebalance();
    if (!strcmp(mode, "commits"))
        return run_commits();
    if (!strcmp(mode, "compact"))
        return run_compact();
    usage();
    return 2;
}
