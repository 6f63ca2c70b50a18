"""kafka-python 3.0: the rewritten client (per-API version negotiation from ApiVersions,
idempotent producer by default, incremental fetch sessions, a much larger
KafkaAdminClient) against samsa-server."""
import collections
import threading
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (AlterConfigOp, ConfigResource, ConfigResourceType, OffsetSpec)
from kafka.errors import (GroupIdNotFoundError, InvalidPartitionsError,
                          InvalidReplicationFactorError, TopicAlreadyExistsError,
                          UnknownTopicOrPartitionError)
from kafka.structs import OffsetAndMetadata

from conftest import wait_until
from groups_util import FAST_GROUPS

COMMON = {"request_timeout_ms": 15000, "bootstrap_timeout_ms": 15000}


def admin(broker):
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, **COMMON)


def create(adm, name, partitions, **configs):
    res = adm.create_topics({name: {"num_partitions": partitions, "replication_factor": 1,
                                    "configs": configs}}, timeout_ms=10000)
    assert [(t["name"], t["error_code"]) for t in res["topics"]] == [(name, 0)], res


def produce(broker, topic, n, keys=32, **extra):
    """KafkaProducer with its 3.0 defaults (acks=all, enable_idempotence=True) unless
    overridden; returns {seq: (partition, offset)}."""
    conf = dict(linger_ms=5, max_block_ms=15000, **COMMON)
    conf.update(extra)
    prod = KafkaProducer(bootstrap_servers=broker.bootstrap, **conf)
    try:
        futures = [prod.send(topic, key=b"k%d" % (i % keys), value=b"v%08d" % i)
                   for i in range(n)]
        prod.flush(timeout=60)
        acked = {}
        for i, f in enumerate(futures):
            md = f.get(timeout=1)  # raises if the delivery failed
            acked[i] = (md.partition, md.offset)
        return acked
    finally:
        prod.close(timeout=10)


def read_all(broker, topic, partitions, n, timeout=60):
    """assign() + seek_to_beginning; {partition: [(offset, key, value)]}."""
    cons = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                         enable_auto_commit=False, fetch_max_wait_ms=100, **COMMON)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        cons.assign(tps)
        cons.seek_to_beginning()
        got = {p: [] for p in range(partitions)}
        total = 0
        deadline = time.monotonic() + timeout
        while total < n and time.monotonic() < deadline:
            for tp, msgs in cons.poll(timeout_ms=500, max_records=5000).items():
                for m in msgs:
                    got[tp.partition].append((m.offset, m.key, m.value))
                    total += 1
        assert total == n, "read %d of %d records" % (total, n)
        ends = cons.end_offsets(tps)
        assert {tp.partition: o for tp, o in ends.items()} == {p: len(got[p]) for p in got}
        return got
    finally:
        cons.close()


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_default_producer_round_trip_is_idempotent(broker, compression):
    adm = admin(broker)
    try:
        create(adm, "kp", 4)
        n = 20_000
        acked = produce(broker, "kp", n, compression_type=compression)
        assert len({p for p, _ in acked.values()}) == 4
        got = read_all(broker, "kp", 4, n)
        for p, recs in got.items():
            assert [o for o, _, _ in recs] == list(range(len(recs)))
            for off, k, v in recs:
                seq = int(v[1:])
                assert acked[seq] == (p, off) and k == b"k%d" % (seq % 32)
        # The default producer is idempotent: each partition knows one producer id,
        # whose last sequence is the partition's record count - 1.
        states = adm.describe_producers([TopicPartition("kp", p) for p in range(4)])
        pids = set()
        for tp, st in states.items():
            (ap,) = st.active_producers
            assert ap.producer_id >= 0 and ap.producer_epoch >= 0
            assert ap.last_sequence == len(got[tp.partition]) - 1, (tp, ap)
            pids.add(ap.producer_id)
        assert len(pids) == 1, pids

        # Offsets by spec and by time.
        tps = {TopicPartition("kp", p): OffsetSpec.EARLIEST for p in range(4)}
        assert {tp.partition: r.offset for tp, r in adm.list_partition_offsets(tps).items()} == \
            {p: 0 for p in range(4)}
        tps = {TopicPartition("kp", p): OffsetSpec.LATEST for p in range(4)}
        assert {tp.partition: r.offset for tp, r in adm.list_partition_offsets(tps).items()} == \
            {p: len(got[p]) for p in range(4)}
        r = adm.list_partition_offsets({TopicPartition("kp", 0): OffsetSpec.MAX_TIMESTAMP})
        assert 0 <= r[TopicPartition("kp", 0)].offset < len(got[0])
    finally:
        adm.close()


