/* samsa-load: a small Kafka-protocol load tool on librdkafka for Samsa's benchmarks.
 *
 * It produces N records of S bytes to one topic (round-robin over its partitions),
 * waits for every delivery report, and optionally reads everything back with assign()
 * and checks it: exact count, per-partition order, key and payload of each record.
 * Each phase prints ONE closing line (bench/run.sh parses them):
 *
 *   produce: N records B bytes in T s: R records/s, M MB/s, p50 X ms, p99 Y ms, errors E [...]
 *   consume: N records B bytes in T s: R records/s, M MB/s, errors E [...]
 *
 * MB = 10^6 bytes of payload (record values only; keys and framing are not counted).
 * Produce latency is per record, from rd_kafka_producev() to its delivery report; with
 * an unthrottled producer that is mostly time spent queued in the client.
 *
 * Record i has the 8-byte big-endian key i and, as value, the window of S bytes at
 * (i * S) mod 16 MiB of a fixed xorshift pool: incompressible, distinct keys, and the
 * consumer can recompute the expected value from the key alone. That lets
 * --consume-only verify a topic written by an earlier run (bench/run.sh uses it to
 * read the same data after restarting the broker on the other fetch path).
 *
 * The exit status is non-zero if any record is not acknowledged, or not read back
 * exactly once, in order and intact.
 */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POOL_WINDOW_BYTES (16u << 20) /* values are windows into this much random data */
#define MAX_PARTITIONS 256
#define MAX_EXTRA_PROPS 32
#define IDLE_GIVE_UP_NS (20ull * 1000000000ull)

static struct {
    const char *brokers, *topic, *acks, *label;
    long records, record_bytes, partitions, linger_ms, batch_bytes;
    int consume, consume_only, quiet;
    const char *xk[MAX_EXTRA_PROPS], *xv[MAX_EXTRA_PROPS];
    int nx;
} opt = {.brokers = "127.0.0.1:9092", .topic = "samsa-load", .acks = "all", .label = "",
         .records = 100000, .record_bytes = 1024, .partitions = 1, .linger_ms = 5,
         .batch_bytes = 1000000};

static unsigned char *pool;     /* POOL_WINDOW_BYTES + record_bytes of random bytes */
static uint64_t *enqueued_ns;   /* per record: when it was handed to librdkafka */
static uint32_t *latency_us;    /* per acknowledged record: enqueue -> delivery report */
static long n_acked, n_failed, n_latency;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const char *detail) {
    fprintf(stderr, "samsa-load: %s: %s\n", what, detail);
    exit(2);
}

static void set_conf(rd_kafka_conf_t *c, const char *k, const char *v) {
    char err[512];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) die(k, err);
}

static void set_conf_long(rd_kafka_conf_t *c, const char *k, long v) {
    char num[32];
    snprintf(num, sizeof num, "%ld", v);
    set_conf(c, k, num);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)rk;
    (void)opaque;
    if (!opt.quiet) fprintf(stderr, "samsa-load: client: %s: %s\n", rd_kafka_err2name(err), reason);
}

static rd_kafka_conf_t *base_conf(void) {
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    set_conf(c, "bootstrap.servers", opt.brokers);
    rd_kafka_conf_set_error_cb(c, error_cb);
    return c;
}

static void apply_extra_props(rd_kafka_conf_t *c) {
    for (int i = 0; i < opt.nx; i++) set_conf(c, opt.xk[i], opt.xv[i]);
}

static const unsigned char *value_of(long seq) {
    return pool + ((uint64_t)seq * (uint64_t)opt.record_bytes) % POOL_WINDOW_BYTES;
}

static void key_of(long seq, unsigned char key[8]) {
    for (int i = 0; i < 8; i++) key[i] = (unsigned char)((uint64_t)seq >> (56 - 8 * i));
}

static int64_t seq_of_key(const void *key, size_t len) {
    if (len != 8) return -1;
    const unsigned char *k = key;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | k[i];
    return (int64_t)v;
}

static void make_pool(void) {
    size_t n = POOL_WINDOW_BYTES + (size_t)opt.record_bytes + 8;
    pool = malloc(n);
    if (!pool) die("pool", "out of memory");
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(pool + i, &x, 8);
    }
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile_ms(const uint32_t *sorted, long n, double p) {
    if (n <= 0) return -1;
    long i = (long)(p * (double)n);
    if (i >= n) i = n - 1;
    return sorted[i] / 1000.0;
}

