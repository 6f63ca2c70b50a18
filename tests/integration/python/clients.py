"""Shared client helpers: every blocking call is bounded."""
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap, "socket.timeout.ms": 10000})


def create_topic(broker, name, partitions, timeout=30, **config):
    a = admin(broker)  # must outlive the future
    fs = a.create_topics([NewTopic(name, partitions, 1, config=config)],
                         operation_timeout=10, request_timeout=20)
    fs[name].result(timeout=timeout)


def delete_topic(broker, name, timeout=30):
    a = admin(broker)  # must outlive the future
    fs = a.delete_topics([name], operation_timeout=10, request_timeout=20)
    fs[name].result(timeout=timeout)


def producer(broker, **extra):
    conf = {"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5,
            "batch.num.messages": 10000, "queue.buffering.max.messages": 500000,
            "message.timeout.ms": 30000, "enable.idempotence": False}
    conf.update(extra)
    return Producer(conf)


def consumer(broker, **extra):
    conf = {"bootstrap.servers": broker.bootstrap, "group.id": "pytest-assign",
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest", "enable.partition.eof": True,
            "fetch.wait.max.ms": 100}
    conf.update(extra)
    return Consumer(conf)


def consume_all(broker, topic, partitions, expected=None, timeout=60, start=0, **extra):
    """Assigns every partition from `start` and reads until EOF on all of them (and at
    least `expected` records). Returns {partition: [Message-like tuples]} where each
    tuple is (offset, key, value, timestamp)."""
    c = consumer(broker, **extra)
    try:
        c.assign([TopicPartition(topic, p, start) for p in range(partitions)])
        out = {p: [] for p in range(partitions)}
        eof = set()
        total = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msgs = c.consume(num_messages=10000, timeout=0.5)
            for m in msgs:
                err = m.error()
                if err is not None:
                    if err.code() == -191:  # _PARTITION_EOF
                        eof.add(m.partition())
                        continue
                    raise KafkaException(err)
                out[m.partition()].append((m.offset(), m.key(), m.value(), m.timestamp()[1]))
                total += 1
                eof.discard(m.partition())
            if len(eof) == partitions and (expected is None or total >= expected):
                return out
        raise AssertionError("consume timed out after %ss: %d records, eof on %s"
                             % (timeout, total, sorted(eof)))
    finally:
        c.close()


def produce_keyed(broker, topic, n, keys=64, value=lambda i: b"seq-%08d" % i, **extra):
    """Produces n keyed records; returns {seq: (partition, offset)} from the delivery
    reports and fails unless every one succeeded."""
    p = producer(broker, **extra)
    acked = {}
    errors = []

    def report(err, msg, seq):
        if err is not None:
            errors.append((seq, err))
        else:
            acked[seq] = (msg.partition(), msg.offset())

    for i in range(n):
        while True:
            try:
                p.produce(topic, key=b"key-%d" % (i % keys), value=value(i),
                          on_delivery=lambda err, msg, seq=i: report(err, msg, seq))
                break
            except BufferError:
                p.poll(0.1)
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(60)
    assert left == 0, "%d records still in flight after 60 s" % left
    assert not errors, "delivery failures: %s" % errors[:5]
    assert len(acked) == n
    return acked
