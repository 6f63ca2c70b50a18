/* Integration test: librdkafka (C) against a real samsa-server.
 *
 * The program starts the broker itself (SAMSA_SERVER, config SAMSA_CONFIG,
 * fetch data path SAMSA_FETCH_SENDFILE=true|false) on a free loopback port with
 * a temporary data dir, then:
 *   1. creates a topic with 8 partitions (rd_kafka_CreateTopics);
 *   2. produces 100,000 keyed records with acks=all, checking every delivery
 * report;
 *   3. reads every partition back with rd_kafka_assign (no group subscription)
 * and checks content and per-partition order exactly against the delivery
 * reports;
 *   4. long poll: a consumer with fetch.wait.max.ms=10000 waits on an empty
 * partition and a record produced afterwards reaches it well before the 10 s
 * are up;
 *   5. admin APIs: CreatePartitions, DescribeConfigs, AlterConfigs,
 * DeleteRecords, DeleteTopics, with request and per-item result errors checked
 * and their effects verified through metadata, configs, watermarks and fetches.
 * Any failed check prints what failed and the broker's stderr tail and exits 1;
 * the broker is killed and the data dir removed on every exit path. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOPIC "orders"
#define PARTITIONS 8
#define RECORDS 100000
#define KEYS                                                                                       \
    1000 /* keys repeat, so one key's records must share a partition, in order                     \
          */
#define LP_TOPIC "longpoll"
#define ADMIN_TIMEOUT_MS 30000

static pid_t server_pid = -1;
static char work_dir[256];
static char server_err[300];
static int server_port;
static const char *current_step = "start-up";

/* ---- failure reporting and cleanup ---- */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void stop_server_now(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
}

static void cleanup(void)
{
    stop_server_now();
    if (work_dir[0]) {
        nftw(work_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        work_dir[0] = 0;
    }
}

static void dump_server_stderr(void)
{
    FILE *f = server_err[0] ? fopen(server_err, "r") : NULL;
    if (!f)
        return;
    /* Print the last ~40 lines. */
    char lines[40][512];
    int n = 0;
    while (fgets(lines[n % 40], sizeof lines[0], f))
        n++;
    fclose(f);
    fprintf(stderr, "---- broker stderr (last %d lines) ----\n", n < 40 ? n : 40);
    for (int i = n < 40 ? 0 : n - 40; i < n; i++)
        fputs(lines[i % 40], stderr);
}

static int64_t now_ms(void);
static int64_t start_ms;

static void fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "FAIL %s:%d [%s, at %.1f s]: ", file, line, current_step,
            (double)(now_ms() - start_ms) / 1000.0);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    dump_server_stderr();
    exit(1); /* atexit(cleanup) kills the broker and removes the data dir */
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail(__FILE__, __LINE__, __VA_ARGS__);                                                 \
    } while (0)

#define CHECK_ERR(err, what)                                                                       \
    do {                                                                                           \
        rd_kafka_resp_err_t e_ = (err);                                                            \
        CHECK(e_ == RD_KAFKA_RESP_ERR_NO_ERROR, "%s: %s (%s)", (what), rd_kafka_err2name(e_),      \
              rd_kafka_err2str(e_));                                                               \
    } while (0)

static void step(const char *name)
{
    current_step = name;
    fprintf(stderr, "[%6.1f s] %s\n", (double)(now_ms() - start_ms) / 1000.0, name);
}

static void on_signal(int sig)
{
    /* Only async-signal-safe calls: kill the broker, remove the data dir with rm(1). */
    static const char msg[] = "FAIL: interrupted or timed out (alarm)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
    }
    if (work_dir[0]) {
        pid_t rm = fork();
        if (rm == 0) {
            execl("/bin/rm", "rm", "-rf", work_dir, (char *)NULL);
            _exit(127);
        }
        if (rm > 0)
            waitpid(rm, NULL, 0);
    }
    _exit(sig == SIGALRM ? 2 : 1);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the broker process ---- */