class Member(threading.Thread):
    """A subscribe()d KafkaConsumer in its own thread: commits what it processed after
    every poll (and, through the rebalance listener, before giving partitions up)."""

    def __init__(self, broker, group, topic, name):
        super().__init__(daemon=True, name=name)
        from kafka import ConsumerRebalanceListener

        member = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                member._commit()
                member.owned -= {tp.partition for tp in revoked}

            def on_partitions_assigned(self, assigned):
                member.owned |= {tp.partition for tp in assigned}

        self.c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group,
                               client_id=name, enable_auto_commit=False,
                               auto_offset_reset="earliest", fetch_max_wait_ms=100,
                               session_timeout_ms=6000, heartbeat_interval_ms=300, **COMMON)
        # kafka-python 3.0.12 can hang for good (its IO thread idle, poll() waiting on
        # it) when a poll() times out in the middle of a rebalance and the next one
        # starts. A subscribe() before the topic's metadata is known makes exactly
        # that likely: the first join assigns nothing, the metadata arriving a moment
        # later forces a second rebalance. Fetching the metadata first and polling
        # with a timeout well above a rebalance's round trips keeps the test on the
        # path it is meant to test. (In the hang the broker has answered every
        # request; the client's debug log shows it never sends the next one.)
        assert self.c.partitions_for_topic(topic), "no metadata for %s" % topic
        self.c.subscribe([topic], listener=Listener())
        self.topic = topic
        self.owned = set()
        self.records = []
        self.pending = {}
        self.errors = []
        self.stop = threading.Event()
        self.start()

    def _commit(self):
        if self.pending:
            self.c.commit({TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1)
                           for p, o in self.pending.items()})
            self.pending = {}

    def run(self):
        try:
            while not self.stop.is_set():
                for tp, msgs in self.c.poll(timeout_ms=1000, max_records=500).items():
                    for m in msgs:
                        self.records.append((tp.partition, m.offset))
                        self.pending[tp.partition] = m.offset + 1
                self._commit()
        except Exception as e:  # reported by the test
            self.errors.append(repr(e))
        finally:
            self.c.close()

    def finish(self):
        self.stop.set()
        self.join(timeout=30)
        assert not self.is_alive(), "%s did not stop" % self.name
        assert not self.errors, (self.name, self.errors)


def test_group_commits_rebalance_and_resume(broker_factory):
    b = broker_factory(**FAST_GROUPS)
    adm = admin(b)
    members = []
    try:
        create(adm, "kg", 4)
        acked = produce(b, "kg", 4000)
        m1 = Member(b, "kpg", "kg", "m1")
        members.append(m1)
        wait_until(lambda: len(m1.records) >= 1000 or m1.errors, 30, what="m1 reads 1000")
        m2 = Member(b, "kpg", "kg", "m2")
        members.append(m2)
        wait_until(lambda: (m1.owned and m2.owned and not m1.owned & m2.owned
                            and m1.owned | m2.owned == set(range(4))) or m1.errors or m2.errors,
                   45, what="a 2/2 split")
        more = produce(b, "kg", 2000)
        acked.update({10**6 + k: v for k, v in more.items()})
        wait_until(lambda: len(m1.records) + len(m2.records) >= len(acked)
                   or m1.errors or m2.errors, 60, what="all records read")
        time.sleep(0.5)
        m1.finish()
        m2.finish()
        consumed = m1.records + m2.records
        counts = collections.Counter(consumed)
        assert not [k for k, c in counts.items() if c > 1], "duplicates across the rebalance"
        assert set(counts) == set(acked.values())

        ends = collections.Counter(p for p, _ in acked.values())
        offs = adm.list_group_offsets("kpg")["kpg"]
        assert {tp.partition: om.offset for tp, om in offs.items()} == dict(ends)

        # A new member of the group resumes from the commits: nothing to read until
        # new records arrive, then exactly those.
        last = produce(b, "kg", 400)
        m3 = Member(b, "kpg", "kg", "m3")
        members.append(m3)
        wait_until(lambda: len(m3.records) >= 400 or m3.errors, 30, what="m3 reads the new 400")
        time.sleep(0.5)
        m3.finish()
        assert sorted(m3.records) == sorted(last.values())
    finally:
        for m in members:
            m.stop.set()
        for m in members:
            m.join(timeout=30)
        adm.close()


