"""Raw-socket Kafka client for the differential tests: frames requests with the
schema codec (kcodec) and returns decoded responses as dicts."""
import socket
import struct
import time

import kcodec

CLIENT_ID = "samsa-differential"


class Closed(Exception):
    """The broker closed the connection instead of answering."""


class Conn:
    def __init__(self, host, port, timeout=15.0, client_id=CLIENT_ID):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.client_id = client_id
        self.corr = 0
        self.closed = False

    def close(self):
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def frame(self, api, version, body):
        self.corr += 1
        key = kcodec.APIS[api].key
        cid = self.client_id.encode()
        hdr = struct.pack(">hhih", key, version, self.corr, len(cid)) + cid
        if kcodec.request_flexible(api, version):
            hdr += b"\x00"
        payload = hdr + body
        return struct.pack(">i", len(payload)) + payload

    def send_body(self, api, version, body):
        """Sends an already encoded request body; returns the correlation id."""
        data = self.frame(api, version, body)
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            self.closed = True
            raise Closed(str(e))
        return self.corr

    def send(self, api, version, req):
        return self.send_body(api, version, kcodec.encode(api, "request", version, req))

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
                raise Closed("connection closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def recv_raw(self):
        (n,) = struct.unpack(">i", self._recv_exact(4))
        return self._recv_exact(n)

    def recv(self, api, version, corr):
        frame = self.recv_raw()
        (got,) = struct.unpack_from(">i", frame, 0)
        if got != corr:
            raise AssertionError("correlation id %d, expected %d" % (got, corr))
        r = kcodec.Reader(frame, True)
        r.p = 4
        if kcodec.response_header_flexible(api, version):
            for _ in range(r.uvarint()):
                r.uvarint()
                r.take(r.uvarint())
        return kcodec.decode(api, "response", version, frame[r.p:])

    def call(self, api, version, req):
        return self.recv(api, version, self.send(api, version, req))

    def call_body(self, api, version, body):
        return self.recv(api, version, self.send_body(api, version, body))

    def expect_closed(self, timeout=10.0):
        """Returns True when the peer closes without answering within timeout; False
        when it answers or stays open."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        return not data


class Peer:
    """One broker under test (Kafka or Samsa): a name, an address, the API ranges it
    advertises, and a lazily opened connection for simple request/response calls."""

    def __init__(self, name, bootstrap):
        self.name = name
        host, port = bootstrap.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self._conn = None
        self.versions = {}

    def connect(self, timeout=15.0, client_id=CLIENT_ID):
        return Conn(self.host, self.port, timeout=timeout, client_id=client_id)

    def conn(self):
        if self._conn is None or self._conn.closed:
            self._conn = self.connect()
        return self._conn

    def call(self, api, version, req):
        """One request on the shared connection; raises Closed if the broker closed it."""
        try:
            return self.conn().call(api, version, req)
        except Closed:
            self._conn = None
            raise
        except BaseException:
            # A timeout or a decode error leaves the stream at an unknown place.
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            raise

    def load_versions(self):
        resp = self.call("ApiVersions", 3, {"ClientSoftwareName": "samsa-differential",
                                            "ClientSoftwareVersion": "1"})
        assert resp["ErrorCode"] == 0, resp
        self.versions = {k["ApiKey"]: (k["MinVersion"], k["MaxVersion"]) for k in resp["ApiKeys"]}
        return resp

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def wait_until(pred, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)