static void start_server(void)
{
    const char *bin = getenv("SAMSA_SERVER");
    const char *config = getenv("SAMSA_CONFIG");
    CHECK(bin && *bin, "SAMSA_SERVER is not set");
    CHECK(config && *config, "SAMSA_CONFIG is not set");

    snprintf(work_dir, sizeof work_dir, "/tmp/samsa-rdkafka.XXXXXX");
    CHECK(mkdtemp(work_dir) != NULL, "mkdtemp: %s", strerror(errno));
    char out_path[300], data_dir[300], o_dirs[400];
    snprintf(out_path, sizeof out_path, "%s/server.out", work_dir);
    snprintf(server_err, sizeof server_err, "%s/server.err", work_dir);
    snprintf(data_dir, sizeof data_dir, "%s/data", work_dir);
    snprintf(o_dirs, sizeof o_dirs, "log.dirs=%s", data_dir);
    /* SAMSA_FETCH_SENDFILE=true|false selects the broker's fetch data path. */
    const char *sf = getenv("SAMSA_FETCH_SENDFILE");
    char o_sendfile[64];
    snprintf(o_sendfile, sizeof o_sendfile, "samsa.fetch.sendfile=%s", sf && *sf ? sf : "false");

    server_pid = fork();
    CHECK(server_pid >= 0, "fork: %s", strerror(errno));
    if (server_pid == 0) {
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(server_err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0 || err < 0)
            _exit(127);
        dup2(out, 1);
        dup2(err, 2);
        execl(bin, bin, "-c", config, "--override", o_dirs, "--override", o_sendfile, "--override",
              "listeners=PLAINTEXT://127.0.0.1:0", "--override",
              "advertised.listeners=PLAINTEXT://127.0.0.1:0", (char *)NULL);
        _exit(127);
    }

    int64_t deadline = now_ms() + 10000;
    while (now_ms() < deadline) {
        FILE *f = fopen(out_path, "r");
        char line[256];
        while (f && fgets(line, sizeof line, f)) {
            if (sscanf(line, "samsa-server listening on port %d", &server_port) == 1) {
                fclose(f);
                fprintf(stderr, "broker pid %d on 127.0.0.1:%d, data in %s, %s\n", (int)server_pid,
                        server_port, data_dir, o_sendfile);
                return;
            }
        }
        if (f)
            fclose(f);
        int status;
        if (waitpid(server_pid, &status, WNOHANG) == server_pid) {
            server_pid = -1;
            fail(__FILE__, __LINE__, "broker exited at start-up (status %d)", status);
        }
        sleep_ms(20);
    }
    fail(__FILE__, __LINE__, "broker did not print its port within 10 s");
}

static void stop_server_clean(void)
{
    CHECK(kill(server_pid, SIGTERM) == 0, "kill(SIGTERM): %s", strerror(errno));
    int64_t deadline = now_ms() + 10000;
    int status = 0;
    while (now_ms() < deadline) {
        if (waitpid(server_pid, &status, WNOHANG) == server_pid) {
            server_pid = -1;
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "broker did not exit cleanly on SIGTERM (status 0x%x)", status);
            return;
        }
        sleep_ms(20);
    }
    fail(__FILE__, __LINE__, "broker still running 10 s after SIGTERM");
}

/* ---- librdkafka helpers ---- */

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 4) /* warnings and worse: show them, they explain failures */
        fprintf(stderr, "rdkafka %d %s: %s\n", level, fac, buf);
}

static rd_kafka_conf_t *base_conf(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char bootstrap[64], errstr[512];
    snprintf(bootstrap, sizeof bootstrap, "127.0.0.1:%d", server_port);
    CHECK(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr) ==
              RD_KAFKA_CONF_OK,
          "conf bootstrap.servers: %s", errstr);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    return conf;
}

static void conf_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char errstr[512];
    CHECK(rd_kafka_conf_set(conf, k, v, errstr, sizeof errstr) == RD_KAFKA_CONF_OK,
          "conf %s=%s: %s", k, v, errstr);
}

static rd_kafka_t *new_client(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    CHECK(rk != NULL, "rd_kafka_new: %s", errstr);
    return rk;
}

/* Waits for the admin result event of type `type` on q; checks the
 * request-level error. */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, rd_kafka_event_type_t type,
                                    const char *what)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, ADMIN_TIMEOUT_MS + 5000);
    CHECK(ev != NULL, "%s: no result within %d ms", what, ADMIN_TIMEOUT_MS + 5000);
    CHECK(rd_kafka_event_type(ev) == type, "%s: got event %s", what, rd_kafka_event_name(ev));
    CHECK(rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR, "%s: request failed: %s (%s)",
          what, rd_kafka_err2name(rd_kafka_event_error(ev)), rd_kafka_event_error_string(ev));
    return ev;
}

static rd_kafka_AdminOptions_t *admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op)
{
    char errstr[512];
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, op);
    CHECK(rd_kafka_AdminOptions_set_request_timeout(o, ADMIN_TIMEOUT_MS, errstr, sizeof errstr) ==
              RD_KAFKA_RESP_ERR_NO_ERROR,
          "set_request_timeout: %s", errstr);
    if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS || op == RD_KAFKA_ADMIN_OP_DELETETOPICS ||
        op == RD_KAFKA_ADMIN_OP_CREATEPARTITIONS)
        CHECK(rd_kafka_AdminOptions_set_operation_timeout(
                  o, ADMIN_TIMEOUT_MS, errstr, sizeof errstr) == RD_KAFKA_RESP_ERR_NO_ERROR,
              "set_operation_timeout: %s", errstr);
    return o;
}

static void check_topic_results(const rd_kafka_topic_result_t **res, size_t cnt, const char *topic,
                                const char *what)
{
    CHECK(cnt == 1, "%s: %zu topic results, want 1", what, cnt);
    CHECK(strcmp(rd_kafka_topic_result_name(res[0]), topic) == 0, "%s: result for topic %s", what,
          rd_kafka_topic_result_name(res[0]));
    CHECK(rd_kafka_topic_result_error(res[0]) == RD_KAFKA_RESP_ERR_NO_ERROR, "%s(%s): %s (%s)",
          what, topic, rd_kafka_err2name(rd_kafka_topic_result_error(res[0])),
          rd_kafka_topic_result_error_string(res[0]) ? rd_kafka_topic_result_error_string(res[0])
                                                     : "");
}

