/* Unit tests for cluster: topic name rules, config validation, metadata changes that
 * survive a reopen (replay), a torn metadata log tail, and the change listener. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "cluster/metalog.h"

/* With no runner set, a change completes inside the call that submits it: these give
 * the tests the result as a return value. The message is kept until the next change. */
static struct cluster_result last;
static bool last_done;
static char last_why[256];

static void keep(void *arg, const struct cluster_result *res)
{
    (void)arg;
    last = *res;
    last_done = true;
    snprintf(last_why, sizeof last_why, "%s", res->why ? res->why : "");
    last.why = res->why ? last_why : NULL;
}

static int result(const char **why)
{
    assert_true(last_done);
    last_done = false;
    if (why)
        *why = last.why;
    return last.err;
}

static int create_topic(struct cluster *c, struct slice name, int32_t partitions, int16_t rf,
                        const struct config_entry *configs, size_t n, bool validate_only,
                        const char **why)
{
    cluster_create_topic(c, name, partitions, rf, configs, n, validate_only, keep, NULL);
    return result(why);
}

static int delete_topic(struct cluster *c, struct slice name)
{
    cluster_delete_topic(c, name, keep, NULL);
    return result(NULL);
}

static int create_partitions(struct cluster *c, struct slice name, int32_t total,
                             bool validate_only, const char **why)
{
    cluster_create_partitions(c, name, total, NULL, 0, 0, validate_only, keep, NULL);
    return result(why);
}

static int alter_topic_configs(struct cluster *c, struct slice name,
                               const struct config_change *changes, size_t n, bool replace_all,
                               bool validate_only, const char **why)
{
    cluster_alter_topic_configs(c, name, changes, n, replace_all, validate_only, keep, NULL);
    return result(why);
}

static int register_broker(struct cluster *c, int32_t node, const char *host, int32_t port,
                           const char *rack)
{
    cluster_register_broker(c, node, host, port, rack, NULL, false, keep, NULL);
    return result(NULL);
}

/* Registers brokers 1..n (unfenced: a single node registers them so). */
static void register_brokers(struct cluster *c, int32_t n)
{
    for (int32_t b = 1; b <= n; b++)
        assert_int_equal(register_broker(c, b, "localhost", 9091 + b, NULL), 0);
}

static int allocate_producer_ids(struct cluster *c, int32_t node, int64_t count, int64_t *first)
{
    cluster_allocate_producer_ids(c, node, count, keep, NULL);
    int rc = result(NULL);
    if (rc == 0)
        *first = last.first_producer_id;
    return rc;
}

