"""A full disk: produce fails with an error, nothing acknowledged is lost, the broker
keeps its head (one rate-limited line per cause, not one per request), and once there
is room again everything acknowledged is there and producing works.

The log dir is a small ext4 file system on a loop device made for the test (root
only; CI runs as root), unmounted at the end whatever happens.
"""
import os
import shutil
import subprocess
import tempfile

import pytest

from clients import consume_all, create_topic, producer
import kwire

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a loop device needs root")


@pytest.fixture
def small_fs():
    top = tempfile.mkdtemp(prefix="samsa-diskfull-")
    image, mnt = os.path.join(top, "fs.img"), os.path.join(top, "mnt")
    os.mkdir(mnt)
    with open(image, "wb") as f:
        f.truncate(80 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True, timeout=60)
    m = subprocess.run(["mount", "-o", "loop", image, mnt], capture_output=True, timeout=60)
    if m.returncode != 0:
        shutil.rmtree(top, ignore_errors=True)
        pytest.skip("cannot mount a loop device here: %s" % m.stderr.decode().strip())
    try:
        yield mnt
    finally:
        subprocess.run(["umount", mnt], timeout=60)
        if os.path.ismount(mnt):
            subprocess.run(["umount", "-l", mnt], timeout=60)
        shutil.rmtree(top, ignore_errors=True)


def test_disk_full_loses_nothing_acknowledged(broker_factory, small_fs):
    data = os.path.join(small_fs, "data")
    os.mkdir(data)
    ballast = os.path.join(small_fs, "ballast")
    with open(ballast, "wb") as f:
        f.write(b"\0" * (8 << 20))
    b = broker_factory(data_dir=data, **{"log.segment.bytes": "4194304",
                                         "offsets.topic.num.partitions": "1"})
    try:
        create_topic(b, "fill", 2)
        acked = {}
        failed = []
        p = producer(b, **{"message.timeout.ms": 5000, "linger.ms": 1, "retries": 0,
                           "batch.num.messages": 100})

        def report(err, msg, seq):
            if err is None:
                acked[seq] = (msg.partition(), msg.offset())
            else:
                failed.append(err.code())

        value = os.urandom(8000)
        seq = 0
        # Fill the disk until it refuses batches.
        while not failed and seq < 20_000:
            for _ in range(100):
                p.produce("fill", value=b"%08d" % seq + value, partition=seq % 2,
                          on_delivery=lambda e, m, s=seq: report(e, m, s))
                seq += 1
            p.flush(30)
        assert failed, "the disk never filled up (%d records acknowledged)" % len(acked)
        assert acked, "nothing was acknowledged before the disk filled up"
        # Then keep asking: a thousand acks=all produce requests of one record, nearly all
        # refused (one that still finds room is acknowledged like any other).
        refused = 0
        with kwire.Conn(b.port) as c:
            for _ in range(1000):
                batch = kwire.record_batch([(None, b"%08d" % seq + value)])
                err, offset = kwire.produce(c, "fill", seq % 2, batch, acks=-1)
                if err == 0:
                    acked[seq] = (seq % 2, offset)
                else:
                    refused += 1
                seq += 1
        assert refused >= 500, refused
    finally:
        b.stop()
    log = open(b.stderr_path, errors="replace").read()
    # One line per cause per second, not one or two per refused request.
    errors = [l for l in log.splitlines() if " ERROR " in l or " WARN " in l]
    assert len(errors) < 30, (len(errors), errors[-5:])

    # Room again: every acknowledged record is there, at its offset, and the broker
    # takes new records.
    os.unlink(ballast)
    b.start()
    got = consume_all(b, "fill", 2, expected=len(acked))
    stored = {}
    for part, recs in got.items():
        for off, _, v, _ in recs:
            stored[int(v[:8])] = (part, off)
    missing = [s for s, where in acked.items() if stored.get(s) != where]
    assert not missing, "%d acknowledged records missing or moved, e.g. %s" % (
        len(missing), missing[:5])
    p = producer(b)
    p.produce("fill", value=b"after", partition=0)
    assert p.flush(30) == 0