static void create_topic(rd_kafka_t *rk, const char *topic, int partitions)
{
    char errstr[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof errstr);
    CHECK(nt != NULL, "NewTopic_new: %s", errstr);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = admin_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_CreateTopics(rk, &nt, 1, o, q);
    rd_kafka_event_t *ev = admin_wait(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT, "CreateTopics");
    size_t cnt;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    check_topic_results(res, cnt, topic, "CreateTopics");
    rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
}

/* Number of partitions of `topic` in fresh metadata; -1 if the topic is absent
 * (or has a topic-level error, which is returned through *err). */
static int topic_partitions(rd_kafka_t *rk, const char *topic, rd_kafka_resp_err_t *err)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    CHECK_ERR(e, "rd_kafka_metadata");
    int n = -1;
    *err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) != 0)
            continue;
        *err = md->topics[i].err;
        if (!md->topics[i].err)
            n = md->topics[i].partition_cnt;
    }
    rd_kafka_metadata_destroy(md);
    return n;
}

/* ---- produce ---- */

struct delivered {
    int32_t partition;
    int64_t offset;
    int done;
};
static struct delivered *dr; /* indexed by record number */
static long dr_ok, dr_failed;
static rd_kafka_resp_err_t dr_first_err;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk, (void)opaque;
    long i = (long)(intptr_t)m->_private;
    if (m->err) {
        if (!dr_failed++)
            dr_first_err = m->err;
        return;
    }
    if (i >= 0 && i < RECORDS) {
        dr[i].partition = m->partition;
        dr[i].offset = m->offset;
        dr[i].done++;
    }
    dr_ok++;
}

static void make_record(long i, char *key, size_t ksz, char *val, size_t vsz)
{
    snprintf(key, ksz, "key-%04ld", i % KEYS);
    /* Values vary in length (1..~200 bytes of payload) to exercise batch layout.
     */
    int pad = (int)((i * 7919) % 200);
    snprintf(val, vsz, "value-%06ld-%.*s", i, pad,
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
}

static rd_kafka_t *new_producer(void)
{
    rd_kafka_conf_t *conf = base_conf();
    conf_set(conf, "acks", "all");
    conf_set(conf, "linger.ms", "5");
    conf_set(conf, "message.timeout.ms", "60000");
    /* One request in flight per partition keeps the order check meaningful even
     * if a request were retried. */
    conf_set(conf, "max.in.flight.requests.per.connection", "1");
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    return new_client(RD_KAFKA_PRODUCER, conf);
}

static void produce_one(rd_kafka_t *rk, const char *topic, int32_t partition, const char *key,
                        const char *val, long opaque)
{
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)val, strlen(val)),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE((void *)(intptr_t)opaque),
            RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 10);
            continue;
        }
        CHECK_ERR(e, "rd_kafka_producev");
        return;
    }
}

static void flush_all(rd_kafka_t *rk)
{
    rd_kafka_resp_err_t e = rd_kafka_flush(rk, 120000);
    CHECK_ERR(e, "rd_kafka_flush (records still queued after 120 s)");
    CHECK(rd_kafka_outq_len(rk) == 0, "out queue not empty after flush: %d", rd_kafka_outq_len(rk));
}

static void produce_records(rd_kafka_t *rk)
{
    char key[32], val[256];
    dr = calloc(RECORDS, sizeof *dr);
    CHECK(dr != NULL, "calloc");
    int64_t t0 = now_ms();
    for (long i = 0; i < RECORDS; i++) {
        make_record(i, key, sizeof key, val, sizeof val);
        produce_one(rk, TOPIC, RD_KAFKA_PARTITION_UA, key, val, i);
        if (i % 1000 == 0)
            rd_kafka_poll(rk, 0);
    }
    flush_all(rk);
    CHECK(dr_failed == 0, "%ld of %d records failed delivery, first error %s", dr_failed, RECORDS,
          rd_kafka_err2name(dr_first_err));
    CHECK(dr_ok == RECORDS, "%ld delivery reports, want %d", dr_ok, RECORDS);

    /* Delivery reports: one per record; a key always goes to one partition;
     * offsets in a partition are dense from 0 and follow the produce order. */
    int32_t key_part[KEYS];
    int64_t next_off[PARTITIONS];
    long last_idx[PARTITIONS];
    for (int k = 0; k < KEYS; k++)
        key_part[k] = -1;
    for (int p = 0; p < PARTITIONS; p++)
        next_off[p] = 0, last_idx[p] = -1;
    for (long i = 0; i < RECORDS; i++) {
        CHECK(dr[i].done == 1, "record %ld has %d delivery reports", i, dr[i].done);
        int32_t p = dr[i].partition;
        CHECK(p >= 0 && p < PARTITIONS, "record %ld delivered to partition %d", i, p);
        int k = (int)(i % KEYS);
        if (key_part[k] < 0)
            key_part[k] = p;
        CHECK(key_part[k] == p, "key %d went to partitions %d and %d", k, key_part[k], p);
        CHECK(dr[i].offset == next_off[p],
              "record %ld: partition %d offset %" PRId64 ", want %" PRId64
              " (previous record there: %ld)",
              i, p, dr[i].offset, next_off[p], last_idx[p]);
        next_off[p]++;
        last_idx[p] = i;
    }
    int used = 0;
    for (int p = 0; p < PARTITIONS; p++)
        used += next_off[p] > 0;
    CHECK(used == PARTITIONS, "records spread over only %d of %d partitions", used, PARTITIONS);
    fprintf(stderr, "ok: produced %d records (acks=all) to %d partitions in %" PRId64 " ms\n",
            RECORDS, PARTITIONS, now_ms() - t0);
}

