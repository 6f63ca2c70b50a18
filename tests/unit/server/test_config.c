/* Unit tests for the broker configuration: Kafka's names and precedence rules, and
 * invalid values refused with the key named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/config.h"

static int load(struct broker_config *c, const char *text, char **ov, size_t n)
{
    char path[] = "/tmp/samsa-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    int rc = broker_config_load(c, path, ov, n);
    unlink(path);
    return rc;
}

static void test_defaults(void **state)
{
    (void)state;
    struct broker_config c;
    assert_int_equal(load(&c, "", NULL, 0), 0);
    assert_int_equal(c.node_id, 1);
    assert_int_equal(c.listener_port, 9092);
    assert_string_equal(c.listener_name, "PLAINTEXT");
    assert_string_equal(c.advertised_host, "localhost");
    assert_int_equal(c.num_partitions, 1);
    assert_true(c.auto_create_topics);
    assert_true(c.retention_ms == 168LL * 3600 * 1000);
    assert_true(c.roll_ms == 168LL * 3600 * 1000);
    assert_true(c.segment_bytes == 1073741824);
    assert_int_equal(c.message_max_bytes, 1048588);
    assert_true(c.flush_interval_ms == INT64_MAX);
    assert_false(c.fetch_sendfile);
    assert_true(c.metadata_snapshot_max_bytes == 20971520); /* Kafka's defaults */
    assert_true(c.metadata_snapshot_interval_ms == 3600000);
    /* Replication quotas: none, measured over Kafka's 11 samples of 1 s. */
    assert_true(c.leader_replication_throttled_rate == INT64_MAX);
    assert_true(c.follower_replication_throttled_rate == INT64_MAX);
    assert_int_equal(c.replication_quota_window_num, 11);
    assert_true(c.replication_quota_window_ms == 1000);
    broker_config_free(&c);
    assert_int_equal(load(&c,
                          "leader.replication.throttled.rate=0\n"
                          "follower.replication.throttled.rate=1048576\n"
                          "replication.quota.window.num=100\n"
                          "replication.quota.window.size.seconds=2\n",
                          NULL, 0),
                     0);
    assert_true(c.leader_replication_throttled_rate == 0);
    assert_true(c.follower_replication_throttled_rate == 1048576);
    assert_int_equal(c.replication_quota_window_num, 100);
    assert_true(c.replication_quota_window_ms == 2000);
    broker_config_free(&c);
    assert_int_equal(load(&c,
                          "metadata.log.max.record.bytes.between.snapshots=4096\n"
                          "metadata.log.max.snapshot.interval.ms=0\n",
                          NULL, 0),
                     0);
    assert_true(c.metadata_snapshot_max_bytes == 4096);
    assert_true(c.metadata_snapshot_interval_ms == 0);
    broker_config_free(&c);
}

static void test_precedence_and_overrides(void **state)
{
    (void)state;
    struct broker_config c;
    char *ov[] = {"num.partitions=7", "log.retention.ms=5000"};
    assert_int_equal(load(&c,
                          "listeners=PLAINTEXT://127.0.0.1:19092\n"
                          "log.dirs=/a,/b\n"
                          "log.retention.hours=1\n"
                          "log.retention.minutes=30\n"
                          "num.partitions=3\n",
                          ov, 2),
                     0);
    assert_int_equal(c.num_partitions, 7); /* override beats file */
    assert_true(c.retention_ms == 5000);   /* ms beats minutes beats hours */
    assert_string_equal(c.listener_name, "PLAINTEXT");
    assert_string_equal(c.listener_host, "127.0.0.1");
    assert_int_equal(c.listener_port, 19092);
    assert_string_equal(c.advertised_host, "127.0.0.1");
    assert_string_equal(c.log_dir, "/a");
    assert_string_equal(broker_config_value(&c, "num.partitions"), "7");
    broker_config_free(&c);
    assert_int_equal(load(&c, "log.retention.hours=2\nlog.retention.minutes=30\n", NULL, 0), 0);
    assert_true(c.retention_ms == 30 * 60000);
    broker_config_free(&c);
}

