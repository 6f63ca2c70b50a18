"""DescribeConfigs, AlterConfigs and IncrementalAlterConfigs on topics and on the
broker: values, sources, synonyms, read-only flags, types and documentation of the
configs both brokers know, and the error codes of the error paths."""
import time

import pytest

import configs_util
import kdiff
from kdiff import gap, known

TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3

# Broker configs whose values name this machine's ports, directories or ids, or that
# the two test harnesses set differently by necessity (each side's own address and
# data directory): their values are not compared.
BROKER_VALUE_IGNORE = {
    "listeners", "advertised.listeners", "log.dirs", "log.dir", "controller.quorum.voters",
    "node.id", "broker.id", "controller.listener.names", "listener.security.protocol.map",
    "inter.broker.listener.name", "process.roles", "metadata.log.dir",
}


def _describe(pair, resources, synonyms=True, doc=True, version=None):
    v = version if version is not None else pair.version("DescribeConfigs")
    req = {"Resources": [{"ResourceType": t, "ResourceName": n, "ConfigurationKeys": keys}
                         for t, n, keys in resources],
           "IncludeSynonyms": synonyms and v >= 1, "IncludeDocumentation": doc and v >= 3}
    return v, pair.both("DescribeConfigs", v, req)


def _compare_describe(pair, what, k, s, kind="topic", aspects=configs_util.ASPECTS, **kw):
    pair.compare(what, k, s, ignore=("Results[].Configs",))
    for kr, sr in zip(k["Results"], s["Results"]):
        if kr["ErrorCode"] == 0 and sr["ErrorCode"] == 0:
            configs_util.compare_configs(what, kr["Configs"], sr["Configs"], kind=kind,
                                         aspects=aspects, **kw)


def _check_after(pair, what, name, touched):
    """After an alteration: the touched configs of the topic have the same value and
    source on both sides (unchanged after validate_only or an error)."""
    # Kafka's brokers apply a config change when the controller's record reaches
    # their metadata cache, a moment after the answer: retry for a few seconds.
    deadline = time.monotonic() + 5
    while True:
        dv, (dk, ds) = _describe(pair, [(TOPIC, name, None)], synonyms=False, doc=False)
        try:
            _compare_describe(pair, what, dk, ds, aspects=("values", "null-values", "overridden"),
                              set_here=set(touched), only_names=set(touched))
            return
        except kdiff.Difference:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


TOPIC_SET = {"segment.bytes": "1048576", "cleanup.policy": "compact", "max.message.bytes": "500000"}


@pytest.fixture(scope="module")
def described_topic(pair):
    """One topic with three configs set, described at the highest common version with
    synonyms and documentation."""
    name = pair.create_topic(pair.name("dc"), configs=TOPIC_SET)
    v, (k, s) = _describe(pair, [(TOPIC, name, None)])
    pair.compare("DescribeConfigs v%d topic" % v, k, s, ignore=("Results[].Configs",))
    return v, k, s


@pytest.mark.parametrize("aspect", configs_util.ASPECTS)
def test_describe_topic(pair, described_topic, aspect):
    v, k, s = described_topic
    configs_util.compare_configs("DescribeConfigs v%d topic, %s" % (v, aspect),
                                 k["Results"][0]["Configs"], s["Results"][0]["Configs"],
                                 aspects=(aspect,), set_here=set(TOPIC_SET))


def test_describe_topic_lowest_version(pair):
    lo, hi = pair.versions("DescribeConfigs")
    name = pair.create_topic(pair.name("dc"), configs=TOPIC_SET)
    v, (k, s) = _describe(pair, [(TOPIC, name, None)], version=lo, synonyms=False)
    _compare_describe(pair, "DescribeConfigs v%d topic" % v, k, s,
                      aspects=("values", "null-values", "read_only", "sensitive"))