/* ---- consume with assign() ---- */

static rd_kafka_t *new_consumer(const char *fetch_wait_ms)
{
    rd_kafka_conf_t *conf = base_conf();
    /* librdkafka's assign()/consumer_poll() need a group.id to exist, but with an
     * explicit assignment, explicit start offsets and no commits it never joins
     * the group. */
    conf_set(conf, "group.id", "samsa-it-assign");
    conf_set(conf, "enable.auto.commit", "false");
    conf_set(conf, "enable.auto.offset.store", "false");
    conf_set(conf, "enable.partition.eof", "true");
    conf_set(conf, "fetch.wait.max.ms", fetch_wait_ms);
    return new_client(RD_KAFKA_CONSUMER, conf);
}

static void assign_from(rd_kafka_t *rk, const char *topic, int32_t first, int32_t count,
                        int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(count);
    for (int32_t p = first; p < first + count; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = offset;
    CHECK_ERR(rd_kafka_assign(rk, l), "rd_kafka_assign");
    rd_kafka_topic_partition_list_destroy(l);
}

static void consume_and_verify(void)
{
    int64_t t0 = now_ms();
    rd_kafka_t *rk = new_consumer("500");
    assign_from(rk, TOPIC, 0, PARTITIONS, RD_KAFKA_OFFSET_BEGINNING);

    /* Expected: the records of each partition in offset order, from the delivery
     * reports. */
    long *by_pos[PARTITIONS];
    int64_t count[PARTITIONS], seen[PARTITIONS];
    int eof[PARTITIONS];
    for (int p = 0; p < PARTITIONS; p++) {
        by_pos[p] = calloc(RECORDS, sizeof(long));
        CHECK(by_pos[p] != NULL, "calloc");
        count[p] = seen[p] = 0;
        eof[p] = 0;
    }
    for (long i = 0; i < RECORDS; i++)
        by_pos[dr[i].partition][dr[i].offset] = i, count[dr[i].partition]++;

    long total = 0;
    int eofs = 0;
    int64_t deadline = now_ms() + 120000;
    char key[32], val[256];
    while (eofs < PARTITIONS) {
        CHECK(now_ms() < deadline, "consumed %ld of %d records in 120 s", total, RECORDS);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (!m)
            continue;
        int32_t p = m->partition;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            CHECK(p >= 0 && p < PARTITIONS, "EOF for partition %d", p);
            if (seen[p] == count[p] && !eof[p]) {
                eof[p] = 1;
                eofs++;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        CHECK(m->err == RD_KAFKA_RESP_ERR_NO_ERROR, "consume error on %s [%d]: %s",
              m->rkt ? rd_kafka_topic_name(m->rkt) : "?", p, rd_kafka_message_errstr(m));
        CHECK(strcmp(rd_kafka_topic_name(m->rkt), TOPIC) == 0, "record from topic %s",
              rd_kafka_topic_name(m->rkt));
        CHECK(p >= 0 && p < PARTITIONS, "record from partition %d", p);
        CHECK(m->offset == seen[p],
              "partition %d: got offset %" PRId64 ", want %" PRId64 " (order or gap)", p, m->offset,
              seen[p]);
        CHECK(m->offset < count[p],
              "partition %d: extra record at offset %" PRId64 " beyond the %" PRId64 " produced", p,
              m->offset, count[p]);
        long i = by_pos[p][m->offset];
        make_record(i, key, sizeof key, val, sizeof val);
        CHECK(m->key_len == strlen(key) && memcmp(m->key, key, m->key_len) == 0,
              "partition %d offset %" PRId64 ": key '%.*s', want '%s'", p, m->offset,
              (int)m->key_len, (const char *)m->key, key);
        CHECK(m->len == strlen(val) && memcmp(m->payload, val, m->len) == 0,
              "partition %d offset %" PRId64 ": value '%.*s', want '%s'", p, m->offset,
              (int)(m->len > 60 ? 60 : m->len), (const char *)m->payload, val);
        rd_kafka_timestamp_type_t tstype;
        int64_t ts = rd_kafka_message_timestamp(m, &tstype);
        CHECK(tstype == RD_KAFKA_TIMESTAMP_CREATE_TIME && ts > 0,
              "partition %d offset %" PRId64 ": timestamp %" PRId64 " type %d", p, m->offset, ts,
              (int)tstype);
        seen[p]++;
        total++;
        rd_kafka_message_destroy(m);
    }
    CHECK(total == RECORDS, "consumed %ld records, want %d", total, RECORDS);

    /* Watermarks agree with what was read. */
    for (int p = 0; p < PARTITIONS; p++) {
        int64_t lo, hi;
        CHECK_ERR(rd_kafka_query_watermark_offsets(rk, TOPIC, p, &lo, &hi, 10000),
                  "query_watermark_offsets");
        CHECK(lo == 0 && hi == count[p],
              "partition %d watermarks [%" PRId64 ", %" PRId64 "), want [0, %" PRId64 ")", p, lo,
              hi, count[p]);
        free(by_pos[p]);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    fprintf(stderr,
            "ok: consumed all %d records with assign(), content and order exact, "
            "%" PRId64 " ms\n",
            RECORDS, now_ms() - t0);
}

/* ---- long poll ---- */

static void long_poll(rd_kafka_t *producer, rd_kafka_t *admin)
{
    create_topic(admin, LP_TOPIC, 1);
    rd_kafka_t *rk = new_consumer("10000");
    assign_from(rk, LP_TOPIC, 0, 1, 0);

    /* Give the consumer time to connect and send its first fetch, which the
     * broker parks (the partition is empty, so there is nothing to return before
     * fetch.wait.max.ms; no EOF is expected either, it comes only with a fetch
     * response). */
    for (int64_t until = now_ms() + 2000; now_ms() < until;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        CHECK(m == NULL || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF,
              "empty partition returned %s", m && m->err ? rd_kafka_message_errstr(m) : "a record");
        if (m)
            rd_kafka_message_destroy(m);
    }

    int64_t t0 = now_ms();
    produce_one(producer, LP_TOPIC, 0, "lp-key", "lp-value", -1);
    flush_all(producer);
    int64_t t_acked = now_ms();
    rd_kafka_message_t *m = NULL;
    while (!m && now_ms() - t0 < 15000) {
        m = rd_kafka_consumer_poll(rk, 100);
        if (m && m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(m);
            m = NULL;
        }
    }
    int64_t took = now_ms() - t0;
    CHECK(m != NULL, "the record produced during the long poll did not arrive within 15 s");
    CHECK(m->err == RD_KAFKA_RESP_ERR_NO_ERROR, "long poll: %s", rd_kafka_message_errstr(m));
    CHECK(m->offset == 0 && m->len == 8 && memcmp(m->payload, "lp-value", 8) == 0,
          "long poll: got offset %" PRId64 " value '%.*s'", m->offset, (int)m->len,
          (const char *)m->payload);
    /* Generous: the parked fetch (fetch.wait.max.ms=10000) must be completed by
     * the new data, not by its timeout. */
    CHECK(took < 5000,
          "record arrived %" PRId64 " ms after the produce started (acked after %" PRId64
          " ms): the waiting fetch was not woken by new data",
          took, t_acked - t0);
    rd_kafka_message_destroy(m);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    fprintf(stderr, "ok: long poll woke after %" PRId64 " ms (fetch.wait.max.ms=10000)\n", took);
}

/* ---- admin APIs ---- */

static void create_partitions(rd_kafka_t *admin, rd_kafka_t *producer)
{
    char errstr[512];
    rd_kafka_NewPartitions_t *np = rd_kafka_NewPartitions_new(TOPIC, 12, errstr, sizeof errstr);
    CHECK(np != NULL, "NewPartitions_new: %s", errstr);
    rd_kafka_queue_t *q = rd_kafka_queue_new(admin);
    rd_kafka_AdminOptions_t *o = admin_options(admin, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS);
    rd_kafka_CreatePartitions(admin, &np, 1, o, q);
    rd_kafka_event_t *ev =
        admin_wait(q, RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT, "CreatePartitions");
    size_t cnt;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &cnt);
    check_topic_results(res, cnt, TOPIC, "CreatePartitions 8->12");
    rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_NewPartitions_destroy(np);

    rd_kafka_resp_err_t terr;
    int n = topic_partitions(admin, TOPIC, &terr);
    CHECK(n == 12, "after CreatePartitions: metadata shows %d partitions (topic error %s)", n,
          rd_kafka_err2name(terr));

    /* Shrinking is refused with INVALID_PARTITIONS. */
    np = rd_kafka_NewPartitions_new(TOPIC, 4, errstr, sizeof errstr);
    o = admin_options(admin, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS);
    rd_kafka_CreatePartitions(admin, &np, 1, o, q);
    ev = admin_wait(q, RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT, "CreatePartitions 12->4");
    res = rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &cnt);
    CHECK(cnt == 1 && rd_kafka_topic_result_error(res[0]) == RD_KAFKA_RESP_ERR_INVALID_PARTITIONS,
          "CreatePartitions 12->4: got %s, want INVALID_PARTITIONS",
          cnt ? rd_kafka_err2name(rd_kafka_topic_result_error(res[0])) : "no result");
    rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_NewPartitions_destroy(np);
    rd_kafka_queue_destroy(q);

    /* A new partition takes records (once the producer's metadata has seen it).
     */
    n = topic_partitions(producer, TOPIC, &terr);
    CHECK(n == 12, "producer's metadata shows %d partitions (topic error %s)", n,
          rd_kafka_err2name(terr));
    long before = dr_ok;
    produce_one(producer, TOPIC, 11, "new-part", "in-partition-11", -1);
    flush_all(producer);
    CHECK(dr_failed == 0 && dr_ok == before + 1, "produce to new partition 11: %s",
          dr_failed ? rd_kafka_err2name(dr_first_err) : "no delivery report");
    fprintf(stderr, "ok: CreatePartitions 8->12 (and 12->4 refused)\n");
}

/* Finds config `name` in a DescribeConfigs result resource; returns its value
 * or NULL. */
static const char *find_config(const rd_kafka_ConfigResource_t *r, const char *name, int *found)
{
    size_t n;
    const rd_kafka_ConfigEntry_t **entries = rd_kafka_ConfigResource_configs(r, &n);
    *found = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rd_kafka_ConfigEntry_name(entries[i]), name) == 0) {
            *found = 1;
            return rd_kafka_ConfigEntry_value(entries[i]);
        }
    }
    return NULL;
}

