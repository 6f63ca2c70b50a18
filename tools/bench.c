/* `samsa bench`: the load tool. Produces N records of S bytes to a topic from one or
 * more producer instances (one thread and one librdkafka handle each), optionally at a
 * fixed rate, then reads them all back (afterwards, or concurrently) and checks each:
 * exactly once, in order per partition and producer, byte for byte. It prints ONE
 * closing line of key=value pairs on stdout (docs/cli.md lists them) and exits non-zero
 * when any record was not acknowledged or not read back exactly.
 *
 * With --mock N it runs the same workload against librdkafka's in-process mock cluster:
 * no broker, no disk, no network, so its figures are the client-side ceiling of this
 * machine, measured by the same code in the same session.
 *
 * Threads: each producer thread owns its handle, and delivery reports run on that thread
 * (they are served by its rd_kafka_poll), so every producer keeps its own counters and
 * latency histogram; the consumer is one thread with its own. They are merged after
 * join, so nothing on the hot path takes a lock. Values are not copied by librdkafka:
 * each producer hands it slots of its own value arena and takes a slot back in the
 * record's delivery report, so the hot path allocates nothing of ours and each value is
 * copied once, not twice. The payload format is in bench_stats.h. */
#include "bench.h"

#include <getopt.h>
#include <librdkafka/rdkafka_mock.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Value arena of each producer; it also bounds the bytes that producer has in flight,
 * i.e. the client's queue. Measured against samsa-server and the mock here (1 KiB,
 * acks=all): 4-16 MiB gave 1.5-2x the records/s of 64-256 MiB, whose slots fall out of
 * the cache and only lengthen the queue (and the produce latency) without feeding the
 * broker faster. Slots per producer are clamped to [8, 1M]. */
#define SLOT_BUDGET_BYTES (16u << 20)
#define SLOTS_MIN 8
#define SLOTS_MAX (1 << 20)
/* librdkafka's mock cluster keeps only the newest 5 MiB of each partition (2.0.2,
 * rdkafka_mock.c), dropping older batches; reading back more than this per partition
 * would report records as missing that the mock simply threw away. */
#define MOCK_PARTITION_KEEP_BYTES (4u << 20)

struct producer {
    struct bench *b;
    int id;
    int64_t first, end; /* record numbers [first, end) */
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    unsigned char *slots; /* nslots values of record_bytes each, owned */
    int32_t *free_slot;   /* stack of free slot numbers: LIFO keeps reused slots hot */
    int32_t nslots, nfree;
    int64_t *max_offset; /* per partition: highest acknowledged offset, -1 none */
    int64_t acked, failed, warmup_failed;
    struct hist latency;
    struct hist commit_latency; /* --txn-records: each commit_transaction call */
    uint64_t start_ns, end_ns;
    pthread_t thread;
};