/* ---------- topic ---------- */

/* Creates the topic with opt.partitions partitions; an existing topic is fine. */
static void create_topic(rd_kafka_t *rk) {
    char err[512];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(opt.topic, (int)opt.partitions, 1, err, sizeof err);
    if (!nt) die("NewTopic", err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    if (!ev) die("CreateTopics", "no answer within 15 s");
    if (rd_kafka_event_error(ev)) die("CreateTopics", rd_kafka_event_error_string(ev));
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t cnt = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &cnt) : NULL;
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            die("CreateTopics", rd_kafka_topic_result_error_string(tr[i]));
    }
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
}

/* Waits until metadata shows the topic with all its partitions led; returns the count. */
static int wait_for_partitions(rd_kafka_t *rk) {
    for (int tries = 0; tries < 150; tries++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *t = rd_kafka_topic_new(rk, opt.topic, NULL);
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 5000);
        rd_kafka_topic_destroy(t);
        int n = 0, led = 0;
        if (!e && md->topic_cnt == 1 && !md->topics[0].err) {
            n = md->topics[0].partition_cnt;
            for (int p = 0; p < n; p++) led += md->topics[0].partitions[p].leader >= 0;
        }
        if (!e) rd_kafka_metadata_destroy(md);
        if (n > 0 && led == n) return n;
        usleep(100000);
    }
    die("metadata", "topic has no led partitions after 15 s");
    return 0;
}

/* ---------- produce ---------- */

static void delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    uint64_t t = now_ns();
    long seq = (long)(intptr_t)m->_private;
    if (m->err) {
        if (n_failed < 5)
            fprintf(stderr, "samsa-load: record %ld not acknowledged: %s\n", seq,
                    rd_kafka_err2str(m->err));
        n_failed++;
        return;
    }
    n_acked++;
    latency_us[n_latency++] = (uint32_t)((t - enqueued_ns[seq]) / 1000);
}

static int produce_phase(rd_kafka_t *prk) {
    enqueued_ns = calloc((size_t)opt.records, sizeof *enqueued_ns);
    latency_us = calloc((size_t)opt.records, sizeof *latency_us);
    if (!enqueued_ns || !latency_us) die("produce", "out of memory");

    uint64_t t0 = now_ns();
    for (long i = 0; i < opt.records; i++) {
        unsigned char key[8];
        key_of(i, key);
        for (;;) {
            enqueued_ns[i] = now_ns();
            /* the value points into the pool, which outlives the producer: no copy */
            rd_kafka_resp_err_t e = rd_kafka_producev(
                prk, RD_KAFKA_V_TOPIC(opt.topic),
                RD_KAFKA_V_PARTITION((int32_t)(i % opt.partitions)),
                RD_KAFKA_V_KEY(key, sizeof key),
                RD_KAFKA_V_VALUE((void *)value_of(i), (size_t)opt.record_bytes),
                RD_KAFKA_V_OPAQUE((void *)(intptr_t)i), RD_KAFKA_V_END);
            if (!e) break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) die("produce", rd_kafka_err2str(e));
            rd_kafka_poll(prk, 1);
        }
        if ((i & 1023) == 0) rd_kafka_poll(prk, 0);
    }
    uint64_t idle_since = now_ns();
    long last_done = -1;
    while (rd_kafka_outq_len(prk) > 0) {
        rd_kafka_poll(prk, 50);
        long done = n_acked + n_failed;
        if (done != last_done) {
            last_done = done;
            idle_since = now_ns();
        } else if (now_ns() - idle_since > IDLE_GIVE_UP_NS) {
            fprintf(stderr, "samsa-load: no delivery report for 20 s, %d still queued\n",
                    rd_kafka_outq_len(prk));
            break;
        }
    }
    double secs = (double)(now_ns() - t0) / 1e9;

    qsort(latency_us, (size_t)n_latency, sizeof *latency_us, cmp_u32);
    long errors = n_failed + (opt.records - n_acked - n_failed);
    double bytes = (double)n_acked * (double)opt.record_bytes;
    printf("produce: %ld records %.0f bytes in %.3f s: %.0f records/s, %.1f MB/s, p50 %.2f ms, "
           "p99 %.2f ms, errors %ld [acks=%s size=%ld partitions=%ld linger_ms=%ld "
           "batch_bytes=%ld%s%s]\n",
           n_acked, bytes, secs, (double)n_acked / secs, bytes / 1e6 / secs,
           percentile_ms(latency_us, n_latency, 0.50), percentile_ms(latency_us, n_latency, 0.99),
           errors, opt.acks, opt.record_bytes, opt.partitions, opt.linger_ms, opt.batch_bytes,
           *opt.label ? " label=" : "", opt.label);
    fflush(stdout);
    free(enqueued_ns);
    free(latency_us);
    return errors == 0;
}

