"""CreateTopics: names, partition counts, replication factors, configs and
validate_only, each sent to Kafka and to Samsa; error codes and (for successes) the
created topic's shape and configs must agree."""
import pytest

import configs_util

# (case id, name or None for a unique valid name)
NAMES = [
    ("empty", ""),
    ("dot", "."),
    ("dotdot", ".."),
    ("too-long-250", "a" * 250),
    ("max-249", None),  # a unique 249-char name: valid
    ("space", "a b"),
    ("slash", "a/b"),
    ("colon", "a:b"),
    ("star", "a*b"),
    ("non-ascii", "caf\u00e9"),
    ("internal-exists", "__consumer_offsets"),
    ("legal-chars", None),  # a unique name with . _ - digits: valid
]


def _req(name, partitions=1, rf=1, configs=(), validate_only=False, assignments=()):
    return {"Topics": [{"Name": name, "NumPartitions": partitions, "ReplicationFactor": rf,
                        "Assignments": list(assignments),
                        "Configs": [{"Name": k, "Value": v} for k, v in configs]}],
            "TimeoutMs": 30000, "ValidateOnly": validate_only}


def _compare_create(pair, what, k, s, extra_ignore=(), known_paths=None):
    """Compares two CreateTopics answers; the created topic's config lists are compared
    by configs_util (by name, both products' sets differ)."""
    pair.compare(what, k, s, ignore=("Topics[].Configs",) + tuple(extra_ignore),
                 known_paths=known_paths)
    for kt, st in zip(k["Topics"], s["Topics"]):
        if kt["ErrorCode"] == 0 and st["ErrorCode"] == 0 and kt.get("Configs") is not None:
            configs_util.compare_configs(what + " configs", kt["Configs"], st["Configs"],
                                         set_here={c["Name"] for c in kt["Configs"]
                                                   if c["ConfigSource"] == 1})


@pytest.mark.parametrize("case,name", NAMES, ids=[c for c, _ in NAMES])
def test_topic_names(pair, case, name):
    if name is None:
        base = pair.name("n")
        name = (base + "x" * 249)[:249] if case == "max-249" else "a.b_c-9." + base
    v = pair.version("CreateTopics")
    k, s = pair.both("CreateTopics", v, _req(name))
    _compare_create(pair, "CreateTopics name %s" % case, k, s)
    if k["Topics"][0]["ErrorCode"] == 0:
        pair.wait_topic(pair.k, name, 1)


def test_topic_name_collision(pair):
    """'a.b' and 'a_b' collide in metric names; Kafka refuses the second one."""
    base = pair.name("coll")
    pair.create_topic(base + ".x")
    v = pair.version("CreateTopics")
    pair.same("CreateTopics colliding name", "CreateTopics", v, _req(base + "_x"))


def test_duplicate_topic_in_one_request(pair):
    name = pair.name("dup")
    v = pair.version("CreateTopics")
    req = _req(name)
    req["Topics"] = req["Topics"] * 2
    pair.same("CreateTopics same name twice", "CreateTopics", v, req)


def test_already_exists(pair):
    name = pair.create_topic(pair.name("exists"))
    v = pair.version("CreateTopics")
    pair.same("CreateTopics existing", "CreateTopics", v, _req(name))


PARTITIONS = [("zero", 0), ("minus-one-default", -1), ("minus-two", -2), ("three", 3),
              ("huge", 2147483647), ("over-limit-100001", 100001)]


@pytest.mark.parametrize("case,n", PARTITIONS, ids=[c for c, _ in PARTITIONS])
def test_partitions(pair, case, n):
    name = pair.name("p")
    v = pair.version("CreateTopics")
    k, s = pair.both("CreateTopics", v, _req(name, partitions=n))
    _compare_create(pair, "CreateTopics partitions=%d" % n, k, s)


RFS = [("zero", 0), ("two-on-one-node", 2), ("minus-one-default", -1), ("minus-two", -2),
       ("one", 1)]


@pytest.mark.parametrize("case,rf", RFS, ids=[c for c, _ in RFS])
def test_replication_factor(pair, case, rf):
    name = pair.name("rf")
    v = pair.version("CreateTopics")
    k, s = pair.both("CreateTopics", v, _req(name, rf=rf))
    _compare_create(pair, "CreateTopics replication_factor=%d" % rf, k, s)