static const struct option bench_longopts[] = {
    {"bootstrap-server", required_argument, NULL, 'b'},
    {"verbose", no_argument, NULL, 'v'},
    {"topic", required_argument, NULL, 't'},
    {"records", required_argument, NULL, 'n'},
    {"record-size", required_argument, NULL, 's'},
    {"partitions", required_argument, NULL, 'p'},
    {"replication-factor", required_argument, NULL, 'r'},
    {"producers", required_argument, NULL, 'P'},
    {"acks", required_argument, NULL, 'a'},
    {"linger", required_argument, NULL, 'l'},
    {"batch-size", required_argument, NULL, 'B'},
    {"compression", required_argument, NULL, 'z'},
    {"rate", required_argument, NULL, 'R'},
    {"concurrent", no_argument, NULL, 'C'},
    {"produce-only", no_argument, NULL, 'O'},
    {"verify", no_argument, NULL, 'V'},
    {"compressible", no_argument, NULL, 'Z'},
    {"spread-records", no_argument, NULL, 'S'},
    {"broker-pid", required_argument, NULL, 'k'},
    {"mock", required_argument, NULL, 'm'},
    {"deliver-after", required_argument, NULL, 'D'},
    {"deliver-spread", required_argument, NULL, 'W'},
    {"txn-records", required_argument, NULL, 'T'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char bench_usage[] =
    "usage: samsa bench [-t TOPIC] [-n RECORDS] [-s BYTES] [-p PARTITIONS] [-P PRODUCERS]\n"
    "                   [-a 0|1|all] [-l LINGER_MS] [--batch-size BYTES] [-z CODEC]\n"
    "                   [--rate RECORDS_PER_S] [--concurrent | --produce-only | --verify]\n"
    "                   [--compressible] [--spread-records] [--broker-pid PID] [--mock BROKERS]\n"
    "                   [-r REPLICATION] [--deliver-after MS [--deliver-spread MS]]\n"
    "                   [--txn-records N]\n"
    "                   [-X key=value ...]\n"
    "                   [-b HOST:PORT]\n"
    "  Produces RECORDS records (default 1000000) of BYTES bytes (default 1024, at least\n"
    "  16) with acks (default all), linger (5 ms), batch size (1000000) and compression\n"
    "  (none|gzip|snappy|lz4|zstd) from PRODUCERS producers (1), then reads them back and\n"
    "  checks every record. --concurrent reads while producing and measures end-to-end\n"
    "  latency; --rate paces the producers. Without -t a fresh topic of PARTITIONS (1)\n"
    "  partitions is created and deleted afterwards; a named topic is created if missing\n"
    "  and kept. Records go to partitions in turn, one batch size of them at a time (as\n"
    "  a sticky partitioner sends keyless records), or with --spread-records one record\n"
    "  at a time (as keyed records spread). --verify only reads TOPIC from its start and\n"
    "  checks it holds exactly the records a run with the same -n/-s/--batch-size/\n"
    "  --spread-records/--compressible wrote. --broker-pid adds broker CPU seconds per\n"
    "  GB produced; --mock runs against librdkafka's in-process mock cluster.\n"
    "  --deliver-after gives every record a samsa.deliver.at header MS after its send\n"
    "  (Samsa's delayed delivery) and, with --concurrent, reports how late records\n"
    "  became visible (end-to-end latency beyond MS, to within 1 ms); --deliver-spread\n"
    "  (with --produce-only) spreads the due times over MS more, record by record in a\n"
    "  scattered order. --txn-records makes each producer transactional, committing a\n"
    "  transaction every N of its records (commit latency in the closing line; read back\n"
    "  with -X isolation.level=read_committed to see only what committed). -X sets a\n"
    "  librdkafka property on every client. Prints one line of key=value results; exits\n"
    "  non-zero if any record was lost, duplicated, reordered or corrupted, or not\n"
    "  acknowledged.\n";

/* Prints the first error of a kind (kinds: 0 delivery, 1 consume, 2 record check,
 * 3 produce call) once; later ones are only counted, the closing line has the total. */
void bench_report_once(struct bench *b, int kind, const char *fmt, ...)
{
    if (atomic_exchange(&b->reported[kind], true)) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fputs("samsa: bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (further errors of this kind are only counted)\n", stderr);
    va_end(ap);
}

/* ---- producing ---- */

/* Runs inside rd_kafka_poll/flush on the producer's own thread (see the file comment),
 * so the producer's fields need no synchronisation. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct producer *p = m->_private;
    /* The value is our slot (zero-copy): librdkafka is done with it now. */
    p->free_slot[p->nfree++] =
        (int32_t)(((const unsigned char *)m->payload - p->slots) / (size_t)p->b->a.record_bytes);
    if (bench_payload_seq_word(m->payload) >> BENCH_SEQ_BITS == BENCH_WARMUP_PRODUCER) {
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            p->warmup_failed++;
            bench_report_once(p->b, 0, "warm-up record not acknowledged on partition %d: %s",
                              (int)m->partition, rd_kafka_err2str(m->err));
        }
        return;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        p->failed++;
        bench_report_once(p->b, 0, "record not acknowledged on partition %d: %s", (int)m->partition,
                          rd_kafka_err2str(m->err));
        return;
    }
    p->acked++;
    uint64_t sent = bench_payload_send_ns(m->payload), now = bench_now_ns();
    hist_record(&p->latency, now > sent ? now - sent : 0);
    /* acks=0 reports no offset (-1); then end_offset stays unknown for that partition. */
    if (m->partition >= 0 && m->partition < p->b->npart &&
        m->offset > p->max_offset[m->partition]) {
        p->max_offset[m->partition] = m->offset;
    }
}

/* Waits until record number k of this producer is due under --rate, serving delivery
 * reports meanwhile. Pacing is against the start time, not the previous send, so a
 * late record does not push back all the later ones (the offered rate holds). */