/* ---------- consume ---------- */

/* Reads records [start[p], start[p] + expected count) of each partition and checks that
 * partition p holds exactly the records i with i % partitions == p, in order, intact. */
static int consume_phase(const int64_t *start) {
    char err[512], group[64];
    rd_kafka_conf_t *c = base_conf();
    snprintf(group, sizeof group, "samsa-load-%d", (int)getpid());
    set_conf(c, "group.id", group);
    set_conf(c, "enable.auto.commit", "false");
    set_conf(c, "enable.auto.offset.store", "false");
    set_conf(c, "enable.partition.eof", "false");
    apply_extra_props(c);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (!rk) die("consumer", err);
    rd_kafka_poll_set_consumer(rk);
    int nparts = wait_for_partitions(rk); /* connect before the clock starts */
    if (nparts != opt.partitions) {
        fprintf(stderr, "samsa-load: topic has %d partitions, expected %ld\n", nparts,
                opt.partitions);
        exit(1);
    }

    long next_seq[MAX_PARTITIONS];
    int64_t last_offset[MAX_PARTITIONS];
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++) {
        rd_kafka_topic_partition_list_add(l, opt.topic, p)->offset = start[p];
        next_seq[p] = p;
        last_offset[p] = -1;
    }

    long got = 0, bad = 0;
    uint64_t t0 = now_ns(), t_last = t0, idle_since = t0;
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, l);
    if (e) die("assign", rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
    while (got < opt.records) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        uint64_t t = now_ns();
        if (!m) {
            if (t - idle_since > IDLE_GIVE_UP_NS) {
                fprintf(stderr, "samsa-load: consumer idle 20 s, giving up after %ld records\n",
                        got);
                break;
            }
            continue;
        }
        idle_since = t;
        if (m->err) {
            fprintf(stderr, "samsa-load: consume: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            bad++;
            continue;
        }
        int p = m->partition;
        int64_t seq = seq_of_key(m->key, m->key_len);
        int ok = p >= 0 && p < nparts && seq == next_seq[p] && m->offset > last_offset[p] &&
                 (long)m->len == opt.record_bytes &&
                 memcmp(m->payload, value_of(seq), (size_t)opt.record_bytes) == 0;
        if (!ok) {
            if (bad < 5)
                fprintf(stderr,
                        "samsa-load: partition %d offset %lld: got record %lld (%zu bytes), "
                        "expected record %ld (%ld bytes)\n",
                        p, (long long)m->offset, (long long)seq, m->len,
                        p >= 0 && p < nparts ? next_seq[p] : -1L, opt.record_bytes);
            bad++;
        }
        if (p >= 0 && p < nparts) {
            if (seq >= 0) next_seq[p] = seq + opt.partitions;
            last_offset[p] = m->offset;
        }
        got++;
        t_last = t;
        rd_kafka_message_destroy(m);
    }
    double secs = (double)(t_last - t0) / 1e9;

    /* Nothing beyond the records produced: each partition ends where its last record was. */
    for (int p = 0; p < nparts; p++) {
        int64_t lo, hi;
        e = rd_kafka_query_watermark_offsets(rk, opt.topic, p, &lo, &hi, 10000);
        if (e) {
            fprintf(stderr, "samsa-load: watermarks of partition %d: %s\n", p, rd_kafka_err2str(e));
            bad++;
        } else if (hi != last_offset[p] + 1) {
            fprintf(stderr, "samsa-load: partition %d ends at offset %lld, last record read at %lld\n",
                    p, (long long)hi, (long long)last_offset[p]);
            bad++;
        }
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);

    long errors = bad + (opt.records - got);
    double bytes = (double)got * (double)opt.record_bytes;
    printf("consume: %ld records %.0f bytes in %.3f s: %.0f records/s, %.1f MB/s, errors %ld "
           "[size=%ld partitions=%ld%s%s]\n",
           got, bytes, secs, (double)got / secs, bytes / 1e6 / secs, errors, opt.record_bytes,
           opt.partitions, *opt.label ? " label=" : "", opt.label);
    fflush(stdout);
    return errors == 0;
}