static void test_invalid_values_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "num.partitions=0\n",
        "num.partitions=lots\n",
        "log.segment.bytes=10\n",
        "message.max.bytes=99999999999\n",
        "auto.create.topics.enable=maybe\n",
        "listeners=localhost:9092\n",
        "listeners=PLAINTEXT://:99999\n",
        "log.message.timestamp.type=Sometime\n",
        "log.cleanup.policy=shred\n",
        "process.roles=broker\n",
        "log.level=LOUD\n",
        "unclean.leader.election.enable=maybe\n",
        "metadata.log.max.record.bytes.between.snapshots=0\n",
        "metadata.log.max.snapshot.interval.ms=-1\n",
        "leader.replication.throttled.rate=-1\n",
        "follower.replication.throttled.rate=fast\n",
        "replication.quota.window.num=0\n",
        "replication.quota.window.num=101\n",
        "replication.quota.window.size.seconds=0\n",
        /* This node (node.id 1 by default) must be a voter; several voters need a
         * controller listener; ids are unique; one client listener. */
        "controller.quorum.voters=1@localhost:9093,2@localhost:9095\n",
        "controller.quorum.voters=2@localhost:9093\n",
        "listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n"
        "controller.quorum.voters=1@localhost:9093,1@localhost:9095\n",
        "listeners=PLAINTEXT://:9092,OTHER://:9093\n",
        /* A broker-only node needs the voters, and is not one of them. */
        "process.roles=broker\ncontroller.quorum.voters=1@localhost:9093\n",
        "process.roles=controller\n",
        "listeners=CONTROLLER://:9093\n",
        "controller.quorum.voters=localhost:9093\n",
        "controller.quorum.voters=1@localhost\n",
        "controller.quorum.voters=x@localhost:9093\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct broker_config c;
        int rc = load(&c, bad[i], NULL, 0);
        if (rc == 0)
            fail_msg("accepted invalid config: %s", bad[i]);
        broker_config_free(&c);
    }
    struct broker_config c;
    char *ov[] = {"no-equals-sign"};
    assert_int_not_equal(load(&c, "", ov, 1), 0);
    broker_config_free(&c);
}

/* A quorum of this node alone, as Kafka writes it, is accepted. */
static void test_quorum_voters_of_this_node(void **state)
{
    (void)state;
    struct broker_config c;
    assert_int_equal(load(&c, "controller.quorum.voters=1@localhost:9093\n", NULL, 0), 0);
    broker_config_free(&c);
    assert_int_equal(load(&c, "node.id=3\ncontroller.quorum.voters=3@[::1]:9093\n", NULL, 0), 0);
    broker_config_free(&c);
    assert_int_equal(load(&c, "node.id=3\ncontroller.quorum.voters=1@localhost:9093\n", NULL, 0),
                     -1);
    broker_config_free(&c);
}

/* Several voters, with this node's controller listener. */
static void test_quorum_of_several_voters(void **state)
{
    (void)state;
    struct broker_config c;
    assert_int_equal(load(&c,
                          "node.id=2\n"
                          "listeners=PLAINTEXT://127.0.0.1:9092, CTL://127.0.0.1:9193\n"
                          "controller.listener.names=CTL\n"
                          "controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9193,"
                          "3@[::1]:9293\n",
                          NULL, 0),
                     0);
    assert_int_equal(c.voter_count, 3);
    assert_int_equal(c.voters[2].id, 3);
    assert_string_equal(c.voters[2].host, "::1");
    assert_int_equal(c.voters[2].port, 9293);
    assert_string_equal(c.listener_host, "127.0.0.1");
    assert_int_equal(c.listener_port, 9092);
    assert_string_equal(c.controller_host, "127.0.0.1");
    assert_int_equal(c.controller_port, 9193);
    assert_int_equal(c.election_timeout_ms, 1000);
    assert_true(c.controller);
    broker_config_free(&c);
    /* A broker-only node: an observer of the voters, no controller listener needed. */
    assert_int_equal(load(&c,
                          "node.id=4\nprocess.roles=broker\n"
                          "listeners=PLAINTEXT://127.0.0.1:9492\n"
                          "controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9193\n",
                          NULL, 0),
                     0);
    assert_false(c.controller);
    assert_false(broker_config_alone(&c));
    assert_null(c.controller_host);
    broker_config_free(&c);
}

