"""max.connections.per.ip and max.connections.per.ip.overrides (Kafka's names and
semantics): connections from one address beyond its limit are closed right after
accept, without touching other addresses; closing connections frees their slots.

Every address in 127.0.0.0/8 is local on Linux, so a raw socket bound to 127.0.0.2
before connect() reaches the broker (listening on 127.0.0.1) from another address.
librdkafka cannot choose its source address, so the real client always comes from
127.0.0.1 and the flooding sockets from the other loopback addresses.
"""
import re
import select
import socket
import struct
import time

import pytest

from clients import consume_all, create_topic, produce_keyed

CLOSE_WAIT = 10.0  # a refused connection must see EOF/reset within this
OPEN_WAIT = 0.5    # an accepted idle connection stays silent at least this long


def connect_from(src, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((src, 0))
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
    except BaseException:
        s.close()
        raise
    return s


def closed_by_broker(s, timeout):
    """True if the broker closed s (EOF or reset) within timeout; False if it stayed
    silent. The broker never sends on a connection that sent no request."""
    r, _, _ = select.select([s], [], [], timeout)
    if not r:
        return False
    try:
        data = s.recv(1)
    except ConnectionResetError:
        return True
    assert data == b"", "broker sent %r unasked" % data
    return True


def all_open(socks, wait=OPEN_WAIT):
    """None of socks is closed (or readable at all) for `wait` seconds."""
    r, _, _ = select.select(socks, [], [], wait)
    return not r


def api_versions_ok(s):
    """An ApiVersions v0 round trip on s (the connection is really served)."""
    body = struct.pack(">hhih", 18, 0, 4242, 4) + b"test"
    s.settimeout(10)
    s.sendall(struct.pack(">i", len(body)) + body)
    hdr = b""
    while len(hdr) < 8:
        chunk = s.recv(8 - len(hdr))
        assert chunk, "connection closed instead of answering ApiVersions"
        hdr += chunk
    size, corr = struct.unpack(">ii", hdr)
    assert corr == 4242 and size > 4
    left = size - 4
    while left > 0:
        chunk = s.recv(min(left, 65536))
        assert chunk
        left -= len(chunk)
    return True


def fill(port, src, n):
    """Opens n connections from src and checks the broker keeps every one."""
    socks = [connect_from(src, port) for _ in range(n)]
    assert all_open(socks), "broker closed a connection from %s below its limit" % src
    return socks


def assert_refused(port, src):
    s = connect_from(src, port)
    try:
        assert closed_by_broker(s, CLOSE_WAIT), \
            "connection from %s over its limit was not closed within %ss" % (src, CLOSE_WAIT)
    finally:
        s.close()


def close_all(socks):
    for s in socks:
        s.close()


def produce_and_consume(broker, topic, n=200):
    create_topic(broker, topic, 1)
    acked = produce_keyed(broker, topic, n, keys=4)
    out = consume_all(broker, topic, 1, expected=n)
    assert len(out[0]) == n and len(acked) == n


def stderr_text(broker):
    with open(broker.stderr_path, "rb") as f:
        return f.read().decode(errors="replace")


def test_per_ip_limit_closes_extra_and_spares_other_addresses(broker_factory):
    b = broker_factory(**{"max.connections.per.ip": "20"})
    flood = fill(b.port, "127.0.0.2", 20)  # half-open: they never send anything
    try:
        assert_refused(b.port, "127.0.0.2")
        assert all_open(flood), "the limit closed connections that were already open"
        # Other addresses are not affected: a real client from 127.0.0.1 and a raw
        # one from 127.0.0.3 are served while 127.0.0.2 is at its limit.
        produce_and_consume(b, "per-ip")
        other = connect_from("127.0.0.3", b.port)
        try:
            assert api_versions_ok(other)
        finally:
            other.close()
        assert_refused(b.port, "127.0.0.2")  # still at its limit
        assert all_open(flood)
        assert api_versions_ok(flood[0])  # the accepted ones are really served
    finally:
        close_all(flood)
    log = stderr_text(b)
    assert "refusing connection from 127.0.0.2:" in log
    assert "max.connections.per.ip allows 20" in log


def test_per_ip_limit_applies_to_the_real_client_address(broker_factory):
    """The flood from 127.0.0.1 itself, a raw client from 127.0.0.2 still served."""
    b = broker_factory(**{"max.connections.per.ip": "20"})
    flood = fill(b.port, "127.0.0.1", 20)
    try:
        assert_refused(b.port, "127.0.0.1")
        good = connect_from("127.0.0.2", b.port)
        try:
            assert api_versions_ok(good)
        finally:
            good.close()
    finally:
        close_all(flood)


def test_overrides(broker_factory):
    b = broker_factory(**{
        "max.connections.per.ip": "3",
        # Higher for the real client's address, lower for 127.0.0.4, none at all for
        # 127.0.0.3; 127.0.0.2 has the default. Blanks as Kafka allows them.
        "max.connections.per.ip.overrides": "127.0.0.1:100, 127.0.0.3:0,127.0.0.4 : 1",
    })
    held = []
    try:
        held += fill(b.port, "127.0.0.2", 3)
        assert_refused(b.port, "127.0.0.2")
        held += fill(b.port, "127.0.0.4", 1)
        assert_refused(b.port, "127.0.0.4")
        assert_refused(b.port, "127.0.0.3")
        # 127.0.0.1 may hold far more than the default 3 and still run a client.
        held += fill(b.port, "127.0.0.1", 10)
        produce_and_consume(b, "overrides")
        assert all_open(held)
    finally:
        close_all(held)


def test_closing_connections_frees_the_slots(broker_factory):
    b = broker_factory(**{"max.connections.per.ip": "20"})
    flood = fill(b.port, "127.0.0.2", 20)
    assert_refused(b.port, "127.0.0.2")
    close_all(flood)
    # The broker sees the closes asynchronously: a new connection may still be refused
    # for a moment. Keep the accepted ones until there are 20 again.
    again = []
    deadline = time.monotonic() + 30
    try:
        while len(again) < 20:
            assert time.monotonic() < deadline, \
                "only %d of 20 connections accepted again after closing" % len(again)
            s = connect_from("127.0.0.2", b.port)
            if closed_by_broker(s, OPEN_WAIT):
                s.close()
                time.sleep(0.1)
            else:
                again.append(s)
        assert_refused(b.port, "127.0.0.2")
        assert all_open(again)
        assert api_versions_ok(again[-1])
    finally:
        close_all(again)


def test_refusals_are_logged_rate_limited(broker_factory):
    """A flood of refused connections does not flood the log: every refusal is either
    a line of its own or counted in the "(and N more like this ...)" of a later one."""
    b = broker_factory(**{"max.connections.per.ip": "1"})
    held = fill(b.port, "127.0.0.2", 1)
    try:
        refused = 0
        for _ in range(30):
            assert_refused(b.port, "127.0.0.2")
            refused += 1
        time.sleep(1.2)  # past the 1 s interval: the next refusal is logged
        assert_refused(b.port, "127.0.0.2")  # the line is written before the close
        refused += 1
    finally:
        close_all(held)
    lines = [l for l in stderr_text(b).splitlines() if "refusing connection from" in l]
    assert 1 <= len(lines) < refused
    counted = 0
    for l in lines:
        m = re.search(r" \(and (\d+) more like this in the last \d+\.\d s\)$", l)
        counted += int(m.group(1)) if m else 0
    assert re.search(r"\(and \d+ more like this", lines[-1]), lines[-1]
    assert len(lines) + counted == refused, (len(lines), counted, lines)


@pytest.mark.parametrize("overrides", [
    {"max.connections.per.ip.overrides": "broker.example.com:5"},  # no DNS
    {"max.connections.per.ip.overrides": "127.0.0.1"},
    {"max.connections.per.ip.overrides": "127.0.0.1:-1"},
    {"max.connections.per.ip": "0"},  # Kafka: 0 only together with overrides
    {"max.connections.per.ip": "-5"},
])
def test_bad_values_stop_start_up(broker_factory, overrides):
    b = broker_factory(start=False, **overrides)
    with pytest.raises(RuntimeError, match="exited"):
        b.start()
    key = next(iter(overrides))
    assert "for %s:" % key in stderr_text(b)
