"""Comparison of config lists (CreateTopics v5+ results, DescribeConfigs results),
one aspect at a time so that each known difference or gap stays in its own test.

Kafka knows more configs than Samsa. For a config both list, each aspect must agree:
  values     the value (null and "" taken as equal: see null-values)
  null-values  whether the value is null
  read_only, sensitive, sources, types  the flags / ConfigSource / ConfigType
  overridden whether the resource itself sets the config (not in ASPECTS: used to
             check the outcome of alterations)
  synonyms   the synonym list (name, value, source), in order
  docs       whether documentation is present (the text is free-form)
A config only Kafka lists is reported as information. A config only Samsa lists is a
failure (Samsa claims a config Kafka does not have) unless it is one of Samsa's own
(`samsa.` prefix) or listed in kdiff.KNOWN_CONFIG_DIFFERENCES under "extra".
"""
import kdiff

_reported = set()

# ConfigSource numbers (DescribeConfigs v1+).
SOURCES = {-1: "UNKNOWN", 1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG",
           3: "DYNAMIC_DEFAULT_BROKER_CONFIG", 4: "STATIC_BROKER_CONFIG", 5: "DEFAULT_CONFIG",
           6: "DYNAMIC_BROKER_LOGGER_CONFIG", 7: "CLIENT_METRICS_CONFIG", 8: "GROUP_CONFIG"}
TYPES = {0: "UNKNOWN", 1: "BOOLEAN", 2: "STRING", 3: "INT", 4: "SHORT", 5: "LONG",
         6: "DOUBLE", 7: "LIST", 8: "CLASS", 9: "PASSWORD"}

ASPECTS = ("values", "null-values", "read_only", "sensitive", "sources", "types",
           "synonyms", "docs")


def _by_name(configs):
    out = {}
    for c in configs or []:
        assert c["Name"] not in out, "config %s listed twice" % c["Name"]
        out[c["Name"]] = c
    return out


def split(kconfigs, sconfigs, kind):
    """Returns (kafka-by-name, samsa-by-name, common names, names Samsa claims that
    Kafka does not list); reports the configs only one side lists as information."""
    k, s = _by_name(kconfigs), _by_name(sconfigs)
    for n in sorted(set(k) - set(s)):
        key = (kind, "kafka-only", n)
        if key not in _reported:
            _reported.add(key)
            kdiff.info("%s config only Kafka lists: %s = %r" % (kind, n, k[n].get("Value")))
    claimed = []
    for n in sorted(set(s) - set(k)):
        extra = kdiff.KNOWN_CONFIG_DIFFERENCES.get((kind, n, "extra"))
        if n.startswith("samsa.") or extra:
            key = (kind, "samsa-only", n)
            if key not in _reported:
                _reported.add(key)
                kdiff.info("%s config only Samsa lists (%s): %s = %r" % (
                    kind, extra or "its own", n, s[n].get("Value")))
        else:
            claimed.append(n)
    return k, s, sorted(set(k) & set(s)), claimed


def _aspect(c, aspect):
    """The value of one aspect of a config entry, or KeyError if the version lacks it."""
    if aspect == "values":
        return "" if c["Value"] is None else c["Value"]
    if aspect == "null-values":
        return c["Value"] is None
    if aspect == "read_only":
        return c["ReadOnly"]
    if aspect == "sensitive":
        return c["IsSensitive"]
    if aspect == "sources":
        if "ConfigSource" not in c:
            return c["IsDefault"]
        return SOURCES.get(c["ConfigSource"], c["ConfigSource"])
    if aspect == "overridden":  # set on the resource itself (topic or broker level)
        return c["ConfigSource"] in (1, 2) if "ConfigSource" in c else not c["IsDefault"]
    if aspect == "types":
        return TYPES.get(c["ConfigType"], c["ConfigType"])
    if aspect == "synonyms":
        return [(x["Name"], x["Value"], SOURCES.get(x["Source"], x["Source"])) for x in c["Synonyms"]]
    if aspect == "docs":
        return c["Documentation"] is not None
    raise AssertionError(aspect)


def compare_configs(what, kconfigs, sconfigs, aspects=ASPECTS, kind="topic", set_here=(),
                    skip_names=(), only_names=None):
    """Compares two config lists in the given aspects. Differences listed in
    kdiff.KNOWN_CONFIG_DIFFERENCES ((kind, name or "*", aspect) -> known difference)
    are accepted, and required, for configs not in set_here (those the test itself
    set on the resource); a "*" entry must show for at least one config."""
    k, s, common, claimed = split(kconfigs, sconfigs, kind)
    problems = []
    if claimed:
        problems.append("configs Samsa lists but Kafka does not: %s" % claimed)
    names = [n for n in common if n not in skip_names and (only_names is None or n in only_names)]
    for aspect in aspects:
        wildcard = kdiff.KNOWN_CONFIG_DIFFERENCES.get((kind, "*", aspect))
        wildcard_seen = False
        for n in names:
            try:
                kv, sv = _aspect(k[n], aspect), _aspect(s[n], aspect)
            except KeyError:
                continue  # this version has no such field
            specific = kdiff.KNOWN_CONFIG_DIFFERENCES.get((kind, n, aspect))
            if n in set_here:
                specific = None
            if kv != sv:
                if specific:
                    continue
                if wildcard and isinstance(wildcard, tuple) and (kv, sv) == wildcard[1:]:
                    wildcard_seen = True
                    continue
                problems.append("%s: %s: kafka=%r samsa=%r" % (n, aspect, kv, sv))
            elif specific:
                problems.append("%s: %s: known difference %s no longer seen (both %r): remove it "
                                "from kdiff.KNOWN_CONFIG_DIFFERENCES / KNOWN_DIFFERENCES and "
                                "docs/compatibility.md" % (n, aspect, specific, kv))
        if wildcard and not wildcard_seen and names:
            problems.append("%s: known difference %s no longer seen for any config" % (
                aspect, wildcard[0] if isinstance(wildcard, tuple) else wildcard))
    if problems:
        raise kdiff.Difference("%s: %d difference(s):\n  %s" % (what, len(problems), "\n  ".join(problems)))
    return common