struct fixture {
    char dir[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/samsa-cluster-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static struct cluster *open_cluster(struct fixture *f)
{
    struct cluster_options o = {.metadata_dir = f->dir, .node_id = 1};
    struct cluster *c = NULL;
    assert_int_equal(cluster_open(&o, &c), 0);
    return c;
}

static void test_topic_names(void **state)
{
    (void)state;
    assert_null(cluster_topic_name_error(slice_from_cstr("orders.v1_x-2")));
    assert_non_null(cluster_topic_name_error(slice_from_cstr("")));
    assert_non_null(cluster_topic_name_error(slice_from_cstr(".")));
    assert_non_null(cluster_topic_name_error(slice_from_cstr("..")));
    assert_non_null(cluster_topic_name_error(slice_from_cstr("bad name")));
    assert_non_null(cluster_topic_name_error(slice_from_cstr("sl/ash")));
    char long_name[251];
    memset(long_name, 'a', 250);
    long_name[250] = '\0';
    assert_non_null(cluster_topic_name_error(slice_from_cstr(long_name)));
    long_name[249] = '\0';
    assert_null(cluster_topic_name_error(slice_from_cstr(long_name)));
}

static void test_config_validation(void **state)
{
    (void)state;
    assert_null(tcfg_validate("retention.ms", "-1"));
    assert_non_null(tcfg_validate("retention.ms", "-2"));
    assert_non_null(tcfg_validate("retention.ms", "soon"));
    assert_null(tcfg_validate("cleanup.policy", "compact"));
    assert_non_null(tcfg_validate("cleanup.policy", "shred"));
    assert_null(tcfg_validate("cleanup.policy", "delete"));
    /* A list as Kafka 4.4 takes one: blanks around items, repeats and the empty list
     * (neither deletion nor compaction) are fine; empty items and other words are not. */
    assert_null(tcfg_validate("cleanup.policy", "compact,delete"));
    assert_null(tcfg_validate("cleanup.policy", " compact , delete "));
    assert_null(tcfg_validate("cleanup.policy", "delete,delete"));
    assert_null(tcfg_validate("cleanup.policy", ""));
    assert_null(tcfg_validate("cleanup.policy", "  "));
    assert_non_null(tcfg_validate("cleanup.policy", "delete,"));
    assert_non_null(tcfg_validate("cleanup.policy", ","));
    assert_non_null(tcfg_validate("cleanup.policy", "delete,,compact"));
    assert_non_null(tcfg_validate("cleanup.policy", "Compact")); /* case-sensitive */
    assert_non_null(tcfg_validate("cleanup.policy", "compact delete"));
    assert_non_null(tcfg_validate("no.such.config", "1"));
    assert_non_null(tcfg_validate("segment.bytes", "13"));
    assert_null(tcfg_validate("message.timestamp.type", "LogAppendTime"));
    assert_non_null(tcfg_validate("message.timestamp.type", "Whenever"));
    /* compression.type and its levels, with Kafka's ranges (KIP-390). */
    const char *types[] = {"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"};
    for (size_t i = 0; i < ARRAY_LEN(types); i++)
        assert_null(tcfg_validate("compression.type", types[i]));
    assert_string_equal(tcfg_validate("compression.type", "brotli"),
                        "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer");
    assert_non_null(tcfg_validate("compression.type", "ZSTD")); /* case-sensitive, as Kafka */
    assert_non_null(tcfg_validate("compression.type", "none")); /* the producer's name only */
    assert_null(tcfg_validate("compression.gzip.level", "-1"));
    assert_null(tcfg_validate("compression.gzip.level", "1"));
    assert_null(tcfg_validate("compression.gzip.level", "9"));
    assert_string_equal(tcfg_validate("compression.gzip.level", "0"),
                        "Value must be between 1 and 9 or equal to -1");
    assert_non_null(tcfg_validate("compression.gzip.level", "10"));
    assert_non_null(tcfg_validate("compression.gzip.level", "-2"));
    assert_null(tcfg_validate("compression.lz4.level", "1"));
    assert_null(tcfg_validate("compression.lz4.level", "17"));
    assert_string_equal(tcfg_validate("compression.lz4.level", "0"), "Value must be at least 1");
    assert_string_equal(tcfg_validate("compression.lz4.level", "18"),
                        "Value must be no more than 17");
    assert_null(tcfg_validate("compression.zstd.level", "-131072"));
    assert_null(tcfg_validate("compression.zstd.level", "22"));
    assert_string_equal(tcfg_validate("compression.zstd.level", "-131073"),
                        "Value must be at least -131072");
    assert_string_equal(tcfg_validate("compression.zstd.level", "23"),
                        "Value must be no more than 22");
    assert_non_null(tcfg_validate("compression.zstd.level", "three"));
}

struct replica_pairs {
    int32_t v[8][2];
    size_t n;
};
static void collect_pair(void *arg, int32_t partition, int32_t broker)
{
    struct replica_pairs *r = arg;
    assert_true(r->n < ARRAY_LEN(r->v));
    r->v[r->n][0] = partition;
    r->v[r->n++][1] = broker;
}

/* leader.|follower.replication.throttled.replicas: what Kafka 4.4 accepts and refuses
 * (each case checked against it with CreateTopics validate_only), and what is read out. */
static void test_throttled_replicas_config(void **state)
{
    (void)state;
    static const char *const names[] = {"leader.replication.throttled.replicas",
                                        "follower.replication.throttled.replicas"};
    /* Kafka's pattern allows empty entries, and "*" with empty entries around it. */
    static const char *const good[] = {
        "*",   "0:1",  "0:1,1:2",       " 0:1 , 1:2 ",  "",
        " ",   "0:1,", ",0:1",          "0:1,,1:2",     "*,",
        " * ", ",*,",  "0:99999999999", "2147483648:1", "2147483647:2147483647"};
    static const char *const bad[] = {"a",   "0:", ":1",    "-1:1", "0:-1", "*,0:1", "0:1,*",
                                      "*,*", "**", "0:1:2", "+1:1", "0 :1", "0;1",   "0:1 2"};
    for (size_t k = 0; k < ARRAY_LEN(names); k++) {
        for (size_t i = 0; i < ARRAY_LEN(good); i++)
            assert_null(tcfg_validate(names[k], good[i]));
        for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
            const char *why = tcfg_validate(names[k], bad[i]);
            assert_non_null(why);
            /* Kafka's message, after its "Invalid value ... for configuration ...: ". */
            assert_true(strncmp(why, names[k], strlen(names[k])) == 0);
            assert_non_null(strstr(why, " must be the literal '*' or a list of replicas in the "
                                        "following format: [partitionId]:[brokerId],"
                                        "[partitionId]:[brokerId],..."));
        }
    }
    const struct tcfg_def *d = tcfg_find(names[0]);
    assert_non_null(d);
    assert_int_equal(d->type, TCFG_LIST);
    assert_string_equal(d->default_value, "");

    struct replica_pairs r = {0};
    assert_int_equal(tcfg_replica_list_parse("*", collect_pair, &r), 1);
    assert_int_equal(tcfg_replica_list_parse(" *, ", collect_pair, &r), 1);
    assert_int_equal(tcfg_replica_list_parse("", collect_pair, &r), 0);
    assert_int_equal(r.n, 0);
    /* In order, repeats kept; numbers beyond an int32 left out; nothing from a value
     * that is refused, even from its entries before the bad one. */
    assert_int_equal(tcfg_replica_list_parse(" 3:1, ,0:2,3:1,2147483648:1,1:99999999999,"
                                             "2147483647:0",
                                             collect_pair, &r),
                     0);
    assert_int_equal(r.n, 4);
    assert_int_equal(r.v[0][0], 3);
    assert_int_equal(r.v[0][1], 1);
    assert_int_equal(r.v[1][0], 0);
    assert_int_equal(r.v[1][1], 2);
    assert_int_equal(r.v[2][0], 3);
    assert_int_equal(r.v[3][0], INT32_MAX);
    assert_int_equal(r.v[3][1], 0);
    r.n = 0;
    assert_int_equal(tcfg_replica_list_parse("0:1,x", collect_pair, &r), -1);
    assert_int_equal(tcfg_replica_list_parse("0:1,*", collect_pair, &r), -1);
    assert_int_equal(r.n, 0);
}

static int created, deleted, added, changed;
static int listener(void *arg, enum cluster_event ev, const struct mtopic *t, int32_t partition)
{
    (void)arg;
    (void)t;
    assert_int_equal(partition, -1); /* topic-level events name no partition */
    created += ev == CLUSTER_TOPIC_CREATED;
    deleted += ev == CLUSTER_TOPIC_DELETED;
    added += ev == CLUSTER_PARTITIONS_ADDED;
    changed += ev == CLUSTER_CONFIG_CHANGED;
    return 0;
}

/* A broker that cannot open topics whose name starts with "broken". */
static int refusing_listener(void *arg, enum cluster_event ev, const struct mtopic *t,
                             int32_t partition)
{
    (void)arg;
    (void)partition;
    return ev == CLUSTER_TOPIC_CREATED && strncmp(t->name, "broken", 6) == 0 ? -1 : 0;
}

/* What a partition-level listener heard last. */
static int partition_events;
static struct mpartition heard;
static int32_t heard_partition;
static int partition_listener(void *arg, enum cluster_event ev, const struct mtopic *t,
                              int32_t partition)
{
    (void)arg;
    if (ev != CLUSTER_PARTITION_CHANGED)
        return 0;
    partition_events++;
    heard_partition = partition;
    heard = t->partitions[partition];
    return 0;
}

static int change_partition(struct cluster *c, const char *topic, int32_t partition, int32_t leader,
                            const int32_t *replicas, int32_t nrep, const int32_t *isr, int32_t nisr,
                            const char **why)
{
    struct cluster_partition_change ch = {leader, replicas, nrep, isr, nisr};
    cluster_change_partition(c, slice_from_cstr(topic), partition, &ch, keep, NULL);
    return result(why);
}

/* Partition-level changes (leader, replicas, ISR): checked against the image, epochs
 * moved as Kafka's controller moves them, heard by the listener with the partition, and
 * kept across a reopen. */
static void test_partition_changes(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    const char *why = NULL;
    assert_int_equal(register_broker(c, 1, "localhost", 9092, NULL), 0);
    assert_int_equal(register_broker(c, 2, "localhost", 9093, NULL), 0);
    const int32_t on_1[] = {1, 1};
    cluster_create_topic_assigned(c, slice_from_cstr("t"), on_1, 2, 1, NULL, 0, false, keep, NULL);
    assert_int_equal(result(NULL), 0);
    cluster_set_listener(c, partition_listener, NULL);
    partition_events = 0;

    /* A second replica, not yet in sync: a replica added moves only the partition epoch
     * (Kafka's rule: the leader epoch moves when the leader changes or a replica goes). */
    int32_t both[] = {1, 2}, one[] = {1}, two[] = {2};
    assert_int_equal(change_partition(c, "t", 1, CLUSTER_KEEP_LEADER, both, 2, NULL, -1, &why), 0);
    assert_int_equal(partition_events, 1);
    assert_int_equal(heard_partition, 1);
    assert_int_equal(heard.leader, 1);
    assert_int_equal(heard.leader_epoch, 0);
    assert_int_equal(heard.partition_epoch, 1);
    assert_int_equal(heard.replica_count, 2);
    assert_int_equal(heard.isr_count, 1);

    /* It catches up (ISR grows: only the partition epoch moves), then leads. */
    assert_int_equal(change_partition(c, "t", 1, CLUSTER_KEEP_LEADER, NULL, -1, both, 2, &why), 0);
    assert_int_equal(heard.leader_epoch, 0);
    assert_int_equal(heard.partition_epoch, 2);
    assert_int_equal(heard.isr_count, 2);
    assert_int_equal(change_partition(c, "t", 1, 2, NULL, -1, two, 1, &why), 0);
    assert_int_equal(heard.leader, 2);
    assert_int_equal(heard.leader_epoch, 1);
    assert_int_equal(heard.partition_epoch, 3);
    assert_int_equal(partition_events, 3);

    /* A change that changes nothing writes nothing and is not heard. */
    assert_int_equal(change_partition(c, "t", 1, 2, both, 2, two, 1, &why), 0);
    assert_int_equal(partition_events, 3);

    /* Broker 1 goes from the replicas: a replica removed moves the leader epoch too. */
    assert_int_equal(change_partition(c, "t", 1, CLUSTER_KEEP_LEADER, two, 1, NULL, -1, &why), 0);
    assert_int_equal(heard.leader, 2);
    assert_int_equal(heard.leader_epoch, 2);
    assert_int_equal(heard.partition_epoch, 4);
    assert_int_equal(heard.replica_count, 1);
    assert_int_equal(partition_events, 4);

    /* Refused, with nothing written or heard. */
    int32_t unknown[] = {1, 7}, twice[] = {1, 1}, none[] = {0};
    assert_int_equal(change_partition(c, "t", 0, CLUSTER_KEEP_LEADER, unknown, 2, NULL, -1, &why),
                     CLUSTER_ERR_INVALID_REPLICATION);
    assert_non_null(strstr(why, "not a registered broker"));
    assert_int_equal(change_partition(c, "t", 0, CLUSTER_KEEP_LEADER, twice, 2, NULL, -1, &why),
                     CLUSTER_ERR_INVALID_REPLICATION);
    assert_int_equal(change_partition(c, "t", 0, CLUSTER_KEEP_LEADER, none, 0, NULL, -1, &why),
                     CLUSTER_ERR_INVALID_REPLICATION);
    assert_int_equal(change_partition(c, "t", 0, CLUSTER_KEEP_LEADER, NULL, -1, two, 1, &why),
                     CLUSTER_ERR_INVALID_REPLICATION); /* ISR outside the replicas */
    assert_non_null(strstr(why, "not a replica"));
    assert_int_equal(change_partition(c, "t", 0, 2, NULL, -1, NULL, -1, &why),
                     CLUSTER_ERR_INVALID_REPLICATION); /* leader outside the ISR */
    assert_non_null(strstr(why, "leader must be an in-sync replica"));
    assert_int_equal(change_partition(c, "t", 2, CLUSTER_KEEP_LEADER, one, 1, NULL, -1, &why),
                     CLUSTER_ERR_INVALID_PARTITIONS);
    assert_int_equal(change_partition(c, "nope", 0, 1, NULL, -1, NULL, -1, &why),
                     CLUSTER_ERR_UNKNOWN_TOPIC);
    assert_int_equal(partition_events, 4);

    /* Leaderless (the ISR emptied): the leader epoch moves. */
    assert_int_equal(change_partition(c, "t", 0, -1, NULL, -1, none, 0, &why), 0);
    assert_int_equal(heard_partition, 0);
    assert_int_equal(heard.leader, -1);
    assert_int_equal(heard.leader_epoch, 1);
    assert_int_equal(heard.isr_count, 0);
    cluster_close(c);

    /* The image after a reopen is the one the changes left. */
    c = open_cluster(f);
    const struct mtopic *t = cluster_topic_find(c, slice_from_cstr("t"));
    assert_non_null(t);
    const struct mpartition *p0 = &t->partitions[0], *p1 = &t->partitions[1];
    assert_int_equal(p0->leader, -1);
    assert_int_equal(p0->leader_epoch, 1);
    assert_int_equal(p0->partition_epoch, 1);
    assert_int_equal(p1->leader, 2);
    assert_int_equal(p1->leader_epoch, 2);
    assert_int_equal(p1->partition_epoch, 4);
    assert_int_equal(p1->replica_count, 1);
    assert_int_equal(p1->replicas[0], 2);
    assert_int_equal(p1->isr_count, 1);
    assert_int_equal(p1->isr[0], 2);
    cluster_close(c);
}

/* samsa.max.partitions bounds the partitions of all topics together; a topic the
 * broker cannot open is taken back, also across a reopen. */
static void test_partition_limit_and_take_back(void **state)
{
    struct fixture *f = *state;
    struct cluster_options o = {.metadata_dir = f->dir, .node_id = 1, .max_partitions = 10};
    struct cluster *c = NULL;
    assert_int_equal(cluster_open(&o, &c), 0);
    const char *why = NULL;
    assert_int_equal(create_topic(c, slice_from_cstr("a"), 6, 1, NULL, 0, false, &why), 0);
    assert_int_equal(create_topic(c, slice_from_cstr("b"), 5, 1, NULL, 0, true, &why),
                     CLUSTER_ERR_LIMIT);
    assert_non_null(strstr(why, "samsa.max.partitions is 10"));
    assert_int_equal(create_partitions(c, slice_from_cstr("a"), 11, false, &why),
                     CLUSTER_ERR_LIMIT);
    assert_int_equal(create_partitions(c, slice_from_cstr("a"), 10, false, &why), 0);
    assert_int_equal(cluster_partition_count(c), 10);
    assert_int_equal(delete_topic(c, slice_from_cstr("a")), 0);
    assert_int_equal(cluster_partition_count(c), 0);
    cluster_set_listener(c, refusing_listener, NULL);
    assert_int_equal(create_topic(c, slice_from_cstr("broken"), 2, 1, NULL, 0, false, &why),
                     CLUSTER_ERR_IO);
    assert_null(cluster_topic_find(c, slice_from_cstr("broken")));
    assert_int_equal(create_topic(c, slice_from_cstr("fine"), 2, 1, NULL, 0, false, &why), 0);
    cluster_close(c);
    assert_int_equal(cluster_open(&o, &c), 0);
    assert_null(cluster_topic_find(c, slice_from_cstr("broken")));
    assert_non_null(cluster_topic_find(c, slice_from_cstr("fine")));
    assert_int_equal(cluster_partition_count(c), 2);
    cluster_close(c);
}

static void test_changes_survive_reopen(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    char id[64];
    snprintf(id, sizeof id, "%s", cluster_id(c));
    assert_int_equal(strlen(id), 22);
    assert_int_equal(register_broker(c, 1, "localhost", 9092, NULL), 0);
    cluster_set_listener(c, listener, NULL);
    const char *why = NULL;
    struct config_entry cfg[] = {{"retention.ms", "1000"}};
    assert_int_equal(create_topic(c, slice_from_cstr("a"), 3, 1, cfg, 1, false, &why), 0);
    assert_int_equal(create_topic(c, slice_from_cstr("b"), 1, 1, NULL, 0, false, &why), 0);
    assert_int_equal(create_topic(c, slice_from_cstr("a"), 1, 1, NULL, 0, false, &why),
                     CLUSTER_ERR_TOPIC_EXISTS);
    assert_int_equal(create_topic(c, slice_from_cstr("z"), 0, 1, NULL, 0, false, &why),
                     CLUSTER_ERR_INVALID_PARTITIONS);
    assert_int_equal(create_topic(c, slice_from_cstr("z"), 1, 2, NULL, 0, false, &why),
                     CLUSTER_ERR_INVALID_REPLICATION);
    struct config_entry bad[] = {{"cleanup.policy", "shred"}};
    assert_int_equal(create_topic(c, slice_from_cstr("z"), 1, 1, bad, 1, false, &why),
                     CLUSTER_ERR_INVALID_CONFIG);
    /* validate_only writes nothing. */
    assert_int_equal(create_topic(c, slice_from_cstr("v"), 1, 1, NULL, 0, true, &why), 0);
    assert_null(cluster_topic_find(c, slice_from_cstr("v")));
    assert_int_equal(create_partitions(c, slice_from_cstr("a"), 5, false, &why), 0);
    assert_int_equal(create_partitions(c, slice_from_cstr("a"), 4, false, &why),
                     CLUSTER_ERR_INVALID_PARTITIONS);
    struct config_change ch[] = {{"retention.bytes", "999", CFG_OP_SET},
                                 {"retention.ms", NULL, CFG_OP_DELETE}};
    assert_int_equal(alter_topic_configs(c, slice_from_cstr("a"), ch, 2, false, false, &why), 0);
    struct config_change badch[] = {{"retention.bytes", "1", CFG_OP_SET},
                                    {"segment.bytes", "1", CFG_OP_SET}};
    assert_int_equal(alter_topic_configs(c, slice_from_cstr("a"), badch, 2, false, false, &why),
                     CLUSTER_ERR_INVALID_CONFIG);
    assert_int_equal(delete_topic(c, slice_from_cstr("b")), 0);
    assert_int_equal(delete_topic(c, slice_from_cstr("b")), CLUSTER_ERR_UNKNOWN_TOPIC);
    assert_int_equal(created, 2);
    assert_int_equal(added, 1);
    assert_int_equal(changed, 1);
    assert_int_equal(deleted, 1);
    uint8_t a_id[16];
    memcpy(a_id, cluster_topic_find(c, slice_from_cstr("a"))->id, 16);
    cluster_close(c);

    c = open_cluster(f);
    assert_string_equal(cluster_id(c), id);
    assert_int_equal(cluster_topic_count(c), 1);
    const struct mtopic *a = cluster_topic_find(c, slice_from_cstr("a"));
    assert_non_null(a);
    assert_memory_equal(a->id, a_id, 16);
    assert_int_equal(a->partition_count, 5);
    assert_int_equal(a->partitions[4].leader, 1);
    assert_string_equal(cluster_topic_config(a, "retention.bytes"), "999");
    assert_null(cluster_topic_config(a, "retention.ms")); /* failed change wrote nothing */
    assert_null(cluster_topic_find(c, slice_from_cstr("b")));
    assert_int_equal(cluster_broker_count(c), 1);
    assert_int_equal(cluster_broker_find(c, 1)->port, 9092);
    cluster_close(c);
}

/* A crash leaves no clean-shutdown marker: what the tests do to pretend one happened. */
static void forget_clean_shutdown(struct fixture *f)
{
    char path[128];
    snprintf(path, sizeof path, "%s/clean-shutdown", f->dir);
    assert_int_equal(unlink(path), 0);
}

static off_t log_size(struct fixture *f)
{
    char path[128];
    snprintf(path, sizeof path, "%s/raft.log", f->dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void flip_byte(struct fixture *f, off_t at)
{
    char path[128];
    snprintf(path, sizeof path, "%s/raft.log", f->dir);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t byte;
    assert_int_equal(pread(fd, &byte, 1, at), 1);
    byte ^= 0xff;
    assert_int_equal(pwrite(fd, &byte, 1, at), 1);
    close(fd);
}

static void create(struct cluster *c, const char *name)
{
    const char *why;
    assert_int_equal(create_topic(c, slice_from_cstr(name), 1, 1, NULL, 0, false, &why), 0);
}

static int reopen_rc(struct fixture *f)
{
    struct cluster_options o = {.metadata_dir = f->dir, .node_id = 1};
    struct cluster *c = NULL;
    int rc = cluster_open(&o, &c);
    cluster_close(c);
    return rc;
}

static void test_torn_tail_is_truncated(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    create(c, "keep");
    create(c, "torn");
    cluster_close(c);
    forget_clean_shutdown(f);
    /* Cut the last entry in half, as a crash mid-write would. */
    char path[128];
    snprintf(path, sizeof path, "%s/raft.log", f->dir);
    assert_int_equal(truncate(path, log_size(f) - 5), 0);
    c = open_cluster(f);
    assert_non_null(cluster_topic_find(c, slice_from_cstr("keep")));
    assert_null(cluster_topic_find(c, slice_from_cstr("torn")));
    /* The log is usable after the truncation. */
    create(c, "after");
    cluster_close(c);
    c = open_cluster(f);
    assert_non_null(cluster_topic_find(c, slice_from_cstr("after")));
    assert_int_equal(cluster_topic_count(c), 2);
    cluster_close(c);
}

/* Blocks allocated but never written read as zeros after a crash: a torn tail too. */
static void test_zeros_after_crash_are_a_torn_tail(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    create(c, "keep");
    cluster_close(c);
    forget_clean_shutdown(f);
    char path[128];
    snprintf(path, sizeof path, "%s/raft.log", f->dir);
    off_t size = log_size(f);
    assert_int_equal(truncate(path, size + 4096), 0);
    c = open_cluster(f);
    assert_non_null(cluster_topic_find(c, slice_from_cstr("keep")));
    cluster_close(c);
    /* The zeros were cut off (the open then wrote its election): after this clean stop
     * any zeros left would be refused. */
    assert_true(log_size(f) < size + 4096);
    c = open_cluster(f);
    assert_non_null(cluster_topic_find(c, slice_from_cstr("keep")));
    cluster_close(c);
}

/* After a clean stop no write can have been cut short: damage anywhere, even in the
 * last entry, is refused and leaves the file as it was. */
static void test_damage_after_clean_stop_is_refused(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    create(c, "one");
    create(c, "two");
    cluster_close(c);
    off_t size = log_size(f);
    flip_byte(f, size - 3);
    assert_int_equal(reopen_rc(f), CLUSTER_ERR_CORRUPT);
    assert_int_equal(reopen_rc(f), CLUSTER_ERR_CORRUPT); /* still: nothing was changed */
    assert_int_equal(log_size(f), size);
    /* The same damage after a crash is the tail of the write the crash cut short. */
    forget_clean_shutdown(f);
    c = open_cluster(f);
    assert_non_null(cluster_topic_find(c, slice_from_cstr("one")));
    assert_null(cluster_topic_find(c, slice_from_cstr("two")));
    cluster_close(c);
}

/* A bad entry with whole entries after it is never a torn tail, crash or not. */
static void test_damage_before_the_last_entry_is_refused(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    create(c, "one");
    off_t first_end = log_size(f);
    create(c, "two");
    create(c, "three");
    cluster_close(c);
    forget_clean_shutdown(f);
    off_t size = log_size(f);
    flip_byte(f, first_end + 12); /* in the payload of "two" */
    assert_int_equal(reopen_rc(f), CLUSTER_ERR_CORRUPT);
    flip_byte(f, first_end + 12);
    flip_byte(f, first_end + 1); /* the length of "two": now far more than the file */
    assert_int_equal(reopen_rc(f), CLUSTER_ERR_CORRUPT);
    assert_int_equal(log_size(f), size);
}

/* Recovery: salvage skips the damaged entry, keeps the rest, and the rewritten log
 * opens strictly with the recovered topic in it and the old file kept aside. */
static void test_salvage_and_rewrite(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    create(c, "one");
    off_t first_end = log_size(f);
    create(c, "lost");
    create(c, "three");
    int64_t pid;
    assert_int_equal(allocate_producer_ids(c, 1, 1000, &pid), 0);
    cluster_close(c);
    flip_byte(f, first_end + 12);
    assert_int_equal(reopen_rc(f), CLUSTER_ERR_CORRUPT);

    struct cluster_options o = {.metadata_dir = f->dir, .node_id = 1, .salvage = true};
    assert_int_equal(cluster_open(&o, &c), 0);
    assert_true(cluster_log_skipped_bytes(c) > 0);
    assert_non_null(cluster_topic_find(c, slice_from_cstr("one")));
    assert_null(cluster_topic_find(c, slice_from_cstr("lost")));
    assert_non_null(cluster_topic_find(c, slice_from_cstr("three")));
    uint8_t id[16] = {1, 2, 3};
    assert_int_equal(cluster_recover_topic(c, "lost", id, 3, NULL, 0), 0);
    assert_int_equal(cluster_recover_topic(c, "three", NULL, 2, NULL, 0), 0);
    char *kept = NULL;
    assert_int_equal(cluster_rewrite_log(c, 1ll << 32, &kept), 0);
    assert_non_null(kept);
    assert_int_equal(access(kept, F_OK), 0);
    free(kept);
    cluster_close(c);

    c = open_cluster(f);
    const struct mtopic *lost = cluster_topic_find(c, slice_from_cstr("lost"));
    assert_non_null(lost);
    assert_int_equal(lost->partition_count, 3);
    assert_memory_equal(lost->id, id, 16);
    assert_int_equal(cluster_topic_find(c, slice_from_cstr("three"))->partition_count, 2);
    assert_int_equal(cluster_broker_count(c), 0);
    /* Producer ids handed out before the damage are never handed out again. */
    assert_int_equal(allocate_producer_ids(c, 1, 1000, &pid), 0);
    assert_true(pid >= 1000 + (1ll << 32));
    cluster_close(c);
}

/* Every file in the metadata dir, by name, with its contents: what a refused start must
 * leave exactly as it found it. Malloc'd. */
static char *dir_image(struct fixture *f)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd,
             "cd %s && for n in $(ls -A | sort); do echo \"== $n\"; od -An -tx1 $n; done", f->dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    struct buf b;
    buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        buf_append(&b, chunk, n);
    assert_int_equal(pclose(p), 0);
    buf_put_i8(&b, 0);
    return (char *)b.data;
}

static void append_to_log(struct fixture *f, const void *data, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/raft.log", f->dir);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* A whole hard-state record of raft.log (src/raft/storage.c): [u32 len][u32 crc32c]
 * [u8 kind 2][u64 term][u64 vote][u64 commit]. */
static void append_hard_state(struct fixture *f, uint64_t term)
{
    uint8_t rec[8 + 25] = {0};
    rec[8] = 2;
    be64_write(rec + 9, term);
    be32_write(rec, 25);
    be32_write(rec + 4, crc32c(0, rec + 8, 25));
    append_to_log(f, rec, sizeof rec);
}

/* A start that refuses must change nothing, also when the log ends in a torn tail that an
 * accepted start would cut off: here an intact hard state whose term is older than the
 * last entry's (never written so: corruption), then the torn tail of a crashed save. */
static void test_refused_start_leaves_torn_tail(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    create(c, "one");
    cluster_close(c);
    c = open_cluster(f); /* a second election: the last entry's term is 3 */
    create(c, "two");
    cluster_close(c);
    forget_clean_shutdown(f);
    append_hard_state(f, 1);
    append_to_log(f, "\0\0\0\x40torn", 8); /* a record header running past the end */
    char *before = dir_image(f);
    assert_int_equal(reopen_rc(f), CLUSTER_ERR_CORRUPT);
    char *after = dir_image(f);
    assert_string_equal(after, before);
    free(after);
    assert_int_equal(reopen_rc(f), CLUSTER_ERR_CORRUPT); /* and refuses the same way again */
    after = dir_image(f);
    assert_string_equal(after, before);
    free(after);
    free(before);
}

/* The configuration check refuses after the torn tail was found, and must not have cut it
 * off either (nor left a clean-shutdown marker that would make the tail corruption). */
static void test_wrong_node_leaves_torn_tail(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    create(c, "one");
    cluster_close(c);
    forget_clean_shutdown(f);
    append_to_log(f, "\0\0", 2); /* fewer bytes than a record header */
    char *before = dir_image(f);
    struct cluster_options o = {.metadata_dir = f->dir, .node_id = 2};
    assert_int_not_equal(cluster_open(&o, &c), 0);
    char *after = dir_image(f);
    assert_string_equal(after, before);
    free(after);
    free(before);
    /* The right node still starts, cutting the tail. */
    c = open_cluster(f);
    assert_non_null(cluster_topic_find(c, slice_from_cstr("one")));
    cluster_close(c);
}

static void test_uuid_text(void **state)
{
    (void)state;
    uint8_t id[16], back[16];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(i * 17 + 3);
    char text[CLUSTER_UUID_TEXT_BYTES];
    cluster_uuid_format(id, text);
    assert_int_equal(strlen(text), 22);
    assert_int_equal(cluster_uuid_parse(text, back), 0);
    assert_memory_equal(id, back, 16);
    assert_int_equal(cluster_uuid_parse("too-short", back), -1);
    assert_int_equal(cluster_uuid_parse("AAAAAAAAAAAAAAAAAAAA*A", back), -1);
}

/* Producer id blocks never overlap, also across a reopen (the metadata log replays
 * every ProducerIdsRecord). */
static void test_producer_id_blocks(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    int64_t a = -1, b = -1, d = -1;
    assert_int_equal(allocate_producer_ids(c, 1, 1000, &a), 0);
    assert_int_equal(a, 0);
    assert_int_equal(allocate_producer_ids(c, 1, 10, &b), 0);
    assert_int_equal(b, 1000);
    assert_int_equal(allocate_producer_ids(c, 1, 0, &d), CLUSTER_ERR_LIMIT);
    cluster_close(c);
    c = open_cluster(f);
    assert_int_equal(allocate_producer_ids(c, 1, 1000, &d), 0);
    assert_int_equal(d, 1010);
    cluster_close(c);
}

/* An entry of the metadata log format of earlier versions (metalog.c): a topic with one
 * partition led by node 1, encoded as cluster.c encodes records. */
static void old_topic_entry(struct buf *b, const char *name, uint8_t id_byte)
{
    uint8_t id[16] = {id_byte};
    buf_put_uvarint(b, 2); /* records */
    buf_put_uvarint(b, 2); /* TopicRecord, version 0 */
    buf_put_uvarint(b, 0);
    buf_put_uvarint(b, strlen(name) + 1);
    buf_append(b, name, strlen(name));
    buf_append(b, id, 16);
    buf_put_uvarint(b, 3); /* PartitionRecord, version 0 */
    buf_put_uvarint(b, 0);
    buf_append(b, id, 16);
    buf_put_i32(b, 0); /* partition */
    buf_put_i32(b, 1); /* leader */
    buf_put_i32(b, 0); /* leader epoch */
    buf_put_i32(b, 0); /* partition epoch */
    buf_put_uvarint(b, 1);
    buf_put_i32(b, 1); /* replicas */
    buf_put_uvarint(b, 1);
    buf_put_i32(b, 1); /* isr */
}

static void ignore_entry(void *arg, struct slice entry)
{
    (void)arg;
    (void)entry;
}

static void write_old_log(struct fixture *f, const char *const *names, size_t n)
{
    struct metalog *m;
    assert_int_equal(metalog_open(f->dir, METALOG_STRICT, ignore_entry, NULL, &m, NULL), 0);
    for (size_t i = 0; i < n; i++) {
        struct buf b;
        buf_init(&b);
        old_topic_entry(&b, names[i], (uint8_t)(i + 1));
        assert_int_equal(metalog_append(m, b.data, b.len), 0);
        buf_free(&b);
    }
    metalog_close(m);
}

static int count_files_starting(struct fixture *f, const char *prefix)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test $(ls %s | grep -c '^%s') -eq 1", f->dir, prefix);
    return system(cmd) == 0 ? 1 : 0;
}

/* A data dir of an earlier version (metadata.log) upgrades in place: its entries become
 * the Raft log's snapshot, the old file is kept aside, and later changes and restarts
 * work on the Raft log. */
static void test_upgrade_from_old_metadata_log(void **state)
{
    struct fixture *f = *state;
    const char *names[] = {"alpha", "beta", "gamma"};
    write_old_log(f, names, 3);
    struct cluster *c = open_cluster(f);
    assert_int_equal(cluster_topic_count(c), 3);
    assert_int_equal(cluster_topic_find(c, slice_from_cstr("beta"))->id[0], 2);
    assert_false(cluster_log_was_empty(c));
    char path[128];
    snprintf(path, sizeof path, "%s/metadata.log", f->dir);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(count_files_starting(f, "metadata.log.migrated-"), 1);
    create(c, "delta");
    assert_int_equal(delete_topic(c, slice_from_cstr("alpha")), 0);
    cluster_close(c);
    c = open_cluster(f);
    assert_int_equal(cluster_topic_count(c), 3);
    assert_null(cluster_topic_find(c, slice_from_cstr("alpha")));
    assert_non_null(cluster_topic_find(c, slice_from_cstr("delta")));
    cluster_close(c);
}

/* A damaged old log is refused as before the upgrade, and nothing is changed. */
static void test_upgrade_refuses_damaged_old_log(void **state)
{
    struct fixture *f = *state;
    const char *names[] = {"alpha", "beta", "gamma"};
    write_old_log(f, names, 3);
    char path[128];
    snprintf(path, sizeof path, "%s/metadata.log", f->dir);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t byte = 0x5a;
    assert_int_equal(pwrite(fd, &byte, 1, 20), 1); /* inside the first entry */
    close(fd);
    assert_int_equal(reopen_rc(f), CLUSTER_ERR_CORRUPT);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/snapshot", f->dir);
    assert_int_not_equal(access(path, F_OK), 0);
}

/* A change larger than 1 MiB (30,000 partitions) is one Raft entry; the limit holds a
 * topic of 100,000 partitions. */
static void test_largest_topic_is_one_entry(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    const char *why;
    assert_int_equal(create_topic(c, slice_from_cstr("huge"), 30000, 1, NULL, 0, false, &why), 0);
    cluster_close(c);
    c = open_cluster(f);
    assert_int_equal(cluster_topic_find(c, slice_from_cstr("huge"))->partition_count, 30000);
    cluster_close(c);
}

/* A runner the test drives: it holds the write until the test runs it. */
struct held_write {
    void (*work)(void *arg);
    void (*finished)(void *arg);
    void *arg;
    int count;
};

static void hold_write(void *runner_arg, void (*work)(void *arg), void (*finished)(void *arg),
                       void *arg)
{
    struct held_write *h = runner_arg;
    *h = (struct held_write){work, finished, arg, h->count + 1};
}

static void release_write(struct held_write *h)
{
    void (*finished)(void *) = h->finished;
    void *arg = h->arg;
    h->finished = NULL;
    h->work(arg);
    finished(arg);
}

static int calls;
static void count_call(void *arg, const struct cluster_result *res)
{
    (void)arg;
    (void)res;
    calls++;
}

/* With a runner, a change is applied and reported only once its write has run; changes
 * wait their turn one at a time; a forgotten callback is not called, but its change
 * still happens. */
static void test_runner_and_forget(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    struct held_write h = {0};
    struct cluster_runner r = {hold_write, &h};
    cluster_set_runner(c, &r);
    int first = 0, second = 0;
    calls = 0;
    cluster_create_topic(c, slice_from_cstr("a"), 1, 1, NULL, 0, false, count_call, &first);
    cluster_create_topic(c, slice_from_cstr("a"), 1, 1, NULL, 0, false, count_call, &second);
    assert_int_equal(h.count, 1); /* the second waits for the first */
    assert_true(cluster_busy(c));
    assert_null(cluster_topic_find(c, slice_from_cstr("a"))); /* not before it is durable */
    cluster_forget(c, &first);
    release_write(&h); /* "a" is applied; the second is checked and refused: it exists */
    assert_non_null(cluster_topic_find(c, slice_from_cstr("a")));
    assert_int_equal(calls, 1); /* only the second's, the refusal */
    assert_int_equal(h.count, 1);
    assert_false(cluster_busy(c));
    cluster_set_runner(c, NULL);
    cluster_close(c);
}

/* ---- snapshots of the image (metadata.log.max.record.bytes.between.snapshots) ---- */

static struct cluster *open_cluster_snap(struct fixture *f, int64_t max_bytes, int64_t interval_ms)
{
    struct cluster_options o = {.metadata_dir = f->dir,
                                .node_id = 1,
                                .snapshot_max_bytes = max_bytes,
                                .snapshot_interval_ms = interval_ms};
    struct cluster *c = NULL;
    assert_int_equal(cluster_open(&o, &c), 0);
    return c;
}

static bool has_file(struct fixture *f, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    return access(path, F_OK) == 0;
}

/* Copies dir/from to dir/to, or only its first `limit` bytes (a write cut short). */
static void copy_file(struct fixture *f, const char *from, const char *to, off_t limit)
{
    char cmd[384];
    snprintf(cmd, sizeof cmd, "head -c %lld %s/%s > %s/%s", (long long)limit, f->dir, from, f->dir,
             to);
    assert_int_equal(system(cmd), 0);
}

/* Everything in the image a reopen must rebuild, as text: brokers, topics in order with
 * ids, flags, configs in order and every partition's state. Producer ids and deleted ids
 * are checked by the tests themselves. Returns a malloc'd string. */
static char *image_text(const struct cluster *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    assert_non_null(m);
    for (size_t i = 0; i < cluster_broker_count(c); i++) {
        const struct mbroker *b = cluster_broker_at(c, i);
        fprintf(m, "broker %d %s:%d rack=%s\n", b->node_id, b->host, b->port,
                b->rack ? b->rack : "-");
    }
    for (size_t i = 0; i < cluster_topic_count(c); i++) {
        const struct mtopic *t = cluster_topic_at(c, i);
        char id[CLUSTER_UUID_TEXT_BYTES];
        cluster_uuid_format(t->id, id);
        fprintf(m, "topic %s %s internal=%d partitions=%d\n", t->name, id, t->internal,
                t->partition_count);
        for (size_t k = 0; k < t->config_count; k++)
            fprintf(m, "  config %s=%s\n", t->configs[k].name, t->configs[k].value);
        for (int32_t p = 0; p < t->partition_count; p++) {
            const struct mpartition *mp = &t->partitions[p];
            fprintf(m, "  partition %d leader=%d epochs=%d/%d replicas=", mp->id, mp->leader,
                    mp->leader_epoch, mp->partition_epoch);
            for (int32_t r = 0; r < mp->replica_count; r++)
                fprintf(m, "%d,", mp->replicas[r]);
            fprintf(m, " isr=");
            for (int32_t r = 0; r < mp->isr_count; r++)
                fprintf(m, "%d,", mp->isr[r]);
            fprintf(m, "\n");
        }
    }
    assert_int_equal(fclose(m), 0);
    return text;
}

/* Many kinds of change: topics (some with configs, one internal), added partitions,
 * altered and deleted configs, deleted topics (the last one's id in gone_id), producer id
 * blocks (the next free id in *next_pid). */
static void many_changes(struct cluster *c, const char *prefix, int n, uint8_t gone_id[16],
                         int64_t *next_pid)
{
    const char *why;
    char name[64];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s%03d", prefix, i);
        char ms[32];
        snprintf(ms, sizeof ms, "%d", (i + 1) * 1000);
        struct config_entry cfg[] = {{"retention.ms", ms}, {"cleanup.policy", "compact"}};
        assert_int_equal(
            create_topic(c, slice_from_cstr(name), 1 + i % 3, 1, cfg, (size_t)(i % 3), false, &why),
            0);
        if (i % 5 == 0)
            assert_int_equal(create_partitions(c, slice_from_cstr(name), 5, false, &why), 0);
        if (i % 7 == 0) {
            struct config_change ch[] = {{"retention.bytes", "4096", CFG_OP_SET},
                                         {"retention.ms", NULL, CFG_OP_DELETE}};
            assert_int_equal(
                alter_topic_configs(c, slice_from_cstr(name), ch, 2, false, false, &why), 0);
        }
        if (i % 11 == 10) {
            memcpy(gone_id, cluster_topic_find(c, slice_from_cstr(name))->id, 16);
            assert_int_equal(delete_topic(c, slice_from_cstr(name)), 0);
        }
        if (i % 13 == 0) {
            int64_t first = 0;
            assert_int_equal(allocate_producer_ids(c, 1, 1000, &first), 0);
            *next_pid = first + 1000;
        }
    }
}

/* DescribeQuorum's view (cluster_quorum_state): this node leads its one-voter quorum at
 * the Raft term; every committed change moves the high watermark by one; a change being
 * written shows in the log end offset first; a restart is a new term (leader epoch) and
 * a new leader's no-op entry; a snapshot does not move the offsets. */
static void test_quorum_state(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    struct cluster_quorum_state q;
    cluster_quorum_state(c, &q);
    assert_true(q.leading);
    assert_int_equal(q.leader_id, 1);
    assert_true(q.leader_epoch >= 1);
    assert_true(q.high_watermark >= 1); /* the founders' configuration at least */
    assert_int_equal(q.log_end_offset, q.high_watermark);
    assert_int_equal(q.voter_count, 1);
    assert_int_equal(q.voters[0].node_id, 1);
    assert_int_equal(q.voters[0].log_end_offset, q.log_end_offset);
    assert_int_equal(q.observer_count, 0);
    int64_t hw0 = q.high_watermark;
    int32_t epoch0 = q.leader_epoch;

    assert_int_equal(create_topic(c, slice_from_cstr("q1"), 1, 1, NULL, 0, false, NULL), 0);
    assert_int_equal(register_broker(c, 1, "localhost", 9092, NULL), 0);
    assert_int_equal(create_topic(c, slice_from_cstr("q1"), 1, 1, NULL, 0, false, NULL),
                     CLUSTER_ERR_TOPIC_EXISTS); /* refused: writes nothing */
    assert_int_equal(create_topic(c, slice_from_cstr("q2"), 1, 1, NULL, 0, true, NULL), 0);
    cluster_quorum_state(c, &q);
    assert_int_equal(q.high_watermark, hw0 + 2);
    assert_int_equal(q.log_end_offset, hw0 + 2);
    assert_int_equal(q.leader_epoch, epoch0);

    /* A change held by the runner: in the log (end offset), not committed yet. */
    struct held_write h = {0};
    struct cluster_runner r = {hold_write, &h};
    cluster_set_runner(c, &r);
    calls = 0;
    cluster_create_topic(c, slice_from_cstr("q3"), 1, 1, NULL, 0, false, count_call, NULL);
    assert_int_equal(h.count, 1);
    cluster_quorum_state(c, &q);
    assert_int_equal(q.high_watermark, hw0 + 2);
    assert_int_equal(q.log_end_offset, hw0 + 3);
    assert_int_equal(q.voters[0].log_end_offset, hw0 + 3);
    release_write(&h);
    assert_int_equal(calls, 1);
    cluster_quorum_state(c, &q);
    assert_int_equal(q.high_watermark, hw0 + 3);
    assert_int_equal(q.log_end_offset, hw0 + 3);
    cluster_set_runner(c, NULL);
    cluster_close(c);

    /* A restart elects this node again, in the next term, and appends its no-op. */
    c = open_cluster_snap(f, 1, 0); /* a snapshot after every change */
    cluster_quorum_state(c, &q);
    assert_true(q.leading);
    assert_int_equal(q.leader_id, 1);
    assert_int_equal(q.leader_epoch, epoch0 + 1);
    assert_int_equal(q.high_watermark, hw0 + 4);
    assert_int_equal(q.log_end_offset, hw0 + 4);
    assert_false(has_file(f, "snapshot"));
    assert_int_equal(create_topic(c, slice_from_cstr("q4"), 1, 1, NULL, 0, false, NULL), 0);
    assert_true(has_file(f, "snapshot"));
    cluster_quorum_state(c, &q);
    assert_int_equal(q.high_watermark, hw0 + 5);
    assert_int_equal(q.log_end_offset, hw0 + 5);
    cluster_close(c);
}

/* Past metadata.log.max.record.bytes.between.snapshots the log is compacted into a
 * snapshot of the image; a reopen (snapshot and the short log after it) rebuilds exactly
 * that image: brokers, topics and their ids, configs, partitions, producer ids, deleted
 * topic ids. */
static void test_snapshot_compacts_the_log(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster_snap(f, 4096, 0);
    assert_int_equal(register_broker(c, 1, "localhost", 9092, "rack-a"), 0);
    create(c, "__consumer_offsets");
    uint8_t gone_id[16];
    int64_t next_pid = 0;
    many_changes(c, "t", 150, gone_id, &next_pid);
    assert_true(has_file(f, "snapshot"));
    /* The log holds what came after the latest snapshot: less than the threshold and the
     * change that crossed it (150 changes write about 25 kB). */
    assert_true(log_size(f) < 4096 + 1024);
    char *before = image_text(c);
    assert_true(cluster_topic_id_deleted(c, gone_id));
    cluster_close(c);

    c = open_cluster_snap(f, 4096, 0);
    char *after = image_text(c);
    assert_string_equal(after, before);
    free(after);
    assert_true(cluster_topic_id_deleted(c, gone_id));
    assert_true(cluster_topic_find(c, slice_from_cstr("__consumer_offsets"))->internal);
    int64_t first;
    assert_int_equal(allocate_producer_ids(c, 1, 10, &first), 0);
    assert_int_equal(first, next_pid);
    cluster_close(c);
    /* With the default threshold too (nothing new is snapshotted). */
    c = open_cluster(f);
    after = image_text(c);
    assert_string_equal(after, before);
    free(after);
    assert_int_equal(allocate_producer_ids(c, 1, 10, &first), 0);
    assert_int_equal(first, next_pid + 10);
    cluster_close(c);
    free(before);
}

/* A crash anywhere in writing a snapshot loses nothing. The snapshot's write runs on the
 * runner (never inside the call that completed the change), so the test holds it and
 * keeps the files as they were before it; then it puts together what the disk holds at
 * each point a crash could cut the write: while snapshot.tmp is written (old snapshot,
 * old log), after the rename but before the log is rewritten (new snapshot, old log),
 * while raft.log.tmp is written, and after (new snapshot, short log). */
static void test_snapshot_crash_points(void **state)
{
    struct fixture *f = *state;
    /* An older snapshot first, so that the old state has one too. */
    struct cluster *c = open_cluster_snap(f, 1, 0);
    create(c, "first");
    assert_true(has_file(f, "snapshot"));
    cluster_close(c);
    c = open_cluster(f);
    uint8_t gone_id[16];
    int64_t next_pid = 0;
    many_changes(c, "t", 40, gone_id, &next_pid);
    cluster_close(c);

    /* "last" (1000 partitions, some 50 kB) takes the log past the threshold. */
    c = open_cluster_snap(f, log_size(f) + 4096, 0);
    struct held_write h = {0};
    struct cluster_runner r = {hold_write, &h};
    cluster_set_runner(c, &r);
    cluster_create_topic(c, slice_from_cstr("last"), 1000, 1, NULL, 0, false, count_call, NULL);
    assert_int_equal(h.count, 1);
    release_write(&h); /* "last" is durable and applied; the snapshot is due */
    assert_int_equal(h.count, 2);
    assert_true(cluster_busy(c));
    assert_non_null(cluster_topic_find(c, slice_from_cstr("last")));
    char *image = image_text(c);
    size_t topics = cluster_topic_count(c);
    off_t old_log = log_size(f);
    copy_file(f, "raft.log", "old.log", old_log);
    copy_file(f, "snapshot", "old.snap", 1 << 30);
    release_write(&h); /* the snapshot and the compaction */
    assert_false(cluster_busy(c));
    off_t new_log = log_size(f);
    assert_true(new_log < old_log / 10);
    copy_file(f, "raft.log", "new.log", new_log);
    copy_file(f, "snapshot", "new.snap", 1 << 30);
    cluster_set_runner(c, NULL);
    cluster_close(c);

    struct {
        const char *what, *log, *snap, *tmp_from, *tmp_to;
    } points[] = {
        {"writing snapshot.tmp", "old.log", "old.snap", "new.snap", "snapshot.tmp"},
        {"after the snapshot's rename", "old.log", "new.snap", NULL, NULL},
        {"writing raft.log.tmp", "old.log", "new.snap", "new.log", "raft.log.tmp"},
        {"after the log's rename", "new.log", "new.snap", NULL, NULL},
    };
    for (size_t i = 0; i < ARRAY_LEN(points); i++) {
        print_message("crash %s\n", points[i].what);
        copy_file(f, points[i].log, "raft.log", 1 << 30);
        copy_file(f, points[i].snap, "snapshot", 1 << 30);
        if (points[i].tmp_from)
            copy_file(f, points[i].tmp_from, points[i].tmp_to, 40);
        if (has_file(f, "clean-shutdown"))
            forget_clean_shutdown(f);
        c = open_cluster(f);
        char *got = image_text(c);
        assert_string_equal(got, image);
        free(got);
        assert_true(cluster_topic_id_deleted(c, gone_id));
        assert_false(has_file(f, "snapshot.tmp"));
        assert_false(has_file(f, "raft.log.tmp"));
        int64_t first;
        assert_int_equal(allocate_producer_ids(c, 1, 10, &first), 0);
        assert_int_equal(first, next_pid);
        cluster_close(c);
    }
    /* After the crash with the new snapshot beside the old log, the log is compacted by
     * the next snapshot and changes go on. */
    copy_file(f, "old.log", "raft.log", 1 << 30);
    copy_file(f, "new.snap", "snapshot", 1 << 30);
    forget_clean_shutdown(f);
    c = open_cluster_snap(f, 1, 0);
    create(c, "later");
    assert_true(log_size(f) < old_log / 10);
    cluster_close(c);
    c = open_cluster(f);
    assert_non_null(cluster_topic_find(c, slice_from_cstr("later")));
    assert_int_equal(cluster_topic_count(c), topics + 1);
    cluster_close(c);
    free(image);
}

/* metadata.log.max.snapshot.interval.ms: a change that waited that long in no snapshot
 * is snapshotted when the next change completes, whatever the log's size; 0 never. */
static void test_snapshot_interval(void **state)
{
    struct fixture *f = *state;
    /* The quorum's clock is the fake one: time moves only when the test says. */
    time_set_fake(1000000, 1700000000000LL);
    struct cluster *c = open_cluster_snap(f, 0, 0);
    create(c, "a");
    time_advance_fake(20);
    create(c, "b");
    assert_false(has_file(f, "snapshot")); /* interval 0: time never asks for one */
    cluster_close(c);
    /* "a" and "b", replayed at open, count as applied then. */
    c = open_cluster_snap(f, 0, 200);
    create(c, "c");
    time_advance_fake(199);
    create(c, "c2");
    assert_false(has_file(f, "snapshot"));
    time_advance_fake(1); /* "c" was applied 200 ms ago and is in no snapshot */
    create(c, "d");
    assert_true(has_file(f, "snapshot"));
    time_clear_fake();
    off_t compacted = log_size(f);
    cluster_close(c);
    c = open_cluster(f);
    assert_int_equal(cluster_topic_count(c), 5);
    assert_non_null(cluster_topic_find(c, slice_from_cstr("d")));
    cluster_close(c);
    assert_true(compacted < 200);
}

/* Each start writes a new term in one write: its hard state and its first entry (the
 * leader's no-op). A crash can cut that write anywhere, and every cut must start again
 * (the hard state goes first, so no cut keeps an entry of a term the stored hard state
 * has not reached: that would read as damage). */
static void test_every_cut_of_a_start_write_starts(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    create(c, "a");
    cluster_close(c);
    off_t before = log_size(f);
    c = open_cluster(f); /* the new term's write */
    off_t after = log_size(f);
    assert_true(after > before);
    copy_file(f, "raft.log", "raft.log.whole", after);
    cluster_close(c);
    for (off_t cut = before; cut < after; cut++) {
        forget_clean_shutdown(f); /* a crash, not a clean stop */
        copy_file(f, "raft.log.whole", "raft.log", cut);
        if (reopen_rc(f) != 0)
            fail_msg("a start cut at byte %lld of %lld..%lld was refused", (long long)cut,
                     (long long)before, (long long)after);
    }
    c = open_cluster(f);
    assert_non_null(cluster_topic_find(c, slice_from_cstr("a")));
    cluster_close(c);
}

static void test_node_id_mismatch_refused(void **state)
{
    struct fixture *f = *state;
    cluster_close(open_cluster(f));
    struct cluster_options o = {.metadata_dir = f->dir, .node_id = 2};
    struct cluster *c = NULL;
    assert_int_not_equal(cluster_open(&o, &c), 0);
}

/* Leaders spread over the unfenced brokers, balanced by count; manual assignments name
 * registered brokers; fenced brokers get nothing new and lose their leaderships. */
static void test_placement_and_fencing(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    const char *why = NULL;
    register_brokers(c, 3);
    assert_int_equal(create_topic(c, slice_from_cstr("spread"), 12, 1, NULL, 0, false, &why), 0);
    const struct mtopic *t = cluster_topic_find(c, slice_from_cstr("spread"));
    int led[4] = {0};
    for (int32_t p = 0; p < 12; p++) {
        assert_int_equal(t->partitions[p].replica_count, 1);
        assert_int_equal(t->partitions[p].leader, t->partitions[p].replicas[0]);
        led[t->partitions[p].leader]++;
    }
    assert_int_equal(led[1], 4);
    assert_int_equal(led[2], 4);
    assert_int_equal(led[3], 4);
    /* Two more partitions go to the brokers leading the fewest: one each to two of them. */
    cluster_create_partitions(c, slice_from_cstr("spread"), 14, NULL, 0, 0, false, keep, NULL);
    assert_int_equal(result(NULL), 0);
    t = cluster_topic_find(c, slice_from_cstr("spread"));
    assert_int_not_equal(t->partitions[12].leader, t->partitions[13].leader);
    /* A manual assignment. */
    const int32_t good[] = {3, 3, 1}, bad[] = {3, 9};
    cluster_create_topic_assigned(c, slice_from_cstr("manual"), good, 3, 1, NULL, 0, false, keep,
                                  NULL);
    assert_int_equal(result(NULL), 0);
    t = cluster_topic_find(c, slice_from_cstr("manual"));
    assert_int_equal(t->partitions[1].leader, 3);
    assert_int_equal(t->partitions[2].leader, 1);
    cluster_create_topic_assigned(c, slice_from_cstr("bad"), bad, 2, 1, NULL, 0, false, keep, NULL);
    assert_int_equal(result(NULL), CLUSTER_ERR_INVALID_ASSIGNMENT);
    assert_null(cluster_topic_find(c, slice_from_cstr("bad")));
    /* More replicas than brokers are refused, with Kafka's message. */
    assert_int_equal(create_topic(c, slice_from_cstr("rf4"), 1, 4, NULL, 0, false, &why),
                     CLUSTER_ERR_INVALID_REPLICATION);
    assert_string_equal(why, "Unable to replicate the partition 4 time(s): The target "
                             "replication factor of 4 cannot be reached because only 3 "
                             "broker(s) are registered.");

    /* Broker 3 registers again as a new process: a new epoch, fenced, so what it led (one
     * replica) has no leader. Its old epoch's heartbeat is stale; the new one's unfences
     * it, and it leads again. */
    const struct mbroker *b3 = cluster_broker_find(c, 3);
    int64_t old_epoch = b3->epoch;
    uint8_t incarnation[16] = {7};
    cluster_register_broker(c, 3, "localhost", 9094, NULL, incarnation, true, keep, NULL);
    assert_int_equal(result(NULL), 0);
    assert_true(last.fenced);
    int64_t epoch = last.broker_epoch;
    assert_true(epoch > old_epoch);
    assert_true(cluster_broker_find(c, 3)->fenced);
    t = cluster_topic_find(c, slice_from_cstr("manual"));
    assert_int_equal(t->partitions[0].leader, -1);
    assert_int_equal(t->partitions[0].leader_epoch, 1);
    cluster_broker_heartbeat(c, 3, old_epoch, 1000, keep, NULL);
    assert_int_equal(result(NULL), CLUSTER_ERR_STALE_BROKER_EPOCH);
    cluster_broker_heartbeat(c, 3, epoch, 1000, keep, NULL);
    assert_int_equal(result(NULL), 0);
    assert_false(last.fenced);
    t = cluster_topic_find(c, slice_from_cstr("manual"));
    assert_int_equal(t->partitions[0].leader, 3);
    assert_int_equal(t->partitions[0].leader_epoch, 2);
    assert_false(cluster_broker_find(c, 3)->fenced);
    /* Its session expires: fenced, and what it led has no leader (one replica). */
    cluster_broker_heartbeat(c, 1, cluster_broker_find(c, 1)->epoch, 20000, NULL, NULL);
    cluster_broker_heartbeat(c, 2, cluster_broker_find(c, 2)->epoch, 20000, NULL, NULL);
    cluster_expire_sessions(c, 20000, 9000, 0);
    assert_true(cluster_broker_find(c, 3)->fenced);
    assert_false(cluster_broker_find(c, 1)->fenced);
    t = cluster_topic_find(c, slice_from_cstr("manual"));
    assert_int_equal(t->partitions[0].leader, -1);
    assert_int_equal(t->partitions[0].isr[0], 3);
    assert_int_equal(t->partitions[2].leader, 1);
    /* Nothing new is placed on it. */
    assert_int_equal(create_topic(c, slice_from_cstr("later"), 6, 1, NULL, 0, false, &why), 0);
    t = cluster_topic_find(c, slice_from_cstr("later"));
    for (int32_t p = 0; p < 6; p++)
        assert_int_not_equal(t->partitions[p].leader, 3);
    /* It comes back: unfenced, it leads its partitions again. */
    cluster_broker_heartbeat(c, 3, epoch, 21000, keep, NULL);
    assert_int_equal(result(NULL), 0);
    t = cluster_topic_find(c, slice_from_cstr("manual"));
    assert_int_equal(t->partitions[0].leader, 3);
    assert_int_equal(t->partitions[0].leader_epoch, 4); /* expired: 3, back: 4 */
    cluster_close(c);
}

/* Racks: two brokers in rack a and one in rack b; b's one broker leads as many
 * partitions as a's two together. */
static void test_placement_by_rack(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    const char *why = NULL;
    assert_int_equal(register_broker(c, 1, "localhost", 9092, "a"), 0);
    assert_int_equal(register_broker(c, 2, "localhost", 9093, "a"), 0);
    assert_int_equal(register_broker(c, 3, "localhost", 9094, "b"), 0);
    assert_int_equal(create_topic(c, slice_from_cstr("racked"), 8, 1, NULL, 0, false, &why), 0);
    const struct mtopic *t = cluster_topic_find(c, slice_from_cstr("racked"));
    int led[4] = {0};
    for (int32_t p = 0; p < 8; p++)
        led[t->partitions[p].leader]++;
    assert_int_equal(led[3], 4);
    assert_int_equal(led[1] + led[2], 4);
    assert_int_equal(led[1], 2);
    cluster_close(c);
}

/* ---- replication factor above 1 (the metadata side) ---- */

static int create_assigned(struct cluster *c, const char *name, const int32_t *brokers,
                           int32_t partitions, int16_t rf, const char **why)
{
    cluster_create_topic_assigned(c, slice_from_cstr(name), brokers, partitions, rf, NULL, 0, false,
                                  keep, NULL);
    return result(why);
}

static int add_partitions_assigned(struct cluster *c, const char *name, int32_t total,
                                   const int32_t *brokers, int32_t assigned, int16_t rf,
                                   const char **why)
{
    cluster_create_partitions(c, slice_from_cstr(name), total, brokers, assigned, rf, false, keep,
                              NULL);
    return result(why);
}

static bool holds(const int32_t *ids, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* What every new partition is: rf distinct replicas, all in sync, the first leading, at
 * epochs 0. Counts each broker's leaderships and replicas (ids below 16). */
static void check_new_partitions(const struct mtopic *t, int32_t rf, int led[16], int held[16])
{
    for (int32_t p = 0; p < t->partition_count; p++) {
        const struct mpartition *mp = &t->partitions[p];
        assert_int_equal(mp->replica_count, rf);
        assert_int_equal(mp->isr_count, rf);
        assert_int_equal(mp->leader, mp->replicas[0]);
        assert_int_equal(mp->leader_epoch, 0);
        assert_int_equal(mp->partition_epoch, 0);
        for (int32_t r = 0; r < rf; r++) {
            assert_int_equal(mp->isr[r], mp->replicas[r]);
            assert_false(holds(mp->replicas, r, mp->replicas[r]));
            assert_in_range(mp->replicas[r], 1, 15);
            held[mp->replicas[r]]++;
        }
        led[mp->leader]++;
    }
}

/* Replication factor 3 over three brokers: every broker holds every partition, and the
 * leaderships are spread evenly; over five, replicas are spread evenly too, and the
 * partitions added later get as many replicas. */
static void test_placement_with_replicas(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    const char *why = NULL;
    register_brokers(c, 3);
    assert_int_equal(create_topic(c, slice_from_cstr("three"), 6, 3, NULL, 0, false, &why), 0);
    int led[16] = {0}, held[16] = {0};
    check_new_partitions(cluster_topic_find(c, slice_from_cstr("three")), 3, led, held);
    for (int32_t b = 1; b <= 3; b++) {
        assert_int_equal(led[b], 2);
        assert_int_equal(held[b], 6);
    }

    for (int32_t b = 4; b <= 5; b++)
        assert_int_equal(register_broker(c, b, "localhost", 9091 + b, NULL), 0);
    assert_int_equal(create_topic(c, slice_from_cstr("five"), 10, 3, NULL, 0, false, &why), 0);
    memset(led, 0, sizeof led);
    memset(held, 0, sizeof held);
    check_new_partitions(cluster_topic_find(c, slice_from_cstr("five")), 3, led, held);
    /* Counted with "three" (whose leaders and replicas sit on 1..3), everything evens
     * out: 16 leaderships and 48 replicas over five brokers. */
    int all_led[16] = {0}, all_held[16] = {0};
    check_new_partitions(cluster_topic_find(c, slice_from_cstr("three")), 3, all_led, all_held);
    check_new_partitions(cluster_topic_find(c, slice_from_cstr("five")), 3, all_led, all_held);
    for (int32_t b = 1; b <= 5; b++) {
        assert_in_range(all_led[b], 3, 4);
        assert_in_range(all_held[b], 9, 10);
    }
    /* The five-broker topic alone: its leaders go first to the new brokers, which led
     * nothing. */
    assert_int_equal(led[4] + led[5], 6);

    /* Partitions added later: the topic's replication factor, placed the same way. */
    assert_int_equal(create_partitions(c, slice_from_cstr("five"), 15, false, &why), 0);
    const struct mtopic *t = cluster_topic_find(c, slice_from_cstr("five"));
    assert_int_equal(t->partition_count, 15);
    memset(led, 0, sizeof led);
    memset(held, 0, sizeof held);
    check_new_partitions(t, 3, led, held);
    for (int32_t b = 1; b <= 5; b++)
        assert_in_range(led[b], 2, 4);
    cluster_close(c);
}

/* Racks: a partition's replicas go to as many racks as there are before any rack holds
 * two of them. */
static void test_placement_with_replicas_by_rack(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    const char *why = NULL;
    static const char *const racks[] = {"", "a", "a", "b", "b", "c", "c"};
    for (int32_t b = 1; b <= 6; b++)
        assert_int_equal(register_broker(c, b, "localhost", 9091 + b, racks[b]), 0);
    assert_int_equal(create_topic(c, slice_from_cstr("racked"), 12, 3, NULL, 0, false, &why), 0);
    const struct mtopic *t = cluster_topic_find(c, slice_from_cstr("racked"));
    int led[16] = {0}, held[16] = {0};
    check_new_partitions(t, 3, led, held);
    for (int32_t p = 0; p < 12; p++) {
        const int32_t *r = t->partitions[p].replicas;
        assert_string_not_equal(racks[r[0]], racks[r[1]]);
        assert_string_not_equal(racks[r[0]], racks[r[2]]);
        assert_string_not_equal(racks[r[1]], racks[r[2]]);
    }
    for (int32_t b = 1; b <= 6; b++) {
        assert_int_equal(led[b], 2);
        assert_int_equal(held[b], 6);
    }
    /* Two racks, two replicas: one in each, whichever leads. */
    assert_int_equal(create_topic(c, slice_from_cstr("pairs"), 8, 2, NULL, 0, false, &why), 0);
    t = cluster_topic_find(c, slice_from_cstr("pairs"));
    for (int32_t p = 0; p < 8; p++)
        assert_string_not_equal(racks[t->partitions[p].replicas[0]],
                                racks[t->partitions[p].replicas[1]]);
    cluster_close(c);
}

/* More replicas than unfenced brokers are refused, in Kafka's words; a node on its own
 * (no broker registered) places one replica, itself. */
static void test_replication_factor_refusals(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    const char *why = NULL;
    assert_int_equal(create_topic(c, slice_from_cstr("alone"), 2, 1, NULL, 0, false, &why), 0);
    const struct mtopic *t = cluster_topic_find(c, slice_from_cstr("alone"));
    assert_int_equal(t->partitions[1].leader, 1);
    assert_int_equal(t->partitions[1].replica_count, 1);
    assert_int_equal(create_topic(c, slice_from_cstr("alone2"), 1, 2, NULL, 0, true, &why),
                     CLUSTER_ERR_INVALID_REPLICATION);
    assert_string_equal(why, "Unable to replicate the partition 2 time(s): The target "
                             "replication factor of 2 cannot be reached because only 1 "
                             "broker(s) are registered.");
    assert_int_equal(create_topic(c, slice_from_cstr("zero"), 1, 0, NULL, 0, false, &why),
                     CLUSTER_ERR_INVALID_REPLICATION);

    register_brokers(c, 3);
    assert_int_equal(create_topic(c, slice_from_cstr("r3"), 1, 3, NULL, 0, false, &why), 0);
    /* Broker 3 registers as a new process (fenced): two unfenced brokers of three. */
    uint8_t incarnation[16] = {9};
    cluster_register_broker(c, 3, "localhost", 9094, NULL, incarnation, true, keep, NULL);
    assert_int_equal(result(NULL), 0);
    assert_int_equal(create_topic(c, slice_from_cstr("r3b"), 1, 3, NULL, 0, false, &why),
                     CLUSTER_ERR_INVALID_REPLICATION);
    assert_string_equal(why, "Unable to replicate the partition 3 time(s): The target "
                             "replication factor of 3 cannot be reached because only 2 of the "
                             "3 registered broker(s) are unfenced.");
    assert_null(cluster_topic_find(c, slice_from_cstr("r3b")));
    /* ... and so is growing the topic: its partitions have three replicas. */
    assert_int_equal(create_partitions(c, slice_from_cstr("r3"), 2, true, &why),
                     CLUSTER_ERR_INVALID_REPLICATION);
    assert_int_equal(create_partitions(c, slice_from_cstr("r3"), 2, false, &why),
                     CLUSTER_ERR_INVALID_REPLICATION);
    assert_int_equal(cluster_topic_find(c, slice_from_cstr("r3"))->partition_count, 1);
    assert_int_equal(create_topic(c, slice_from_cstr("r2"), 4, 2, NULL, 0, false, &why), 0);
    t = cluster_topic_find(c, slice_from_cstr("r2"));
    for (int32_t p = 0; p < 4; p++)
        assert_false(holds(t->partitions[p].replicas, 2, 3));
    cluster_close(c);

    /* A controller-only node with no broker registered places nothing. */
    struct cluster_options o = {.metadata_dir = f->dir, .node_id = 1, .controller_only = true};
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s/*", f->dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(cluster_open(&o, &c), 0);
    assert_int_equal(create_topic(c, slice_from_cstr("none"), 1, 1, NULL, 0, false, &why),
                     CLUSTER_ERR_INVALID_REPLICATION);
    assert_string_equal(why, "Unable to replicate the partition 1 time(s): The target "
                             "replication factor of 1 cannot be reached because only 0 "
                             "broker(s) are registered.");
    cluster_close(c);
}

/* Manual assignments of several replicas a partition, and each shape Kafka refuses. */
static void test_manual_assignment_with_replicas(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    const char *why = NULL;
    register_brokers(c, 4);
    const int32_t good[] = {1, 2, 3, 4, 3, 2};
    assert_int_equal(create_assigned(c, "m", good, 2, 3, &why), 0);
    const struct mtopic *t = cluster_topic_find(c, slice_from_cstr("m"));
    assert_int_equal(t->partition_count, 2);
    for (int32_t p = 0; p < 2; p++) {
        const struct mpartition *mp = &t->partitions[p];
        assert_int_equal(mp->replica_count, 3);
        assert_int_equal(mp->isr_count, 3);
        assert_int_equal(mp->leader, good[p * 3]);
        for (int32_t r = 0; r < 3; r++) {
            assert_int_equal(mp->replicas[r], good[p * 3 + r]);
            assert_int_equal(mp->isr[r], good[p * 3 + r]);
        }
    }
    /* Grown with an assignment: the same number of replicas, one list per new partition. */
    const int32_t more[] = {2, 1, 4};
    assert_int_equal(add_partitions_assigned(c, "m", 3, more, 1, 3, &why), 0);
    t = cluster_topic_find(c, slice_from_cstr("m"));
    assert_int_equal(t->partition_count, 3);
    assert_int_equal(t->partitions[2].leader, 2);
    assert_int_equal(t->partitions[2].replicas[2], 4);

    /* Refused, nothing written. */
    const int32_t unknown[] = {1, 9}, twice[] = {2, 2}, pair[] = {1, 2};
    assert_int_equal(create_assigned(c, "bad", unknown, 1, 2, &why),
                     CLUSTER_ERR_INVALID_ASSIGNMENT);
    assert_string_equal(why, "The manual partition assignment includes broker 9, but no such "
                             "broker is registered.");
    assert_int_equal(create_assigned(c, "bad", twice, 1, 2, &why), CLUSTER_ERR_INVALID_ASSIGNMENT);
    assert_string_equal(why, "The manual partition assignment includes the broker 2 more than "
                             "once.");
    assert_int_equal(create_assigned(c, "bad", pair, 1, 0, &why), CLUSTER_ERR_INVALID_ASSIGNMENT);
    assert_string_equal(why, "The manual partition assignment includes an empty replica list.");
    assert_int_equal(add_partitions_assigned(c, "m", 4, pair, 1, 2, &why),
                     CLUSTER_ERR_INVALID_ASSIGNMENT);
    assert_string_equal(why, "The manual partition assignment includes a partition with 2 "
                             "replica(s), but this is not consistent with previous partitions, "
                             "which have 3 replica(s).");
    assert_int_equal(add_partitions_assigned(c, "m", 5, more, 1, 3, &why),
                     CLUSTER_ERR_INVALID_ASSIGNMENT);
    assert_string_equal(why, "Attempted to add 2 additional partition(s), but only 1 "
                             "assignment(s) were specified.");
    /* More replicas than brokers: the first partition tells why. */
    const int32_t wide[] = {1, 2, 3, 4, 1, 4, 3, 2, 1, 9};
    assert_int_equal(create_assigned(c, "bad", wide, 2, 5, &why), CLUSTER_ERR_INVALID_ASSIGNMENT);
    assert_string_equal(why, "The manual partition assignment includes the broker 1 more than "
                             "once.");
    const int32_t dup_more[] = {3, 4, 3};
    assert_int_equal(add_partitions_assigned(c, "m", 4, dup_more, 1, 3, &why),
                     CLUSTER_ERR_INVALID_ASSIGNMENT);
    assert_null(cluster_topic_find(c, slice_from_cstr("bad")));
    assert_int_equal(cluster_topic_find(c, slice_from_cstr("m"))->partition_count, 3);

    /* A fenced broker is a replica but not in sync; the first unfenced one leads. With
     * every broker of a partition fenced, the assignment is refused. */
    uint8_t incarnation[16] = {5};
    cluster_register_broker(c, 1, "localhost", 9092, NULL, incarnation, true, keep, NULL);
    assert_int_equal(result(NULL), 0);
    const int32_t first_fenced[] = {1, 3};
    assert_int_equal(create_assigned(c, "f", first_fenced, 1, 2, &why), 0);
    t = cluster_topic_find(c, slice_from_cstr("f"));
    assert_int_equal(t->partitions[0].replica_count, 2);
    assert_int_equal(t->partitions[0].isr_count, 1);
    assert_int_equal(t->partitions[0].isr[0], 3);
    assert_int_equal(t->partitions[0].leader, 3);
    const int32_t only_fenced[] = {3, 1};
    assert_int_equal(create_assigned(c, "f2", only_fenced, 2, 1, &why),
                     CLUSTER_ERR_INVALID_ASSIGNMENT);
    assert_string_equal(why, "All brokers specified in the manual partition assignment for "
                             "partition 1 are fenced or in controlled shutdown.");
    cluster_close(c);
}

/* The test's clock for broker sessions (cluster_expire_sessions). */
static int64_t session_clock_ms;
#define TEST_SESSION_MS 5000

/* Fences broker `id` the way its session ends: every other unfenced broker heartbeats,
 * then sessions expire. */
static void fence_broker(struct cluster *c, int32_t id)
{
    cluster_expire_sessions(c, session_clock_ms, TEST_SESSION_MS, 0); /* sessions start */
    session_clock_ms += 2 * TEST_SESSION_MS;
    for (size_t i = 0; i < cluster_broker_count(c); i++) {
        const struct mbroker *b = cluster_broker_at(c, i);
        if (b->node_id != id && !b->fenced)
            cluster_broker_heartbeat(c, b->node_id, b->epoch, session_clock_ms, NULL, NULL);
    }
    cluster_expire_sessions(c, session_clock_ms, TEST_SESSION_MS, 0);
    assert_true(cluster_broker_find(c, id)->fenced);
}

static void unfence_broker(struct cluster *c, int32_t id)
{
    cluster_broker_heartbeat(c, id, cluster_broker_find(c, id)->epoch, session_clock_ms, keep,
                             NULL);
    assert_int_equal(result(NULL), 0);
    assert_false(cluster_broker_find(c, id)->fenced);
}

static void assert_partition(const struct mpartition *p, int32_t leader, int32_t leader_epoch,
                             int32_t partition_epoch, const int32_t *isr, int32_t isr_count)
{
    assert_int_equal(p->leader, leader);
    assert_int_equal(p->leader_epoch, leader_epoch);
    assert_int_equal(p->partition_epoch, partition_epoch);
    assert_int_equal(p->isr_count, isr_count);
    for (int32_t i = 0; i < isr_count; i++)
        assert_int_equal(p->isr[i], isr[i]);
    assert_int_equal(p->replica_count, 3); /* a fenced broker stays a replica */
}

/* Fencing moves leadership to the next in-sync replica and shrinks the ISR; the ISR's
 * last member stays, leaderless, and leads again when it returns. Epochs as Kafka's. */
static void test_fencing_with_replicas(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    const char *why = NULL;
    register_brokers(c, 3);
    /* p0 led by 1; p1 led by 2, with 1 a follower. */
    const int32_t plan[] = {1, 2, 3, 2, 1, 3};
    assert_int_equal(create_assigned(c, "r", plan, 2, 3, &why), 0);
    cluster_set_listener(c, partition_listener, NULL);
    partition_events = 0;

    /* 1 fenced: p0's leadership goes to 2 (the next replica in sync), both epochs move;
     * p1 keeps its leader and only the partition epoch moves as 1 leaves its ISR. */
    fence_broker(c, 1);
    const struct mtopic *t = cluster_topic_find(c, slice_from_cstr("r"));
    assert_partition(&t->partitions[0], 2, 1, 1, (int32_t[]){2, 3}, 2);
    assert_partition(&t->partitions[1], 2, 0, 1, (int32_t[]){2, 3}, 2);
    assert_int_equal(partition_events, 2);

    /* 2 fenced: 3 leads both. */
    fence_broker(c, 2);
    t = cluster_topic_find(c, slice_from_cstr("r"));
    assert_partition(&t->partitions[0], 3, 2, 2, (int32_t[]){3}, 1);
    assert_partition(&t->partitions[1], 3, 1, 2, (int32_t[]){3}, 1);

    /* 3 fenced too: no leader, and the ISR keeps its last member (no unclean choice). */
    fence_broker(c, 3);
    t = cluster_topic_find(c, slice_from_cstr("r"));
    assert_partition(&t->partitions[0], -1, 3, 3, (int32_t[]){3}, 1);
    assert_partition(&t->partitions[1], -1, 2, 3, (int32_t[]){3}, 1);
    assert_int_equal(partition_events, 6);

    /* 1 returns: it is not in sync, so nothing changes; it gets no leadership. */
    unfence_broker(c, 1);
    t = cluster_topic_find(c, slice_from_cstr("r"));
    assert_partition(&t->partitions[0], -1, 3, 3, (int32_t[]){3}, 1);
    assert_int_equal(partition_events, 6);
    /* A fenced broker cannot be made leader or join an ISR by a partition change. */
    assert_int_equal(change_partition(c, "r", 0, 2, NULL, -1, (int32_t[]){3, 2}, 2, &why),
                     CLUSTER_ERR_INVALID_REPLICATION);
    assert_non_null(strstr(why, "fenced"));
    assert_int_equal(
        change_partition(c, "r", 0, CLUSTER_KEEP_LEADER, NULL, -1, (int32_t[]){3, 1}, 2, &why),
        CLUSTER_ERR_INVALID_REPLICATION); /* 3 fenced, not alone */
    assert_int_equal(change_partition(c, "r", 0, 1, NULL, -1, (int32_t[]){1}, 1, &why), 0);
    t = cluster_topic_find(c, slice_from_cstr("r"));
    assert_partition(&t->partitions[0], 1, 4, 4, (int32_t[]){1}, 1); /* unclean, by hand */

    /* 3 returns: it leads p1 again, which waited for it. */
    unfence_broker(c, 3);
    t = cluster_topic_find(c, slice_from_cstr("r"));
    assert_partition(&t->partitions[1], 3, 3, 4, (int32_t[]){3}, 1);
    assert_partition(&t->partitions[0], 1, 4, 4, (int32_t[]){1}, 1);
    cluster_close(c);

    /* All of it is in the log. */
    c = open_cluster(f);
    t = cluster_topic_find(c, slice_from_cstr("r"));
    assert_partition(&t->partitions[1], 3, 3, 4, (int32_t[]){3}, 1);
    assert_true(cluster_broker_find(c, 2)->fenced);
    cluster_close(c);
}

/* A new process of a broker registers fenced: as a fencing, its leaderships move to the
 * other replicas in sync. */
static void test_registration_fences_with_replicas(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    const char *why = NULL;
    register_brokers(c, 3);
    const int32_t plan[] = {1, 2, 3};
    assert_int_equal(create_assigned(c, "r", plan, 1, 3, &why), 0);
    uint8_t incarnation[16] = {3};
    cluster_register_broker(c, 1, "localhost", 9092, NULL, incarnation, true, keep, NULL);
    assert_int_equal(result(NULL), 0);
    const struct mtopic *t = cluster_topic_find(c, slice_from_cstr("r"));
    assert_partition(&t->partitions[0], 2, 1, 1, (int32_t[]){2, 3}, 2);
    cluster_close(c);
}

/* ---- a quorum of three, in one process: messages through a queue the test drains ---- */

struct net_msg {
    int32_t to;
    struct buf bytes;
};

struct trio {
    struct fixture *f;
    char dirs[3][96];
    struct cluster *c[3]; /* NULL: down */
    struct net_msg queue[4096];
    size_t n;
    int32_t from; /* the node whose send callback runs */
};

static void trio_send(void *arg, int32_t to, const uint8_t *msg, size_t len)
{
    struct trio *t = arg;
    if (t->n == ARRAY_LEN(t->queue))
        return; /* dropped, as a full connection drops */
    buf_init(&t->queue[t->n].bytes);
    buf_append(&t->queue[t->n].bytes, msg, len);
    t->queue[t->n++].to = to;
}

static const int32_t trio_voters[3] = {1, 2, 3};

static int trio_open(struct trio *t, int i)
{
    struct cluster_options o = {.metadata_dir = t->dirs[i],
                                .node_id = i + 1,
                                .voters = trio_voters,
                                .voter_count = 3,
                                .seed = 1000 + (uint64_t)i};
    int rc = cluster_open(&o, &t->c[i]);
    if (rc == 0)
        cluster_set_transport(t->c[i], trio_send, t);
    return rc;
}

/* Delivers everything queued (and what it causes) to the nodes that are up. */
static void trio_deliver(struct trio *t)
{
    while (t->n > 0) {
        struct net_msg m = t->queue[0];
        memmove(t->queue, t->queue + 1, --t->n * sizeof t->queue[0]);
        struct cluster *c = m.to >= 1 && m.to <= 3 ? t->c[m.to - 1] : NULL;
        if (c)
            cluster_receive(c, m.bytes.data, m.bytes.len);
        buf_free(&m.bytes);
    }
}

/* Ticks every node up until all that are up name one leader; returns it. */
static int32_t trio_elect(struct trio *t)
{
    for (int tick = 0; tick < 1000; tick++) {
        for (int i = 0; i < 3; i++)
            if (t->c[i])
                cluster_tick(t->c[i]);
        trio_deliver(t);
        int32_t leader = -1;
        bool agreed = true;
        for (int i = 0; i < 3; i++) {
            if (!t->c[i])
                continue;
            int32_t l = cluster_controller_id(t->c[i]);
            if (leader == -1)
                leader = l;
            agreed &= l == leader && l > 0 && t->c[l - 1];
        }
        if (agreed && leader > 0)
            return leader;
    }
    fail_msg("no leader after 1000 ticks");
    return -1;
}

static void trio_setup(struct trio *t, struct fixture *f)
{
    memset(t, 0, sizeof *t);
    t->f = f;
    char id[CLUSTER_UUID_TEXT_BYTES];
    uint8_t raw[16];
    cluster_uuid_random(raw);
    cluster_uuid_format(raw, id);
    for (int i = 0; i < 3; i++) {
        snprintf(t->dirs[i], sizeof t->dirs[i], "%s/node%d", f->dir, i + 1);
        assert_int_equal(cluster_format(t->dirs[i], i + 1, id), CLUSTER_OK);
        assert_int_equal(trio_open(t, i), 0);
    }
}

static void trio_close(struct trio *t, int i)
{
    cluster_close(t->c[i]);
    t->c[i] = NULL;
}

static void trio_teardown(struct trio *t)
{
    for (int i = 0; i < 3; i++)
        trio_close(t, i);
    for (size_t i = 0; i < t->n; i++)
        buf_free(&t->queue[i].bytes);
}

/* Submits a topic creation on node i and runs the quorum until it is reported. */
static int trio_create(struct trio *t, int i, const char *name)
{
    last_done = false;
    cluster_create_topic(t->c[i], slice_from_cstr(name), 2, 1, NULL, 0, false, keep, NULL);
    for (int round = 0; round < 100 && !last_done; round++) {
        trio_deliver(t);
        for (int k = 0; k < 3; k++)
            if (t->c[k])
                cluster_tick(t->c[k]);
    }
    return result(NULL);
}

static void test_quorum_of_three(void **state)
{
    struct trio t;
    trio_setup(&t, *state);
    int32_t leader = trio_elect(&t);
    int follower = leader % 3; /* index of another node */
    /* A follower refuses; the leader commits, and every node applies it. */
    assert_int_equal(trio_create(&t, follower, "refused"), CLUSTER_ERR_NOT_CONTROLLER);
    assert_int_equal(trio_create(&t, leader - 1, "t1"), CLUSTER_OK);
    trio_deliver(&t);
    for (int k = 0; k < 4; k++) { /* heartbeats carry the commit index to followers */
        for (int i = 0; i < 3; i++)
            cluster_tick(t.c[i]);
        trio_deliver(&t);
    }
    const struct mtopic *on_leader = cluster_topic_find(t.c[leader - 1], slice_from_cstr("t1"));
    assert_non_null(on_leader);
    for (int i = 0; i < 3; i++) {
        const struct mtopic *tp = cluster_topic_find(t.c[i], slice_from_cstr("t1"));
        assert_non_null(tp);
        assert_memory_equal(tp->id, on_leader->id, 16);
        assert_null(cluster_topic_find(t.c[i], slice_from_cstr("refused")));
    }
    /* The leader goes: the other two elect one of themselves and take changes. */
    trio_close(&t, leader - 1);
    int32_t next = trio_elect(&t);
    assert_int_not_equal(next, leader);
    assert_int_equal(trio_create(&t, next - 1, "t2"), CLUSTER_OK);
    /* It comes back from its dir and learns what it missed. */
    assert_int_equal(trio_open(&t, leader - 1), 0);
    assert_int_equal(trio_elect(&t), next);
    for (int k = 0; k < 10; k++) {
        for (int i = 0; i < 3; i++)
            cluster_tick(t.c[i]);
        trio_deliver(&t);
    }
    assert_non_null(cluster_topic_find(t.c[leader - 1], slice_from_cstr("t2")));
    assert_non_null(cluster_topic_find(t.c[leader - 1], slice_from_cstr("t1")));
    trio_teardown(&t);
}

static void test_quorum_voter_refusals(void **state)
{
    struct fixture *f = *state;
    struct trio t;
    trio_setup(&t, f);
    trio_elect(&t);
    /* The format mark is gone once the log was written. */
    char mark[256];
    snprintf(mark, sizeof mark, "%s/quorum.format", t.dirs[2]);
    assert_int_not_equal(access(mark, F_OK), 0);
    /* Formatting over a log is refused. */
    assert_int_not_equal(cluster_format(t.dirs[2], 3, "AAAAAAAAAAAAAAAAAAAAAA"), CLUSTER_OK);
    trio_close(&t, 2);
    /* Other voters than the log's are refused. */
    int32_t other[3] = {1, 2, 4};
    struct cluster_options o = {
        .metadata_dir = t.dirs[2], .node_id = 3, .voters = other, .voter_count = 3};
    struct cluster *c = NULL;
    assert_int_not_equal(cluster_open(&o, &c), 0);
    /* A voter whose log was lost does not start. */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -f %s/raft.log %s/snapshot", t.dirs[2], t.dirs[2]);
    assert_int_equal(system(cmd), 0);
    assert_int_not_equal(trio_open(&t, 2), 0);
    t.c[2] = NULL;
    /* Nor does an unformatted one. */
    char fresh[128];
    snprintf(fresh, sizeof fresh, "%s/fresh", f->dir);
    o = (struct cluster_options){
        .metadata_dir = fresh, .node_id = 1, .voters = trio_voters, .voter_count = 3};
    assert_int_not_equal(cluster_open(&o, &c), 0);
    trio_teardown(&t);
}

static int alter_partition(struct cluster *c, const char *topic, int32_t leader,
                           int32_t leader_epoch, int32_t partition_epoch, const int32_t *isr,
                           int32_t n)
{
    struct cluster_isr_change ch = {leader, leader_epoch, partition_epoch, isr, n};
    cluster_alter_partition(c, slice_from_cstr(topic), 0, &ch, keep, NULL);
    return result(NULL);
}

/* AlterPartition: only the leader at its leader epoch and the current partition epoch
 * changes the ISR, and only to unfenced replicas (Kafka's controller checks). */
static void test_alter_partition_checks_epochs(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    const char *why = NULL;
    register_brokers(c, 4);
    const int32_t plan[] = {1, 2, 3};
    assert_int_equal(create_assigned(c, "a", plan, 1, 3, &why), 0);
    const int32_t isr12[] = {1, 2}, isr123[] = {1, 2, 3}, isr14[] = {1, 4}, isr23[] = {2, 3};
    /* Not the leader, or an old leader epoch: fenced. */
    assert_int_equal(alter_partition(c, "a", 2, 0, 0, isr23, 2), CLUSTER_ERR_FENCED_LEADER_EPOCH);
    assert_int_equal(alter_partition(c, "a", 1, 1, 0, isr12, 2), CLUSTER_ERR_FENCED_LEADER_EPOCH);
    /* A shrink at the right epochs: the partition epoch moves, the leader epoch not. */
    assert_int_equal(alter_partition(c, "a", 1, 0, 0, isr12, 2), 0);
    assert_int_equal(last.partition_epoch, 1);
    const struct mpartition *p = &cluster_topic_find(c, slice_from_cstr("a"))->partitions[0];
    assert_int_equal(p->isr_count, 2);
    assert_int_equal(p->leader_epoch, 0);
    assert_int_equal(p->partition_epoch, 1);
    /* The same request again is stale now. */
    assert_int_equal(alter_partition(c, "a", 1, 0, 0, isr12, 2),
                     CLUSTER_ERR_INVALID_UPDATE_VERSION);
    /* 4 is no replica; a fenced replica may not join. */
    assert_int_equal(alter_partition(c, "a", 1, 0, 1, isr14, 2), CLUSTER_ERR_INELIGIBLE_REPLICA);
    fence_broker(c, 3);
    p = &cluster_topic_find(c, slice_from_cstr("a"))->partitions[0];
    assert_int_equal(alter_partition(c, "a", 1, 0, p->partition_epoch, isr123, 3),
                     CLUSTER_ERR_INELIGIBLE_REPLICA);
    unfence_broker(c, 3);
    p = &cluster_topic_find(c, slice_from_cstr("a"))->partitions[0];
    assert_int_equal(alter_partition(c, "a", 1, 0, p->partition_epoch, isr123, 3), 0);
    p = &cluster_topic_find(c, slice_from_cstr("a"))->partitions[0];
    assert_int_equal(p->isr_count, 3);
    cluster_close(c);
}

/* Controlled shutdown: the broker is fenced at once, its leaderships go to the next
 * replica in sync, and it is told it may stop; asking again changes nothing. */
static void test_controlled_shutdown_fences_at_once(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    const char *why = NULL;
    register_brokers(c, 3);
    const int32_t plan[] = {1, 2, 3};
    assert_int_equal(create_assigned(c, "s", plan, 1, 3, &why), 0);
    int64_t epoch = cluster_broker_find(c, 1)->epoch;
    cluster_broker_controlled_shutdown(c, 1, epoch - 1, 0, keep, NULL);
    assert_int_equal(result(NULL), CLUSTER_ERR_STALE_BROKER_EPOCH);
    cluster_broker_controlled_shutdown(c, 1, epoch, 0, keep, NULL);
    assert_int_equal(result(NULL), 0);
    assert_true(last.fenced);
    assert_true(cluster_broker_find(c, 1)->fenced);
    const struct mpartition *p = &cluster_topic_find(c, slice_from_cstr("s"))->partitions[0];
    assert_int_equal(p->leader, 2);
    assert_int_equal(p->leader_epoch, 1);
    assert_int_equal(p->isr_count, 2);
    cluster_broker_controlled_shutdown(c, 1, epoch, 0, keep, NULL);
    assert_int_equal(result(NULL), 0);
    assert_true(last.fenced);
    p = &cluster_topic_find(c, slice_from_cstr("s"))->partitions[0];
    assert_int_equal(p->partition_epoch, 1); /* nothing more written */
    cluster_close(c);
}

static int elect_leader(struct cluster *c, const char *topic, enum cluster_election how)
{
    cluster_elect_leader(c, slice_from_cstr(topic), 0, how, keep, NULL);
    return result(NULL);
}

/* ElectLeaders: the preferred replica when it is in sync and unfenced; unclean only for
 * a leaderless partition, cleanly if an in-sync replica is up, else the first live one. */
static void test_elections(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    const char *why = NULL;
    register_brokers(c, 3);
    const int32_t plan[] = {1, 2, 3};
    assert_int_equal(create_assigned(c, "e", plan, 1, 3, &why), 0);
    assert_int_equal(elect_leader(c, "e", CLUSTER_ELECT_PREFERRED),
                     CLUSTER_ERR_ELECTION_NOT_NEEDED);
    fence_broker(c, 1); /* 2 leads; 1 out of the ISR */
    assert_int_equal(elect_leader(c, "e", CLUSTER_ELECT_PREFERRED),
                     CLUSTER_ERR_PREFERRED_NOT_AVAILABLE);
    unfence_broker(c, 1); /* back, but not in sync yet */
    assert_int_equal(elect_leader(c, "e", CLUSTER_ELECT_PREFERRED),
                     CLUSTER_ERR_PREFERRED_NOT_AVAILABLE);
    const struct mpartition *p = &cluster_topic_find(c, slice_from_cstr("e"))->partitions[0];
    const int32_t isr[] = {2, 3, 1};
    assert_int_equal(alter_partition(c, "e", 2, p->leader_epoch, p->partition_epoch, isr, 3), 0);
    assert_int_equal(elect_leader(c, "e", CLUSTER_ELECT_PREFERRED), 0);
    p = &cluster_topic_find(c, slice_from_cstr("e"))->partitions[0];
    assert_int_equal(p->leader, 1);
    assert_int_equal(p->isr_count, 3);
    /* Unclean: not while there is a leader. */
    assert_int_equal(elect_leader(c, "e", CLUSTER_ELECT_UNCLEAN), CLUSTER_ERR_ELECTION_NOT_NEEDED);
    /* Only 3 in sync, then 3 fenced: leaderless; 1 and 2 are up but not in sync. */
    const int32_t isr13[] = {1, 3};
    p = &cluster_topic_find(c, slice_from_cstr("e"))->partitions[0];
    assert_int_equal(alter_partition(c, "e", 1, p->leader_epoch, p->partition_epoch, isr13, 2), 0);
    fence_broker(c, 1);
    fence_broker(c, 3);
    p = &cluster_topic_find(c, slice_from_cstr("e"))->partitions[0];
    assert_int_equal(p->leader, -1);
    assert_int_equal(elect_leader(c, "e", CLUSTER_ELECT_PREFERRED),
                     CLUSTER_ERR_PREFERRED_NOT_AVAILABLE);
    assert_int_equal(elect_leader(c, "e", CLUSTER_ELECT_UNCLEAN), 0);
    p = &cluster_topic_find(c, slice_from_cstr("e"))->partitions[0];
    assert_int_equal(p->leader, 2); /* the first live replica, not in sync */
    assert_int_equal(p->isr_count, 1);
    assert_int_equal(p->isr[0], 2);
    cluster_close(c);
}

static int reassign(struct cluster *c, const char *topic, const int32_t *target, int32_t n,
                    bool allow_rf_change)
{
    cluster_reassign_partition(c, slice_from_cstr(topic), 0, target, n, allow_rf_change, keep,
                               NULL);
    return result(NULL);
}

static const struct mpartition *partition0(struct cluster *c, const char *topic)
{
    return &cluster_topic_find(c, slice_from_cstr(topic))->partitions[0];
}

static void assert_ids(const int32_t *ids, int32_t n, const int32_t *want, int32_t want_n)
{
    assert_int_equal(n, want_n);
    for (int32_t i = 0; i < n; i++)
        assert_int_equal(ids[i], want[i]);
}

/* AlterPartitionReassignments (KIP-455): the target first, then the replicas leaving;
 * the reassignment completes in the AlterPartition that brings the last target replica
 * into the ISR, moving the lead off a replica that leaves; it survives a reopen; a
 * cancellation goes back; bad targets are refused and change nothing. */
static void test_reassignments(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    const char *why = NULL;
    register_brokers(c, 5);
    const int32_t plan[] = {1, 2, 3};
    assert_int_equal(create_assigned(c, "r", plan, 1, 3, &why), 0);
    /* Refusals: nothing is written. */
    const int32_t twice[] = {4, 4, 2}, unknown[] = {4, 9, 2}, two[] = {4, 2};
    assert_int_equal(reassign(c, "r", twice, 3, true), CLUSTER_ERR_INVALID_ASSIGNMENT);
    assert_int_equal(reassign(c, "r", unknown, 3, true), CLUSTER_ERR_INVALID_ASSIGNMENT);
    assert_int_equal(reassign(c, "r", two, 0, true), CLUSTER_ERR_INVALID_ASSIGNMENT);
    assert_int_equal(reassign(c, "r", two, 2, false), CLUSTER_ERR_INVALID_REPLICATION);
    assert_int_equal(reassign(c, "r", NULL, 0, true), CLUSTER_ERR_NO_REASSIGNMENT);
    cluster_reassign_partition(c, slice_from_cstr("nope"), 0, two, 2, true, keep, NULL);
    assert_int_equal(result(NULL), CLUSTER_ERR_UNKNOWN_TOPIC);
    assert_int_equal(partition0(c, "r")->partition_epoch, 0);
    /* The same replicas: nothing to do. */
    assert_int_equal(reassign(c, "r", plan, 3, false), 0);
    assert_int_equal(partition0(c, "r")->partition_epoch, 0);

    /* 1,2,3 -> 4,5,2: 4 and 5 join; 1 (the leader) and 3 leave once 4 and 5 are in sync. */
    const int32_t target[] = {4, 5, 2};
    assert_int_equal(reassign(c, "r", target, 3, false), 0);
    const struct mpartition *p = partition0(c, "r");
    const int32_t all[] = {4, 5, 2, 1, 3}, adding[] = {4, 5}, removing[] = {1, 3};
    const int32_t isr123[] = {1, 2, 3};
    assert_ids(p->replicas, p->replica_count, all, 5);
    assert_ids(p->adding, p->adding_count, adding, 2);
    assert_ids(p->removing, p->removing_count, removing, 2);
    assert_ids(p->isr, p->isr_count, isr123, 3);
    assert_int_equal(p->leader, 1);
    assert_int_equal(p->leader_epoch, 0); /* replicas only added */
    assert_int_equal(p->partition_epoch, 1);
    /* Replayed from the log as it was written. */
    cluster_close(c);
    c = open_cluster(f);
    p = partition0(c, "r");
    assert_ids(p->replicas, p->replica_count, all, 5);
    assert_ids(p->adding, p->adding_count, adding, 2);
    assert_ids(p->removing, p->removing_count, removing, 2);
    /* 4 catches up: still under way. */
    const int32_t isr1234[] = {1, 2, 3, 4}, isr12345[] = {1, 2, 3, 4, 5};
    assert_int_equal(alter_partition(c, "r", 1, 0, 1, isr1234, 4), 0);
    p = partition0(c, "r");
    assert_int_equal(p->adding_count, 2);
    assert_ids(p->isr, p->isr_count, isr1234, 4);
    /* 5 catches up: done, in the same change; 4 leads (the first target replica). */
    assert_int_equal(alter_partition(c, "r", 1, 0, 2, isr12345, 5), 0);
    p = partition0(c, "r");
    const int32_t isr245[] = {2, 4, 5};
    assert_ids(p->replicas, p->replica_count, target, 3);
    assert_ids(p->isr, p->isr_count, isr245, 3);
    assert_int_equal(p->adding_count, 0);
    assert_int_equal(p->removing_count, 0);
    assert_int_equal(p->leader, 4);
    assert_int_equal(p->leader_epoch, 1);
    assert_int_equal(p->partition_epoch, 3);
    assert_int_equal(reassign(c, "r", NULL, 0, true), CLUSTER_ERR_NO_REASSIGNMENT);

    /* Shrinking to replicas in sync completes at once (allowed only with rf changes). */
    const int32_t shrink[] = {5, 2};
    assert_int_equal(reassign(c, "r", shrink, 2, true), 0);
    p = partition0(c, "r");
    assert_ids(p->replicas, p->replica_count, shrink, 2);
    assert_int_equal(p->adding_count + p->removing_count, 0);
    assert_int_equal(p->leader, 5);

    /* Cancelled: 1 leaves again, from the ISR too, and the lead stays. */
    const int32_t grow[] = {5, 2, 1};
    assert_int_equal(reassign(c, "r", grow, 3, true), 0);
    p = partition0(c, "r");
    const int32_t isr521[] = {5, 2, 1};
    assert_int_equal(alter_partition(c, "r", 5, p->leader_epoch, p->partition_epoch, isr521, 3), 0);
    p = partition0(c, "r"); /* 1 in sync: completed */
    assert_ids(p->replicas, p->replica_count, grow, 3);
    const int32_t onto3[] = {3, 2, 1};
    assert_int_equal(reassign(c, "r", onto3, 3, false), 0);
    p = partition0(c, "r");
    const int32_t with3[] = {3, 2, 1, 5};
    assert_ids(p->replicas, p->replica_count, with3, 4);
    assert_int_equal(reassign(c, "r", NULL, 0, true), 0);
    p = partition0(c, "r");
    const int32_t back[] = {2, 1, 5};
    assert_ids(p->replicas, p->replica_count, back, 3);
    assert_int_equal(p->adding_count + p->removing_count, 0);
    assert_int_equal(p->leader, 5);
    cluster_close(c);
}

/* A broker whose connection closed is fenced once the grace has passed with no
 * heartbeat since, well before its session ends; a heartbeat in between keeps it, and a
 * close reported for another epoch is ignored. */
static void test_disconnected_broker_is_fenced_early(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    const char *why = NULL;
    register_brokers(c, 3);
    const int32_t plan[] = {2, 1, 3};
    assert_int_equal(create_assigned(c, "d", plan, 1, 3, &why), 0);
    const int64_t session = 9000, grace = 1000;
    int64_t t = 100000;
    cluster_expire_sessions(c, t, session, grace); /* sessions start */
    int64_t epoch = cluster_broker_find(c, 2)->epoch;
    cluster_broker_disconnected(c, 2, epoch + 1, t); /* another epoch: nothing */
    cluster_expire_sessions(c, t + 2 * grace, session, grace);
    assert_false(cluster_broker_find(c, 2)->fenced);
    /* Closed, then a heartbeat before the grace ends: kept. */
    cluster_broker_disconnected(c, 2, epoch, t + 2 * grace);
    cluster_broker_heartbeat(c, 2, epoch, t + 2 * grace + 10, NULL, NULL);
    cluster_expire_sessions(c, t + 4 * grace, session, grace);
    assert_false(cluster_broker_find(c, 2)->fenced);
    /* Closed for good: not yet before the grace, fenced at it (counted from the first
     * close: a dead broker's connection refused again and again does not put it off),
     * its lead moved. */
    cluster_broker_disconnected(c, 2, epoch, t + 4 * grace);
    cluster_broker_disconnected(c, 2, epoch, t + 4 * grace + 500);
    cluster_expire_sessions(c, t + 5 * grace - 1, session, grace);
    assert_false(cluster_broker_find(c, 2)->fenced);
    cluster_expire_sessions(c, t + 5 * grace, session, grace);
    assert_true(cluster_broker_find(c, 2)->fenced);
    const struct mpartition *p = &cluster_topic_find(c, slice_from_cstr("d"))->partitions[0];
    assert_int_equal(p->leader, 1);
    /* Grace 0: closes are not acted on, only sessions. */
    epoch = cluster_broker_find(c, 3)->epoch;
    cluster_broker_disconnected(c, 3, epoch, t + 5 * grace);
    cluster_expire_sessions(c, t + 8 * grace, session, 0);
    assert_false(cluster_broker_find(c, 3)->fenced);
    cluster_close(c);
}

static void set_unclean(struct cluster *c, const char *topic, const char *value)
{
    const struct config_change ch = {"unclean.leader.election.enable", value,
                                     value ? CFG_OP_SET : CFG_OP_DELETE};
    assert_int_equal(alter_topic_configs(c, slice_from_cstr(topic), &ch, 1, false, false, NULL), 0);
}

/* unclean.leader.election.enable: off, the ISR's last member fenced leaves the partition
 * leaderless; turned on, the same change elects the first live replica, which becomes the
 * whole ISR; on, fencing does it at once, and a replica out of the ISR that returns to a
 * leaderless partition leads it. The broker's default applies where a topic sets none. */
static void test_unclean_leader_election(void **state)
{
    struct fixture *f = *state;
    struct cluster *c = open_cluster(f);
    const char *why = NULL;
    register_brokers(c, 3);
    const int32_t plan[] = {1, 2, 3}, only1[] = {1};
    assert_int_equal(create_assigned(c, "u", plan, 1, 3, &why), 0);
    assert_int_equal(alter_partition(c, "u", 1, 0, 0, only1, 1), 0); /* 2, 3 fell behind */
    fence_broker(c, 1);
    const struct mpartition *p = partition0(c, "u");
    assert_int_equal(p->leader, -1);
    assert_ids(p->isr, p->isr_count, only1, 1);
    int32_t epoch = p->leader_epoch;
    set_unclean(c, "u", "true");
    p = partition0(c, "u");
    const int32_t only2[] = {2}, only3[] = {3};
    assert_int_equal(p->leader, 2);
    assert_ids(p->isr, p->isr_count, only2, 1);
    assert_int_equal(p->leader_epoch, epoch + 1);
    /* On: fencing the one in-sync replica hands the lead to the next live one. */
    fence_broker(c, 2);
    p = partition0(c, "u");
    assert_int_equal(p->leader, 3);
    assert_ids(p->isr, p->isr_count, only3, 1);
    /* 3 fenced too: nobody left; 1 returns, out of the ISR, and leads. */
    fence_broker(c, 3);
    assert_int_equal(partition0(c, "u")->leader, -1);
    unfence_broker(c, 1);
    p = partition0(c, "u");
    assert_int_equal(p->leader, 1);
    assert_ids(p->isr, p->isr_count, only1, 1);
    cluster_close(c);

    /* The broker's default, on; a topic that sets false keeps its partition leaderless. */
    struct cluster_options o = {
        .metadata_dir = f->dir, .node_id = 1, .unclean_leader_election = true};
    assert_int_equal(cluster_open(&o, &c), 0);
    unfence_broker(c, 2);
    unfence_broker(c, 3);
    assert_int_equal(create_assigned(c, "v", plan, 1, 3, &why), 0);
    assert_int_equal(create_assigned(c, "w", plan, 1, 3, &why), 0);
    set_unclean(c, "w", "false");
    assert_int_equal(alter_partition(c, "v", 1, 0, 0, only1, 1), 0);
    assert_int_equal(alter_partition(c, "w", 1, 0, 0, only1, 1), 0);
    fence_broker(c, 1);
    assert_int_equal(partition0(c, "v")->leader, 2);
    assert_int_equal(partition0(c, "w")->leader, -1);
    cluster_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_names),
        cmocka_unit_test(test_config_validation),
        cmocka_unit_test(test_throttled_replicas_config),
        cmocka_unit_test_setup_teardown(test_changes_survive_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_is_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zeros_after_crash_are_a_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_after_clean_stop_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_before_the_last_entry_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_salvage_and_rewrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_start_leaves_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_node_leaves_torn_tail, setup, teardown),
        cmocka_unit_test(test_uuid_text),
        cmocka_unit_test_setup_teardown(test_partition_limit_and_take_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_producer_id_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_id_mismatch_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_cut_of_a_start_write_starts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_from_old_metadata_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_refuses_damaged_old_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_largest_topic_is_one_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runner_and_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quorum_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partition_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quorum_of_three, setup, teardown),
        cmocka_unit_test_setup_teardown(test_placement_and_fencing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_placement_by_rack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_placement_with_replicas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_placement_with_replicas_by_rack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replication_factor_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manual_assignment_with_replicas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fencing_with_replicas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registration_fences_with_replicas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alter_partition_checks_epochs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reassignments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnected_broker_is_fenced_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unclean_leader_election, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controlled_shutdown_fences_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_elections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quorum_voter_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_compacts_the_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_crash_points, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_interval, setup, teardown),
    };
    return cmocka_run_group_tests_name("cluster", tests, NULL, NULL);
}
