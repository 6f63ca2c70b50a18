"""Admission control for partitions: a request that would exceed a limit is refused up
front with Kafka's error and a message, and a topic is recorded only if it can be served.

Before, a topic of 30,000 partitions under a 20,000-descriptor limit was reported
created, then half-opened, and the broker was broken until restarted (and could not
restart). Now samsa.max.partitions bounds the partitions of all topics (POLICY_VIOLATION
beyond it, nothing recorded), one CreateTopics may create at most 10,000 partitions
(Kafka 4's rule), and a topic whose partitions cannot be opened is taken back.
"""
import os

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from clients import admin, consume_all, create_topic, produce_keyed
import kwire

POLICY_VIOLATION = 44
LEADER_NOT_AVAILABLE = 5


def partition_errors(conn, topic):
    """Metadata v1 for one topic: the error code of each of its partitions."""
    r = conn.request(3, 1, kwire.array([kwire.string(topic)]))
    r.array(lambda r: (r.i32(), r.string(), r.i32(), r.string()))
    r.i32()

    def one(r):
        r.i16()
        name = r.string()
        r.i8()
        parts = r.array(lambda r: (r.i16(), r.i32(), r.i32(), r.array(kwire.Reader.i32),
                                   r.array(kwire.Reader.i32)))
        return name, [p[0] for p in parts or []]

    return dict(r.array(one)).get(topic, [])


def create(a, topics, validate_only=False):
    """{name: KafkaError or None} for NewTopic objects."""
    fs = a.create_topics(topics, operation_timeout=20, request_timeout=30,
                         validate_only=validate_only)
    out = {}
    for name, f in fs.items():
        try:
            f.result(timeout=60)
            out[name] = None
        except KafkaException as e:
            out[name] = e.args[0]
    return out


def test_max_partitions_refuses_up_front_and_records_nothing(broker_factory):
    # __consumer_offsets takes 50 of the 200 at start-up.
    b = broker_factory(**{"samsa.max.partitions": "200"})
    a = admin(b)
    assert create(a, [NewTopic("fits", 100, 1)]) == {"fits": None}
    err = create(a, [NewTopic("too-big", 60, 1)])["too-big"]
    assert err.code() == POLICY_VIOLATION, err
    assert "samsa.max.partitions is 200" in err.str(), err.str()
    assert "too-big" not in a.list_topics(timeout=10).topics
    assert not os.path.exists(os.path.join(b.data_dir, "too-big-0"))
    # Growing a topic past the bound is refused the same way; within it, it works.
    fs = a.create_partitions([NewPartitions("fits", 151)], operation_timeout=20)
    try:
        fs["fits"].result(timeout=30)
        raise AssertionError("CreatePartitions past samsa.max.partitions succeeded")
    except KafkaException as e:
        assert e.args[0].code() == POLICY_VIOLATION, e
    a.create_partitions([NewPartitions("fits", 150)], operation_timeout=20)["fits"].result(30)
    assert len(a.list_topics(timeout=10).topics["fits"].partitions) == 150
    # Everything admitted is served, also after a restart.
    acked = produce_keyed(b, "fits", 1500, keys=150)
    b.restart()
    got = consume_all(b, "fits", 150, expected=1500)
    assert sum(len(v) for v in got.values()) == len(acked)


def test_one_request_may_create_at_most_10000_partitions(broker):
    a = admin(broker)
    res = create(a, [NewTopic("huge-a", 6000, 1), NewTopic("huge-b", 5000, 1)],
                 validate_only=True)
    for name, err in res.items():
        assert err is not None and err.code() == POLICY_VIOLATION, (name, err)
        assert "Excessively large number of partitions per request" in err.str()
    # Within the bound, validate_only still says yes and creates nothing.
    assert create(a, [NewTopic("ok", 5000, 1)], validate_only=True) == {"ok": None}
    assert "ok" not in a.list_topics(timeout=10).topics


def test_a_topic_that_cannot_be_opened_is_taken_back(broker):
    # A file where the topic's first partition directory must go: opening it fails.
    with open(os.path.join(broker.data_dir, "blocked-0"), "w") as f:
        f.write("not a directory\n")
    a = admin(broker)
    err = create(a, [NewTopic("blocked", 3, 1)])["blocked"]
    assert err is not None and "could not open" in err.str(), err
    assert "blocked" not in a.list_topics(timeout=10).topics
    # The broker is fine: other topics work, and a restart does not bring it back.
    create_topic(broker, "fine", 1)
    produce_keyed(broker, "fine", 10, keys=1)
    broker.restart()
    topics = admin(broker).list_topics(timeout=10).topics
    assert "blocked" not in topics and "fine" in topics


def test_partitions_are_opened_while_the_broker_keeps_serving(broker_factory):
    """Creating many partitions no longer stalls the event loop: they are opened a
    slice at a time, and Metadata is answered in between (the partitions not open yet
    without a leader), while CreateTopics answers once all are open."""
    # Metadata v1 would auto-create the topic before CreateTopics arrives.
    broker = broker_factory(**{"auto.create.topics.enable": "false"})
    a = AdminClient({"bootstrap.servers": broker.bootstrap, "socket.timeout.ms": 90000})
    fs = a.create_topics([NewTopic("wide", 2000, 1)], operation_timeout=80, request_timeout=90)
    seen_partial = 0
    with kwire.Conn(broker.port, timeout=30) as c:
        while not fs["wide"].done():
            errors = partition_errors(c, "wide")
            if LEADER_NOT_AVAILABLE in errors and 0 in errors:
                seen_partial += 1
    fs["wide"].result(timeout=90)
    assert seen_partial >= 1, "no Metadata answer while the partitions were being opened"
    # Once CreateTopics has answered, every partition has its leader and takes records.
    with kwire.Conn(broker.port, timeout=30) as c:
        errors = partition_errors(c, "wide")
    assert len(errors) == 2000 and set(errors) == {0}
    produce_keyed(broker, "wide", 2000, keys=2000)


def test_create_topics_answers_at_its_timeout_while_partitions_still_open(broker):
    """TimeoutMs bounds the wait: topics still opening get REQUEST_TIMED_OUT (they keep
    opening and are served once open), and TimeoutMs=0 answers at once."""
    with kwire.Conn(broker.port, timeout=60) as c:
        r = c.request(19, 1, kwire.array([kwire.string("slow") + kwire.i32(3000) + kwire.i16(1) +
                                          kwire.array([]) + kwire.array([])]) +
                      kwire.i32(1) + kwire.i8(0))
        (name, err, _), = r.array(lambda r: (r.string(), r.i16(), r.string()))
    assert (name, err) == ("slow", 7)  # REQUEST_TIMED_OUT: 3,000 partitions take more than 1 ms
    with kwire.Conn(broker.port, timeout=60) as c:
        r = c.request(19, 1, kwire.array([kwire.string("instant") + kwire.i32(10) + kwire.i16(1) +
                                          kwire.array([]) + kwire.array([])]) +
                      kwire.i32(0) + kwire.i8(0))
        (name, err, _), = r.array(lambda r: (r.string(), r.i16(), r.string()))
    assert (name, err) == ("instant", 0)
    # Both end up fully served.
    produce_keyed(broker, "slow", 3000, keys=3000)
    produce_keyed(broker, "instant", 10, keys=10)
