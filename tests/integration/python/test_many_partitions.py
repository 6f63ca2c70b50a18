"""More partitions than open files: a broker whose open-file limit is far below its
partition count still serves every partition, restarts, and accepts new clients.

Before, every segment held its .log descriptor for its whole life: a topic of 30,000
partitions under a 20,000-descriptor limit was reported created, then acks=all failed
everywhere with "Too many open files", accepts failed, and the broker could not restart.
Now segment files are opened on use and the least recently used closed beyond a bound
derived from the limit (storage's open-file cache), so idle partitions cost no
descriptor. Here: 3,000 partitions under a limit of 1,024 (soft = hard: samsa-server
raises its soft limit to the hard one at start).
"""
import os

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from clients import admin, consume_all, consumer, producer

NOFILE = 1024
PARTITIONS = 3000
PER_PARTITION = 2


def open_fds(b):
    return len(os.listdir("/proc/%d/fd" % b.proc.pid))


def create_wide(b, topic):
    # Opening 3,000 partitions takes 5-15 s on this VM (more under ASan): wait longer
    # than clients.create_topic does.
    a = AdminClient({"bootstrap.servers": b.bootstrap, "socket.timeout.ms": 130000})
    fs = a.create_topics([NewTopic(topic, PARTITIONS, 1)], operation_timeout=120,
                         request_timeout=125)
    fs[topic].result(timeout=130)


def produce_all(b, topic):
    p = producer(b, **{"linger.ms": 20})
    errors = []
    acked = [0]

    def report(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked[0] += 1

    for part in range(PARTITIONS):
        for i in range(PER_PARTITION):
            p.produce(topic, partition=part, value=b"p%d-r%d" % (part, i), on_delivery=report)
        p.poll(0)
    left = p.flush(60)
    assert left == 0, "%d records unacknowledged after 60 s" % left
    assert not errors, "delivery failures: %s" % errors[:5]
    assert acked[0] == PARTITIONS * PER_PARTITION


def check_all(b, topic):
    got = consume_all(b, topic, PARTITIONS, expected=PARTITIONS * PER_PARTITION, timeout=90)
    for part in range(PARTITIONS):
        values = [v for (_, _, v, _) in got[part]]
        assert values == [b"p%d-r%d" % (part, i) for i in range(PER_PARTITION)], (part, values)


def test_partitions_beyond_the_open_file_limit(broker_factory):
    b = broker_factory(start=False)
    b.nofile = NOFILE
    b.start()
    create_wide(b, "wide")
    # acks=all to every partition: one group-commit round covers all of them.
    produce_all(b, "wide")
    assert open_fds(b) < NOFILE
    check_all(b, "wide")
    assert open_fds(b) < NOFILE

    # Restart under the same limit: start-up loads every partition.
    b.restart()
    check_all(b, "wide")
    # A new client connection is accepted and served (produce and read back).
    p = producer(b)
    p.produce("wide", partition=PARTITIONS - 1, value=b"after-restart")
    assert p.flush(30) == 0
    c = consumer(b)
    try:
        c.assign([TopicPartition("wide", PARTITIONS - 1, PER_PARTITION)])
        msg = None
        for _ in range(60):
            msg = c.poll(0.5)
            if msg is not None and msg.error() is None:
                break
        assert msg is not None and msg.error() is None, msg and msg.error()
        assert msg.value() == b"after-restart"
    finally:
        c.close()
    md = admin(b).list_topics(timeout=10)
    assert len(md.topics["wide"].partitions) == PARTITIONS
    assert open_fds(b) < NOFILE
    with open(b.stderr_path, "rb") as f:
        log = f.read().decode(errors="replace").lower()
    assert "too many open files" not in log
    assert b.stop() == 0