def test_describe_topic_some_keys(pair):
    name = pair.create_topic(pair.name("dc"))
    v, (k, s) = _describe(pair, [(TOPIC, name, ["retention.ms", "no.such.config", "cleanup.policy"])])
    _compare_describe(pair, "DescribeConfigs topic, named keys", k, s,
                      aspects=("values", "null-values", "read_only", "sensitive", "types"))
    pair.compare("DescribeConfigs topic, named keys: names",
                 sorted(c["Name"] for c in k["Results"][0]["Configs"]),
                 sorted(c["Name"] for c in s["Results"][0]["Configs"]))


def test_describe_topic_empty_key_list(pair):
    """An empty ConfigurationKeys list asks for every config, as null does."""
    name = pair.create_topic(pair.name("dc"))
    _, (k_all, s_all) = _describe(pair, [(TOPIC, name, None)])
    _, (k, s) = _describe(pair, [(TOPIC, name, [])])
    _compare_describe(pair, "DescribeConfigs topic, empty key list", k, s,
                      aspects=("values", "sources", "synonyms"))
    for what, everything, empty in (("kafka", k_all, k), ("samsa", s_all, s)):
        pair.compare("DescribeConfigs topic, %s: empty key list lists what null does" % what,
                     sorted(c["Name"] for c in everything["Results"][0]["Configs"]),
                     sorted(c["Name"] for c in empty["Results"][0]["Configs"]))


@pytest.mark.parametrize("case,rtype,rname", [
    ("unknown-topic", TOPIC, "no-such-topic-dc"),
    ("invalid-topic-name", TOPIC, "bad/name"),
    ("empty-topic-name", TOPIC, ""),
    ("dot-dot-topic-name", TOPIC, ".."),
    ("unknown-broker", BROKER, "999"),
    ("non-numeric-broker", BROKER, "abc"),
    ("broker-name-with-blank", BROKER, " 1"),
    ("logger-empty-name", BROKER_LOGGER, ""),
    ("logger-non-numeric", BROKER_LOGGER, "abc"),
    ("logger-unknown-broker", BROKER_LOGGER, "999"),
    ("unknown-resource-type", 99, "x"),
    ("resource-type-0", 0, "x"),
])
def test_describe_errors(pair, case, rtype, rname):
    v, (k, s) = _describe(pair, [(rtype, rname, None)])
    _compare_describe(pair, "DescribeConfigs %s" % case, k, s)


@pytest.fixture(scope="module")
def described_broker(pair):
    answers = []
    v = pair.version("DescribeConfigs")
    for peer, node in zip(pair.peers, pair.node_ids):
        req = {"Resources": [{"ResourceType": BROKER, "ResourceName": str(node),
                              "ConfigurationKeys": None}],
               "IncludeSynonyms": True, "IncludeDocumentation": True}
        answers.append(pair.call(peer, "DescribeConfigs", v, req))
    k, s = answers
    pair.compare("DescribeConfigs broker", k, s, ignore=("Results[].Configs", "Results[].ResourceName"))
    return v, k, s


@pytest.mark.parametrize("aspect", configs_util.ASPECTS)
def test_describe_broker(pair, described_broker, aspect):
    """The broker's own configs, for those both list. Values naming addresses, paths or
    node ids are not compared (BROKER_VALUE_IGNORE); read-only flags differ on purpose
    (KNOWN_DIFFERENCES)."""
    v, k, s = described_broker
    skip = BROKER_VALUE_IGNORE if aspect in ("values", "null-values", "synonyms") else ()
    configs_util.compare_configs("DescribeConfigs v%d broker, %s" % (v, aspect),
                                 k["Results"][0]["Configs"], s["Results"][0]["Configs"],
                                 aspects=(aspect,), kind="broker", skip_names=skip)


def test_describe_broker_default_resource(pair):
    """ResourceName "" is the cluster-wide default broker resource."""
    v, (k, s) = _describe(pair, [(BROKER, "", None)])
    _compare_describe(pair, "DescribeConfigs broker ''", k, s, kind="broker",
                      aspects=("values", "sources"))


