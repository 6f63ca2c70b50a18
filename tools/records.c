/* `samsa produce` and `samsa consume`: lines in, records out, and back. Deliberately
 * small: one topic, text lines, an optional key separator. For anything fancier, use
 * kcat. */
#include "cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest stdin line produce accepts; longer lines are an error, not a silent split. */
#define PRODUCE_MAX_LINE_BYTES (1024 * 1024)

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    stop_requested = 1;
}

static void install_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static const struct option rec_longopts[] = {
    {"bootstrap-server", required_argument, NULL, 'b'},
    {"verbose", no_argument, NULL, 'v'},
    {"key-separator", required_argument, NULL, 'K'},
    {"group", required_argument, NULL, 'g'},
    {"offset", required_argument, NULL, 'o'},
    {"count", required_argument, NULL, 'n'},
    {"exit-at-end", no_argument, NULL, 'e'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char produce_usage[] =
    "usage: samsa produce TOPIC [-K SEP] [-b HOST:PORT]\n"
    "  Sends each stdin line as one record; with -K, the text before the first SEP is\n"
    "  the key. Exits non-zero unless every record was acknowledged.\n";

static const char consume_usage[] =
    "usage: samsa consume TOPIC [-g GROUP] [-o beginning|end] [-n COUNT] [-e] [-K SEP]\n"
    "                           [-b HOST:PORT]\n"
    "  Prints each record's value on a line (with -K, key SEP value). Without -g it\n"
    "  reads every partition without a group; with -g it joins GROUP and commits what it\n"
    "  printed. -o applies where there is no committed offset. -n stops after COUNT\n"
    "  records, -e when every partition is read to its end.\n";

/* Counts delivery outcomes; runs on the producer's poll, i.e. in this thread. */
struct delivery {
    long acked;
    long failed;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct delivery *d = m->_private; /* the per-record opaque given to producev */
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (d->failed == 0) { /* the first failure names the cause; the rest repeat it */
            cli_err("record not delivered: %s", rd_kafka_err2str(m->err));
        }
        d->failed++;
    } else {
        d->acked++;
    }
}

int produce_main(struct cli_opts *o, int argc, char **argv)
{
    const char *sep = NULL;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "b:vK:h", rec_longopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(produce_usage, stdout);
            return 0;
        } else if (c == 'K') {
            sep = optarg;
        } else if (!cli_common_opt(o, c, optarg)) {
            fputs(produce_usage, stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (argc - optind != 1 || (sep != NULL && sep[0] == '\0')) {
        fputs(produce_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *topic = argv[optind];
    struct delivery d = {0};
    /* acks=all: a record counts as sent only once it is durable. No idempotence, which
     * needs InitProducerId, so the tool also works with brokers lacking it. The timeout
     * bounds how long an unreachable broker can hold us. */
    const char *extra[] = {"acks", "all", "message.timeout.ms", "30000", NULL};
    rd_kafka_t *rk = cli_client(o, RD_KAFKA_PRODUCER, extra, on_delivery);
    if (rk == NULL) {
        return CLI_EXIT_FAIL;
    }
    /* Fail fast and clearly on a missing topic rather than after message.timeout.ms. */
    const struct rd_kafka_metadata *md;
    if (cli_metadata(rk, &md) != 0) {
        rd_kafka_destroy(rk);
        return CLI_EXIT_FAIL;
    }
    bool exists = cli_require_topic(md, topic) != NULL;
    rd_kafka_metadata_destroy(md);
    if (!exists) {
        rd_kafka_destroy(rk);
        return CLI_EXIT_FAIL;
    }
    install_signals();
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long sent = 0;
    int rc = 0;
    size_t seplen = sep ? strlen(sep) : 0;
    while (!stop_requested && (len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') {
            line[--len] = '\0';
        }
        if (len > PRODUCE_MAX_LINE_BYTES) {
            rc = cli_err("line %ld is longer than %d bytes", sent + 1, PRODUCE_MAX_LINE_BYTES);
            break;
        }
        const char *key = NULL, *val = line;
        size_t keylen = 0, vallen = (size_t)len;
        char *at = sep ? strstr(line, sep) : NULL;
        if (at != NULL) {
            key = line;
            keylen = (size_t)(at - line);
            val = at + seplen;
            vallen = (size_t)len - keylen - seplen;
        }
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_KEY(key, keylen), RD_KAFKA_V_VALUE((void *)val, vallen),
                RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 100); /* backpressure: wait for deliveries to drain */
                continue;
            }
            if (err == RD_KAFKA_RESP_ERR__FATAL) {
                char why[512];
                rd_kafka_fatal_error(rk, why, sizeof why);
                rc = cli_err("produce to '%s': %s", topic, why);
            } else if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                rc = cli_err("produce to '%s': %s", topic, rd_kafka_err2str(err));
            }
            break;
        }
        if (rc != 0) {
            break;
        }
        sent++;
        rd_kafka_poll(rk, 0);
    }
    free(line);
    if (ferror(stdin)) {
        rc = cli_err("reading stdin failed");
    }
    /* Wait for every acknowledgement: exit status 0 promises the records are stored. */
    rd_kafka_resp_err_t ferr = rd_kafka_flush(rk, 60000);
    if (ferr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = cli_err("%d record(s) still unacknowledged: %s", rd_kafka_outq_len(rk),
                     rd_kafka_err2str(ferr));
    }
    if (d.failed > 0) {
        rc = cli_err("%ld of %ld record(s) were not delivered", d.failed, sent);
    }
    fprintf(stderr, "samsa: produced %ld record(s) to %s\n", d.acked, topic);
    rd_kafka_destroy(rk);
    return rc;
}