static const rd_kafka_ConfigResource_t *describe_configs(rd_kafka_t *admin, rd_kafka_queue_t *q,
                                                         rd_kafka_ResourceType_t type,
                                                         const char *name, rd_kafka_event_t **evp)
{
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(type, name);
    rd_kafka_AdminOptions_t *o = admin_options(admin, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_DescribeConfigs(admin, &cr, 1, o, q);
    rd_kafka_event_t *ev = admin_wait(q, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT, "DescribeConfigs");
    size_t cnt;
    const rd_kafka_ConfigResource_t **res =
        rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &cnt);
    CHECK(cnt == 1, "DescribeConfigs(%s): %zu resources, want 1", name, cnt);
    CHECK(rd_kafka_ConfigResource_error(res[0]) == RD_KAFKA_RESP_ERR_NO_ERROR,
          "DescribeConfigs(%s): %s (%s)", name,
          rd_kafka_err2name(rd_kafka_ConfigResource_error(res[0])),
          rd_kafka_ConfigResource_error_string(res[0])
              ? rd_kafka_ConfigResource_error_string(res[0])
              : "");
    CHECK(strcmp(rd_kafka_ConfigResource_name(res[0]), name) == 0,
          "DescribeConfigs: result for '%s', want '%s'", rd_kafka_ConfigResource_name(res[0]),
          name);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_ConfigResource_destroy(cr);
    *evp = ev;
    return res[0];
}

