"""Comparison of Kafka's and Samsa's answers, and the one place where every
difference between them is written down.

KNOWN_DIFFERENCES: where Samsa differs from Kafka on purpose (or where Kafka 4.4's
own answer is an internal error or no answer). Each entry has a reason; a test that
meets one names it (compare(known_paths=...), KNOWN_CONFIG_DIFFERENCES, or known()),
and the difference is then required to be still there: when it disappears the test
fails and asks for the entry to be removed, here and in docs/compatibility.md.

GAPS: where Samsa differs by bug (or by a missing feature it should have). Tests
for them are marked xfail(strict=True) with gap("name"), so `make test` stays green
while the gap is open and turns red (XPASS) the day it is closed, asking for the
mark to be removed.
"""
import fnmatch
import pprint
import re

import pytest

import kcodec


class Difference(AssertionError):
    """Samsa's answer differs from Kafka's (the only failure a gap() mark accepts)."""


# ---------------------------------------------------------------- known differences

KNOWN_DIFFERENCES = {
    "metadata-zero-id-null-name": (
        "Metadata v10+ naming a topic by the zero topic id with a null name: Kafka 4.4 "
        "fails the whole request (UNKNOWN_SERVER_ERROR, -1, for the topic, no brokers, "
        "controller -1); Samsa answers INVALID_REQUEST (42) for that topic."),
    "fetch-whole-batches-only": (
        "Fetch where fewer bytes are left (of max_bytes or partition_max_bytes) than the "
        "next batch's size, other than for the response's first batch: Kafka returns "
        "exactly the bytes left, ending the partition's data with the truncated start of "
        "that batch; Samsa returns whole batches only (clients drop a partial batch "
        "either way; docs/compatibility.md, Fetch)."),
    "no-dynamic-broker-configs": (
        "Samsa has no dynamic broker configs. A fresh Kafka 4.4 KRaft cluster records "
        "min.insync.replicas as a cluster-wide dynamic default when it is formatted, so "
        "Kafka reports that config's source as DYNAMIC_DEFAULT_BROKER_CONFIG (with that "
        "synonym first); Samsa reports DEFAULT_CONFIG (or STATIC_BROKER_CONFIG when set "
        "in its properties file)."),
    "alter-broker-config-refused": (
        "Broker configs cannot be changed at runtime: IncrementalAlterConfigs and "
        "AlterConfigs of a dynamically updatable broker config (e.g. log.cleaner.threads) "
        "answer INVALID_CONFIG (40) in Samsa; Kafka accepts them "
        "(docs/compatibility.md, DescribeConfigs)."),
    "broker-config-read-only": (
        "DescribeConfigs of the broker: Samsa marks every broker config read-only (none "
        "can be changed at runtime); Kafka marks its dynamically updatable ones "
        "read_only=false."),
    "max-connections-per-listener": (
        "max.connections defaults to 10000 per listener in Samsa; Kafka's default is "
        "2147483647 broker-wide (docs/configuration.md, max.connections)."),
    "flush-scheduler-interval": (
        "log.flush.scheduler.interval.ms defaults to 1000 in Samsa, 9223372036854775807 in "
        "Kafka. Kafka checks flush.ms only at that interval, so a topic's flush.ms does "
        "nothing there unless this is lowered too; Samsa checks every second so that "
        "flush.ms works when set. (Kafka also makes an unset log.flush.interval.ms take "
        "this value; Samsa does not: unset means never, which is Kafka's default too.)"),
    "fetch-max-bytes-default": (
        "fetch.max.bytes defaults to 1 MiB in Samsa, 57671680 in Kafka "
        "(docs/configuration.md); both test brokers set 57671680, so only the "
        "DEFAULT_CONFIG synonym shows the two defaults."),
    "samsa-broker-config-names": (
        "DescribeConfigs of the broker lists log.level (Samsa's log threshold; Kafka "
        "configures logging through log4j, not broker configs) and "
        "producer.id.expiration.check.interval.ms (an internal Kafka config that Kafka "
        "does not list)."),
    "static-replication-throttle": (
        "DescribeConfigs of the broker lists leader.replication.throttled.rate and "
        "follower.replication.throttled.rate always, read-only, from the properties file "
        "or their default (9223372036854775807); Kafka takes them only as dynamic broker "
        "configs and lists them only once set (docs/configuration.md)."),
    "produce-several-batches": (
        "A Produce request may carry several record batches for one partition in Samsa "
        "(stored in order, answered with the first base offset); Kafka refuses that with "
        "INVALID_RECORD (87) (docs/compatibility.md, Produce)."),
    "produce-null-records": (
        "Produce with a null record set: Samsa answers INVALID_RECORD (87); Kafka 4.4 "
        "sends no answer at all (checked for 3 s)."),
    "quorum-one-listener": (
        "DescribeQuorum v2 names each voter's listener: Kafka its controller listener "
        "(controller.listener.names, e.g. CONTROLLER, on a port of its own); Samsa's one "
        "node serves clients and the quorum on one listener, and names that "
        "(e.g. PLAINTEXT) (docs/compatibility.md, DescribeQuorum)."),
    "iac-unknown-operation": (
        "IncrementalAlterConfigs with an undefined ConfigOperation (e.g. 7): Kafka 4.4 "
        "answers UNKNOWN_SERVER_ERROR (-1) (an exception inside the broker); Samsa answers "
        "INVALID_REQUEST (42)."),
}

