"""Nodes in network namespaces on one bridge, and the faults made on that network:
used by test_cluster_netns.py and the chaos harness (tests/chaos/chaos.py --netns).

Topology, made and removed by Net (needs root and `ip netns`; `unusable()` says why not):

    root namespace                                namespace samsa-tN-<pid>, N = 1, 2, 3
    bridge samsa-b<pid>  10.213.S.254/24 --- veth samsaN-<pid> === eth0  10.213.S.N/24
    route unreachable 10.213.0.0/16 metric <pid>                      samsa-server node N
    nft table bridge samsa-<pid> (only once a link between nodes is blocked)

Every node listens on its own address (9092 clients, 9093 quorum), and clients in the
root namespace talk to the nodes through the bridge (from 10.213.S.254). The namespaces
have no default route, only their /24, and the root namespace has the `unreachable`
route over the whole block for as long as anything is up, so no packet for these
addresses can leave the machine by the default route, even from a client that outlives
the bridge. S is a /24 of the block no other route uses, so concurrent runs stay apart;
<pid> (the process that made them) names each run's objects and its route's metric, and
a run first removes what a dead run left behind (remove_leftovers).

Two kinds of fault:
- cut(N) sets the root end of node N's veth down: the bridge stops forwarding to it and
  the node's eth0 loses its carrier, so both directions drop silently, as with a pulled
  cable (no RST: open TCP connections just stall, and their requests are never
  answered), for clients and the other nodes alike. heal(N) sets it up again, with the
  same addresses and the connections resuming.
- block([(A, B), ...]) drops every IPv4 packet the bridge would forward from node A's
  address to node B's and back (nftables, bridge family, forward hook, in the root
  namespace): the nodes' links stay up and the clients, whose traffic is not forwarded
  between ports but delivered to the bridge itself, still reach both. unblock() lets
  everything through again. The rules match this run's addresses only.
This kernel has no netem; neither fault needs it, and both are made from the root
namespace, with no command run inside a node's.
"""
import contextlib
import os
import re
import shutil
import subprocess

from test_cluster_quorum import QuorumNode, running

BLOCK = "10.213.0.0/16"
PREFIX = "10.213."
CLIENT_PORT = 9092
CONTROLLER_PORT = 9093
NS_RE = re.compile(r"^samsa-t\d-(\d+)$")
LINK_RE = re.compile(r"^samsa(?:-b|\d-)(\d+)$")
TABLE_RE = re.compile(r"^table bridge (samsa-(\d+))$")


def ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=10)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def nft(*args, check=True):
    r = subprocess.run(["nft"] + list(args), capture_output=True, text=True, timeout=10)
    if check and r.returncode != 0:
        raise RuntimeError("nft %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def run_is_gone(pid):
    """True if the run that named objects after pid cannot be using them any more: it
    is this one, or that process is gone (or a zombie)."""
    if pid == os.getpid():
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def remove_leftovers():
    """Removes the namespaces, links, routes and nft tables of earlier runs that died
    before their own cleanup (and of this process, if any), found by name and metric."""
    for line in ip("netns", "list").stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = NS_RE.match(name)
        if m and run_is_gone(int(m.group(1))):
            ip("netns", "delete", name, check=False)
    for line in ip("-o", "link", "show").stdout.splitlines():
        # "12: samsa1-4242@if11: <BROADCAST,...> ..."
        name = line.split(":")[1].strip().split("@")[0]
        m = LINK_RE.match(name)
        if m and run_is_gone(int(m.group(1))):
            ip("link", "delete", name, check=False)
    for line in ip("-o", "route", "show", "type", "unreachable").stdout.splitlines():
        m = re.match(r"^unreachable %s metric (\d+)" % re.escape(BLOCK), line)
        if m and run_is_gone(int(m.group(1))):
            ip("route", "delete", "unreachable", BLOCK, "metric", m.group(1), check=False)
    if shutil.which("nft"):
        for line in nft("list", "tables", check=False).stdout.splitlines():
            m = TABLE_RE.match(line.strip())
            if m and run_is_gone(int(m.group(2))):
                nft("delete", "table", "bridge", m.group(1), check=False)


def unusable(need_nft=False):
    """None when namespaces can be made here (after removing dead runs' leftovers),
    else why not. need_nft: block() is needed too, so nft must work."""
    if os.geteuid() != 0:
        return "needs root to make network namespaces, veths and routes"
    if shutil.which("ip") is None:
        return "no ip command (iproute2)"
    try:
        remove_leftovers()
        probe = "samsa-t0-%d" % os.getpid()
        ip("netns", "add", probe)
        ip("netns", "delete", probe)
    except (OSError, RuntimeError) as e:
        return "ip netns is not usable here: %s" % e
    if need_nft:
        if shutil.which("nft") is None:
            return "no nft command (apt-get install nftables; make deps installs it)"
        table = "samsa-%d" % os.getpid()
        try:
            nft("add", "table", "bridge", table)
            nft("delete", "table", "bridge", table)
        except (OSError, RuntimeError) as e:
            return "nftables is not usable here: %s" % e
    return None


class Net:
    """The bridge, the unreachable route and one namespace plus veth per node."""

    def __init__(self, nodes=3):
        self.pid = os.getpid()
        self.bridge = "samsa-b%d" % self.pid
        self.ns = ["samsa-t%d-%d" % (i, self.pid) for i in range(1, nodes + 1)]
        self.veth = ["samsa%d-%d" % (i, self.pid) for i in range(1, nodes + 1)]
        self.table = "samsa-%d" % self.pid
        self.has_table = False
        self.subnet = None

    def free_subnet(self):
        used = ip("-o", "route", "show", "table", "all").stdout
        for s in range(1, 254):
            if (" %s%d." % (PREFIX, s)) not in " " + used.replace("\n", " "):
                return s
        raise RuntimeError("no free /24 in %s" % BLOCK)

    def address(self, i):
        return "%s%d.%d" % (PREFIX, self.subnet, i)

    def up(self):
        # The route first and gone last: while any address of the block is in use,
        # nothing for it goes out by the default route.
        ip("route", "add", "unreachable", BLOCK, "metric", str(self.pid))
        self.subnet = self.free_subnet()
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", "%s/24" % self.address(254), "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for i, (ns, veth) in enumerate(zip(self.ns, self.veth), 1):
            ip("netns", "add", ns)
            ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("link", "set", veth, "master", self.bridge)
            ip("link", "set", veth, "up")
            ip("-n", ns, "addr", "add", "%s/24" % self.address(i), "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")

    def down(self):
        """Removes everything up() and block() made, whatever of it exists; processes in
        the namespaces, and clients talking to them, must be gone first."""
        if self.has_table:
            nft("delete", "table", "bridge", self.table, check=False)
            self.has_table = False
        for ns, veth in zip(self.ns, self.veth):
            ip("link", "delete", veth, check=False)
            ip("netns", "delete", ns, check=False)
        ip("link", "delete", self.bridge, check=False)
        ip("route", "delete", "unreachable", BLOCK, "metric", str(self.pid), check=False)

    def cut(self, i):
        ip("link", "set", self.veth[i - 1], "down")

    def heal(self, i):
        ip("link", "set", self.veth[i - 1], "up")

    def block(self, pairs):
        """Drops the traffic between nodes a and b, both ways, for each (a, b) in pairs
        (node numbers), in addition to what is already blocked."""
        if not self.has_table:
            # has_table first: down() then deletes even a half-made table.
            self.has_table = True
            nft("add", "table", "bridge", self.table)
            nft("add", "chain", "bridge", self.table, "forward",
                "{ type filter hook forward priority 0; policy accept; }")
        for a, b in pairs:
            for s, d in ((a, b), (b, a)):
                nft("add", "rule", "bridge", self.table, "forward", "ip", "saddr",
                    self.address(s), "ip", "daddr", self.address(d), "drop")

    def unblock(self):
        if self.has_table:
            nft("flush", "chain", "bridge", self.table, "forward")

    def heal_all(self):
        self.unblock()
        for i in range(1, len(self.veth) + 1):
            self.heal(i)


class NetnsNode(QuorumNode):
    """A QuorumNode listening on its namespace's address, started inside it."""

    def __init__(self, node_id, ns, host, voters):
        super().__init__(node_id, CLIENT_PORT, CONTROLLER_PORT, voters)
        self.overrides["listeners"] = "PLAINTEXT://%s:%d,CONTROLLER://%s:%d" % (
            host, CLIENT_PORT, host, CONTROLLER_PORT)
        self.overrides["advertised.listeners"] = "PLAINTEXT://%s:%d" % (host, CLIENT_PORT)
        self.host = host
        # `ip netns exec` enters the namespace and execs: the child is samsa-server
        # itself, so kill() and PR_SET_PDEATHSIG reach it.
        self.command_prefix = ["ip", "netns", "exec", ns]


@contextlib.contextmanager
def cluster(count=3, overrides=None):
    """Makes the topology and starts `count` NetnsNodes (a quorum of them all, with
    `overrides` added to their settings), yields
    (nodes, net); at the end (also on failure) kills the nodes, prints their logs'
    tails, removes their dirs and then the topology. Clients must be closed before the
    block ends."""
    net = Net(count)
    try:
        net.up()
        voters = ",".join("%d@%s:%d" % (i, net.address(i), CONTROLLER_PORT)
                          for i in range(1, count + 1))
        nodes = [NetnsNode(i, net.ns[i - 1], net.address(i), voters)
                 for i in range(1, count + 1)]
        for n in nodes:
            n.overrides.update(overrides or {})
        with running(nodes):
            yield nodes, net
    finally:
        net.down()
