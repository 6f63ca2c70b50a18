"""Member metadata held by the group coordinator is bounded.

An adversarial round sent 2,000 JoinGroup v1 requests with 1 MB of metadata each on
connections it then closed: the broker held 3.9 GB for 30 minutes (each member kept
its metadata until its session expired). Now the protocols and assignments of all
members together stay within samsa.group.max.member.metadata.bytes (a join that would
pass it gets COORDINATOR_NOT_AVAILABLE, which clients retry), and a new member whose
JoinGroup connection closed is dropped when the join phase completes.
"""
import select
import time

from clients import consume_all, create_topic, produce_keyed
from conftest import wait_until
import kwire

MB = 1 << 20
BUDGET = 64 * MB
FLOOD = 150


def rss_bytes(broker):
    with open("/proc/%d/status" % broker.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def join_v1_body(group, metadata, member_id="", timeout_ms=300_000):
    return (kwire.string(group) + kwire.i32(timeout_ms) + kwire.i32(timeout_ms) +
            kwire.string(member_id) + kwire.string("consumer") +
            kwire.array([kwire.string("range") + kwire.nbytes(metadata)]))


def describe_group_v0(port, group):
    """(state, number of members) of a group, by DescribeGroups v0."""
    with kwire.Conn(port) as c:
        r = c.request(15, 0, kwire.array([kwire.string(group)]))
        groups = r.array(lambda r: (r.i16(), r.string(), r.string(), r.string(), r.string(),
                                    r.array(lambda r: (r.string(), r.string(), r.string(),
                                                       r.nbytes(), r.nbytes()))))
        err, _, state, _, _, members = groups[0]
        assert err == 0, err
        return state, len(members)


def test_join_flood_stays_within_the_member_metadata_budget(broker_factory):
    # A long initial rebalance delay, so that the flood's connections are closed well
    # before its join phase completes.
    b = broker_factory(**{"samsa.group.max.member.metadata.bytes": str(BUDGET),
                          "group.initial.rebalance.delay.ms": "10000"})
    create_topic(b, "work", 2)
    produce_keyed(b, "work", 500, keys=4)
    base = rss_bytes(b)
    metadata = b"m" * (MB - 64)
    conns = []
    refused = 0
    try:
        for i in range(FLOOD):
            c = kwire.Conn(b.port, timeout=10)
            conns.append(c)
            c.send(11, 1, join_v1_body("flood", metadata))
        # A refused join is answered at once; an admitted one waits for the join phase.
        waiting = {c.sock: c for c in conns}
        deadline = time.monotonic() + 3.0
        while waiting and time.monotonic() < deadline:
            ready, _, _ = select.select(list(waiting), [], [], 0.2)
            for sock in ready:
                r = kwire.Reader(waiting.pop(sock).recv_frame())
                r.i32()  # correlation id
                assert r.i16() == 15  # COORDINATOR_NOT_AVAILABLE
                refused += 1
        admitted = len(waiting)
        peak = rss_bytes(b)
    finally:
        for c in conns:
            c.close()
    assert admitted * MB <= BUDGET, (admitted, refused)
    assert refused >= FLOOD - BUDGET // MB
    # Admitted joins hold their request and the member's copy of the metadata: twice
    # the budget, plus slack for the allocator and the refused requests being parsed.
    assert peak - base < 2 * BUDGET + 96 * MB, (peak - base) / MB

    # Their connections are gone: when the join phase completes (the initial rebalance
    # delay after the last join), the new members are dropped instead of being kept
    # for their 5-minute sessions.
    wait_until(lambda: describe_group_v0(b.port, "flood")[1] == 0, 60,
               what="the abandoned members of group flood to be dropped")
    # The budget is free again: a real consumer group forms and reads everything.
    got = consume_all(b, "work", 2, expected=500)
    assert sum(len(v) for v in got.values()) == 500
    conn = kwire.Conn(b.port)
    try:
        r = conn.request(11, 1, join_v1_body("healthy", b"x" * 100, timeout_ms=10_000))
        assert r.i16() == 0  # admitted and answered once the join phase completes
    finally:
        conn.close()