# Known differences inside config lists (CreateTopics v5+ and DescribeConfigs results),
# used by configs_util.compare_configs:
#   (resource kind, config name, aspect) -> known difference name: that aspect of that
#       config differs (and must, unless the test itself set the config);
#   (resource kind, "*", aspect) -> (name, kafka value, samsa value): any config may
#       differ in that aspect exactly so (and at least one must);
#   (resource kind, config name, "extra") -> name: a config Samsa lists and Kafka does
#       not (reported as information).
KNOWN_CONFIG_DIFFERENCES = {
    ("topic", "min.insync.replicas", "sources"): "no-dynamic-broker-configs",
    ("topic", "min.insync.replicas", "synonyms"): "no-dynamic-broker-configs",
    ("broker", "min.insync.replicas", "sources"): "no-dynamic-broker-configs",
    ("broker", "min.insync.replicas", "synonyms"): "no-dynamic-broker-configs",
    ("broker", "*", "read_only"): ("broker-config-read-only", False, True),
    ("broker", "max.connections", "values"): "max-connections-per-listener",
    ("broker", "max.connections", "synonyms"): "max-connections-per-listener",
    ("broker", "log.flush.scheduler.interval.ms", "values"): "flush-scheduler-interval",
    ("broker", "log.flush.scheduler.interval.ms", "synonyms"): "flush-scheduler-interval",
    ("broker", "fetch.max.bytes", "synonyms"): "fetch-max-bytes-default",
    ("broker", "log.level", "extra"): "samsa-broker-config-names",
    ("broker", "producer.id.expiration.check.interval.ms", "extra"): "samsa-broker-config-names",
    ("broker", "leader.replication.throttled.rate", "extra"): "static-replication-throttle",
    ("broker", "follower.replication.throttled.rate", "extra"): "static-replication-throttle",
}

# ---------------------------------------------------------------- gaps (bugs)

GAPS = {
}


def gap(name):
    """pytest mark for a case that shows a Samsa bug (see GAPS)."""
    return pytest.mark.xfail(strict=True, raises=Difference,
                             reason="Samsa gap %s: %s" % (name, GAPS[name]))


def known(name):
    assert name in KNOWN_DIFFERENCES, "known difference %r is not in KNOWN_DIFFERENCES" % name
    return name


# ---------------------------------------------------------------- normalisation

# Fields whose values legitimately differ between two clusters: ignored everywhere.
GLOBAL_IGNORE = (
    "*ThrottleTimeMs",
    "*ErrorMessage",          # free-form text (error codes are compared)
    "*BatchIndexErrorMessage",
    "ClusterId",
    "*.Host", "Host", "*.Port", "Port", "*.Rack",
    "*LogAppendTimeMs",       # both -1 for CreateTime topics; kept separately where needed
    "*Documentation",         # compared by the configs tests on their own terms
)

NODE_FIELDS = {"NodeId", "LeaderId", "ControllerId", "ReplicaId"}
NODE_LISTS = {"ReplicaNodes", "IsrNodes", "OfflineReplicas", "BrokerIds"}


