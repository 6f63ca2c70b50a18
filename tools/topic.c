/* `samsa topic ...`: create, list, describe, alter, delete and add partitions to topics,
 * through librdkafka's admin API and metadata requests. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Options of the topic commands; long forms follow Kafka's kafka-topics.sh. */
static const struct option topic_longopts[] = {
    {"bootstrap-server", required_argument, NULL, 'b'},
    {"verbose", no_argument, NULL, 'v'},
    {"partitions", required_argument, NULL, 'p'},
    {"replication-factor", required_argument, NULL, 'r'},
    {"config", required_argument, NULL, 'c'},
    {"delete-config", required_argument, NULL, 'd'},
    {"internal", no_argument, NULL, 'i'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* What the command line said, for every topic verb; each verb checks it got only what
 * it understands. Strings are borrowed from argv. */
struct topic_args {
    const char *name;
    int64_t partitions; /* -1 = not given */
    int64_t replication;
    const char *configs[CLI_MAX_CONFIGS]; /* -c key=value */
    int nconfigs;
    const char *deletes[CLI_MAX_CONFIGS]; /* -d key */
    int ndeletes;
    bool internal;
};

static const char topic_usage[] =
    "usage: samsa topic create NAME [-p PARTITIONS] [-r REPLICATION] [-c key=value ...]\n"
    "       samsa topic list [--internal]\n"
    "       samsa topic describe NAME\n"
    "       samsa topic alter NAME [-c key=value ...] [-d key ...]\n"
    "       samsa topic delete NAME\n"
    "       samsa topic add-partitions NAME -p TOTAL\n"
    "       samsa topic reassign NAME PARTITION=BROKER,... ... [--wait] [--timeout SECONDS]\n"
    "       samsa topic reassign NAME --cancel PARTITION ...\n"
    "       samsa topic reassignments [NAME]\n"
    "  (every command also takes -b HOST:PORT)\n";

/* Parses argv (argv[0] = the verb). `allowed` lists the option letters this verb takes;
 * `want_name` says whether one positional NAME is required. Returns 0, or an exit
 * status after printing why. */
static int parse_topic_args(struct cli_opts *o, int argc, char **argv, const char *allowed,
                            bool want_name, struct topic_args *a)
{
    *a = (struct topic_args){.partitions = -1, .replication = -1};
    optind = 1;
    opterr = 1;
    int c;
    while ((c = getopt_long(argc, argv, "b:vp:r:c:d:h", topic_longopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(topic_usage, stdout);
            exit(0);
        }
        if (c == '?') {
            fputs(topic_usage, stderr);
            return CLI_EXIT_USAGE;
        }
        if (cli_common_opt(o, c, optarg)) {
            continue;
        }
        if (strchr(allowed, c) == NULL) {
            cli_err("topic %s does not take option %s", argv[0], argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
        switch (c) {
        case 'p':
            if (cli_parse_i64(optarg, 1, 1000000, "--partitions", &a->partitions) != 0) {
                return CLI_EXIT_USAGE;
            }
            break;
        case 'r':
            if (cli_parse_i64(optarg, 1, 32767, "--replication-factor", &a->replication) != 0) {
                return CLI_EXIT_USAGE;
            }
            break;
        case 'c':
        case 'd': {
            const char **list = c == 'c' ? a->configs : a->deletes;
            int *n = c == 'c' ? &a->nconfigs : &a->ndeletes;
            if (*n == CLI_MAX_CONFIGS) {
                cli_err("at most %d -%c options", CLI_MAX_CONFIGS, c);
                return CLI_EXIT_USAGE;
            }
            list[(*n)++] = optarg;
            break;
        }
        case 'i': a->internal = true; break;
        }
    }
    int npos = argc - optind;
    if (want_name && npos != 1) {
        cli_err("topic %s needs exactly one topic name", argv[0]);
        fputs(topic_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    if (!want_name && npos != 0) {
        cli_err("topic %s takes no arguments ('%s')", argv[0], argv[optind]);
        return CLI_EXIT_USAGE;
    }
    a->name = want_name ? argv[optind] : NULL;
    return 0;
}

/* Waits for the result of a CreateTopics, DeleteTopics or CreatePartitions request (want
 * names which) and reports each topic's error. Returns 0 if every topic succeeded. */
static int topic_results(struct cli_admin *req, rd_kafka_event_type_t want, const char *what)
{
    rd_kafka_event_t *ev = cli_admin_result(req, want, what);
    if (ev == NULL) {
        return CLI_EXIT_FAIL;
    }
    size_t n;
    const rd_kafka_topic_result_t **res;
    if (want == RD_KAFKA_EVENT_CREATETOPICS_RESULT) {
        res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    } else if (want == RD_KAFKA_EVENT_DELETETOPICS_RESULT) {
        res = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
    } else {
        res =
            rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &n);
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(res[i]);
        if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            cli_err("%s: topic '%s' does not exist", what, rd_kafka_topic_result_name(res[i]));
            rc = CLI_EXIT_FAIL;
        } else if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            const char *msg = rd_kafka_topic_result_error_string(res[i]);
            cli_err("%s '%s' failed: %s (%s)", what, rd_kafka_topic_result_name(res[i]),
                    msg != NULL ? msg : rd_kafka_err2str(err), rd_kafka_err2name(err));
            rc = CLI_EXIT_FAIL;
        }
    }
    rd_kafka_event_destroy(ev);
    return rc;
}

static int topic_create(struct cli_opts *o, const struct topic_args *a)
{
    char errstr[512];
    /* -1 asks the broker for its defaults (num.partitions, default.replication.factor). */
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(a->name, (int)a->partitions,
                                                    (int)a->replication, errstr, sizeof errstr);
    if (nt == NULL) {
        return cli_err("topic create '%s': %s", a->name, errstr);
    }
    for (int i = 0; i < a->nconfigs; i++) {
        char buf[1024];
        const char *k, *v;
        if (cli_split_kv(a->configs[i], buf, sizeof buf, &k, &v) != 0) {
            rd_kafka_NewTopic_destroy(nt);
            return CLI_EXIT_USAGE;
        }
        rd_kafka_NewTopic_set_config(nt, k, v);
    }
    rd_kafka_t *rk = cli_client(o, RD_KAFKA_PRODUCER, NULL, NULL);
    if (rk == NULL) {
        rd_kafka_NewTopic_destroy(nt);
        return CLI_EXIT_FAIL;
    }
    struct cli_admin req = cli_admin_start(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_CreateTopics(rk, &nt, 1, req.opt, req.q);
    int rc = topic_results(&req, RD_KAFKA_EVENT_CREATETOPICS_RESULT, "topic create");
    if (rc == 0) {
        printf("Created topic %s.\n", a->name);
    }
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
    return rc;
}

static int cmp_topic_name(const void *x, const void *y)
{
    const struct rd_kafka_metadata_topic *const *a = x, *const *b = y;
    return strcmp((*a)->topic, (*b)->topic);
}

/* Kafka marks internal topics in metadata v1+, but librdkafka 2.0.2 does not expose the
 * flag; Kafka's own internal topics (and Samsa's) all start with "__". */
static bool is_internal(const char *name)
{
    return strncmp(name, "__", 2) == 0;
}

static int topic_list(struct cli_opts *o, const struct topic_args *a)
{
    rd_kafka_t *rk = cli_client(o, RD_KAFKA_PRODUCER, NULL, NULL);
    if (rk == NULL) {
        return CLI_EXIT_FAIL;
    }
    const struct rd_kafka_metadata *md;
    if (cli_metadata(rk, &md) != 0) {
        rd_kafka_destroy(rk);
        return CLI_EXIT_FAIL;
    }
    int rc = 0;
    const struct rd_kafka_metadata_topic **sorted =
        calloc((size_t)md->topic_cnt + 1, sizeof *sorted);
    int n = 0;
    for (int i = 0; sorted != NULL && i < md->topic_cnt; i++) {
        if (a->internal || !is_internal(md->topics[i].topic)) {
            sorted[n++] = &md->topics[i];
        }
    }
    if (sorted == NULL) {
        rc = cli_err("out of memory");
    } else {
        qsort(sorted, (size_t)n, sizeof *sorted, cmp_topic_name);
        struct table *t = table_new(3, "TOPIC", "PARTITIONS", "REPLICATION");
        for (int i = 0; i < n; i++) {
            char parts[16], repl[16];
            snprintf(parts, sizeof parts, "%d", sorted[i]->partition_cnt);
            snprintf(repl, sizeof repl, "%d",
                     sorted[i]->partition_cnt ? sorted[i]->partitions[0].replica_cnt : 0);
            table_add(t, sorted[i]->topic, parts, repl);
        }
        table_print(t);
        table_free(t);
    }
    free(sorted);
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return rc;
}

/* The OPEN-TXN cell: the oldest open transaction of the partition (what holds its last
 * stable offset back) with how long its producer has not written there, "-" when none is
 * open, "?" when the leader could not say. A transaction open for long while its
 * producer is silent is a hanging one: `samsa txn abort` ends it. */
static void describe_open_txn(const struct rd_kafka_metadata *md, const char *topic,
                              int32_t partition, int32_t leader, char *out, size_t cap)
{
    char addr[300] = "";
    for (int i = 0; i < md->broker_cnt; i++)
        if (md->brokers[i].id == leader)
            snprintf(addr, sizeof addr, "%s:%d", md->brokers[i].host, md->brokers[i].port);
    struct txn_open o;
    if (!addr[0] || txn_oldest_open(addr, topic, partition, &o) != 0) {
        snprintf(out, cap, "?");
        return;
    }
    if (o.first_offset < 0)
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t idle_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - o.last_timestamp_ms;
    snprintf(out, cap, "from %lld (producer %lld, idle %llds)%s", (long long)o.first_offset,
             (long long)o.producer_id, (long long)(idle_ms > 0 ? idle_ms / 1000 : 0),
             o.count > 1 ? " +more" : "");
}

static int topic_describe(struct cli_opts *o, const struct topic_args *a)
{
    /* HIGH is the high watermark: librdkafka's watermark query takes the client's
     * isolation level, read_committed by default (that would be the last stable offset,
     * which OPEN-TXN explains instead). */
    const char *uncommitted[] = {"isolation.level", "read_uncommitted", NULL};
    rd_kafka_t *rk = cli_client(o, RD_KAFKA_CONSUMER, uncommitted, NULL);
    if (rk == NULL) {
        return CLI_EXIT_FAIL;
    }
    const struct rd_kafka_metadata *md;
    if (cli_metadata(rk, &md) != 0) {
        rd_kafka_destroy(rk);
        return CLI_EXIT_FAIL;
    }
    const struct rd_kafka_metadata_topic *t = cli_require_topic(md, a->name);
    if (t == NULL) {
        rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        return CLI_EXIT_FAIL;
    }
    int rc = 0;
    printf("Topic: %s  Partitions: %d  Replication: %d\n\n", t->topic, t->partition_cnt,
           t->partition_cnt ? t->partitions[0].replica_cnt : 0);
    struct table *tab =
        table_new(7, "PARTITION", "LEADER", "REPLICAS", "ISR", "LOW", "HIGH", "OPEN-TXN");
    int64_t total = 0;
    for (int i = 0; i < t->partition_cnt; i++) {
        const struct rd_kafka_metadata_partition *p = &t->partitions[i];
        char id[16], leader[16], replicas[256] = "", isr[256] = "", lo_s[24], hi_s[24];
        snprintf(id, sizeof id, "%d", p->id);
        snprintf(leader, sizeof leader, "%d", p->leader);
        for (int r = 0; r < p->replica_cnt; r++) {
            size_t len = strlen(replicas);
            snprintf(replicas + len, sizeof replicas - len, "%s%d", r ? "," : "", p->replicas[r]);
        }
        for (int r = 0; r < p->isr_cnt; r++) {
            size_t len = strlen(isr);
            snprintf(isr + len, sizeof isr - len, "%s%d", r ? "," : "", p->isrs[r]);
        }
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(rk, t->topic, p->id, &lo, &hi, CLI_TIMEOUT_MS);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            cli_err("watermarks of %s/%d: %s", t->topic, p->id, rd_kafka_err2str(err));
            rc = CLI_EXIT_FAIL;
        } else {
            total += hi - lo;
        }
        char open[96] = "-";
        describe_open_txn(md, t->topic, p->id, p->leader, open, sizeof open);
        table_add(tab, id, leader, replicas, isr, fmt_offset(lo_s, sizeof lo_s, lo),
                  fmt_offset(hi_s, sizeof hi_s, hi), open);
    }
    table_print(tab);
    table_free(tab);
    printf("\nRecords retained: %lld\n", (long long)total);

    rd_kafka_event_t *ev;
    const rd_kafka_ConfigResource_t *res;
    if (cli_describe_topic_configs(rk, a->name, &ev, &res) != 0) {
        rc = CLI_EXIT_FAIL;
    } else {
        size_t n;
        const rd_kafka_ConfigEntry_t **entries = rd_kafka_ConfigResource_configs(res, &n);
        struct table *ct = table_new(3, "CONFIG", "VALUE", "SOURCE");
        for (size_t i = 0; i < n; i++) {
            if (rd_kafka_ConfigEntry_is_default(entries[i])) {
                continue;
            }
            const char *v = rd_kafka_ConfigEntry_value(entries[i]);
            if (rd_kafka_ConfigEntry_is_sensitive(entries[i])) {
                v = "(sensitive)";
            }
            table_add(ct, rd_kafka_ConfigEntry_name(entries[i]), v,
                      rd_kafka_ConfigSource_name(rd_kafka_ConfigEntry_source(entries[i])));
        }
        if (table_rows(ct) == 0) {
            printf("\nConfigs: all defaults\n");
        } else {
            printf("\nConfigs (non-default):\n");
            table_print(ct);
        }
        table_free(ct);
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return rc;
}

/* librdkafka 2.0.2 has no IncrementalAlterConfigs, and the classic AlterConfigs replaces
 * the topic's whole set of overrides. So alter reads the current overrides
 * (DYNAMIC_TOPIC_CONFIG), applies -c and -d to that set and writes it back. Two
 * concurrent alters of the same topic can therefore lose one another's change; that is
 * the price of working with this librdkafka version and with older Kafka brokers. */
static int topic_alter(struct cli_opts *o, const struct topic_args *a)
{
    if (a->nconfigs == 0 && a->ndeletes == 0) {
        cli_err("topic alter needs at least one -c key=value or -d key");
        return CLI_EXIT_USAGE;
    }
    /* Parse all -c first so a typo fails before anything is sent. */
    char bufs[CLI_MAX_CONFIGS][1024];
    const char *keys[CLI_MAX_CONFIGS], *vals[CLI_MAX_CONFIGS];
    for (int i = 0; i < a->nconfigs; i++) {
        if (cli_split_kv(a->configs[i], bufs[i], sizeof bufs[i], &keys[i], &vals[i]) != 0) {
            return CLI_EXIT_USAGE;
        }
    }
    rd_kafka_t *rk = cli_client(o, RD_KAFKA_PRODUCER, NULL, NULL);
    if (rk == NULL) {
        return CLI_EXIT_FAIL;
    }
    rd_kafka_event_t *dev;
    const rd_kafka_ConfigResource_t *cur;
    if (cli_describe_topic_configs(rk, a->name, &dev, &cur) != 0) {
        rd_kafka_destroy(rk);
        return CLI_EXIT_FAIL;
    }
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, a->name);
    size_t n;
    const rd_kafka_ConfigEntry_t **entries = rd_kafka_ConfigResource_configs(cur, &n);
    bool deleted[CLI_MAX_CONFIGS] = {false};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (rd_kafka_ConfigEntry_source(entries[i]) !=
            RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG) {
            continue;
        }
        const char *k = rd_kafka_ConfigEntry_name(entries[i]);
        bool keep = true;
        for (int j = 0; j < a->ndeletes; j++) {
            if (strcmp(a->deletes[j], k) == 0) {
                deleted[j] = true;
                keep = false;
            }
        }
        for (int j = 0; j < a->nconfigs; j++) {
            keep = keep && strcmp(keys[j], k) != 0; /* replaced below */
        }
        if (keep && rd_kafka_ConfigEntry_is_sensitive(entries[i])) {
            /* Its value is not disclosed, so it cannot be written back. */
            rc = cli_err("topic '%s' has sensitive override %s; cannot alter without "
                         "IncrementalAlterConfigs",
                         a->name, k);
        } else if (keep) {
            rd_kafka_ConfigResource_set_config(cr, k, rd_kafka_ConfigEntry_value(entries[i]));
        }
    }
    for (int j = 0; j < a->ndeletes && rc == 0; j++) {
        if (!deleted[j]) {
            rc = cli_err("topic '%s' has no override for '%s' to delete", a->name, a->deletes[j]);
        }
    }
    for (int j = 0; j < a->nconfigs && rc == 0; j++) {
        rd_kafka_ConfigResource_set_config(cr, keys[j], vals[j]);
    }
    rd_kafka_event_destroy(dev);
    if (rc == 0) {
        rc = CLI_EXIT_FAIL;
        struct cli_admin req = cli_admin_start(rk, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
        rd_kafka_AlterConfigs(rk, &cr, 1, req.opt, req.q);
        rd_kafka_event_t *ev =
            cli_admin_result(&req, RD_KAFKA_EVENT_ALTERCONFIGS_RESULT, "topic alter");
        if (ev != NULL) {
            const rd_kafka_ConfigResource_t **rs =
                rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &n);
            if (n == 1 && rd_kafka_ConfigResource_error(rs[0]) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                printf("Altered configs of topic %s.\n", a->name);
                rc = 0;
            } else if (n == 1) {
                const char *why = rd_kafka_ConfigResource_error_string(rs[0]);
                cli_err("topic alter '%s' failed: %s", a->name,
                        why ? why : rd_kafka_err2str(rd_kafka_ConfigResource_error(rs[0])));
            } else {
                cli_err("topic alter '%s': no result", a->name);
            }
            rd_kafka_event_destroy(ev);
        }
    }
    rd_kafka_ConfigResource_destroy(cr);
    rd_kafka_destroy(rk);
    return rc;
}

static int topic_delete(struct cli_opts *o, const struct topic_args *a)
{
    rd_kafka_t *rk = cli_client(o, RD_KAFKA_PRODUCER, NULL, NULL);
    if (rk == NULL) {
        return CLI_EXIT_FAIL;
    }
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(a->name);
    struct cli_admin req = cli_admin_start(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_DeleteTopics(rk, &dt, 1, req.opt, req.q);
    int rc = topic_results(&req, RD_KAFKA_EVENT_DELETETOPICS_RESULT, "topic delete");
    if (rc == 0) {
        printf("Deleted topic %s.\n", a->name);
    }
    rd_kafka_DeleteTopic_destroy(dt);
    rd_kafka_destroy(rk);
    return rc;
}

static int topic_add_partitions(struct cli_opts *o, const struct topic_args *a)
{
    if (a->partitions < 0) {
        cli_err("topic add-partitions needs -p TOTAL (the new partition count)");
        return CLI_EXIT_USAGE;
    }
    char errstr[512];
    rd_kafka_NewPartitions_t *np =
        rd_kafka_NewPartitions_new(a->name, (size_t)a->partitions, errstr, sizeof errstr);
    if (np == NULL) {
        return cli_err("topic add-partitions '%s': %s", a->name, errstr);
    }
    rd_kafka_t *rk = cli_client(o, RD_KAFKA_PRODUCER, NULL, NULL);
    if (rk == NULL) {
        rd_kafka_NewPartitions_destroy(np);
        return CLI_EXIT_FAIL;
    }
    struct cli_admin req = cli_admin_start(rk, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS);
    rd_kafka_CreatePartitions(rk, &np, 1, req.opt, req.q);
    int rc = topic_results(&req, RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT, "topic add-partitions");
    if (rc == 0) {
        printf("Topic %s now has %lld partitions.\n", a->name, (long long)a->partitions);
    }
    rd_kafka_NewPartitions_destroy(np);
    rd_kafka_destroy(rk);
    return rc;
}

int topic_main(struct cli_opts *o, int argc, char **argv)
{
    /* Each verb with the option letters it takes and whether it needs a topic name. */
    static const struct {
        const char *verb;
        const char *allowed;
        bool want_name;
        int (*fn)(struct cli_opts *, const struct topic_args *);
    } verbs[] = {
        {"create", "prc", true, topic_create},  {"list", "i", false, topic_list},
        {"describe", "", true, topic_describe}, {"alter", "cd", true, topic_alter},
        {"delete", "", true, topic_delete},     {"add-partitions", "p", true, topic_add_partitions},
    };
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(topic_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : 0;
    }
    if (strcmp(argv[1], "reassign") == 0)
        return topic_reassign_main(o, argc - 1, argv + 1);
    if (strcmp(argv[1], "reassignments") == 0)
        return topic_reassignments_main(o, argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        if (strcmp(argv[1], verbs[i].verb) == 0) {
            struct topic_args a;
            int rc =
                parse_topic_args(o, argc - 1, argv + 1, verbs[i].allowed, verbs[i].want_name, &a);
            return rc != 0 ? rc : verbs[i].fn(o, &a);
        }
    }
    cli_err("unknown topic command '%s'", argv[1]);
    fputs(topic_usage, stderr);
    return CLI_EXIT_USAGE;
}