def test_describe_broker_logger(pair):
    answers = []
    v = pair.version("DescribeConfigs")
    for peer, node in zip(pair.peers, pair.node_ids):
        req = {"Resources": [{"ResourceType": BROKER_LOGGER, "ResourceName": str(node),
                              "ConfigurationKeys": ["root"]}],
               "IncludeSynonyms": False, "IncludeDocumentation": False}
        answers.append(pair.call(peer, "DescribeConfigs", v, req))
    pair.compare("DescribeConfigs broker logger", *answers,
                 ignore=("Results[].Configs", "Results[].ResourceName"))


# ---------------------------------------------------------------- IncrementalAlterConfigs


def _iac(pair, resources, validate_only=False):
    v = pair.version("IncrementalAlterConfigs")
    req = {"Resources": [{"ResourceType": t, "ResourceName": n,
                          "Configs": [{"Name": a, "ConfigOperation": op, "Value": val}
                                      for a, op, val in ops]}
                         for t, n, ops in resources],
           "ValidateOnly": validate_only}
    return v, pair.both("IncrementalAlterConfigs", v, req)


IAC_TOPIC_CASES = [
    ("set-valid", [("retention.ms", SET, "1000")], None),
    ("set-unknown-config", [("no.such.config", SET, "1")], None),
    ("set-invalid-value", [("retention.ms", SET, "abc")], None),
    ("set-below-min", [("segment.bytes", SET, "1")], None),
    ("set-null-value", [("retention.ms", SET, None)], None),
    ("delete", [("retention.ms", DELETE, None)], None),
    ("delete-unknown-config", [("no.such.config", DELETE, None)], None),
    ("append-list", [("cleanup.policy", APPEND, "compact")], None),
    ("append-non-list", [("retention.ms", APPEND, "5")], None),
    ("subtract-list", [("cleanup.policy", SUBTRACT, "compact")], None),
    ("subtract-to-empty", [("cleanup.policy", SUBTRACT, "delete")], None),
    ("subtract-non-list", [("retention.ms", SUBTRACT, "5")], None),
    ("bad-operation", [("retention.ms", 7, "5")], None),
    ("same-config-twice", [("retention.ms", SET, "1000"), ("retention.ms", SET, "2000")], None),
    ("unclean-true", [("unclean.leader.election.enable", SET, "true")], None),
    ("null-value-bad-operation", [("retention.ms", 7, None)], None),
    ("delete-unknown-set-invalid", [("no.such.config", DELETE, None), ("retention.ms", SET, "abc")],
     None),
    ("set-empty-list", [("cleanup.policy", SET, "")], None),
    ("set-list-blanks-repeats", [("cleanup.policy", SET, " compact , delete ,compact")], None),
    ("set-list-empty-item", [("cleanup.policy", SET, "delete,")], None),
    ("set-list-wrong-case", [("cleanup.policy", SET, "Compact")], None),
    ("set-throttled-replicas", [("leader.replication.throttled.replicas", SET, "0:1,1:2"),
                                ("follower.replication.throttled.replicas", SET, "*")], None),
    ("set-throttled-replicas-odd",
     [("leader.replication.throttled.replicas", SET, " 0:1 ,,1:2,0:1,"),
      ("follower.replication.throttled.replicas", SET, " * ,")], None),
    ("set-throttled-replicas-invalid", [("follower.replication.throttled.replicas", SET, "0:x")],
     None),
    ("set-throttled-replicas-star-and-list",
     [("leader.replication.throttled.replicas", SET, "*,0:1")], None),
    ("append-throttled-replicas", [("leader.replication.throttled.replicas", APPEND, "2:3")], None),
]


def _iac_known(case):
    if case == "bad-operation":
        return {"Responses[].ErrorCode": (known("iac-unknown-operation"), -1, 42)}
    return None


def _cases_with_modes(cases, apply_only_gaps=()):
    """(case, ops, gap) x (apply, validate-only) as pytest params; gaps named in
    apply_only_gaps show only when the change is applied."""
    out = []
    for c, o, g in cases:
        for vo in (False, True):
            marks = [gap(g)] if g and not (vo and g in apply_only_gaps) else []
            out.append(pytest.param(c, o, vo, marks=marks,
                                    id="%s-%s" % (c, "validate-only" if vo else "apply")))
    return out


