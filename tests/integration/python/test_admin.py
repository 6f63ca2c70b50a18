"""Admin APIs through confluent-kafka's AdminClient (and raw requests for the APIs
that confluent-kafka 1.7 does not expose: DeleteRecords, IncrementalAlterConfigs,
DescribeCluster)."""
import os
import time

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import ConfigResource, ConfigSource, NewPartitions, NewTopic

import kwire
from clients import admin, consume_all, consumer, create_topic, produce_keyed, producer
from conftest import wait_until

OPS = {"operation_timeout": 10, "request_timeout": 20}
RESULT_TIMEOUT = 30
NOT_OVERRIDDEN = (ConfigSource.DEFAULT_CONFIG.value, ConfigSource.STATIC_BROKER_CONFIG.value)


def error_of(future):
    """The KafkaError code a future failed with, or None if it succeeded."""
    try:
        future.result(timeout=RESULT_TIMEOUT)
        return None
    except KafkaException as e:
        return e.args[0].code()


def topics_of(broker):
    # Internal topics (__consumer_offsets) are hidden, as Kafka's admin tools do.
    return {t for t in admin(broker).list_topics(timeout=10).topics if not t.startswith("__")}


def partition_count(broker, topic):
    return len(admin(broker).list_topics(topic, timeout=10).topics[topic].partitions)


def test_create_topics_errors_and_validate_only(broker):
    a = admin(broker)
    fs = a.create_topics([NewTopic("good", 6, 1)], **OPS)
    assert error_of(fs["good"]) is None
    assert partition_count(broker, "good") == 6

    fs = a.create_topics([NewTopic("good", 2, 1)], **OPS)
    assert error_of(fs["good"]) == KafkaError.TOPIC_ALREADY_EXISTS
    assert partition_count(broker, "good") == 6

    for bad in ("bad name!", "x" * 250, "..", "a/b"):
        fs = a.create_topics([NewTopic(bad, 1, 1)], **OPS)
        assert error_of(fs[bad]) == KafkaError.TOPIC_EXCEPTION, bad

    fs = a.create_topics([NewTopic("badcfg", 1, 1, config={"cleanup.policy": "shred"})], **OPS)
    assert error_of(fs["badcfg"]) == KafkaError.INVALID_CONFIG
    fs = a.create_topics([NewTopic("badcfg", 1, 1, config={"compression.type": "brotli"})], **OPS)
    assert error_of(fs["badcfg"]) == KafkaError.INVALID_CONFIG

    fs = a.create_topics([NewTopic("dry", 3, 1)], validate_only=True, **OPS)
    assert error_of(fs["dry"]) is None
    fs = a.create_topics([NewTopic("good", 3, 1)], validate_only=True, **OPS)
    assert error_of(fs["good"]) == KafkaError.TOPIC_ALREADY_EXISTS

    assert topics_of(broker) == {"good"}


def test_delete_topics(broker):
    a = admin(broker)
    create_topic(broker, "doomed", 2)
    produce_keyed(broker, "doomed", 100)
    fs = a.delete_topics(["doomed"], **OPS)
    assert error_of(fs["doomed"]) is None
    wait_until(lambda: "doomed" not in topics_of(broker), 10, what="topic gone from metadata")
    # Its directories are renamed at once and removed on the sync thread.
    wait_until(lambda: not [d for d in os.listdir(broker.data_dir) if d.startswith("doomed")],
               10, what="the deleted topic's directories removed")
    fs = a.delete_topics(["doomed"], **OPS)
    assert error_of(fs["doomed"]) == KafkaError.UNKNOWN_TOPIC_OR_PART
    # Re-created under the same name, it starts empty.
    create_topic(broker, "doomed", 1)
    c = consumer(broker)
    try:
        assert c.get_watermark_offsets(TopicPartition("doomed", 0), timeout=10) == (0, 0)
    finally:
        c.close()
    # And survives a restart without the old data coming back.
    broker.restart()
    assert topics_of(broker) == {"doomed"}
    assert partition_count(broker, "doomed") == 1


def test_create_partitions_grow_and_shrink(broker):
    a = admin(broker)
    create_topic(broker, "grow", 2)
    fs = a.create_partitions([NewPartitions("grow", 5)], **OPS)
    assert error_of(fs["grow"]) is None
    assert partition_count(broker, "grow") == 5
    fs = a.create_partitions([NewPartitions("grow", 3)], **OPS)
    assert error_of(fs["grow"]) == KafkaError.INVALID_PARTITIONS
    fs = a.create_partitions([NewPartitions("grow", 5)], **OPS)
    assert error_of(fs["grow"]) == KafkaError.INVALID_PARTITIONS
    fs = a.create_partitions([NewPartitions("nosuch", 5)], **OPS)
    assert error_of(fs["nosuch"]) == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert partition_count(broker, "grow") == 5
    # The new partitions take writes.
    p = producer(broker)
    done = []
    p.produce("grow", value=b"x", partition=4, on_delivery=lambda e, m: done.append((e, m.offset())))
    assert p.flush(20) == 0
    assert done == [(None, 0)]
    broker.restart()
    assert partition_count(broker, "grow") == 5