static void configs(rd_kafka_t *admin)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(admin);
    rd_kafka_event_t *ev;
    int found;

    /* Topic configs: retention.ms and cleanup.policy are described. */
    const rd_kafka_ConfigResource_t *r =
        describe_configs(admin, q, RD_KAFKA_RESOURCE_TOPIC, TOPIC, &ev);
    const char *v = find_config(r, "retention.ms", &found);
    CHECK(found && v, "DescribeConfigs(topic %s): no retention.ms", TOPIC);
    CHECK(strcmp(v, "604800000") == 0, "retention.ms is '%s', want 604800000 (168 h)", v);
    v = find_config(r, "cleanup.policy", &found);
    CHECK(found && v && strcmp(v, "delete") == 0, "cleanup.policy is '%s', want 'delete'",
          v ? v : "(absent)");
    rd_kafka_event_destroy(ev);

    /* Broker configs: node 1 describes its own settings. */
    r = describe_configs(admin, q, RD_KAFKA_RESOURCE_BROKER, "1", &ev);
    v = find_config(r, "num.partitions", &found);
    CHECK(found && v && strcmp(v, "1") == 0, "broker num.partitions is '%s', want '1'",
          v ? v : "(absent)");
    rd_kafka_event_destroy(ev);

    /* AlterConfigs on the topic, then DescribeConfigs shows the new value. */
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, TOPIC);
    CHECK_ERR(rd_kafka_ConfigResource_set_config(cr, "retention.ms", "3600000"),
              "ConfigResource_set_config");
    rd_kafka_AdminOptions_t *o = admin_options(admin, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
    rd_kafka_AlterConfigs(admin, &cr, 1, o, q);
    ev = admin_wait(q, RD_KAFKA_EVENT_ALTERCONFIGS_RESULT, "AlterConfigs");
    size_t cnt;
    const rd_kafka_ConfigResource_t **res =
        rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &cnt);
    CHECK(cnt == 1, "AlterConfigs: %zu resources, want 1", cnt);
    CHECK(rd_kafka_ConfigResource_error(res[0]) == RD_KAFKA_RESP_ERR_NO_ERROR,
          "AlterConfigs(%s retention.ms=3600000): %s (%s)", TOPIC,
          rd_kafka_err2name(rd_kafka_ConfigResource_error(res[0])),
          rd_kafka_ConfigResource_error_string(res[0])
              ? rd_kafka_ConfigResource_error_string(res[0])
              : "");
    rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_ConfigResource_destroy(cr);

    r = describe_configs(admin, q, RD_KAFKA_RESOURCE_TOPIC, TOPIC, &ev);
    v = find_config(r, "retention.ms", &found);
    CHECK(found && v && strcmp(v, "3600000") == 0,
          "after AlterConfigs: retention.ms is '%s', want 3600000", v ? v : "(absent)");
    rd_kafka_event_destroy(ev);

    /* An unknown topic config is refused (INVALID_CONFIG), not silently stored.
     */
    cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, TOPIC);
    rd_kafka_ConfigResource_set_config(cr, "no.such.config", "1");
    o = admin_options(admin, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
    rd_kafka_AlterConfigs(admin, &cr, 1, o, q);
    ev = admin_wait(q, RD_KAFKA_EVENT_ALTERCONFIGS_RESULT, "AlterConfigs(no.such.config)");
    res = rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &cnt);
    CHECK(cnt == 1 && rd_kafka_ConfigResource_error(res[0]) == RD_KAFKA_RESP_ERR_INVALID_CONFIG,
          "AlterConfigs(no.such.config): got %s, want INVALID_CONFIG",
          cnt ? rd_kafka_err2name(rd_kafka_ConfigResource_error(res[0])) : "no result");
    rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_ConfigResource_destroy(cr);
    rd_kafka_queue_destroy(q);
    fprintf(stderr, "ok: DescribeConfigs (topic, broker), AlterConfigs\n");
}