@pytest.mark.parametrize("case,ops,validate_only",
                         _cases_with_modes(IAC_TOPIC_CASES))
def test_incremental_alter_topic(pair, case, ops, validate_only):
    name = pair.create_topic(pair.name("iac"), configs={"retention.ms": "7200000"})
    v, (k, s) = _iac(pair, [(TOPIC, name, ops)], validate_only=validate_only)
    pair.compare("IncrementalAlterConfigs topic %s" % case, k, s, known_paths=_iac_known(case))
    _check_after(pair, "DescribeConfigs after IncrementalAlterConfigs %s" % case, name,
                 {"retention.ms", "cleanup.policy", "segment.bytes"} | {a for a, _, _ in ops})


def test_incremental_alter_unknown_topic(pair):
    v, (k, s) = _iac(pair, [(TOPIC, pair.name("missing"), [("retention.ms", SET, "1000")])])
    pair.compare("IncrementalAlterConfigs unknown topic", k, s)


def test_incremental_alter_same_resource_twice(pair):
    """Both entries are refused; another resource of the request is applied."""
    name = pair.create_topic(pair.name("iac"))
    other = pair.create_topic(pair.name("iac"))
    ops = [("retention.ms", SET, "1000")]
    v, (k, s) = _iac(pair, [(TOPIC, name, ops), (TOPIC, other, ops), (TOPIC, name, ops)])
    pair.compare("IncrementalAlterConfigs same resource twice", k, s)
    for t in (name, other):
        _check_after(pair, "DescribeConfigs after IncrementalAlterConfigs same resource twice",
                     t, {"retention.ms"})


@pytest.mark.parametrize("rname", ["bad/name", "", "x" * 250],
                         ids=["bad-char", "empty", "too-long"])
def test_incremental_alter_invalid_topic_name(pair, rname):
    v, (k, s) = _iac(pair, [(TOPIC, rname, [("retention.ms", SET, "1000")])])
    pair.compare("IncrementalAlterConfigs topic %r" % rname[:12], k, s)


def test_incremental_alter_unknown_resource_type(pair):
    v, (k, s) = _iac(pair, [(99, "x", [("a", SET, "b")])])
    pair.compare("IncrementalAlterConfigs resource type 99", k, s)


# (case, ops, Kafka's and Samsa's codes: they differ on purpose, Samsa refuses every
# broker config change with INVALID_CONFIG; known difference alter-broker-config-refused)
BROKER_CASES = [
    ("read-only-config", [("node.id", SET, "5")], (42, 40)),
    ("read-only-log-dirs", [("log.dirs", SET, "/tmp/x")], (42, 40)),
    ("unknown-config", [("no.such.broker.config", SET, "1")], (0, 40)),
    ("dynamic-config", [("log.cleaner.threads", SET, "2")], (0, 40)),
    ("dynamic-invalid-value", [("log.cleaner.threads", SET, "abc")], (42, 40)),
    ("topic-config-on-broker", [("retention.ms", SET, "1000")], (0, 40)),
    # What kafka-reassign-partitions --throttle sets on every broker of a move.
    ("replication-throttle", [("leader.replication.throttled.rate", SET, "1000000"),
                              ("follower.replication.throttled.rate", SET, "1000000")], (0, 40)),
]


@pytest.mark.parametrize("case,ops,codes", BROKER_CASES, ids=[c for c, _, _ in BROKER_CASES])
def test_incremental_alter_broker(pair, case, ops, codes):
    """Always validate_only: nothing is changed on the broker shared by all tests."""
    answers = []
    v = pair.version("IncrementalAlterConfigs")
    for peer, node in zip(pair.peers, pair.node_ids):
        req = {"Resources": [{"ResourceType": BROKER, "ResourceName": str(node),
                              "Configs": [{"Name": a, "ConfigOperation": op, "Value": val}
                                          for a, op, val in ops]}],
               "ValidateOnly": True}
        answers.append(pair.call(peer, "IncrementalAlterConfigs", v, req))
    kp = None
    if codes:
        kp = {"Responses[].ErrorCode": (known("alter-broker-config-refused"),) + codes}
    pair.compare("IncrementalAlterConfigs broker %s" % case, *answers,
                 ignore=("Responses[].ResourceName",), known_paths=kp)


