"""Metadata v12 by topic id, as Kafka answers it (the Java Admin client's
describeTopics(TopicCollection.ofTopicIds(...)) sends these): the id decides and the
name is ignored; an unknown id gets UNKNOWN_TOPIC_ID with the id echoed and a null
name."""
import os

import kwire
from clients import create_topic

UNKNOWN_TOPIC_ID = 100


def metadata_v12(conn, entries):
    """entries: [(topic_id bytes(16), name or None)]. Returns [(error, name, id, partitions)]."""
    body = kwire.carray([tid + kwire.cstring(name) + kwire.TAGS for tid, name in entries])
    body += kwire.i8(0) + kwire.i8(0) + kwire.TAGS  # no auto-creation, no operations
    r = conn.request(3, 12, body, flexible=True)
    r.i32()  # throttle

    def broker(r):
        r.i32(), r.cstring(), r.i32(), r.cstring()
        r.tags()

    def partition(r):
        p = (r.i16(), r.i32())
        r.i32(), r.i32()
        r.carray(kwire.Reader.i32), r.carray(kwire.Reader.i32), r.carray(kwire.Reader.i32)
        r.tags()
        return p

    def topic(r):
        t = (r.i16(), r.cstring(), r.take(16), r.i8() and None, r.carray(partition))
        r.i32()
        r.tags()
        return t[0], t[1], t[2], t[4]

    r.carray(broker)
    r.cstring(), r.i32()
    topics = r.carray(topic)
    r.tags()
    return topics


def topic_id(conn, name):
    (_, got_name, tid, parts), = metadata_v12(conn, [(bytes(16), name)])
    assert got_name == name and len(parts) == 3
    return tid


def test_metadata_by_topic_id(broker):
    create_topic(broker, "by-id", 3)
    with kwire.Conn(broker.port) as c:
        tid = topic_id(c, "by-id")
        assert tid != bytes(16)
        # The Java client sends an empty name with the id: the id decides.
        (err, name, got, parts), = metadata_v12(c, [(tid, "")])
        assert (err, name, got) == (0, "by-id", tid)
        assert [p for _, p in parts] == [0, 1, 2]
        unknown = os.urandom(16)
        (err, name, got, parts), = metadata_v12(c, [(unknown, "")])
        assert (err, name, got, parts) == (UNKNOWN_TOPIC_ID, None, unknown, [])
        # With ids in the request, entries without one are left out (Kafka's rule).
        got = metadata_v12(c, [(bytes(16), "by-id"), (tid, None)])
        assert [(e, n) for e, n, _, _ in got] == [(0, "by-id")]