static void test_connections_per_ip(void **state)
{
    (void)state;
    struct broker_config c;
    assert_int_equal(load(&c, "", NULL, 0), 0);
    assert_int_equal(c.max_connections_per_ip, 2147483647); /* Kafka's default */
    assert_int_equal(c.ip_limit_count, 0);
    broker_config_free(&c);

    /* Kafka's format: blanks around separators, the count after the last colon (IPv6),
     * a repeated address kept in order (net lets the last one win). */
    assert_int_equal(load(&c,
                          "max.connections.per.ip=0\n"
                          "max.connections.per.ip.overrides=127.0.0.1:200, 10.0.0.5 : 0,"
                          "::1:7,[fe80::2]:3,127.0.0.1:201\n",
                          NULL, 0),
                     0);
    assert_int_equal(c.max_connections_per_ip, 0);
    assert_int_equal(c.ip_limit_count, 5);
    static const uint8_t v4_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    static const uint8_t v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_memory_equal(c.ip_limits[0].addr, v4_loopback, 16);
    assert_int_equal(c.ip_limits[0].max_connections, 200);
    assert_int_equal(c.ip_limits[1].addr[15], 5);
    assert_int_equal(c.ip_limits[1].max_connections, 0);
    assert_memory_equal(c.ip_limits[2].addr, v6_loopback, 16);
    assert_int_equal(c.ip_limits[2].max_connections, 7);
    assert_int_equal(c.ip_limits[3].addr[0], 0xfe);
    assert_int_equal(c.ip_limits[3].max_connections, 3);
    assert_int_equal(c.ip_limits[4].max_connections, 201);
    broker_config_free(&c);

    const char *bad[] = {
        "max.connections.per.ip=-1\n",
        "max.connections.per.ip=many\n",
        "max.connections.per.ip=2147483648\n",
        "max.connections.per.ip=0\n", /* Kafka: 0 only together with overrides */
        "max.connections.per.ip.overrides=127.0.0.1\n",
        "max.connections.per.ip.overrides=127.0.0.1:\n",
        "max.connections.per.ip.overrides=127.0.0.1:-1\n",
        "max.connections.per.ip.overrides=127.0.0.1:x\n",
        "max.connections.per.ip.overrides=127.0.0.1:2147483648\n",
        "max.connections.per.ip.overrides=:5\n",
        "max.connections.per.ip.overrides=127.0.0.1:5,\n",
        "max.connections.per.ip.overrides=127.0.0.1:5,,10.0.0.1:2\n",
        "max.connections.per.ip.overrides=300.0.0.1:5\n",
        "max.connections.per.ip.overrides=broker.example.com:5\n", /* no DNS */
        "max.connections.per.ip.overrides=localhost:5\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = load(&c, bad[i], NULL, 0);
        if (rc == 0)
            fail_msg("accepted invalid config: %s", bad[i]);
        broker_config_free(&c);
    }
}

static const struct broker_config_item *item(const struct broker_config_item *items, size_t n,
                                             const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(items[i].name, name) == 0)
            return &items[i];
    fail_msg("broker config %s not listed", name);
    return NULL;
}

/* DescribeConfigs of the broker: Kafka's types, and null (not "") for a key that is
 * unset and has no default. */
static void test_items_types_and_null_values(void **state)
{
    (void)state;
    struct broker_config c;
    assert_int_equal(load(&c, "log.retention.hours=24\n", NULL, 0), 0);
    struct broker_config_item items[BROKER_CONFIG_MAX_ITEMS];
    size_t n = broker_config_items(&c, items, BROKER_CONFIG_MAX_ITEMS);
    const struct broker_config_item *it = item(items, n, "log.retention.ms");
    assert_null(it->value);
    assert_true(it->is_default);
    assert_int_equal(it->type, TCFG_LONG);
    assert_null(item(items, n, "broker.rack")->value);
    assert_null(item(items, n, "log.roll.ms")->value);
    assert_null(item(items, n, "log.flush.interval.ms")->value);
    it = item(items, n, "log.retention.hours");
    assert_string_equal(it->value, "24");
    assert_false(it->is_default);
    assert_int_equal(it->type, TCFG_INT);
    assert_string_equal(item(items, n, "max.connections.per.ip.overrides")->value, "");
    assert_int_equal(item(items, n, "listeners")->type, TCFG_LIST);
    assert_int_equal(item(items, n, "log.cleanup.policy")->type, TCFG_LIST);
    assert_int_equal(item(items, n, "log.cleaner.min.cleanable.ratio")->type, TCFG_DOUBLE);
    assert_int_equal(item(items, n, "auto.create.topics.enable")->type, TCFG_BOOL);
    assert_int_equal(item(items, n, "log.flush.offset.checkpoint.interval.ms")->type, TCFG_INT);
    assert_int_equal(item(items, n, "compression.type")->type, TCFG_STRING);
    /* Every broker property a topic config takes its default from is a known key. */
    for (size_t i = 0; i < tcfg_count(); i++)
        if (tcfg_at(i)->broker_key)
            (void)item(items, n, tcfg_at(i)->broker_key);
    broker_config_free(&c);
}

