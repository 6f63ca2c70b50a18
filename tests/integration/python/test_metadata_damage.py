"""Damaged metadata never deletes data (issue: "damaged files never delete data").

A byte flipped in the metadata log, an emptied or deleted metadata log, a directory
the metadata does not name: before, start-up truncated the metadata log at the damage
and then deleted every partition directory it no longer recognised. Now the broker
refuses to start and says how to recover; `samsa metadata recover` rebuilds the
metadata from the intact entries and the partition directories; unknown directories
are moved to quarantine/; only directories the deletion protocol marked are removed.
"""
import os
import shutil
import subprocess

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import ConfigResource

from clients import admin, consume_all, consumer, create_topic, produce_keyed
from conftest import REPO

CLI = os.environ.get("SAMSA_CLI", os.path.join(REPO, "build", "tools", "samsa"))
META = "__cluster_metadata-0"


def metadata_log(b):
    """The metadata log: the Raft log of the one-voter metadata quorum."""
    return os.path.join(b.data_dir, META, "raft.log")


def partition_files(b):
    """{relative path: size} of every file under the partition directories."""
    out = {}
    for d in os.listdir(b.data_dir):
        full = os.path.join(b.data_dir, d)
        if d == META or d == "quarantine" or not os.path.isdir(full):
            continue
        for f in os.listdir(full):
            out[os.path.join(d, f)] = os.path.getsize(os.path.join(full, f))
    return out


def segment_files(files):
    return {k: v for k, v in files.items() if k.endswith(".log")}


def start_fails(b, needle):
    with pytest.raises(RuntimeError) as e:
        b.start()
    assert "exited" in str(e.value), e.value
    log = open(b.stderr_path, errors="replace").read()
    assert needle in log, log[-3000:]
    assert "samsa metadata recover --log-dir %s" % b.data_dir in log, log[-3000:]
    return log


def recover(b, *extra):
    r = subprocess.run([CLI, "metadata", "recover", "--log-dir", b.data_dir, *extra],
                       capture_output=True, text=True, timeout=60)
    return r


def fill(b, topics=5, records=1000):
    """Topics t0..t{n-1} with 2 partitions; `records` records in the last one (its
    metadata entry comes after any damage in the middle); a group's committed offsets."""
    for i in range(topics):
        create_topic(b, "t%d" % i, 2)
    last = "t%d" % (topics - 1)
    acked = produce_keyed(b, last, records, keys=8)
    c = consumer(b, **{"group.id": "keepers"})
    try:
        c.assign([TopicPartition(last, 0, 0), TopicPartition(last, 1, 0)])
        ends = {0: 0, 1: 0}
        for p, off in acked.values():
            ends[p] = max(ends[p], off + 1)
        c.commit(offsets=[TopicPartition(last, p, o) for p, o in ends.items()],
                 asynchronous=False)
    finally:
        c.close()
    return last, ends


def check_everything_back(b, last, ends, records=1000):
    got = consume_all(b, last, 2, expected=records)
    assert sum(len(v) for v in got.values()) == records
    names = set(admin(b).list_topics(timeout=10).topics)
    assert {"t0", "t1", "t2", "t3", "t4"} <= names, names
    c = consumer(b, **{"group.id": "keepers"})
    try:
        tps = c.committed([TopicPartition(last, 0), TopicPartition(last, 1)], timeout=15)
        assert {tp.partition: tp.offset for tp in tps} == ends
    finally:
        c.close()