def test_admin_topics_configs_and_groups(broker_factory):
    b = broker_factory(**FAST_GROUPS)
    adm = admin(b)
    try:
        create(adm, "ka", 3, **{"retention.ms": "3600000"})
        with pytest.raises(TopicAlreadyExistsError):
            adm.create_topics({"ka": {"num_partitions": 1}}, timeout_ms=10000)
        with pytest.raises(InvalidReplicationFactorError):
            adm.create_topics({"rf": {"num_partitions": 1, "replication_factor": 3}},
                              timeout_ms=10000)
        res = adm.create_topics({"dry": {"num_partitions": 2}}, timeout_ms=10000,
                                validate_only=True)
        assert [(t["name"], t["error_code"]) for t in res["topics"]] == [("dry", 0)]
        assert sorted(t for t in adm.list_topics() if not t.startswith("__")) == ["ka"]

        (d,) = adm.describe_topics(["ka"])
        assert d["name"] == "ka" and d["error_code"] == 0 and d["topic_id"]
        assert [(p["partition_index"], p["leader_id"], p["replica_nodes"], p["isr_nodes"])
                for p in d["partitions"]] == [(i, 1, [1], [1]) for i in range(3)]
        cl = adm.describe_cluster()
        assert cl["controller_id"] == 1 and len(cl["cluster_id"]) == 22
        assert [(x["broker_id"], x["host"], x["port"]) for x in cl["brokers"]] == \
            [(1, "127.0.0.1", b.port)]

        res = ConfigResource(ConfigResourceType.TOPIC, "ka")
        cfg = adm.describe_configs([res], config_filter="all")["topic"]["ka"]
        assert cfg["retention.ms"]["value"] == "3600000"
        assert cfg["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
        assert cfg["cleanup.policy"]["value"] == "delete"
        # Modified only (the default filter): just the override.
        assert set(adm.describe_configs([res])["topic"]["ka"]) == {"retention.ms"}
        # IncrementalAlterConfigs (chosen by the client from ApiVersions).
        adm.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "ka", configs={
            "retention.ms": (AlterConfigOp.DELETE, None),
            "segment.ms": (AlterConfigOp.SET, "3600000")})])
        assert set(adm.describe_configs([res])["topic"]["ka"]) == {"segment.ms"}
        brk = adm.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")],
                                   config_filter="all")["broker"]["1"]
        assert brk["message.max.bytes"]["value"] == "1048588"

        adm.create_partitions({"ka": 5}, timeout_ms=10000)
        with pytest.raises(InvalidPartitionsError):
            adm.create_partitions({"ka": 2}, timeout_ms=10000)
        assert len(adm.describe_topics(["ka"])[0]["partitions"]) == 5

        produce(b, "ka", 500, keys=5)
        dr = adm.delete_records({TopicPartition("ka", p): 10 for p in (0, 1)}, timeout_ms=10000)
        assert {tp.partition: (r["error_code"], r["low_watermark"]) for tp, r in dr.items()} == \
            {0: (0, 10), 1: (0, 10)}, dr
        early = adm.list_partition_offsets({TopicPartition("ka", p): OffsetSpec.EARLIEST
                                            for p in (0, 1)})
        assert {tp.partition: r.offset for tp, r in early.items()} == {0: 10, 1: 10}

        # Groups: one member commits and leaves (Empty), list / describe / offsets.
        c = KafkaConsumer("ka", bootstrap_servers=b.bootstrap, group_id="kga",
                          enable_auto_commit=False, auto_offset_reset="earliest",
                          fetch_max_wait_ms=100, session_timeout_ms=6000,
                          heartbeat_interval_ms=300, **COMMON)
        try:
            n = 0
            deadline = time.monotonic() + 30
            while n < 480 and time.monotonic() < deadline:
                n += sum(len(v) for v in c.poll(timeout_ms=200).values())
            assert n == 480  # 500 less the 2 x 10 deleted
            c.commit()
            groups = {g["group_id"]: g for g in adm.list_groups()}
            assert groups["kga"]["group_state"] == "Stable", groups
            assert groups["kga"]["protocol_type"] == "consumer"
            desc = adm.describe_groups(["kga"])["kga"]
            assert desc["group_state"] == "Stable" and len(desc["members"]) == 1
            assigned = desc["members"][0]["member_assignment"]["assigned_partitions"]
            assert [(a["topic"], sorted(a["partitions"])) for a in assigned] == \
                [("ka", list(range(5)))]
        finally:
            c.close()
        ends = adm.list_partition_offsets({TopicPartition("ka", p): OffsetSpec.LATEST
                                           for p in range(5)})
        offs = adm.list_group_offsets({"kga": None})["kga"]
        assert {tp.partition: om.offset for tp, om in offs.items()} == \
            {tp.partition: r.offset for tp, r in ends.items()}
        wait_until(lambda: {g["group_id"]: g["group_state"] for g in adm.list_groups()}
                   .get("kga") == "Empty", 10, what="kga Empty after its member left")
        assert [g["group_id"] for g in adm.list_groups(states_filter=["Empty"])] == ["kga"]
        alt = adm.alter_group_offsets("kga", {TopicPartition("ka", 0): OffsetAndMetadata(3, "", -1)})
        assert [e.__name__ for e in alt.values()] == ["NoError"], alt
        assert adm.list_group_offsets({"kga": [TopicPartition("ka", 0)]})["kga"][
            TopicPartition("ka", 0)].offset == 3

        res = adm.delete_groups(["kga", "nosuch-group"])
        assert res == {"kga": "OK", "nosuch-group": GroupIdNotFoundError.__name__}, res
        assert "kga" not in {g["group_id"] for g in adm.list_groups()}

        res = adm.delete_topics(["ka", "nosuch"], timeout_ms=10000, raise_errors=False)
        assert {t["name"]: t["error_code"] for t in res["topics"]} == \
            {"ka": 0, "nosuch": UnknownTopicOrPartitionError.errno}
        wait_until(lambda: "ka" not in adm.list_topics(), 10, what="ka gone")
    finally:
        adm.close()
