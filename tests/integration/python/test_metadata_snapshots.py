"""Metadata snapshots (metadata.log.max.record.bytes.between.snapshots): past the
threshold the broker writes a snapshot of its metadata image and drops the Raft log it
covers, on its metadata thread (an LD_PRELOAD probe, fsync_probe.c, sees no sync on the
event loop); a clean restart and a crash afterwards each bring back every topic with its
id, partition count and configs from the snapshot and the short log after it."""
import os

import kwire
from clients import admin, create_topic
from confluent_kafka.admin import ConfigResource
from test_loop_fsync import PROBE, loop_syncs
from test_metadata_ids import metadata_v12

META = "__cluster_metadata-0"


def image(b):
    """{topic: (topic id, partitions, {explicit config: value})} as clients see it."""
    a = admin(b)
    names = sorted(t for t in a.list_topics(timeout=10).topics if t.startswith("snap-"))
    assert names
    with kwire.Conn(b.port) as conn:
        meta = metadata_v12(conn, [(bytes(16), n) for n in names])
    fs = a.describe_configs([ConfigResource("topic", n) for n in names])
    out = {}
    for (err, name, tid, parts), (res, f) in zip(meta, fs.items()):
        assert err == 0 and name == res.name
        configs = {k: e.value for k, e in f.result(timeout=10).items() if not e.is_default}
        out[name] = (tid, len(parts), configs)
    return out


def test_snapshot_is_written_off_the_loop_and_survives_restarts(broker_factory):
    assert os.path.exists(PROBE), "fsync probe not built: %s" % PROBE
    b = broker_factory(start=False, **{"metadata.log.max.record.bytes.between.snapshots": "2048"})
    syncs = os.path.join(b.data_dir, "loop-syncs.txt")
    b.env = dict(os.environ, LD_PRELOAD=PROBE, SAMSA_FSYNC_PROBE_LOG=syncs)
    b.start()

    def snapshots_written():
        return open(b.stderr_path, errors="replace").read().count("wrote a metadata snapshot")

    # Topic deletion still syncs its checkpoints on the loop (docs/architecture.md, "Still
    # to move"): it comes before the window.
    for i in range(4):
        create_topic(b, "snap-gone-%d" % i, 1)
    a = admin(b)  # must outlive the futures
    fs = a.delete_topics(["snap-gone-%d" % i for i in range(4)], operation_timeout=10)
    for f in fs.values():
        f.result(timeout=30)
    mark, written = len(loop_syncs(syncs)), snapshots_written()

    for i in range(40):
        config = {"retention.ms": str(1000 * (i + 1))} if i % 2 else {}
        create_topic(b, "snap-%02d" % i, 1 + i % 3, **config)

    during = loop_syncs(syncs)[mark:]
    assert during == [], "the event loop synced while serving:\n" + "\n".join(during)
    assert snapshots_written() > written
    meta = os.path.join(b.data_dir, META)
    assert os.path.exists(os.path.join(meta, "snapshot"))
    assert os.path.getsize(os.path.join(meta, "raft.log")) < 2048 + 1024
    before = image(b)
    assert len(before) == 40

    b.restart()
    assert image(b) == before
    b.kill()  # a crash: no clean-shutdown marker
    b.start()
    assert image(b) == before