def test_flipped_byte_refuses_start_and_recovery_restores_everything(broker):
    last, ends = fill(broker)
    # The log dir is locked: neither recovery nor a second broker while it runs.
    r = recover(broker)
    assert r.returncode != 0 and "stop the broker" in r.stdout, (r.stdout, r.stderr)
    assert broker.stop() == 0
    before = partition_files(broker)
    path = metadata_log(broker)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size // 2)
        byte = f.read(1)
        f.seek(size // 2)
        f.write(bytes([byte[0] ^ 0x5A]))
    damaged = open(path, "rb").read()

    log = start_fails(broker, "is damaged at byte")
    assert path in log
    # Refusing changed nothing: the metadata log and every partition file are as they were.
    assert open(path, "rb").read() == damaged
    assert segment_files(partition_files(broker)) == segment_files(before)

    r = recover(broker, "--dry-run")
    assert r.returncode == 0 and "nothing written" in r.stdout, (r.stdout, r.stderr)
    assert open(path, "rb").read() == damaged
    r = recover(broker)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "the old file is kept as" in r.stdout
    kept = [f for f in os.listdir(os.path.dirname(path)) if f.startswith("raft.log.damaged-")]
    assert len(kept) == 1 and open(os.path.join(os.path.dirname(path), kept[0]), "rb").read() == damaged

    broker.start()
    check_everything_back(broker, last, ends)
    assert not os.path.exists(os.path.join(broker.data_dir, "quarantine"))


@pytest.mark.parametrize("how", ["emptied", "deleted", "whole-dir-deleted"])
def test_lost_metadata_log_refuses_start_and_recovery_rebuilds_it(broker, how):
    last, ends = fill(broker)
    assert broker.stop() == 0
    before = segment_files(partition_files(broker))
    if how == "emptied":
        open(metadata_log(broker), "wb").close()
    elif how == "deleted":
        os.unlink(metadata_log(broker))
    else:
        shutil.rmtree(os.path.join(broker.data_dir, META))
    start_fails(broker, "is missing or empty")
    assert segment_files(partition_files(broker)) == before
    r = recover(broker)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "topic %s: 2 partitions recovered" % last in r.stdout, r.stdout
    broker.start()
    check_everything_back(broker, last, ends)
    # Recovered topics keep everything until their configs are set again.
    a = admin(broker)  # must outlive the future
    cfg = list(a.describe_configs([ConfigResource("topic", last)]).values())[0].result(timeout=10)
    assert cfg["retention.ms"].value == "-1"


def test_unknown_directories_are_quarantined_not_deleted(broker):
    create_topic(broker, "known", 1)
    produce_keyed(broker, "known", 200, keys=4)
    assert broker.stop() == 0
    seg = os.path.join(broker.data_dir, "known-0", "00000000000000000000.log")
    # A directory of a topic the metadata never heard of, and one partition too many.
    for d in ("mystery-0", "known-7"):
        os.mkdir(os.path.join(broker.data_dir, d))
        shutil.copy(seg, os.path.join(broker.data_dir, d))
    broker.start()
    q = os.path.join(broker.data_dir, "quarantine")
    assert sorted(os.listdir(q)) == ["known-7", "mystery-0"]
    for d in ("mystery-0", "known-7"):
        assert not os.path.exists(os.path.join(broker.data_dir, d))
        moved = os.path.join(q, d, "00000000000000000000.log")
        assert open(moved, "rb").read() == open(seg, "rb").read()
    log = open(broker.stderr_path, errors="replace").read()
    assert "moved to %s/mystery-0" % q in log
    # The broker serves its own topic as before.
    assert sum(len(v) for v in consume_all(broker, "known", 1, expected=200).values()) == 200
    # A second start leaves quarantine alone (and moves nothing new).
    broker.restart()
    assert sorted(os.listdir(q)) == ["known-7", "mystery-0"]


def test_only_directories_the_deletion_protocol_marked_are_removed(broker):
    create_topic(broker, "gone", 1)
    produce_keyed(broker, "gone", 100, keys=4)
    assert broker.stop() == 0
    saved = os.path.join(broker.data_dir, "saved-gone-copy")
    shutil.copytree(os.path.join(broker.data_dir, "gone-0"), saved)
    broker.start()
    a = admin(broker)  # must outlive the future
    a.delete_topics(["gone"], operation_timeout=10)["gone"].result(timeout=20)
    assert broker.stop() == 0
    # As if a crash had come between the RemoveTopic record and the directory's rename:
    # the metadata log records the deletion, and the directory records the topic's id.
    os.rename(saved, os.path.join(broker.data_dir, "gone-0"))
    # And a directory renamed for deletion whose removal a crash cut short.
    marked = os.path.join(broker.data_dir, "old-0.0123456789abcdef-delete")
    os.mkdir(marked)
    open(os.path.join(marked, "00000000000000000000.log"), "wb").write(b"x" * 100)
    broker.start()
    assert not os.path.exists(os.path.join(broker.data_dir, "gone-0"))
    assert not os.path.exists(marked)
    assert not os.path.exists(os.path.join(broker.data_dir, "quarantine"))
    log = open(broker.stderr_path, errors="replace").read()
    assert "records its topic's deletion" in log


def test_torn_tail_after_a_crash_is_truncated(broker):
    create_topic(broker, "before", 1)
    broker.kill()  # no clean-shutdown marker
    with open(metadata_log(broker), "ab") as f:
        f.write((500).to_bytes(4, "big") + b"\x12\x34\x56\x78" + b"partial entry")
    broker.start()
    assert "before" in admin(broker).list_topics(timeout=10).topics
    create_topic(broker, "after", 1)
    broker.restart()
    assert {"before", "after"} <= set(admin(broker).list_topics(timeout=10).topics)