def normalise(obj, node_id):
    """Replaces this broker's node id by "<node>" and non-zero topic ids by "<uuid>"."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in NODE_FIELDS and isinstance(v, int) and v == node_id:
                v = "<node>"
            elif k in NODE_LISTS and isinstance(v, list):
                v = ["<node>" if x == node_id else x for x in v]
            elif k == "TopicId" and isinstance(v, str):
                v = "<uuid>" if v != kcodec.ZERO_UUID else v
            else:
                v = normalise(v, node_id)
            out[k] = v
        return out
    if isinstance(obj, list):
        return [normalise(x, node_id) for x in obj]
    return obj


_IDX = re.compile(r"\[\d+\]")


def _generic(path):
    return _IDX.sub("[]", path)


def _matches(path, patterns):
    """fnmatch, with '[]' in a pattern standing for any array index."""
    g = _generic(path)
    return any(fnmatch.fnmatchcase(g, p.replace("[]", "[[]]")) or fnmatch.fnmatchcase(path, p)
               for p in patterns)


def diff(k, s, ignore=(), path=""):
    """Yields (path, kafka_value, samsa_value) for every difference."""
    if ignore and path and _matches(path, ignore):
        return
    if isinstance(k, dict) and isinstance(s, dict):
        for key in list(k) + [x for x in s if x not in k]:
            p = "%s.%s" % (path, key) if path else str(key)
            if key not in k or key not in s:
                if not _matches(p, ignore):
                    yield p, k.get(key, "<absent>"), s.get(key, "<absent>")
                continue
            yield from diff(k[key], s[key], ignore, p)
        return
    if isinstance(k, list) and isinstance(s, list):
        if len(k) != len(s):
            yield path + "#len", len(k), len(s)
        for i, (a, b) in enumerate(zip(k, s)):
            yield from diff(a, b, ignore, "%s[%d]" % (path, i))
        return
    if k != s:
        yield path, k, s


def _short(obj, limit=6000):
    text = pprint.pformat(obj, width=110, compact=True)
    return text if len(text) <= limit else text[:limit] + "\n... (%d more chars)" % (len(text) - limit)


def compare(what, kafka, samsa, ignore=(), known_paths=None, node_ids=(None, None)):
    """Asserts that two decoded responses agree after normalisation.

    ignore: extra path patterns to skip ('Topics[].Partitions[].HighWatermark').
    known_paths: {pattern: name} or {pattern: (name, kafka value, samsa value)}:
      differences at those paths (with exactly those values, when given) are the known
      difference `name` (KNOWN_DIFFERENCES); they are allowed, and required: each named
      known difference must show at least once.
    """
    known_paths = dict(known_paths or {})
    for spec in known_paths.values():
        known(spec if isinstance(spec, str) else spec[0])
    kn = normalise(kafka, node_ids[0])
    sn = normalise(samsa, node_ids[1])
    ignore = tuple(GLOBAL_IGNORE) + tuple(ignore)
    diffs, seen = [], set()
    for p, kv, sv in diff(kn, sn, ignore):
        hit = []
        for pat, spec in known_paths.items():
            name, want = (spec, None) if isinstance(spec, str) else (spec[0], spec[1:])
            if _matches(p.replace("#len", ""), [pat]) and (want is None or (kv, sv) == tuple(want)):
                hit.append(name)
        if hit:
            seen.update(hit)
            continue
        diffs.append((p, kv, sv))
    msgs = []
    if diffs:
        msgs.append("%s: Samsa's answer differs from Kafka's:\n%s" % (
            what, "\n".join("  %s: kafka=%r samsa=%r" % d for d in diffs)))
    gone = {spec if isinstance(spec, str) else spec[0] for spec in known_paths.values()} - seen
    if gone:
        msgs.append("%s: known difference(s) %s no longer seen: Samsa now answers as Kafka "
                    "does here; remove them from KNOWN_DIFFERENCES (kdiff.py) and "
                    "docs/compatibility.md" % (what, sorted(gone)))
    if msgs:
        raise Difference("\n".join(msgs) + "\n--- kafka:\n%s\n--- samsa:\n%s"
                         % (_short(kafka), _short(samsa)))


# ---------------------------------------------------------------- information

INFO = []  # lines printed at the end of the run (pytest_terminal_summary)


def info(line):
    INFO.append(line)