static void delete_records(rd_kafka_t *admin)
{
    /* Partition 0 of TOPIC: delete everything before the middle of its log. */
    int64_t lo, hi;
    CHECK_ERR(rd_kafka_query_watermark_offsets(admin, TOPIC, 0, &lo, &hi, 10000),
              "query_watermark_offsets");
    CHECK(lo == 0 && hi > 10, "partition 0 watermarks [%" PRId64 ", %" PRId64 ")", lo, hi);
    int64_t cut = hi / 2;

    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(offs, TOPIC, 0)->offset = cut;
    rd_kafka_DeleteRecords_t *d = rd_kafka_DeleteRecords_new(offs);
    rd_kafka_topic_partition_list_destroy(offs);
    rd_kafka_queue_t *q = rd_kafka_queue_new(admin);
    rd_kafka_AdminOptions_t *o = admin_options(admin, RD_KAFKA_ADMIN_OP_DELETERECORDS);
    rd_kafka_DeleteRecords(admin, &d, 1, o, q);
    rd_kafka_event_t *ev = admin_wait(q, RD_KAFKA_EVENT_DELETERECORDS_RESULT, "DeleteRecords");
    const rd_kafka_topic_partition_list_t *res =
        rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
    CHECK(res && res->cnt == 1, "DeleteRecords: %d results, want 1", res ? res->cnt : -1);
    CHECK(res->elems[0].err == RD_KAFKA_RESP_ERR_NO_ERROR,
          "DeleteRecords(%s [0] < %" PRId64 "): %s", TOPIC, cut,
          rd_kafka_err2name(res->elems[0].err));
    CHECK(res->elems[0].offset == cut, "DeleteRecords: low watermark %" PRId64 ", want %" PRId64,
          res->elems[0].offset, cut);
    rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_DeleteRecords_destroy(d);

    /* Beyond the high watermark: OFFSET_OUT_OF_RANGE. */
    offs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(offs, TOPIC, 0)->offset = hi + 1000;
    d = rd_kafka_DeleteRecords_new(offs);
    rd_kafka_topic_partition_list_destroy(offs);
    o = admin_options(admin, RD_KAFKA_ADMIN_OP_DELETERECORDS);
    rd_kafka_DeleteRecords(admin, &d, 1, o, q);
    ev = rd_kafka_queue_poll(q, ADMIN_TIMEOUT_MS + 5000);
    CHECK(ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_DELETERECORDS_RESULT,
          "DeleteRecords beyond end: no result");
    res = rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
    rd_kafka_resp_err_t got = rd_kafka_event_error(ev);
    if (!got && res && res->cnt == 1)
        got = res->elems[0].err;
    CHECK(got == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE,
          "DeleteRecords beyond the high watermark: got %s, want "
          "OFFSET_OUT_OF_RANGE",
          rd_kafka_err2name(got));
    rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_DeleteRecords_destroy(d);
    rd_kafka_queue_destroy(q);

    /* The log start moved: watermarks and a fetch from the beginning agree. */
    CHECK_ERR(rd_kafka_query_watermark_offsets(admin, TOPIC, 0, &lo, &hi, 10000),
              "query_watermark_offsets");
    CHECK(lo == cut, "after DeleteRecords: low watermark %" PRId64 ", want %" PRId64, lo, cut);
    rd_kafka_t *c = new_consumer("500");
    assign_from(c, TOPIC, 0, 1, RD_KAFKA_OFFSET_BEGINNING);
    rd_kafka_message_t *m = NULL;
    for (int64_t until = now_ms() + 20000; !m && now_ms() < until;)
        m = rd_kafka_consumer_poll(c, 500);
    CHECK(m && !m->err, "after DeleteRecords: no record from the beginning (%s)",
          m ? rd_kafka_message_errstr(m) : "timeout");
    CHECK(m->offset == cut, "after DeleteRecords: first record at %" PRId64 ", want %" PRId64,
          m->offset, cut);
    rd_kafka_message_destroy(m);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    fprintf(stderr, "ok: DeleteRecords (log start %" PRId64 ")\n", cut);
}