static void expect_synonyms(const struct broker_config *c, const char *key, const char *want)
{
    struct broker_config_synonym sy[BROKER_CONFIG_MAX_SYNONYMS];
    size_t n = broker_config_synonyms(c, key, sy, BROKER_CONFIG_MAX_SYNONYMS);
    char got[512] = "";
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(got);
        snprintf(got + len, sizeof got - len, "%s%s=%s(%s)", i ? " " : "", sy[i].name, sy[i].value,
                 sy[i].is_default ? "default" : "static");
    }
    if (strcmp(got, want) != 0)
        fail_msg("synonyms of %s: got \"%s\", want \"%s\"", key, got, want);
}

/* Kafka 4.4's synonym lists: file settings of the group, then defaults, from the key's
 * own first entry on. */
static void test_synonyms(void **state)
{
    (void)state;
    struct broker_config c;
    assert_int_equal(load(&c, "log.retention.hours=24\nmessage.max.bytes=2000\n", NULL, 0), 0);
    expect_synonyms(&c, "log.retention.hours",
                    "log.retention.hours=24(static) log.retention.hours=168(default)");
    expect_synonyms(&c, "log.retention.ms", ""); /* no value of its own: nothing */
    expect_synonyms(&c, "log.retention.minutes", "");
    expect_synonyms(&c, "log.roll.ms", "");
    expect_synonyms(&c, "log.roll.hours", "log.roll.hours=168(default)");
    expect_synonyms(&c, "log.flush.interval.ms", "");
    expect_synonyms(&c, "message.max.bytes",
                    "message.max.bytes=2000(static) message.max.bytes=1048588(default)");
    expect_synonyms(&c, "log.cleanup.policy", "log.cleanup.policy=delete(default)");
    expect_synonyms(&c, "no.such.key", "");
    broker_config_free(&c);

    assert_int_equal(
        load(&c, "log.retention.ms=5000\nlog.retention.hours=24\nlog.roll.ms=10\n", NULL, 0), 0);
    expect_synonyms(&c, "log.retention.ms",
                    "log.retention.ms=5000(static) log.retention.hours=24(static) "
                    "log.retention.hours=168(default)");
    expect_synonyms(&c, "log.retention.hours",
                    "log.retention.hours=24(static) log.retention.hours=168(default)");
    expect_synonyms(&c, "log.retention.minutes", "");
    expect_synonyms(&c, "log.roll.ms", "log.roll.ms=10(static) log.roll.hours=168(default)");
    broker_config_free(&c);
}

static void test_unknown_keys_only_warn(void **state)
{
    (void)state;
    struct broker_config c;
    assert_int_equal(load(&c, "some.future.key=1\nzookeeper.connect=x:2181\n", NULL, 0), 0);
    broker_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_precedence_and_overrides),
        cmocka_unit_test(test_invalid_values_refused),
        cmocka_unit_test(test_quorum_voters_of_this_node),
        cmocka_unit_test(test_quorum_of_several_voters),
        cmocka_unit_test(test_connections_per_ip),
        cmocka_unit_test(test_items_types_and_null_values),
        cmocka_unit_test(test_synonyms),
        cmocka_unit_test(test_unknown_keys_only_warn),
    };
    return cmocka_run_group_tests_name("server_config", tests, NULL, NULL);
}