def describe(a, rtype, name):
    fs = a.describe_configs([ConfigResource(rtype, name)], request_timeout=20)
    (f,) = fs.values()
    return f.result(timeout=RESULT_TIMEOUT)


def test_describe_and_alter_configs(broker):
    a = admin(broker)
    create_topic(broker, "cfg", 1)
    entries = describe(a, "topic", "cfg")
    assert entries["retention.ms"].value == "604800000"
    # server.properties sets log.retention.hours, yet Kafka 4.4 reports DEFAULT_CONFIG:
    # the source is that of the first synonym, and a synonym list starts at
    # log.retention.ms, which is unset.
    assert entries["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value, \
        entries["retention.ms"].source
    assert entries["segment.bytes"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert entries["cleanup.policy"].value == "delete"

    fs = a.alter_configs([ConfigResource("topic", "cfg", set_config={"retention.ms": "1000000"})],
                         request_timeout=20)
    (f,) = fs.values()
    f.result(timeout=RESULT_TIMEOUT)
    entries = describe(a, "topic", "cfg")
    assert entries["retention.ms"].value == "1000000"
    assert entries["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    # Unknown key is rejected and changes nothing.
    fs = a.alter_configs([ConfigResource("topic", "cfg", set_config={"no.such.key": "1"})],
                         request_timeout=20)
    (f,) = fs.values()
    assert error_of(f) == KafkaError.INVALID_CONFIG
    assert describe(a, "topic", "cfg")["retention.ms"].value == "1000000"

    # IncrementalAlterConfigs (raw v0): set then delete back to the default.
    with kwire.Conn(broker.port) as c:
        res = kwire.incremental_alter_configs_v0(c, 2, "cfg", [("retention.bytes", 0, "123456")])
        assert [r[0] for r in res] == [0], res
        assert describe(a, "topic", "cfg")["retention.bytes"].value == "123456"
        res = kwire.incremental_alter_configs_v0(c, 2, "cfg", [("retention.ms", 1, None)])
        assert [r[0] for r in res] == [0], res
        res = kwire.incremental_alter_configs_v0(c, 2, "cfg", [("cleanup.policy", 0, "shred")])
        assert [r[0] for r in res] == [KafkaError.INVALID_CONFIG], res
        res = kwire.incremental_alter_configs_v0(c, 2, "nosuch", [("retention.ms", 0, "5")])
        assert [r[0] for r in res] == [KafkaError.UNKNOWN_TOPIC_OR_PART], res
        # Kafka's checks before anything is applied: a config named twice, or a null
        # value to set, makes the resource INVALID_REQUEST; deleting a name the topic
        # cannot have is a no-op.
        res = kwire.incremental_alter_configs_v0(
            c, 2, "cfg", [("retention.bytes", 0, "1"), ("retention.bytes", 0, "2")])
        assert [r[0] for r in res] == [KafkaError.INVALID_REQUEST], res
        res = kwire.incremental_alter_configs_v0(c, 2, "cfg", [("retention.bytes", 0, None)])
        assert [r[0] for r in res] == [KafkaError.INVALID_REQUEST], res
        res = kwire.incremental_alter_configs_v0(c, 2, "cfg", [("no.such.key", 1, None)])
        assert [r[0] for r in res] == [0], res
    entries = describe(a, "topic", "cfg")
    assert entries["retention.ms"].value == "604800000"
    assert entries["retention.ms"].source in NOT_OVERRIDDEN
    assert entries["retention.bytes"].value == "123456"
    assert entries["cleanup.policy"].value == "delete"

    # Overrides survive a restart.
    broker.restart()
    assert describe(admin(broker), "topic", "cfg")["retention.bytes"].value == "123456"

    # The broker resource: unset keys without a default are null, as in Kafka.
    b = describe(admin(broker), "broker", "1")
    assert b["message.max.bytes"].value == "1048588", b.get("message.max.bytes")
    assert "log.segment.bytes" in b
    assert b["log.retention.ms"].value is None
    assert b["log.retention.hours"].source == ConfigSource.STATIC_BROKER_CONFIG.value

    fs = a.describe_configs([ConfigResource("topic", "nosuch")], request_timeout=20)
    (f,) = fs.values()
    assert error_of(f) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_delete_records_moves_log_start(broker):
    create_topic(broker, "trim", 1)
    produce_keyed(broker, "trim", 1000, keys=1)
    with kwire.Conn(broker.port) as c:
        assert kwire.delete_records_v0(c, "trim", 0, 400) == (0, 400)
        assert kwire.list_offset(c, "trim", 0, -2) == (0, 400)
        assert kwire.list_offset(c, "trim", 0, -1) == (0, 1000)
        # Beyond the high watermark: OFFSET_OUT_OF_RANGE, nothing moves.
        err, _ = kwire.delete_records_v0(c, "trim", 0, 5000)
        assert err == KafkaError.OFFSET_OUT_OF_RANGE
        # Moving backwards is a no-op that reports the current start.
        assert kwire.delete_records_v0(c, "trim", 0, 100) == (0, 400)
        assert kwire.list_offset(c, "trim", 0, -2) == (0, 400)
        # A fetch below the log start is out of range.
        err, _, _ = kwire.fetch(c, "trim", 0, 10)
        assert err == KafkaError.OFFSET_OUT_OF_RANGE
    out = consume_all(broker, "trim", 1, expected=600)
    offs = [r[0] for r in out[0]]
    assert offs == list(range(400, 1000))
    assert out[0][0][2] == b"seq-%08d" % 400
    c = consumer(broker)
    try:
        assert c.get_watermark_offsets(TopicPartition("trim", 0), timeout=10) == (400, 1000)
    finally:
        c.close()
    broker.restart()
    with kwire.Conn(broker.port) as c:
        assert kwire.list_offset(c, "trim", 0, -2) == (0, 400)
        # -1 means "up to the high watermark".
        assert kwire.delete_records_v0(c, "trim", 0, -1) == (0, 1000)
        assert kwire.list_offset(c, "trim", 0, -2) == (0, 1000)


def test_list_offsets_and_offsets_for_times(broker):
    create_topic(broker, "times", 1)
    p = producer(broker, **{"linger.ms": 0})
    base = int(time.time() * 1000) - 100_000
    for i in range(10):
        p.produce("times", value=b"%d" % i, timestamp=base + i * 1000)
        assert p.flush(20) == 0  # one batch per record
    c = consumer(broker)
    try:
        assert c.get_watermark_offsets(TopicPartition("times", 0), timeout=10) == (0, 10)
        q = [TopicPartition("times", 0, base + 3500)]
        (r,) = c.offsets_for_times(q, timeout=10)
        assert r.error is None and r.offset == 4
        (r,) = c.offsets_for_times([TopicPartition("times", 0, base)], timeout=10)
        assert r.offset == 0
        (r,) = c.offsets_for_times([TopicPartition("times", 0, base + 3000)], timeout=10)
        assert r.offset == 3
        (r,) = c.offsets_for_times([TopicPartition("times", 0, base + 60_000)], timeout=10)
        assert r.offset == -1  # no record at or after: end (-1 offset)
    finally:
        c.close()


def test_list_offsets_max_timestamp_names_the_record(broker):
    """-3 answers the record with the largest timestamp (Kafka 3.8+), not the last
    offset of its batch."""
    create_topic(broker, "maxts", 1)
    p = producer(broker, **{"linger.ms": 1000})
    base = int(time.time() * 1000) - 100_000
    for i, step in enumerate([0, 1, 2, 3, 4, 5, 9, 6, 7, 8]):
        p.produce("maxts", value=b"%d" % i, timestamp=base + step * 1000)
    assert p.flush(20) == 0  # one batch
    with kwire.Conn(broker.port) as c:
        assert kwire.list_offsets_v7(c, "maxts", 0, -3) == (0, base + 9000, 6)
        p.produce("maxts", value=b"late", timestamp=base + 20_000)
        p.produce("maxts", value=b"later", timestamp=base + 20_000)
        assert p.flush(20) == 0
        assert kwire.list_offsets_v7(c, "maxts", 0, -3) == (0, base + 20_000, 10)


def test_describe_cluster(broker):
    md = admin(broker).list_topics(timeout=10)
    assert md.cluster_id and len(md.cluster_id) == 22, md.cluster_id
    assert md.controller_id == 1
    assert {b.id: (b.host, b.port) for b in md.brokers.values()} == {1: ("127.0.0.1", broker.port)}
    with kwire.Conn(broker.port) as c:
        d = kwire.describe_cluster_v0(c)
    assert d["error"] == 0
    assert d["cluster_id"] == md.cluster_id
    assert d["controller"] == 1
    assert [(b[0], b[1], b[2]) for b in d["brokers"]] == [(1, "127.0.0.1", broker.port)]
    # The cluster id is stable across restarts.
    broker.restart()
    assert admin(broker).list_topics(timeout=10).cluster_id == md.cluster_id


def test_offset_for_leader_epoch(broker):
    create_topic(broker, "epochs", 1)
    produce_keyed(broker, "epochs", 500, keys=1)
    with kwire.Conn(broker.port) as c:
        err, hw, recs = kwire.fetch(c, "epochs", 0, 0)
        assert err == 0 and hw == 500
        epochs = set(kwire.batch_leader_epochs(recs))
        assert len(epochs) == 1 and min(epochs) >= 0, epochs
        (epoch,) = epochs
        # Every record was written in this epoch: its end offset is the log end.
        assert kwire.offset_for_leader_epoch_v2(c, "epochs", 0, epoch) == (0, epoch, 500)
        err, _, _ = kwire.offset_for_leader_epoch_v2(c, "nosuch", 0, epoch)
        assert err == KafkaError.UNKNOWN_TOPIC_OR_PART