/* ---------- main ---------- */

static void usage(void) {
    fprintf(stderr,
            "usage: samsa-load [-b brokers] [-t topic] [-n records] [-s record_bytes]\n"
            "                  [-a 0|1|all] [-p partitions] [-l linger_ms] [--batch-bytes N]\n"
            "                  [--consume | --consume-only] [--sendfile-label TEXT]\n"
            "                  [-X librdkafka.property=value] [-q]\n"
            "  --consume       after producing, read everything back and verify it\n"
            "  --consume-only  do not produce; read the topic from its start and verify that\n"
            "                  it holds exactly the N records an earlier run produced\n");
    exit(2);
}

static long parse_long(const char *s, const char *what) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0') die(what, "not a number");
    return v;
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"batch-bytes", required_argument, 0, 'B'},
        {"consume", no_argument, 0, 'c'},
        {"consume-only", no_argument, 0, 'C'},
        {"sendfile-label", required_argument, 0, 'L'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "b:t:n:s:a:p:l:X:qh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'b': opt.brokers = optarg; break;
        case 't': opt.topic = optarg; break;
        case 'n': opt.records = parse_long(optarg, "-n"); break;
        case 's': opt.record_bytes = parse_long(optarg, "-s"); break;
        case 'a': opt.acks = optarg; break;
        case 'p': opt.partitions = parse_long(optarg, "-p"); break;
        case 'l': opt.linger_ms = parse_long(optarg, "-l"); break;
        case 'B': opt.batch_bytes = parse_long(optarg, "--batch-bytes"); break;
        case 'c': opt.consume = 1; break;
        case 'C': opt.consume_only = 1; break;
        case 'L': opt.label = optarg; break;
        case 'q': opt.quiet = 1; break;
        case 'X': {
            char *eq = strchr(optarg, '=');
            if (!eq || opt.nx >= MAX_EXTRA_PROPS) usage();
            *eq = '\0';
            opt.xk[opt.nx] = optarg;
            opt.xv[opt.nx++] = eq + 1;
            break;
        }
        default: usage();
        }
    }
    if (optind != argc || opt.records <= 0 || opt.record_bytes < 0 ||
        opt.record_bytes > (1 << 20) || opt.partitions < 1 || opt.partitions > MAX_PARTITIONS)
        usage();
    if (strcmp(opt.acks, "0") && strcmp(opt.acks, "1") && strcmp(opt.acks, "all") &&
        strcmp(opt.acks, "-1"))
        usage();
    make_pool();

    int64_t start[MAX_PARTITIONS];
    for (int p = 0; p < MAX_PARTITIONS; p++) start[p] = RD_KAFKA_OFFSET_BEGINNING;
    int ok = 1;
    if (!opt.consume_only) {
        char err[512];
        rd_kafka_conf_t *c = base_conf();
        set_conf(c, "acks", opt.acks);
        set_conf_long(c, "linger.ms", opt.linger_ms);
        set_conf_long(c, "batch.size", opt.batch_bytes);
        set_conf(c, "compression.codec", "none");
        set_conf(c, "queue.buffering.max.messages", "1000000");
        set_conf(c, "queue.buffering.max.kbytes", "1048576");
        rd_kafka_conf_set_dr_msg_cb(c, delivery_cb);
        apply_extra_props(c); /* -X wins over the defaults above */
        rd_kafka_t *prk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
        if (!prk) die("producer", err);
        create_topic(prk);
        int nparts = wait_for_partitions(prk);
        if (nparts != opt.partitions) {
            fprintf(stderr, "samsa-load: topic %s has %d partitions, expected %ld\n", opt.topic,
                    nparts, opt.partitions);
            return 1;
        }
        /* Consume from where this run's records start, so a reused topic still verifies. */
        for (int p = 0; p < nparts; p++) {
            int64_t lo, hi;
            rd_kafka_resp_err_t e =
                rd_kafka_query_watermark_offsets(prk, opt.topic, p, &lo, &hi, 10000);
            if (e) die("watermarks", rd_kafka_err2str(e));
            start[p] = hi;
        }
        ok = produce_phase(prk);
        rd_kafka_destroy(prk);
    }
    if (ok && (opt.consume || opt.consume_only)) ok = consume_phase(start);
    return ok ? 0 : 1;
}
