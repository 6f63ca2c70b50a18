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
from confluent_kafka.admin import NewPartitions, NewTopic

from clients import admin, consume_all, create_topic, produce_keyed

POLICY_VIOLATION = 44


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
