"""Metadata: known, unknown and auto-created topics with allow_auto_topic_creation
true and false, invalid names, internal topics, topic ids, several versions."""
import pytest

from kdiff import known

def _req(version, names, auto=False, topic_ops=False):
    r = {"Topics": None if names is None else [{"Name": n} for n in names]}
    if version >= 4:
        r["AllowAutoTopicCreation"] = auto
    if version >= 8:
        r["IncludeTopicAuthorizedOperations"] = topic_ops
    return r


def _versions(pair):
    lo, hi = pair.versions("Metadata")
    return sorted({lo, max(lo, min(hi, 4)), max(lo, min(hi, 9)), hi})


def test_existing_topic(pair):
    t = pair.create_topic(pair.name("md"), partitions=3)
    for v in _versions(pair):
        pair.same("existing topic", "Metadata", v, _req(v, [t]))


@pytest.mark.parametrize("auto", [False, True], ids=["no-auto-create", "auto-create"])
def test_unknown_topic(pair, auto):
    v = pair.version("Metadata")
    name = pair.name("mdu")
    k, s = pair.both("Metadata", v, _req(v, [name], auto=auto))
    if not auto:
        pair.compare("unknown topic, allow_auto_topic_creation=false", k, s)
        return
    # Both answer UNKNOWN_TOPIC_OR_PARTITION and create the topic afterwards.
    pair.compare("unknown topic, allow_auto_topic_creation=true", k, s)
    pair.wait_topic(pair.k, name, 1)
    pair.wait_topic(pair.s, name, 1)
    pair.same("auto-created topic afterwards", "Metadata", v, _req(v, [name]))


def test_unknown_topic_old_version_auto_creates(pair):
    """Before v4 there is no flag: requests for unknown topics auto-create them."""
    lo, hi = pair.versions("Metadata")
    v = max(lo, min(hi, 3))
    if v >= 4:
        pytest.fail("no common Metadata version below 4: %r" % ((lo, hi),))
    name = pair.name("mdo")
    k, s = pair.both("Metadata", v, _req(v, [name]))
    pair.compare("unknown topic, Metadata v%d" % v, k, s)
    pair.wait_topic(pair.k, name, 1)
    pair.wait_topic(pair.s, name, 1)


@pytest.mark.parametrize("case,name", [
    ("space", "bad name"), ("too-long", "x" * 250), ("dotdot", ".."), ("empty", ""),
])
@pytest.mark.parametrize("auto", [False, True], ids=["no-auto-create", "auto-create"])
def test_invalid_names(pair, case, name, auto):
    v = pair.version("Metadata")
    pair.same("invalid name %s" % case, "Metadata", v, _req(v, [name], auto=auto))


def test_internal_topic(pair):
    for v in _versions(pair):
        pair.same("__consumer_offsets", "Metadata", v, _req(v, ["__consumer_offsets"]))


def test_all_topics(pair):
    """A null topic list (v1+; an empty one in v0) is every topic: compare the topics
    this test created, and that both list __consumer_offsets as internal."""
    names = [pair.create_topic(pair.name("mda")) for _ in range(2)]
    for v in _versions(pair):
        req = _req(v, [] if v == 0 else None)
        k, s = pair.both("Metadata", v, req)
        pick = lambda r: sorted((t for t in r["Topics"] if t["Name"] in names + ["__consumer_offsets"]),
                                key=lambda t: t["Name"])
        pair.compare("all topics (Metadata v%d): ours" % v, pick(k), pick(s))
        pair.compare("all topics (Metadata v%d): the rest" % v, k, s, ignore=("Topics",))


def test_no_topics(pair):
    for v in _versions(pair):
        if v >= 1:
            pair.same("empty topic list", "Metadata", v, _req(v, []))


def test_duplicate_topic(pair):
    t = pair.create_topic(pair.name("mdd"))
    v = pair.version("Metadata")
    pair.same("same topic twice", "Metadata", v, _req(v, [t, t]))


def test_authorized_operations(pair):
    t = pair.create_topic(pair.name("mdo"))
    lo, hi = pair.versions("Metadata")
    for v in sorted({max(lo, min(hi, 8)), hi}):
        if v < 8:
            continue
        req = _req(v, [t], topic_ops=True)
        if v <= 10:
            req["IncludeClusterAuthorizedOperations"] = True
        pair.same("authorized operations requested", "Metadata", v, req)


def _topic_id(peer, v, name):
    md = peer.call("Metadata", v, _req(v, [name]))
    return md["Topics"][0]["TopicId"]


def test_by_topic_id(pair):
    v = pair.version("Metadata")
    if v < 10:
        pytest.fail("Metadata v10+ (topic ids) not common: %d" % v)
    t = pair.create_topic(pair.name("mdi"))
    answers = []
    for peer in pair.peers:
        tid = _topic_id(peer, v, t)
        answers.append(pair.call(peer, "Metadata", v, {
            "Topics": [{"TopicId": tid, "Name": None}], "AllowAutoTopicCreation": False}))
    pair.compare("Metadata by topic id", *answers)


def test_unknown_topic_id(pair):
    v = pair.version("Metadata")
    if v < 10:
        pytest.fail("Metadata v10+ (topic ids) not common: %d" % v)
    pair.same("Metadata unknown topic id", "Metadata", v, {
        "Topics": [{"TopicId": "0f0f0f0f-0000-4000-8000-000000000001", "Name": None}],
        "AllowAutoTopicCreation": False})


def test_zero_topic_id_null_name(pair):
    v = pair.version("Metadata")
    if v < 10:
        pytest.fail("Metadata v10+ (topic ids) not common: %d" % v)
    k, s = pair.both("Metadata", v, {
        "Topics": [{"TopicId": "00000000-0000-0000-0000-000000000000", "Name": None}],
        "AllowAutoTopicCreation": False})
    kd = known("metadata-zero-id-null-name")
    pair.compare("Metadata zero topic id and null name", k, s, known_paths={
        "Topics[].ErrorCode": (kd, -1, 42), "Topics[].Name": (kd, "", None),
        "Brokers*": kd, "ControllerId": kd})