def test_incremental_alter_broker_unknown_node(pair):
    v, (k, s) = _iac(pair, [(BROKER, "999", [("log.cleaner.threads", SET, "2")])], validate_only=True)
    pair.compare("IncrementalAlterConfigs broker 999", k, s,
                 known_paths={"Responses[].ErrorCode": (known("alter-broker-config-refused"), 42, 40)})


# ---------------------------------------------------------------- AlterConfigs (legacy)


def _ac(pair, resources, validate_only=False):
    v = pair.version("AlterConfigs")
    req = {"Resources": [{"ResourceType": t, "ResourceName": n,
                          "Configs": [{"Name": a, "Value": val} for a, val in cfgs]}
                         for t, n, cfgs in resources],
           "ValidateOnly": validate_only}
    return v, pair.both("AlterConfigs", v, req)


AC_TOPIC_CASES = [
    ("valid", [("retention.ms", "1000"), ("cleanup.policy", "compact")], None),
    ("empty-set", [], None),
    ("unknown-config", [("no.such.config", "1")], None),
    ("invalid-value", [("retention.ms", "abc")], None),
    ("null-value", [("retention.ms", None)], None),
    ("duplicate-name", [("retention.ms", "1000"), ("retention.ms", "2000")], None),
]


@pytest.mark.parametrize("case,cfgs,validate_only", _cases_with_modes(AC_TOPIC_CASES))
def test_alter_configs_topic(pair, case, cfgs, validate_only):
    """AlterConfigs replaces the topic's whole set: segment.bytes, set at creation,
    goes back to its default unless named again."""
    name = pair.create_topic(pair.name("ac"), configs={"segment.bytes": "1048576"})
    v, (k, s) = _ac(pair, [(TOPIC, name, cfgs)], validate_only=validate_only)
    pair.compare("AlterConfigs topic %s" % case, k, s)
    _check_after(pair, "DescribeConfigs after AlterConfigs %s" % case, name,
                 {"segment.bytes", "cleanup.policy"} | {a for a, _ in cfgs})


def test_alter_configs_unknown_topic(pair):
    v, (k, s) = _ac(pair, [(TOPIC, pair.name("missing"), [("retention.ms", "1000")])])
    pair.compare("AlterConfigs unknown topic", k, s)


@pytest.mark.parametrize("rname", ["bad/name", ""])
def test_alter_configs_invalid_topic_name(pair, rname):
    v, (k, s) = _ac(pair, [(TOPIC, rname, [("retention.ms", "1000")])])
    pair.compare("AlterConfigs topic %r" % rname, k, s)


@pytest.mark.parametrize("case,cfgs,codes", [
    ("read-only", [("node.id", "5")], (42, 40)),
    ("dynamic", [("log.cleaner.threads", "2")], (0, 40)),
    ("unknown", [("no.such.broker.config", "1")], (0, 40)),
])
def test_alter_configs_broker(pair, case, cfgs, codes):
    answers = []
    v = pair.version("AlterConfigs")
    for peer, node in zip(pair.peers, pair.node_ids):
        req = {"Resources": [{"ResourceType": BROKER, "ResourceName": str(node),
                              "Configs": [{"Name": a, "Value": val} for a, val in cfgs]}],
               "ValidateOnly": True}
        answers.append(pair.call(peer, "AlterConfigs", v, req))
    kp = None
    if codes:
        kp = {"Responses[].ErrorCode": (known("alter-broker-config-refused"),) + codes}
    pair.compare("AlterConfigs broker %s" % case, *answers, ignore=("Responses[].ResourceName",),
                 known_paths=kp)