/* Prints one record as a line: value, or key SEP value with -K. */
static void print_record(const rd_kafka_message_t *m, const char *sep)
{
    if (sep != NULL) {
        if (m->key_len > 0) {
            fwrite(m->key, 1, m->key_len, stdout);
        }
        fputs(sep, stdout);
    }
    if (m->len > 0) {
        fwrite(m->payload, 1, m->len, stdout);
    }
    fputc('\n', stdout);
}

/* True when every partition in the consumer's current assignment has reported EOF
 * since its last record. `eof` is indexed by partition id (npart entries). */
static bool all_at_end(rd_kafka_t *rk, const bool *eof, int npart)
{
    rd_kafka_topic_partition_list_t *asg = NULL;
    if (rd_kafka_assignment(rk, &asg) != RD_KAFKA_RESP_ERR_NO_ERROR || asg == NULL) {
        return false;
    }
    /* An empty assignment (not yet joined) is not "at the end". */
    bool done = asg->cnt > 0;
    for (int i = 0; i < asg->cnt && done; i++) {
        int p = asg->elems[i].partition;
        done = p >= 0 && p < npart && eof[p];
    }
    rd_kafka_topic_partition_list_destroy(asg);
    return done;
}

int consume_main(struct cli_opts *o, int argc, char **argv)
{
    const char *group = NULL, *sep = NULL, *from = "end";
    int64_t count = -1;
    bool exit_at_end = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "b:vK:g:o:n:eh", rec_longopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(consume_usage, stdout);
            return 0;
        } else if (c == 'K') {
            sep = optarg;
        } else if (c == 'g') {
            group = optarg;
        } else if (c == 'o') {
            from = optarg;
        } else if (c == 'n') {
            if (cli_parse_i64(optarg, 1, INT64_MAX, "-n", &count) != 0) {
                return CLI_EXIT_USAGE;
            }
        } else if (c == 'e') {
            exit_at_end = true;
        } else if (!cli_common_opt(o, c, optarg)) {
            fputs(consume_usage, stderr);
            return CLI_EXIT_USAGE;
        }
    }
    bool from_start = strcmp(from, "beginning") == 0;
    if (argc - optind != 1 || (!from_start && strcmp(from, "end") != 0)) {
        fputs(consume_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *topic = argv[optind];
    /* Without -g the consumer only assign()s partitions: no join, no commits, so nothing
     * is left behind on the broker. librdkafka still wants a group.id for its consumer
     * queue, hence the placeholder. With -g, offsets are committed as records are
     * printed (auto-commit) and once more, synchronously, before exit. */
    const char *extra[] = {
        "group.id",
        group ? group : "samsa-cli-unused",
        "auto.offset.reset",
        from_start ? "earliest" : "latest",
        "enable.auto.commit",
        group ? "true" : "false",
        "enable.auto.offset.store",
        group ? "true" : "false",
        "enable.partition.eof",
        exit_at_end ? "true" : "false",
        "client.id",
        "samsa-cli",
        NULL,
    };
    rd_kafka_t *rk = cli_client(o, RD_KAFKA_CONSUMER, extra, NULL);
    if (rk == NULL) {
        return CLI_EXIT_FAIL;
    }
    rd_kafka_poll_set_consumer(rk);
    const struct rd_kafka_metadata *md;
    if (cli_metadata(rk, &md) != 0) {
        rd_kafka_destroy(rk);
        return CLI_EXIT_FAIL;
    }
    const struct rd_kafka_metadata_topic *t = cli_require_topic(md, topic);
    int npart = t ? t->partition_cnt : 0;
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(npart > 0 ? npart : 1);
    for (int i = 0; t != NULL && i < npart; i++) {
        rd_kafka_topic_partition_list_add(parts, topic, t->partitions[i].id)->offset =
            from_start ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    }
    rd_kafka_metadata_destroy(md);
    if (t == NULL) {
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_destroy(rk);
        return CLI_EXIT_FAIL;
    }
    rd_kafka_resp_err_t err;
    if (group != NULL) {
        rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(rk, sub);
        rd_kafka_topic_partition_list_destroy(sub);
    } else {
        err = rd_kafka_assign(rk, parts);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_destroy(rk);
        return cli_err("consume '%s': %s", topic, rd_kafka_err2str(err));
    }
    install_signals();
    bool *eof = calloc((size_t)npart + 1, sizeof *eof);
    int64_t seen = 0;
    int rc = 0;
    while (eof != NULL && !stop_requested && (count < 0 || seen < count)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL) {
            fflush(stdout); /* idle: let a reader of a pipe see what we have */
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < npart) {
                eof[m->partition] = true;
            }
            rd_kafka_message_destroy(m);
            if (all_at_end(rk, eof, npart)) {
                break;
            }
            continue;
        }
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* Transport errors are retried by librdkafka; anything reported here for a
             * partition (e.g. topic deleted, not authorized) ends the run. */
            rc = cli_err("consume '%s': %s", topic, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            break;
        }
        if (m->partition >= 0 && m->partition < npart) {
            eof[m->partition] = false;
        }
        print_record(m, sep);
        seen++;
        rd_kafka_message_destroy(m);
    }
    if (eof == NULL) {
        rc = cli_err("out of memory");
    }
    free(eof);
    fflush(stdout);
    if (group != NULL) {
        err = rd_kafka_commit(rk, NULL, 0);
        /* __NO_OFFSET: nothing consumed since the last commit, which is fine. */
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
            rc = cli_err("commit for group '%s': %s", group, rd_kafka_err2str(err));
        }
    }
    rd_kafka_consumer_close(rk); /* leaves the group at once instead of timing out */
    rd_kafka_destroy(rk);
    fprintf(stderr, "samsa: consumed %lld record(s) from %s\n", (long long)seen, topic);
    return rc;
}