def test_assignments(pair):
    """Explicit replica assignment naming this node (node ids differ: each side names
    its own), and one naming a node that does not exist."""
    v = pair.version("CreateTopics")
    for case, node in (("own node", None), ("missing node", 999)):
        name = pair.name("asg")
        answers = []
        for peer, own in zip(pair.peers, pair.node_ids):
            req = _req(name, partitions=-1, rf=-1,
                       assignments=[{"PartitionIndex": 0, "BrokerIds": [own if node is None else node]}])
            answers.append(pair.call(peer, "CreateTopics", v, req))
        _compare_create(pair, "CreateTopics assignments, %s" % case, *answers)


CONFIGS = [
    ("valid", [("retention.ms", "3600000"), ("cleanup.policy", "compact")]),
    ("unknown-name", [("no.such.config", "1")]),
    ("invalid-long", [("retention.ms", "abc")]),
    ("below-min", [("retention.ms", "-2")]),
    ("invalid-enum", [("cleanup.policy", "bogus")]),
    ("invalid-ts-type", [("message.timestamp.type", "Whenever")]),
    ("null-value", [("retention.ms", None)]),
    ("segment-bytes-tiny", [("segment.bytes", "13")]),
    ("min-insync-zero", [("min.insync.replicas", "0")]),
    ("max-message-bytes", [("max.message.bytes", "2000")]),
    ("dirty-ratio-2", [("min.cleanable.dirty.ratio", "2")]),
    ("compact-delete", [("cleanup.policy", "compact,delete")]),
    ("unclean-true", [("unclean.leader.election.enable", "true")]),
    ("throttled-replicas", [("leader.replication.throttled.replicas", "0:1,1:2"),
                            ("follower.replication.throttled.replicas", "*")]),
    ("throttled-replicas-invalid", [("follower.replication.throttled.replicas", "0:-1")]),
]


@pytest.mark.parametrize("case,configs", CONFIGS, ids=[c for c, _ in CONFIGS])
def test_configs(pair, case, configs):
    name = pair.name("cfg")
    v = pair.version("CreateTopics")
    k, s = pair.both("CreateTopics", v, _req(name, configs=configs))
    _compare_create(pair, "CreateTopics configs %s" % case, k, s)


COMPRESSION = ["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd", "brotli"]


@pytest.mark.parametrize("codec", COMPRESSION)
def test_compression_type_config(pair, codec):
    name = pair.name("comp")
    v = pair.version("CreateTopics")
    k, s = pair.both("CreateTopics", v, _req(name, configs=[("compression.type", codec)]))
    _compare_create(pair, "CreateTopics compression.type=%s" % codec, k, s)


@pytest.mark.parametrize("case,kw", [
    ("valid", {}),
    ("bad-partitions", {"partitions": 0}),
    ("bad-rf", {"rf": 2}),
    ("bad-config", {"configs": [("retention.ms", "x")]}),
    ("bad-name", {"name": ".."}),
])
def test_validate_only(pair, case, kw):
    name = kw.pop("name", None) or pair.name("vo")
    v = pair.version("CreateTopics")
    k, s = pair.both("CreateTopics", v, _req(name, validate_only=True, **kw))
    _compare_create(pair, "CreateTopics validate_only %s" % case, k, s)
    # Nothing was created on either side.
    mv = pair.version("Metadata", hi=8)
    pair.same("Metadata after validate_only", "Metadata", mv,
              {"Topics": [{"Name": name}], "AllowAutoTopicCreation": False})


def test_mixed_request(pair):
    """One valid and several invalid topics in one request: each answered on its own."""
    v = pair.version("CreateTopics")
    good = pair.name("mix")
    req = {"Topics": [], "TimeoutMs": 30000}
    for name, n, rf, cfg in ((good, 2, 1, []), ("..", 1, 1, []), (pair.name("mix"), 0, 1, []),
                             (pair.name("mix"), 1, 3, []),
                             (pair.name("mix"), 1, 1, [("retention.ms", "q")])):
        req["Topics"].append({"Name": name, "NumPartitions": n, "ReplicationFactor": rf,
                              "Assignments": [],
                              "Configs": [{"Name": a, "Value": b} for a, b in cfg]})
    k, s = pair.both("CreateTopics", v, req)
    _compare_create(pair, "CreateTopics mixed", k, s)


@pytest.mark.parametrize("version", ["lowest", "v4"])
def test_older_versions(pair, version):
    """The lowest common version, and v4 (the first with -1 defaults)."""
    lo, hi = pair.versions("CreateTopics")
    v = lo if version == "lowest" else max(lo, 4)
    for n, rf in ((1, 1), (-1, -1), (0, 1)):
        if v < 4 and (n < 0 or rf < 0):
            continue
        name = pair.name("old")
        k, s = pair.both("CreateTopics", v, _req(name, partitions=n, rf=rf))
        _compare_create(pair, "CreateTopics v%d partitions=%d rf=%d" % (v, n, rf), k, s)