static void pace(struct producer *p, int64_t k, double interval_ns)
{
    uint64_t due = p->start_ns + (uint64_t)((double)k * interval_ns);
    for (;;) {
        uint64_t now = bench_now_ns();
        if (now >= due) {
            return;
        }
        uint64_t wait = due - now;
        if (wait >= 2000000) { /* poll's resolution is 1 ms: use it for long waits */
            rd_kafka_poll(p->rk, (int)(wait / 1000000) - 1);
            continue;
        }
        rd_kafka_poll(p->rk, 0);
        struct timespec ts = {.tv_sec = (time_t)(due / 1000000000u),
                              .tv_nsec = (long)(due % 1000000000u)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
}

/* Hands record i, written as producer number `producer`'s, to librdkafka for partition
 * part; on failure counts it and says why (once). */
static void send_record(struct producer *p, int32_t part, uint64_t producer, int64_t i)
{
    struct bench *b = p->b;
    uint64_t send_ns = bench_now_ns();
    /* Every slot in flight: serve delivery reports until one comes back. The record
     * keeps the send time taken above, so the wait counts as produce latency, as a
     * full client queue would. */
    while (p->nfree == 0) {
        rd_kafka_poll(p->rk, 1);
    }
    int32_t slot = p->free_slot[--p->nfree];
    unsigned char *value = p->slots + (size_t)slot * (size_t)b->a.record_bytes;
    bench_payload_fill(&b->pool, value, send_ns, producer, (uint64_t)i);
    rd_kafka_resp_err_t err;
    for (;;) {
        if (b->a.deliver_after_ms >= 0) {
            /* The due time rounded up to the millisecond: never before send + MS. */
            struct timespec wall;
            clock_gettime(CLOCK_REALTIME, &wall);
            int64_t due = ((int64_t)wall.tv_sec * 1000000000 + wall.tv_nsec + 999999) / 1000000 +
                          b->a.deliver_after_ms +
                          b->a.deliver_spread_ms * (int64_t)(((uint64_t)i * 7919) % 1000) / 1000;
            char at[24];
            int n = snprintf(at, sizeof at, "%lld", (long long)due);
            err = rd_kafka_producev(p->rk, RD_KAFKA_V_RKT(p->rkt), RD_KAFKA_V_PARTITION(part),
                                    RD_KAFKA_V_VALUE(value, (size_t)b->a.record_bytes),
                                    RD_KAFKA_V_HEADER("samsa.deliver.at", at, n),
                                    RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
        } else {
            err = rd_kafka_producev(p->rk, RD_KAFKA_V_RKT(p->rkt), RD_KAFKA_V_PARTITION(part),
                                    RD_KAFKA_V_VALUE(value, (size_t)b->a.record_bytes),
                                    RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
        }
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            break; /* full only if -X shrank the queue below the slots */
        }
        rd_kafka_poll(p->rk, 1);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        p->free_slot[p->nfree++] = slot; /* never handed over */
        if (producer == BENCH_WARMUP_PRODUCER) {
            p->warmup_failed++;
        } else {
            p->failed++;
        }
        bench_report_once(b, 3, "record %lld not accepted by the client: %s", (long long)i,
                          rd_kafka_err2str(err));
    }
}

/* --txn-records: a transaction call's error, reported once; true if it failed. */
static bool txn_failed(struct producer *p, rd_kafka_error_t *err, const char *what)
{
    if (err == NULL) {
        return false;
    }
    bench_report_once(p->b, 3, "%s: %s", what, rd_kafka_error_string(err));
    rd_kafka_error_destroy(err);
    return true;
}

/* Commits the producer's open transaction, timing the call (it first flushes what the
 * transaction still has in flight, as an application's commit does). */
static bool txn_commit(struct producer *p)
{
    uint64_t t0 = bench_now_ns();
    bool failed = txn_failed(p, rd_kafka_commit_transaction(p->rk, 60000), "commit_transaction");
    uint64_t t1 = bench_now_ns();
    hist_record(&p->commit_latency, t1 - t0);
    return failed;
}

static void *producer_run(void *arg)
{
    struct producer *p = arg;
    struct bench *b = p->b;
    bool txn = b->a.txn_records > 0;
    if (txn && txn_failed(p, rd_kafka_begin_transaction(p->rk), "begin_transaction")) {
        p->failed += p->end - p->first;
        return NULL;
    }
    for (int32_t part = 0; part < b->npart; part++) {
        send_record(p, part, BENCH_WARMUP_PRODUCER, part);
    }
    rd_kafka_flush(p->rk, 300000);
    if (txn && txn_commit(p)) {
        p->warmup_failed++;
    }
    memset(&p->commit_latency, 0, sizeof p->commit_latency); /* the warm-up commit: not measured */
    if (p->warmup_failed > 0 || rd_kafka_outq_len(p->rk) > 0) {
        p->failed += p->end - p->first; /* the broker is not taking records: stop here */
        p->start_ns = p->end_ns = bench_now_ns();
        return NULL;
    }
    double interval_ns = b->a.rate > 0 ? 1e9 * (double)b->a.producers / (double)b->a.rate : 0.0;
    p->start_ns = bench_now_ns();
    for (int64_t i = p->first; i < p->end; i++) {
        if (txn && (i - p->first) % b->a.txn_records == 0) {
            if ((i > p->first && txn_commit(p)) ||
                txn_failed(p, rd_kafka_begin_transaction(p->rk), "begin_transaction")) {
                p->failed += p->end - i; /* the transaction's records are counted in acked */
                break;
            }
        }
        if (interval_ns > 0) {
            pace(p, i - p->first, interval_ns);
        }
        /* The consumer checks this routing, and that each producer's records in one
         * partition come back in this order. */
        send_record(p, bench_partition_of(b, (uint64_t)i), (uint64_t)p->id, i);
        if ((i & 63) == 0) {
            rd_kafka_poll(p->rk, 0); /* deliver reports promptly: they carry the latency */
        }
    }
    /* message.timeout.ms (60 s unless -X says otherwise) bounds every record, so this
     * returns once each has been acknowledged or failed; the margin only guards a hang. */
    if (txn && p->end > p->first)
        (void)txn_commit(p); /* a failure is counted by the records' reports */
    rd_kafka_flush(p->rk, 300000);
    int left = rd_kafka_outq_len(p->rk);
    if (left > 0) {
        p->failed += left;
        bench_report_once(b, 0, "%d record(s) still unacknowledged after 300 s", left);
    }
    p->end_ns = bench_now_ns();
    return NULL;
}

/* Client settings shared by producers and consumer: the user's -X last, so they win. */
const char **bench_client_settings(const struct bench *b, const char **base, int nbase,
                                   const char **buf)
{
    int n = 0;
    for (int i = 0; i < nbase; i++) {
        buf[n++] = base[i];
    }
    for (int i = 0; i < b->a.nx; i++) {
        buf[n++] = b->a.xk[i];
        buf[n++] = b->a.xv[i];
    }
    buf[n] = NULL;
    return buf;
}

static int producer_open(struct bench *b, struct producer *p)
{
    char linger[32], batch[32], maxmsg[32], qmax[32];
    int64_t nslots = SLOT_BUDGET_BYTES / b->a.record_bytes;
    p->nslots = (int32_t)(nslots < SLOTS_MIN ? SLOTS_MIN : nslots > SLOTS_MAX ? SLOTS_MAX : nslots);
    /* The client's own message bound must not be the tighter one (see the loop). */
    snprintf(qmax, sizeof qmax, "%d", p->nslots + 1000);
    snprintf(linger, sizeof linger, "%lld", (long long)b->a.linger_ms);
    snprintf(batch, sizeof batch, "%lld", (long long)b->a.batch_bytes);
    /* A record larger than librdkafka's default message.max.bytes (1 MB) would be
     * refused by the client itself; the broker's own limit still applies. */
    int64_t max_msg = b->a.record_bytes + 1024 > 1000000 ? b->a.record_bytes + 1024 : 1000000;
    max_msg = b->a.batch_bytes > max_msg ? b->a.batch_bytes : max_msg;
    snprintf(maxmsg, sizeof maxmsg, "%lld", (long long)max_msg);
    const char *base[] = {
        "client.id",
        "samsa-bench",
        "acks",
        b->a.acks,
        "linger.ms",
        linger,
        "batch.size",
        batch,
        "message.max.bytes",
        maxmsg,
        "compression.type",
        b->a.compression,
        "message.timeout.ms",
        "60000",
        "queue.buffering.max.messages",
        qmax,
        "queue.buffering.max.kbytes",
        "2097151",
    };
    /* --txn-records: a transactional producer of its own id per run and producer. */
    char txn_id[64];
    snprintf(txn_id, sizeof txn_id, "samsa-bench-%d-%d", (int)getpid(), p->id);
    const char *txn_base[] = {"transactional.id", txn_id, "enable.idempotence", "true"};
    const char *all_base[sizeof base / sizeof base[0] + 4];
    int nbase = 0;
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++)
        all_base[nbase++] = base[i];
    for (size_t i = 0; b->a.txn_records > 0 && i < 4; i++)
        all_base[nbase++] = txn_base[i];
    const char *settings[sizeof all_base / sizeof all_base[0] + 2 * BENCH_MAX_X + 1];
    p->rk = cli_client(&b->o, RD_KAFKA_PRODUCER,
                       bench_client_settings(b, all_base, nbase, settings), on_delivery);
    if (p->rk == NULL) {
        return -1;
    }
    if (b->a.txn_records > 0) {
        rd_kafka_error_t *err = rd_kafka_init_transactions(p->rk, 60000);
        if (err != NULL) {
            cli_err("bench: init_transactions: %s", rd_kafka_error_string(err));
            rd_kafka_error_destroy(err);
            return -1;
        }
    }
    p->rkt = rd_kafka_topic_new(p->rk, b->a.topic, NULL);
    p->slots = malloc((size_t)p->nslots * (size_t)b->a.record_bytes);
    p->free_slot = malloc(sizeof *p->free_slot * (size_t)p->nslots);
    p->max_offset = malloc(sizeof *p->max_offset * (size_t)b->npart);
    if (p->rkt == NULL || p->slots == NULL || p->free_slot == NULL || p->max_offset == NULL) {
        return cli_err("bench: cannot set up producer %d", p->id), -1;
    }
    for (p->nfree = 0; p->nfree < p->nslots; p->nfree++) {
        p->free_slot[p->nfree] = p->nslots - 1 - p->nfree; /* slot 0 on top */
    }
    for (int i = 0; i < b->npart; i++) {
        p->max_offset[i] = -1;
    }
    return 0;
}

static void producer_close(struct producer *p)
{
    if (p->rkt != NULL) {
        rd_kafka_topic_destroy(p->rkt);
    }
    if (p->rk != NULL) {
        rd_kafka_destroy(p->rk);
    }
    free(p->slots);
    free(p->free_slot);
    free(p->max_offset);
}

/* ---- set-up: mock cluster, topic, offsets ---- */

/* Creates the topic (admin API, or the mock's own call) unless it exists; sets npart. */
static int prepare_topic(struct bench *b, rd_kafka_t *ctl, bool *created)
{
    *created = false;
    if (b->a.mock_brokers > 0) {
        rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(ctl);
        if (rd_kafka_mock_topic_create(mc, b->a.topic, (int)b->a.partitions, 1) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            return cli_err("bench: mock cluster refused topic %s", b->a.topic), -1;
        }
        b->npart = (int)b->a.partitions;
        *created = true;
        return 0;
    }
    const struct rd_kafka_metadata *md;
    if (cli_metadata(ctl, &md) != 0) {
        return -1;
    }
    const struct rd_kafka_metadata_topic *t = cli_find_topic(md, b->a.topic);
    if (t != NULL && t->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        b->npart = t->partition_cnt;
        rd_kafka_metadata_destroy(md);
        if (b->npart > BENCH_MAX_PARTITIONS) {
            return cli_err("bench: topic %s has more than %d partitions", b->a.topic,
                           BENCH_MAX_PARTITIONS),
                   -1;
        }
        return 0;
    }
    rd_kafka_metadata_destroy(md);
    if (b->a.verify) {
        return cli_err("topic '%s' does not exist", b->a.topic), -1;
    }
    char errstr[256];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(b->a.topic, (int)b->a.partitions,
                                                    (int)b->a.replication, errstr, sizeof errstr);
    if (nt == NULL) {
        return cli_err("bench: topic %s: %s", b->a.topic, errstr), -1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(ctl);
    rd_kafka_AdminOptions_t *opt = cli_admin_options(ctl, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_CreateTopics(ctl, &nt, 1, opt, q);
    rd_kafka_event_t *ev = cli_admin_wait(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT, "create topic");
    int rc = ev == NULL ? -1 : 0;
    if (ev != NULL) {
        size_t n;
        const rd_kafka_topic_result_t **r =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        if (n == 1 && rd_kafka_topic_result_error(r[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = cli_err("create topic %s: %s", b->a.topic,
                         rd_kafka_topic_result_error_string(r[0]));
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    if (rc != 0) {
        return -1;
    }
    *created = true;
    b->npart = (int)b->a.partitions;
    /* Kafka answers CreateTopics before every partition has a leader; wait for them so
     * the first produce does not race the election. */
    for (int tries = 0; tries < CLI_TIMEOUT_MS / 100; tries++) {
        if (cli_metadata(ctl, &md) != 0) {
            return -1;
        }
        t = cli_find_topic(md, b->a.topic);
        bool ready =
            t != NULL && t->err == RD_KAFKA_RESP_ERR_NO_ERROR && t->partition_cnt == b->npart;
        for (int i = 0; ready && i < t->partition_cnt; i++) {
            ready = t->partitions[i].leader >= 0;
        }
        rd_kafka_metadata_destroy(md);
        if (ready) {
            return 0;
        }
        usleep(100000);
    }
    return cli_err("bench: topic %s has no leader for every partition after %d ms", b->a.topic,
                   CLI_TIMEOUT_MS),
           -1;
}

/* Start offsets: 0 for a topic this run created; the low watermark for --verify (with
 * end = high watermark); otherwise the high watermark, so records already in a reused
 * topic are skipped. */
static int prepare_offsets(struct bench *b, rd_kafka_t *ctl, bool created)
{
    b->start_offset = calloc((size_t)b->npart, sizeof *b->start_offset);
    b->end_offset = calloc((size_t)b->npart, sizeof *b->end_offset);
    if (b->start_offset == NULL || b->end_offset == NULL) {
        return cli_err("out of memory"), -1;
    }
    for (int i = 0; i < b->npart && !created; i++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(ctl, b->a.topic, i, &lo, &hi, CLI_TIMEOUT_MS);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            return cli_err("bench: offsets of %s [%d]: %s", b->a.topic, i, rd_kafka_err2str(err)),
                   -1;
        }
        b->start_offset[i] = b->a.verify ? lo : hi;
        b->end_offset[i] = hi;
    }
    return 0;
}

static void delete_topic(rd_kafka_t *ctl, const char *topic)
{
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(ctl);
    rd_kafka_AdminOptions_t *opt = cli_admin_options(ctl, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_DeleteTopics(ctl, &dt, 1, opt, q);
    rd_kafka_event_t *ev = cli_admin_wait(q, RD_KAFKA_EVENT_DELETETOPICS_RESULT, "delete topic");
    if (ev != NULL) {
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_DeleteTopic_destroy(dt);
    rd_kafka_queue_destroy(q);
}

/* ---- command line ---- */

static int parse_args(struct bench_args *a, struct cli_opts *o, int argc, char **argv)
{
    *a = (struct bench_args){.records = 1000000,
                             .record_bytes = 1024,
                             .partitions = 1,
                             .replication = -1,
                             .producers = 1,
                             .linger_ms = 5,
                             .batch_bytes = 1000000,
                             .acks = "all",
                             .compression = "none",
                             .deliver_after_ms = -1};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "b:vt:n:s:p:r:P:a:l:z:X:h", bench_longopts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'h': fputs(bench_usage, stdout); return 1;
        case 't': a->topic = optarg; break;
        case 'n': rc = cli_parse_i64(optarg, 1, BENCH_MAX_RECORDS, "--records", &a->records); break;
        case 's':
            rc = cli_parse_i64(optarg, BENCH_HEADER_BYTES, BENCH_MAX_RECORD_BYTES, "--record-size",
                               &a->record_bytes);
            break;
        case 'p':
            rc = cli_parse_i64(optarg, 1, BENCH_MAX_PARTITIONS, "--partitions", &a->partitions);
            break;
        case 'r':
            rc = cli_parse_i64(optarg, 1, 32767, "--replication-factor", &a->replication);
            break;
        case 'P':
            rc = cli_parse_i64(optarg, 1, BENCH_MAX_PRODUCERS, "--producers", &a->producers);
            break;
        case 'a': a->acks = optarg; break;
        case 'l': rc = cli_parse_i64(optarg, 0, 900000, "--linger", &a->linger_ms); break;
        case 'B': rc = cli_parse_i64(optarg, 1, INT32_MAX, "--batch-size", &a->batch_bytes); break;
        case 'z': a->compression = optarg; break;
        case 'R': rc = cli_parse_i64(optarg, 1, INT32_MAX, "--rate", &a->rate); break;
        case 'D':
            rc = cli_parse_i64(optarg, 0, INT64_C(3153600000000), "--deliver-after",
                               &a->deliver_after_ms); /* up to 100 years */
            break;
        case 'W':
            rc = cli_parse_i64(optarg, 0, INT64_C(3153600000000), "--deliver-spread",
                               &a->deliver_spread_ms);
            break;
        case 'T': rc = cli_parse_i64(optarg, 1, INT32_MAX, "--txn-records", &a->txn_records); break;
        case 'C': a->concurrent = true; break;
        case 'O': a->produce_only = true; break;
        case 'V': a->verify = true; break;
        case 'Z': a->compressible = true; break;
        case 'S': a->spread_records = true; break;
        case 'k': rc = cli_parse_i64(optarg, 1, INT32_MAX, "--broker-pid", &a->broker_pid); break;
        case 'm': rc = cli_parse_i64(optarg, 1, 16, "--mock", &a->mock_brokers); break;
        case 'X':
            if (a->nx == BENCH_MAX_X) {
                cli_err("bench: at most %d -X settings", BENCH_MAX_X);
                return -1;
            }
            rc = cli_split_kv(optarg, a->xbuf[a->nx], sizeof a->xbuf[0], &a->xk[a->nx],
                              &a->xv[a->nx]);
            a->nx += rc == 0;
            break;
        default:
            if (!cli_common_opt(o, c, optarg)) {
                fputs(bench_usage, stderr);
                return -1;
            }
        }
        if (rc != 0) {
            return -1;
        }
    }
    const char *why = NULL;
    if (optind != argc) {
        why = "unexpected argument";
    } else if (strcmp(a->acks, "0") != 0 && strcmp(a->acks, "1") != 0 &&
               strcmp(a->acks, "all") != 0 && strcmp(a->acks, "-1") != 0) {
        why = "--acks must be 0, 1 or all";
    } else if (a->concurrent + a->produce_only + a->verify > 1) {
        why = "--concurrent, --produce-only and --verify exclude each other";
    } else if (a->verify && (a->topic == NULL || a->mock_brokers > 0 || a->rate > 0)) {
        why = "--verify needs -t TOPIC and takes neither --mock nor --rate";
    } else if (a->mock_brokers > 0 && a->broker_pid > 0) {
        why = "--broker-pid makes no sense with --mock (the mock runs in this process)";
    } else if (a->records < a->producers) {
        why = "fewer records than producers";
    } else if (a->deliver_spread_ms > 0 && (a->deliver_after_ms < 0 || !a->produce_only)) {
        why = "--deliver-spread needs --deliver-after and --produce-only";
    } else if (a->txn_records > 0 && strcmp(a->acks, "all") != 0) {
        why = "--txn-records needs acks=all";
    }
    if (why != NULL) {
        cli_err("bench: %s", why);
        fputs(bench_usage, stderr);
        return -1;
    }
    return 0;
}

/* ---- the run and its closing line ---- */

static const char *fmt_ms(char *buf, size_t n, const struct hist *h, double q)
{
    if (h->count == 0) {
        return "-";
    }
    snprintf(buf, n, "%.3f", (double)hist_quantile(h, q) / 1e6);
    return buf;
}

static const char *fmt_rate(char *buf, size_t n, double units, uint64_t ns, const char *f)
{
    if (ns == 0 || units <= 0) {
        return "-";
    }
    snprintf(buf, n, f, units / ((double)ns / 1e9));
    return buf;
}

struct totals {
    int64_t acked, failed, missing;
    uint64_t produce_ns;
    struct hist latency;
    struct hist commit_latency;
    double cpu_s; /* broker CPU seconds while producing, < 0 unknown */
};

static void print_closing_line(const struct bench *b, const struct totals *t,
                               const struct consumer *c, bool consumed, int64_t errors)
{
    const struct bench_args *a = &b->a;
    char target[32], rate[32], pr[32], pm[32], p50[32], p99[32], p999[32];
    char cr[32], cm[32], e50[32], e99[32], e999[32], cpu[32], da[32], l50[32], l99[32], lmax[32];
    char txr[32], c50[32], c99[32];
    snprintf(da, sizeof da, "%lld", (long long)a->deliver_after_ms);
    snprintf(txr, sizeof txr, "%lld", (long long)a->txn_records);
    if (a->mock_brokers > 0) {
        snprintf(target, sizeof target, "mock:%lld", (long long)a->mock_brokers);
    } else {
        snprintf(target, sizeof target, "broker");
    }
    snprintf(rate, sizeof rate, "%lld", (long long)a->rate);
    const char *mode = a->verify       ? "verify"
                       : !consumed     ? "produce-only"
                       : a->concurrent ? "concurrent"
                                       : "sequential";
    double produced_bytes = (double)t->acked * (double)a->record_bytes;
    double consumed_bytes = consumed ? (double)c->got * (double)a->record_bytes : 0;
    uint64_t consume_ns = consumed && c->last_ns > c->start_ns ? c->last_ns - c->start_ns : 0;
    const char *cpu_s = "-";
    if (t->cpu_s >= 0 && produced_bytes > 0) {
        snprintf(cpu, sizeof cpu, "%.2f", t->cpu_s / (produced_bytes / 1e9));
        cpu_s = cpu;
    }
    printf("samsa bench: topic=%s target=%s mode=%s records=%lld record_bytes=%lld "
           "partitions=%d producers=%lld acks=%s linger_ms=%lld batch_bytes=%lld "
           "compression=%s rate=%s produce_records_s=%s produce_MB_s=%s produce_p50_ms=%s "
           "produce_p99_ms=%s produce_p999_ms=%s consume_records_s=%s consume_MB_s=%s "
           "e2e_p50_ms=%s e2e_p99_ms=%s e2e_p999_ms=%s deliver_after_ms=%s late_p50_ms=%s "
           "late_p99_ms=%s late_max_ms=%s txn_records=%s commit_p50_ms=%s commit_p99_ms=%s "
           "broker_cpu_s_per_GB=%s errors=%lld\n",
           a->topic, target, mode, (long long)a->records, (long long)a->record_bytes, b->npart,
           (long long)a->producers, a->acks, (long long)a->linger_ms, (long long)a->batch_bytes,
           a->compression, a->rate > 0 ? rate : "-",
           fmt_rate(pr, sizeof pr, (double)t->acked, t->produce_ns, "%.0f"),
           fmt_rate(pm, sizeof pm, produced_bytes / 1e6, t->produce_ns, "%.1f"),
           fmt_ms(p50, sizeof p50, &t->latency, 0.5), fmt_ms(p99, sizeof p99, &t->latency, 0.99),
           fmt_ms(p999, sizeof p999, &t->latency, 0.999),
           fmt_rate(cr, sizeof cr, consumed ? (double)c->got : 0, consume_ns, "%.0f"),
           fmt_rate(cm, sizeof cm, consumed_bytes / 1e6, consume_ns, "%.1f"),
           fmt_ms(e50, sizeof e50, &c->e2e, 0.5), fmt_ms(e99, sizeof e99, &c->e2e, 0.99),
           fmt_ms(e999, sizeof e999, &c->e2e, 0.999), a->deliver_after_ms >= 0 ? da : "-",
           fmt_ms(l50, sizeof l50, &c->late, 0.5), fmt_ms(l99, sizeof l99, &c->late, 0.99),
           fmt_ms(lmax, sizeof lmax, &c->late, 1.0), a->txn_records > 0 ? txr : "-",
           fmt_ms(c50, sizeof c50, &t->commit_latency, 0.5),
           fmt_ms(c99, sizeof c99, &t->commit_latency, 0.99), cpu_s, (long long)errors);
    fflush(stdout);
}

/* Producers (and a concurrent consumer) from start to join; fills t. */
static int run_producers(struct bench *b, struct totals *t)
{
    int n = (int)b->a.producers;
    struct producer *ps = calloc((size_t)n, sizeof *ps);
    if (ps == NULL) {
        return cli_err("out of memory"), -1;
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        ps[i] = (struct producer){
            .b = b, .id = i, .first = b->a.records * i / n, .end = b->a.records * (i + 1) / n};
        rc = producer_open(b, &ps[i]);
    }
    double cpu0 = -1, cpu1 = -1;
    if (rc == 0 && b->a.broker_pid > 0 &&
        bench_proc_cpu_seconds((pid_t)b->a.broker_pid, &cpu0) != 0) {
        rc = -1;
    }
    int started = 0;
    for (; rc == 0 && started < n; started++) {
        if (pthread_create(&ps[started].thread, NULL, producer_run, &ps[started]) != 0) {
            rc = cli_err("bench: cannot start producer thread");
            break;
        }
    }
    uint64_t first_ns = UINT64_MAX, last_ns = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(ps[i].thread, NULL);
        first_ns = ps[i].start_ns < first_ns ? ps[i].start_ns : first_ns;
        last_ns = ps[i].end_ns > last_ns ? ps[i].end_ns : last_ns;
        t->acked += ps[i].acked;
        t->failed += ps[i].failed;
        hist_merge(&t->latency, &ps[i].latency);
        hist_merge(&t->commit_latency, &ps[i].commit_latency);
        for (int p = 0; p < b->npart; p++) {
            if (ps[i].max_offset[p] + 1 > b->end_offset[p]) {
                b->end_offset[p] = ps[i].max_offset[p] + 1;
            }
        }
    }
    if (rc == 0 && b->a.broker_pid > 0 &&
        bench_proc_cpu_seconds((pid_t)b->a.broker_pid, &cpu1) == 0) {
        t->cpu_s = cpu1 - cpu0;
    }
    t->produce_ns = last_ns > first_ns ? last_ns - first_ns : 0;
    /* Records that were never handed to a producer (set-up failed) count as failed. */
    if (started < n) {
        for (int i = started; i < n; i++) {
            t->failed += ps[i].end - ps[i].first;
        }
    }
    b->produce_done_ns = bench_now_ns();
    atomic_store_explicit(&b->produce_done, true, memory_order_release);
    for (int i = 0; i < n; i++) {
        producer_close(&ps[i]);
    }
    free(ps);
    return rc;
}

static int run(struct bench *b)
{
    struct bench_args *a = &b->a;
    char topic_buf[96], mock_n[16];
    bool generated = a->topic == NULL;
    b->run_records = a->spread_records                  ? 1
                     : a->batch_bytes > a->record_bytes ? a->batch_bytes / a->record_bytes
                                                        : 1;
    if (generated) {
        snprintf(topic_buf, sizeof topic_buf, "samsa-bench-%d-%lld", (int)getpid(),
                 (long long)time(NULL));
        a->topic = topic_buf;
    }
    if (bench_pool_init(&b->pool, (size_t)a->record_bytes, a->compressible) != 0) {
        return cli_err("out of memory");
    }
    /* The control client also owns the mock cluster when there is one: the property
     * test.mock.num.brokers makes librdkafka start it inside this handle. */
    snprintf(mock_n, sizeof mock_n, "%lld", (long long)a->mock_brokers);
    const char *mock_settings[] = {"test.mock.num.brokers", mock_n, NULL};
    rd_kafka_t *ctl =
        cli_client(&b->o, RD_KAFKA_PRODUCER, a->mock_brokers > 0 ? mock_settings : NULL, NULL);
    if (ctl == NULL) {
        return CLI_EXIT_FAIL;
    }
    if (a->mock_brokers > 0) {
        b->o.bootstrap = rd_kafka_mock_cluster_bootstraps(rd_kafka_handle_mock_cluster(ctl));
    }
    bool created = false;
    struct consumer c = {.b = b};
    struct totals t = {.cpu_s = -1};
    int rc = prepare_topic(b, ctl, &created) == 0 && prepare_offsets(b, ctl, created) == 0 ? 0 : -1;
    if (rc == 0 && a->mock_brokers > 0 && !a->produce_only &&
        (double)a->records * (double)(a->record_bytes + 64) / b->npart >
            MOCK_PARTITION_KEEP_BYTES) {
        fprintf(stderr, "samsa: bench: note: the mock cluster keeps only the newest 5 MiB of "
                        "each partition, so this run produces only (read back with fewer "
                        "records per partition)\n");
        a->produce_only = true;
        a->concurrent = false;
    }
    b->end_exact = a->verify || strcmp(a->acks, "0") != 0;
    bool consume = rc == 0 && !a->produce_only;
    if (consume) {
        c.seen = calloc((size_t)(a->records + 7) / 8, 1);
        c.last_seq = malloc(sizeof *c.last_seq * (size_t)b->npart * BENCH_MAX_PRODUCERS);
        c.next_offset = malloc(sizeof *c.next_offset * (size_t)b->npart);
        if (c.seen == NULL || c.last_seq == NULL || c.next_offset == NULL) {
            rc = cli_err("out of memory");
        } else {
            memset(c.last_seq, 0xff, sizeof *c.last_seq * (size_t)b->npart * BENCH_MAX_PRODUCERS);
            memcpy(c.next_offset, b->start_offset, sizeof *c.next_offset * (size_t)b->npart);
        }
    }
    bool consumer_thread = false;
    if (rc == 0 && a->concurrent) {
        rc = bench_consumer_open(b, &c);
        if (rc == 0 && pthread_create(&c.thread, NULL, bench_consumer_run, &c) != 0) {
            rc = cli_err("bench: cannot start the consumer thread");
        }
        consumer_thread = rc == 0;
        while (consumer_thread && !atomic_load(&c.ready)) {
            usleep(1000);
        }
    }
    if (rc == 0 && !a->verify) {
        rc = run_producers(b, &t);
    } else {
        b->produce_done_ns = bench_now_ns();
        atomic_store_explicit(&b->produce_done, true, memory_order_release);
    }
    if (consumer_thread) {
        pthread_join(c.thread, NULL);
    } else if (rc == 0 && consume) {
        rc = bench_consumer_open(b, &c);
        if (rc == 0) {
            bench_consumer_run(&c);
        }
    }
    int64_t errors = t.failed;
    if (rc == 0 && consume) {
        int64_t expected = a->verify ? a->records : t.acked;
        t.missing = expected > c.distinct ? expected - c.distinct : 0;
        errors += t.missing + c.duplicated + c.disordered + c.corrupted;
    }
    if (rc == 0) {
        print_closing_line(b, &t, &c, consume, errors);
        if (errors > 0) {
            cli_err("bench: %lld not acknowledged, %lld missing, %lld duplicated, %lld out of "
                    "order, %lld corrupted%s",
                    (long long)t.failed, (long long)t.missing, (long long)c.duplicated,
                    (long long)c.disordered, (long long)c.corrupted,
                    c.gave_up ? " (gave up after 10 s without a record)" : "");
        }
    }
    if (c.rk != NULL) {
        rd_kafka_consumer_close(c.rk);
        rd_kafka_destroy(c.rk);
    }
    if (generated && created && a->mock_brokers == 0) {
        delete_topic(ctl, a->topic);
    }
    rd_kafka_destroy(ctl);
    free(c.seen);
    free(c.last_seq);
    free(c.next_offset);
    free(b->start_offset);
    free(b->end_offset);
    bench_pool_free(&b->pool);
    return rc != 0 || errors > 0 ? CLI_EXIT_FAIL : 0;
}

int bench_main(struct cli_opts *o, int argc, char **argv)
{
    /* librdkafka allocates each request's buffer (up to batch.size) afresh; glibc's
     * defaults return such blocks to the kernel on free, so every batch faulted in new
     * zero pages, which costs this VM more than copying the records into them. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    struct bench *b = calloc(1, sizeof *b);
    if (b == NULL) {
        return cli_err("out of memory");
    }
    int prc = parse_args(&b->a, o, argc, argv);
    int rc = prc > 0 ? 0 : prc < 0 ? CLI_EXIT_USAGE : 0;
    if (prc == 0) {
        b->o = *o;
        rc = run(b);
    }
    free(b);
    return rc;
}
