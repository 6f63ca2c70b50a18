"""kafka-python 2.0.2: version probing, bulk keyed produce (acks=all), assign()
consumption in order, and its admin client."""
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError

N = 100_000
PARTS = 4
KEYS = 32
COMMON = {"request_timeout_ms": 15000, "api_version_auto_timeout_ms": 10000}


def admin(broker):
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, **COMMON)


def test_bulk_produce_and_assign_consume(broker):
    adm = admin(broker)
    try:
        res = adm.create_topics([NewTopic("kp", PARTS, 1)], timeout_ms=10000)
        assert [e[1] for e in res.topic_errors] == [0], res
    finally:
        adm.close()

    # No api_version: the client probes with ApiVersions and infers a version.
    prod = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5,
                         batch_size=256 << 10, max_block_ms=15000, retries=0, **COMMON)
    try:
        assert prod.config["api_version"] >= (1, 0, 0), prod.config["api_version"]
        futures = []
        for i in range(N):
            futures.append(prod.send("kp", key=b"k%d" % (i % KEYS), value=b"v%08d" % i))
        prod.flush(timeout=60)
        acked = {}
        for i, f in enumerate(futures):
            md = f.get(timeout=1)  # raises if the delivery failed
            acked[i] = (md.partition, md.offset)
    finally:
        prod.close(timeout=10)
    assert len({p for p, _ in acked.values()}) == PARTS

    cons = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         consumer_timeout_ms=10000, fetch_max_wait_ms=100, **COMMON)
    try:
        tps = [TopicPartition("kp", p) for p in range(PARTS)]
        cons.assign(tps)
        cons.seek_to_beginning()
        got = {p: [] for p in range(PARTS)}
        deadline = time.monotonic() + 90
        total = 0
        while total < N and time.monotonic() < deadline:
            for tp, msgs in cons.poll(timeout_ms=500, max_records=10000).items():
                for m in msgs:
                    got[tp.partition].append((m.offset, m.key, m.value))
                    total += 1
        assert total == N, "read %d of %d records" % (total, N)
        end = cons.end_offsets(tps)
        for p in range(PARTS):
            recs = got[p]
            assert end[TopicPartition("kp", p)] == len(recs)
            assert [o for o, _, _ in recs] == list(range(len(recs)))
            seqs = [int(v[1:]) for _, _, v in recs]
            assert seqs == sorted(seqs), "partition %d out of order" % p
            for off, k, v in recs:
                seq = int(v[1:])
                assert acked[seq] == (p, off)
                assert k == b"k%d" % (seq % KEYS)
    finally:
        cons.close()


def test_admin_create_describe_delete(broker):
    adm = admin(broker)
    try:
        res = adm.create_topics([NewTopic("kpa", 3, 1, topic_configs={"retention.ms": "3600000"})],
                                timeout_ms=10000)
        assert [(t, e) for t, e, *_ in res.topic_errors] == [("kpa", 0)], res
        try:
            adm.create_topics([NewTopic("kpa", 3, 1)], timeout_ms=10000)
            raise AssertionError("duplicate create succeeded")
        except TopicAlreadyExistsError:
            pass
        assert "kpa" in adm.list_topics()

        (resp,) = adm.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kpa")])
        (err, msg, rtype, rname, entries), = resp.resources
        assert err == 0 and rname == "kpa", resp
        configs = {e[0]: e[1] for e in entries}
        assert configs.get("retention.ms") == "3600000", configs
        assert "cleanup.policy" in configs, configs

        res = adm.delete_topics(["kpa"], timeout_ms=10000)
        assert [(t, e) for t, e in res.topic_error_codes] == [("kpa", 0)], res
        deadline = time.monotonic() + 10
        while "kpa" in adm.list_topics() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "kpa" not in adm.list_topics()
    finally:
        adm.close()
