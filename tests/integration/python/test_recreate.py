"""A topic deleted and created again under the same name starts from nothing: no log
start offset, recovery point, data directory or committed offsets of the old one may
leak into it, across a crash too."""
import kwire
from clients import admin, consume_all, consumer, create_topic, produce_keyed
from confluent_kafka import TopicPartition
from kwire import Conn


def delete_topic(broker, name):
    a = admin(broker)  # must outlive the future
    a.delete_topics([name], operation_timeout=10)[name].result(30)


def test_recreated_topic_keeps_acknowledged_records_after_kill(broker):
    create_topic(broker, "t", 1)
    produce_keyed(broker, "t", 10, keys=1)
    with Conn(broker.port) as c:
        err, low = kwire.delete_records_v0(c, "t", 0, 5)
        assert (err, low) == (0, 5)
    delete_topic(broker, "t")
    create_topic(broker, "t", 1)
    acked = produce_keyed(broker, "t", 3, keys=1)
    assert sorted(o for _p, o in acked.values()) == [0, 1, 2]
    broker.restart(hard=True)
    recs = consume_all(broker, "t", 1, expected=3)[0]
    assert [r[0] for r in recs] == [0, 1, 2], "acknowledged records of the new topic lost"


def test_recreated_topic_has_no_old_committed_offsets(broker):
    create_topic(broker, "t", 1)
    produce_keyed(broker, "t", 10, keys=1)
    c = consumer(broker, **{"group.id": "g"})
    c.commit(offsets=[TopicPartition("t", 0, 8)], asynchronous=False)
    assert c.committed([TopicPartition("t", 0)], timeout=10)[0].offset == 8
    c.close()
    delete_topic(broker, "t")
    create_topic(broker, "t", 1)
    for restart in (False, True):
        if restart:
            broker.restart()
        c = consumer(broker, **{"group.id": "g"})
        got = c.committed([TopicPartition("t", 0)], timeout=10)[0].offset
        c.close()
        assert got < 0, "committed offset %d of the deleted topic survived" % got


def test_double_underscore_names_are_ordinary_topics(broker):
    create_topic(broker, "__app_state", 1)
    produce_keyed(broker, "__app_state", 5, keys=1)
    assert len(consume_all(broker, "__app_state", 1, expected=5)[0]) == 5
    delete_topic(broker, "__app_state")