static void delete_topic(rd_kafka_t *admin)
{
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(LP_TOPIC);
    rd_kafka_queue_t *q = rd_kafka_queue_new(admin);
    rd_kafka_AdminOptions_t *o = admin_options(admin, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_DeleteTopics(admin, &dt, 1, o, q);
    rd_kafka_event_t *ev = admin_wait(q, RD_KAFKA_EVENT_DELETETOPICS_RESULT, "DeleteTopics");
    size_t cnt;
    const rd_kafka_topic_result_t **res =
        rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt);
    check_topic_results(res, cnt, LP_TOPIC, "DeleteTopics");
    rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_DeleteTopic_destroy(dt);

    /* Deleting it again: UNKNOWN_TOPIC_OR_PART. */
    dt = rd_kafka_DeleteTopic_new(LP_TOPIC);
    o = admin_options(admin, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_DeleteTopics(admin, &dt, 1, o, q);
    ev = admin_wait(q, RD_KAFKA_EVENT_DELETETOPICS_RESULT, "DeleteTopics (again)");
    res = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt);
    CHECK(cnt == 1 &&
              rd_kafka_topic_result_error(res[0]) == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
          "DeleteTopics of a deleted topic: got %s, want UNKNOWN_TOPIC_OR_PART",
          cnt ? rd_kafka_err2name(rd_kafka_topic_result_error(res[0])) : "no result");
    rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_DeleteTopic_destroy(dt);
    rd_kafka_queue_destroy(q);

    /* Metadata no longer lists it (ask for all topics: asking for the topic by
     * name could auto-create it again). */
    const struct rd_kafka_metadata *md;
    CHECK_ERR(rd_kafka_metadata(admin, 1, NULL, &md, 10000), "rd_kafka_metadata(all)");
    int listed = 0, orders = 0;
    for (int i = 0; i < md->topic_cnt; i++) {
        listed |= strcmp(md->topics[i].topic, LP_TOPIC) == 0;
        orders |= strcmp(md->topics[i].topic, TOPIC) == 0;
    }
    rd_kafka_metadata_destroy(md);
    CHECK(!listed, "after DeleteTopics: metadata still lists %s", LP_TOPIC);
    CHECK(orders, "after DeleteTopics(%s): metadata no longer lists %s", LP_TOPIC, TOPIC);

    /* The name can be used again, and the new topic is empty. */
    create_topic(admin, LP_TOPIC, 2);
    int64_t lo, hi;
    CHECK_ERR(rd_kafka_query_watermark_offsets(admin, LP_TOPIC, 0, &lo, &hi, 10000),
              "query_watermark_offsets");
    CHECK(lo == 0 && hi == 0, "re-created %s [0] has watermarks [%" PRId64 ", %" PRId64 ")",
          LP_TOPIC, lo, hi);
    fprintf(stderr, "ok: DeleteTopics\n");
}

int main(void)
{
    setvbuf(stderr, NULL, _IOLBF, 0);
    atexit(cleanup);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGALRM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    alarm(540); /* under ctest's 600 s: the broker is still killed by us */
    int64_t t0 = start_ms = now_ms();

    start_server();
    fprintf(stderr, "librdkafka %s\n", rd_kafka_version_str());

    rd_kafka_t *producer = new_producer();
    /* Admin requests go through a producer handle's admin API (the usual way in
     * C). */
    rd_kafka_t *admin = new_client(RD_KAFKA_PRODUCER, base_conf());

    step("CreateTopics");
    create_topic(admin, TOPIC, PARTITIONS);
    rd_kafka_resp_err_t terr;
    int n = topic_partitions(admin, TOPIC, &terr);
    CHECK(n == PARTITIONS, "metadata shows %d partitions for %s (error %s), want %d", n, TOPIC,
          rd_kafka_err2name(terr), PARTITIONS);
    fprintf(stderr, "ok: CreateTopics %s with %d partitions\n", TOPIC, PARTITIONS);

    step("produce");
    produce_records(producer);
    step("consume");
    consume_and_verify();
    step("long poll");
    long_poll(producer, admin);
    step("CreatePartitions");
    create_partitions(admin, producer);
    step("DescribeConfigs/AlterConfigs");
    configs(admin);
    step("DeleteRecords");
    delete_records(admin);
    step("DeleteTopics");
    delete_topic(admin);

    step("shutdown");
    rd_kafka_destroy(admin);
    flush_all(producer);
    rd_kafka_destroy(producer);
    free(dr);
    stop_server_clean();
    fprintf(stderr, "PASS: librdkafka integration test, %" PRId64 " ms\n", now_ms() - t0);
    return 0;
}
