"""kcat (librdkafka) against a single node: metadata, keyed produce, read back."""
import subprocess

TIMEOUT = 60


def kcat(broker, *args, input=None):
    p = subprocess.run(["kcat", "-b", broker.bootstrap, "-m", "10", *args], input=input,
                       capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, "kcat %s failed (%d): %s" % (args, p.returncode, p.stderr.decode())
    return p.stdout.decode()


def test_metadata_lists_broker(broker):
    out = kcat(broker, "-L")
    assert "1 brokers:" in out, out
    assert "broker 1 at 127.0.0.1:%d" % broker.port in out, out


def test_keyed_produce_and_consume_in_order(broker):
    lines = ["k%d:value-%d" % (i % 7, i) for i in range(500)]
    kcat(broker, "-P", "-t", "events", "-K:", input=("\n".join(lines) + "\n").encode())
    out = kcat(broker, "-C", "-t", "events", "-e", "-o", "beginning", "-f", "%p|%o|%k|%s\n")
    got = [l.split("|") for l in out.splitlines()]
    assert len(got) == 500, out[-500:]
    by_part = {}
    for part, off, key, val in got:
        by_part.setdefault(part, []).append((int(off), key, val))
    seen = []
    for part, recs in by_part.items():
        offs = [o for o, _, _ in recs]
        assert offs == list(range(len(offs))), "partition %s offsets %s" % (part, offs[:20])
        seen += [(k, v) for _, k, v in recs]
    # Auto-created topic has num.partitions=1, so total order is the produce order.
    assert len(by_part) == 1
    assert ["%s:%s" % kv for kv in seen] == lines
    meta = kcat(broker, "-L", "-t", "events")
    assert 'topic "events" with 1 partitions' in meta, meta
