"""Topic and broker configs through confluent-kafka's AdminClient (issue 6).

What it proves (DescribeConfigs, IncrementalAlterConfigs, AlterConfigs, CreateTopics with configs):
  * describe_configs on a topic returns every Kafka 4.1 topic config with its value, source,
    is_default, is_read_only, is_sensitive and synonyms (topic override first, then the broker-level
    default it shadows); on the broker, read-only / dynamic / sensitive flags as Kafka sets them;
  * incremental_alter_configs SET / DELETE / APPEND / SUBTRACT (list configs such as cleanup.policy),
    validate_only changing nothing, legacy alter_configs replacing the whole override set;
  * bad input gets Kafka's per-resource error code and message (INVALID_CONFIG for topics,
    INVALID_REQUEST for broker configs, UNKNOWN_TOPIC_OR_PART, TOPIC_EXCEPTION), and an alter with one
    good and one bad key changes nothing; in a request for several resources each one succeeds or
    fails on its own;
  * a dynamic broker config (log.retention.ms) applies at once, also to topics without an override
    (their retention.ms then comes from DYNAMIC_BROKER_CONFIG);
  * create_topics with per-topic configs and with a manual replica assignment (and Kafka's errors for
    bad ones);
  * topic and broker config changes persist across a kill -9 restart (own_broker).

Notes from running this against Apache Kafka 4.1.2 (the reference these tests were validated on):
  * confluent-kafka exposes synonyms as a dict keyed by name, so same-name synonyms (a broker config
    set dynamically over its default) collapse to the last one; test_admin_surface.py checks the full
    synonym lists through kafka-configs.sh.
  * Kafka applies config changes (topic and broker) asynchronously: the controller commits a metadata
    record that the broker replays, so a describe right after a successful alter may still show the old
    value. The tests poll, and check "nothing changed" only after a barrier (a later alter that is
    visible; config_helpers.config_barrier).
  * Every topic describes min.insync.replicas=1 with source DYNAMIC_DEFAULT_BROKER_CONFIG (a KRaft
    cluster-level default written at format time); not asserted here.

Validated against Apache Kafka 4.1.2:
    compat-tests/bin/kafka-reference-broker.sh start /tmp/ref 19092
    COMPAT_BOOTSTRAP=127.0.0.1:19092 compat-tests/run.sh --no-setup -k test_configs
    COMPAT_DURABILITY_REFERENCE=1 compat-tests/run.sh --no-setup -k test_configs   # own_broker tests
"""

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import ConfigResource, ConfigSource, NewTopic, ResourceType

from config_helpers import (
    APPEND, DELETE, SET, SUBTRACT, T, alter_broker, alter_topic, config_barrier, describe_broker, describe_topic,
    err_tuple, op, topic_resource, values, wait_config, wait_topic, wait_values,
)
from helpers import admin_client, create_topic, topic_exists, topic_partitions, unique, wait_for

DYN_TOPIC = "DYNAMIC_TOPIC_CONFIG"
DEFAULT = "DEFAULT_CONFIG"

# The topic configs Kafka 4.1.2 describes (DescribeConfigs with no key filter).
KAFKA_41_TOPIC_CONFIGS = {
    "cleanup.policy", "compression.gzip.level", "compression.lz4.level", "compression.type",
    "compression.zstd.level", "delete.retention.ms", "file.delete.delay.ms", "flush.messages", "flush.ms",
    "follower.replication.throttled.replicas", "index.interval.bytes", "leader.replication.throttled.replicas",
    "local.retention.bytes", "local.retention.ms", "max.compaction.lag.ms", "max.message.bytes",
    "message.timestamp.after.max.ms", "message.timestamp.before.max.ms", "message.timestamp.type",
    "min.cleanable.dirty.ratio", "min.compaction.lag.ms", "min.insync.replicas", "preallocate",
    "remote.log.copy.disable", "remote.log.delete.on.disable", "remote.storage.enable", "retention.bytes",
    "retention.ms", "segment.bytes", "segment.index.bytes", "segment.jitter.ms", "segment.ms",
    "unclean.leader.election.enable",
}

# Defaults a topic without overrides describes (value, and the broker synonym it comes from).
TOPIC_DEFAULTS = {
    "cleanup.policy": ("delete", "log.cleanup.policy"),
    "compression.type": ("producer", "compression.type"),
    "delete.retention.ms": ("86400000", "log.cleaner.delete.retention.ms"),
    "max.compaction.lag.ms": ("9223372036854775807", "log.cleaner.max.compaction.lag.ms"),
    "max.message.bytes": ("1048588", "message.max.bytes"),
    "message.timestamp.type": ("CreateTime", "log.message.timestamp.type"),
    "min.cleanable.dirty.ratio": ("0.5", "log.cleaner.min.cleanable.ratio"),
    "min.compaction.lag.ms": ("0", "log.cleaner.min.compaction.lag.ms"),
    "retention.bytes": ("-1", "log.retention.bytes"),
    "segment.bytes": ("1073741824", "log.segment.bytes"),
    "segment.index.bytes": ("10485760", "log.index.size.max.bytes"),
    "unclean.leader.election.enable": ("false", "unclean.leader.election.enable"),
}


def synonyms(entry):
    return [(s.name, s.value, ConfigSource(s.source).name) for s in entry.synonyms.values()]


def expect_error(err, code, message):
    assert err is not None, f"expected {code}, got success"
    assert err_tuple(err) == (code, message)


# ---------------------------------------------------------------------------------------------- describe

def test_describe_topic_configs(broker):
    admin = admin_client(broker.bootstrap)
    topic = create_topic(broker.bootstrap, unique("cfg-describe"),
                         config={"retention.ms": "5000", "cleanup.policy": "compact", "max.message.bytes": "2000"})
    entries = describe_topic(admin, topic)
    assert set(entries) == KAFKA_41_TOPIC_CONFIGS
    for name, e in entries.items():
        assert e.name == name
        assert not e.is_read_only, name
        assert not e.is_sensitive, name

    # Overrides: value, DYNAMIC_TOPIC_CONFIG, not default, the topic synonym first.
    for name, value in (("retention.ms", "5000"), ("cleanup.policy", "compact"), ("max.message.bytes", "2000")):
        e = entries[name]
        assert (e.value, ConfigSource(e.source).name, e.is_default) == (value, DYN_TOPIC, False), name
        assert synonyms(e)[0] == (name, value, DYN_TOPIC), name
    assert synonyms(entries["cleanup.policy"]) == [
        ("cleanup.policy", "compact", DYN_TOPIC), ("log.cleanup.policy", "delete", DEFAULT)]
    assert synonyms(entries["max.message.bytes"]) == [
        ("max.message.bytes", "2000", DYN_TOPIC), ("message.max.bytes", "1048588", DEFAULT)]
    # Kafka lists no broker synonym under retention.ms when log.retention.{ms,minutes} are unset.
    assert synonyms(entries["retention.ms"]) == [("retention.ms", "5000", DYN_TOPIC)]

    # Defaults: DEFAULT_CONFIG, is_default, the broker config as the only synonym.
    for name, (value, broker_name) in TOPIC_DEFAULTS.items():
        if name in ("cleanup.policy", "max.message.bytes"):
            continue
        e = entries[name]
        assert (e.value, ConfigSource(e.source).name, e.is_default) == (value, DEFAULT, True), name
        assert synonyms(e) == [(broker_name, value, DEFAULT)], name
    assert values(entries, "min.insync.replicas")["min.insync.replicas"][0] == "1"


def test_describe_topic_defaults_without_overrides(broker):
    admin = admin_client(broker.bootstrap)
    topic = create_topic(broker.bootstrap, unique("cfg-defaults"))
    entries = describe_topic(admin, topic)
    for name, (value, _) in TOPIC_DEFAULTS.items():
        assert values(entries, name)[name] == (value, DEFAULT), name
        assert entries[name].is_default, name
    assert values(entries, "retention.ms")["retention.ms"] == ("604800000", DEFAULT)
    assert not any(ConfigSource(e.source).name == DYN_TOPIC for e in entries.values())


def test_describe_unknown_topic(broker):
    admin = admin_client(broker.bootstrap)
    with pytest.raises(KafkaException) as ei:
        describe_topic(admin, unique("cfg-missing"))
    assert ei.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_describe_broker_configs(broker):
    admin = admin_client(broker.bootstrap)
    entries = describe_broker(admin)
    assert len(entries) > 100  # Kafka 4.1.2 describes 316 broker configs
    e = entries["log.dirs"]
    assert (ConfigSource(e.source).name, e.is_read_only, e.is_default) == ("STATIC_BROKER_CONFIG", True, False)
    assert e.value
    # Dynamic (per-broker updatable) configs are not read-only; static ones are.
    for name, read_only in (("log.retention.ms", False), ("log.cleaner.threads", False),
                            ("log.segment.bytes", False), ("message.max.bytes", False),
                            ("log.retention.hours", True), ("log.retention.check.interval.ms", True),
                            ("num.partitions", True), ("node.id", True)):
        assert entries[name].is_read_only == read_only, name
    # Unset with no default: value null.
    e = entries["log.retention.ms"]
    assert (e.value, ConfigSource(e.source).name, e.is_default) == (None, DEFAULT, True)
    assert values(entries, "log.retention.hours", "log.cleaner.threads", "log.segment.bytes") == {
        "log.retention.hours": ("168", DEFAULT),
        "log.cleaner.threads": ("1", DEFAULT),
        "log.segment.bytes": ("1073741824", DEFAULT),
    }
    # Sensitive configs never show their value.
    e = entries["ssl.keystore.password"]
    assert (e.value, e.is_sensitive) == (None, True)
    assert not entries["log.dirs"].is_sensitive


# ------------------------------------------------------------------------------------ incremental alter

def test_incremental_alter_set_and_delete(broker):
    admin = admin_client(broker.bootstrap)
    topic = create_topic(broker.bootstrap, unique("cfg-set"))
    assert alter_topic(admin, topic, op("retention.ms", "60000", SET), op("segment.ms", "3600000", SET)) is None
    entries = wait_topic(admin, topic, {"retention.ms": ("60000", DYN_TOPIC), "segment.ms": ("3600000", DYN_TOPIC)})
    assert not entries["retention.ms"].is_default

    # SET again overwrites; DELETE reverts to the default; DELETE of an unset key is fine.
    assert alter_topic(admin, topic, op("retention.ms", "70000", SET)) is None
    wait_topic(admin, topic, {"retention.ms": ("70000", DYN_TOPIC)})
    assert alter_topic(admin, topic, op("retention.ms", "", DELETE), op("retention.bytes", "", DELETE)) is None
    entries = wait_topic(admin, topic, {"retention.ms": ("604800000", DEFAULT), "retention.bytes": ("-1", DEFAULT),
                                        "segment.ms": ("3600000", DYN_TOPIC)})
    assert entries["retention.ms"].is_default


def test_incremental_alter_append_subtract_list(broker):
    admin = admin_client(broker.bootstrap)
    topic = create_topic(broker.bootstrap, unique("cfg-list"))

    def policy(want):  # wait until described (changes apply asynchronously)
        wait_topic(admin, topic, {"cleanup.policy": want})
        return want

    # APPEND starts from the effective value (the default "delete").
    assert alter_topic(admin, topic, op("cleanup.policy", "compact", APPEND)) is None
    policy(("delete,compact", DYN_TOPIC))
    # Appending a value already present changes nothing.
    assert alter_topic(admin, topic, op("cleanup.policy", "compact", APPEND)) is None
    policy(("delete,compact", DYN_TOPIC))
    assert alter_topic(admin, topic, op("cleanup.policy", "delete", SUBTRACT)) is None
    policy(("compact", DYN_TOPIC))
    # Subtracting an absent value changes nothing.
    assert alter_topic(admin, topic, op("cleanup.policy", "delete", SUBTRACT)) is None
    policy(("compact", DYN_TOPIC))
    # Kafka 4.1 accepts an empty cleanup.policy (subtracting the last element).
    assert alter_topic(admin, topic, op("cleanup.policy", "compact", SUBTRACT)) is None
    policy(("", DYN_TOPIC))
    # SET with a list value; DELETE removes the key whatever value is given.
    assert alter_topic(admin, topic, op("cleanup.policy", "compact,delete", SET)) is None
    policy(("compact,delete", DYN_TOPIC))
    assert alter_topic(admin, topic, op("cleanup.policy", "compact", DELETE)) is None
    policy(("delete", DEFAULT))

    # APPEND / SUBTRACT on a non-list config, APPEND of a value not allowed in the list.
    expect_error(alter_topic(admin, topic, op("retention.ms", "5", APPEND)),
                 "INVALID_CONFIG", "Can't APPEND to key retention.ms because its type is not LIST.")
    expect_error(alter_topic(admin, topic, op("retention.ms", "5", SUBTRACT)),
                 "INVALID_CONFIG", "Can't SUBTRACT to key retention.ms because its type is not LIST.")
    expect_error(alter_topic(admin, topic, op("cleanup.policy", "bogus", APPEND)), "INVALID_CONFIG",
                 "Invalid value bogus for configuration cleanup.policy: String must be one of: compact, delete")
    config_barrier(broker.bootstrap, admin)
    assert values(describe_topic(admin, topic), "cleanup.policy")["cleanup.policy"] == ("delete", DEFAULT)


def test_incremental_alter_validate_only_changes_nothing(broker):
    admin = admin_client(broker.bootstrap)
    topic = create_topic(broker.bootstrap, unique("cfg-validate"), config={"retention.ms": "100000"})
    assert alter_topic(admin, topic, op("retention.ms", "200000", SET), op("cleanup.policy", "compact", APPEND),
                       op("segment.ms", "1000", SET), validate_only=True) is None
    expect_error(alter_topic(admin, topic, op("retention.ms", "x", SET), validate_only=True),
                 "INVALID_CONFIG", "Invalid value x for configuration retention.ms: Not a number of type LONG")
    assert alter_topic(admin, topic, op("retention.ms", "", DELETE), validate_only=True) is None
    config_barrier(broker.bootstrap, admin)
    assert values(describe_topic(admin, topic), "retention.ms", "cleanup.policy", "segment.ms") == {
        "retention.ms": ("100000", DYN_TOPIC), "cleanup.policy": ("delete", DEFAULT),
        "segment.ms": ("604800000", DEFAULT)}


BAD_TOPIC_ALTERS = [
    # (entries, error code name, Kafka's message)
    ([("no.such.config", "1")], "INVALID_CONFIG", "Unknown topic config name: no.such.config"),
    ([("Retention.ms", "1000")], "INVALID_CONFIG", "Unknown topic config name: Retention.ms"),
    ([("log.retention.ms", "1000")], "INVALID_CONFIG", "Unknown topic config name: log.retention.ms"),
    ([("retention.ms", "abc")], "INVALID_CONFIG",
     "Invalid value abc for configuration retention.ms: Not a number of type LONG"),
    ([("retention.ms", "")], "INVALID_CONFIG",
     "Invalid value  for configuration retention.ms: Not a number of type LONG"),
    ([("retention.ms", "-2")], "INVALID_CONFIG",
     "Invalid value -2 for configuration retention.ms: Value must be at least -1"),
    ([("segment.bytes", "10")], "INVALID_CONFIG",
     "Invalid value 10 for configuration segment.bytes: Value must be at least 1048576"),
    ([("segment.ms", "0")], "INVALID_CONFIG", "Invalid value 0 for configuration segment.ms: Value must be at least 1"),
    ([("min.cleanable.dirty.ratio", "2.0")], "INVALID_CONFIG",
     "Invalid value 2.0 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"),
    ([("cleanup.policy", "bogus")], "INVALID_CONFIG",
     "Invalid value bogus for configuration cleanup.policy: String must be one of: compact, delete"),
    ([("compression.type", "foo")], "INVALID_CONFIG",
     "Invalid value foo for configuration compression.type: String must be one of: uncompressed, zstd, lz4, "
     "snappy, gzip, producer"),
    ([("message.timestamp.type", "Bogus")], "INVALID_CONFIG",
     "Invalid value Bogus for configuration message.timestamp.type: String must be one of: CreateTime, "
     "LogAppendTime"),
    ([("unclean.leader.election.enable", "maybe")], "INVALID_CONFIG",
     "Invalid value maybe for configuration unclean.leader.election.enable: Expected value to be either true or "
     "false"),
    ([("max.message.bytes", "-1")], "INVALID_CONFIG",
     "Invalid value -1 for configuration max.message.bytes: Value must be at least 0"),
    # One good and one bad key: the whole resource fails.
    ([("retention.ms", "70000"), ("segment.bytes", "10")], "INVALID_CONFIG",
     "Invalid value 10 for configuration segment.bytes: Value must be at least 1048576"),
    ([("retention.ms", "70000"), ("no.such", "10")], "INVALID_CONFIG", "Unknown topic config name: no.such"),
]


@pytest.mark.parametrize("entries,code,message", BAD_TOPIC_ALTERS,
                         ids=[f"{e[0][0]}={e[0][1]}" + ("+" if len(e) > 1 else "") for e, _, _ in BAD_TOPIC_ALTERS])
def test_incremental_alter_bad_topic_config(broker, entries, code, message):
    admin = admin_client(broker.bootstrap)
    topic = create_topic(broker.bootstrap, unique("cfg-bad"), config={"retention.ms": "123456"})
    before = {n: (e.value, e.source) for n, e in describe_topic(admin, topic).items()}
    for validate_only in (True, False):
        err = alter_topic(admin, topic, *[op(k, v, SET) for k, v in entries], validate_only=validate_only)
        expect_error(err, code, message)
    # Nothing half-applied.
    config_barrier(broker.bootstrap, admin)
    assert {n: (e.value, e.source) for n, e in describe_topic(admin, topic).items()} == before


def test_incremental_alter_unknown_and_invalid_topic(broker):
    admin = admin_client(broker.bootstrap)
    missing = unique("cfg-missing")
    expect_error(alter_topic(admin, missing, op("retention.ms", "1000", SET)),
                 "UNKNOWN_TOPIC_OR_PART", f"The topic '{missing}' does not exist.")
    expect_error(alter_topic(admin, "bad name!", op("retention.ms", "1000", SET)), "TOPIC_EXCEPTION",
                 "Topic name is invalid: 'bad name!' contains one or more characters other than ASCII "
                 "alphanumerics, '.', '_' and '-'")
    assert not topic_exists(admin, missing)


def test_incremental_alter_several_resources_independently(broker):
    """Each resource of one IncrementalAlterConfigs request succeeds or fails on its own."""
    admin = admin_client(broker.bootstrap)
    good = create_topic(broker.bootstrap, unique("cfg-multi-ok"))
    bad_cfg = create_topic(broker.bootstrap, unique("cfg-multi-bad"))
    missing = unique("cfg-multi-missing")
    resources = [topic_resource(good, [op("retention.ms", "777777", SET)]),
                 topic_resource(bad_cfg, [op("retention.ms", "888888", SET), op("no.such", "1", SET)]),
                 topic_resource(missing, [op("retention.ms", "1", SET)])]
    futs = admin.incremental_alter_configs(resources, request_timeout=T)
    results = {}
    for res, fut in futs.items():
        try:
            results[res.name] = fut.result(timeout=T)
        except KafkaException as e:
            results[res.name] = err_tuple(e.args[0])
    assert results == {
        good: None,
        bad_cfg: ("INVALID_CONFIG", "Unknown topic config name: no.such"),
        missing: ("UNKNOWN_TOPIC_OR_PART", f"The topic '{missing}' does not exist."),
    }
    wait_topic(admin, good, {"retention.ms": ("777777", DYN_TOPIC)})
    config_barrier(broker.bootstrap, admin)
    assert values(describe_topic(admin, bad_cfg), "retention.ms")["retention.ms"] == ("604800000", DEFAULT)


def test_legacy_alter_configs_replaces_the_override_set(broker):
    admin = admin_client(broker.bootstrap)
    topic = create_topic(broker.bootstrap, unique("cfg-legacy"),
                         config={"retention.ms": "123456", "segment.ms": "3600000"})
    res = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.ms": "99999", "cleanup.policy": "compact"})
    assert admin.alter_configs([res], request_timeout=T)[res].result(timeout=T) is None
    # AlterConfigs is not incremental: segment.ms (not in the request) went back to its default.
    wait_topic(admin, topic, {"retention.ms": ("99999", DYN_TOPIC), "cleanup.policy": ("compact", DYN_TOPIC),
                              "segment.ms": ("604800000", DEFAULT)})

    for config, message in (({"retention.ms": "abc"},
                             "Invalid value abc for configuration retention.ms: Not a number of type LONG"),
                            ({"no.such": "1"}, "Unknown topic config name: no.such")):
        res = ConfigResource(ResourceType.TOPIC, topic, set_config=config)
        with pytest.raises(KafkaException) as ei:
            admin.alter_configs([res], request_timeout=T)[res].result(timeout=T)
        assert err_tuple(ei.value.args[0]) == ("INVALID_CONFIG", message)
    config_barrier(broker.bootstrap, admin)
    assert values(describe_topic(admin, topic), "retention.ms")["retention.ms"] == ("99999", DYN_TOPIC)

    missing = unique("cfg-legacy-missing")
    res = ConfigResource(ResourceType.TOPIC, missing, set_config={"retention.ms": "1"})
    with pytest.raises(KafkaException) as ei:
        admin.alter_configs([res], request_timeout=T)[res].result(timeout=T)
    assert err_tuple(ei.value.args[0]) == ("UNKNOWN_TOPIC_OR_PART", f"The topic '{missing}' does not exist.")


# ---------------------------------------------------------------------------------------- broker configs

def test_broker_dynamic_config_applies_to_topics_without_restart(broker):
    admin = admin_client(broker.bootstrap)
    plain = create_topic(broker.bootstrap, unique("cfg-brk-plain"))
    override = create_topic(broker.bootstrap, unique("cfg-brk-override"), config={"retention.ms": "5000"})
    value = "691200000"  # 8 days: harmless for the other tests sharing this broker
    try:
        assert alter_broker(admin, op("log.retention.ms", value, SET)) is None
        wait_config(admin, describe_broker, "log.retention.ms", (value, "DYNAMIC_BROKER_CONFIG"))
        e = describe_broker(admin)["log.retention.ms"]
        assert not e.is_default and not e.is_read_only
        assert synonyms(e) == [("log.retention.ms", value, "DYNAMIC_BROKER_CONFIG"),
                               ("log.retention.hours", "168", DEFAULT)]
        # A topic without an override inherits it at once (source: the broker's dynamic config) ...
        wait_config(admin, lambda a: describe_topic(a, plain), "retention.ms", (value, "DYNAMIC_BROKER_CONFIG"))
        e = describe_topic(admin, plain)["retention.ms"]
        assert not e.is_default
        assert synonyms(e) == [("log.retention.ms", value, "DYNAMIC_BROKER_CONFIG"),
                               ("log.retention.hours", "168", DEFAULT)]
        # ... a topic override still wins.
        config_barrier(broker.bootstrap, admin)
        assert values(describe_topic(admin, override), "retention.ms")["retention.ms"] == ("5000", DYN_TOPIC)
    finally:
        assert alter_broker(admin, op("log.retention.ms", "", DELETE)) is None
    wait_config(admin, describe_broker, "log.retention.ms", (None, DEFAULT))
    wait_config(admin, lambda a: describe_topic(a, plain), "retention.ms", ("604800000", DEFAULT))


BAD_BROKER_ALTERS = [
    ("log.dirs", "/tmp/elsewhere", "INVALID_REQUEST", "Cannot update these configs dynamically: Set(log.dirs)"),
    ("num.partitions", "3", "INVALID_REQUEST", "Cannot update these configs dynamically: Set(num.partitions)"),
    ("log.retention.ms", "abc", "INVALID_REQUEST",
     "Invalid value abc for configuration log.retention.ms: Not a number of type LONG"),
    ("log.cleaner.threads", "-1", "INVALID_REQUEST",
     "Invalid value -1 for configuration log.cleaner.threads: Value must be at least 0"),
]


@pytest.mark.parametrize("name,value,code,message", BAD_BROKER_ALTERS, ids=[b[0] for b in BAD_BROKER_ALTERS])
def test_incremental_alter_bad_broker_config(broker, name, value, code, message):
    admin = admin_client(broker.bootstrap)
    good = ("log.retention.bytes", "1073741824")
    before = values(describe_broker(admin), name, good[0])
    assert before[good[0]] == ("-1", DEFAULT)
    for validate_only in (True, False):
        expect_error(alter_broker(admin, op(name, value, SET), validate_only=validate_only), code, message)
    # With a good key in the same request, nothing is applied either.
    expect_error(alter_broker(admin, op(good[0], good[1], SET), op(name, value, SET)), code, message)
    config_barrier(broker.bootstrap, admin)
    assert values(describe_broker(admin), name, good[0]) == before


# ----------------------------------------------------------------------------------------- create topics

def test_create_topics_with_configs(broker):
    admin = admin_client(broker.bootstrap)
    config = {"retention.ms": "86400000", "cleanup.policy": "compact,delete", "segment.bytes": "1048576",
              "max.message.bytes": "65536"}
    topic = create_topic(broker.bootstrap, unique("cfg-create"), partitions=2, config=config)
    entries = describe_topic(admin, topic)
    assert values(entries, *config) == {k: (v, DYN_TOPIC) for k, v in config.items()}
    assert values(entries, "retention.bytes")["retention.bytes"] == ("-1", DEFAULT)


BAD_CREATE_CONFIGS = [
    ({"no.such": "1"}, "Unknown topic config name: no.such"),
    ({"retention.ms": "abc"}, "Invalid value abc for configuration retention.ms: Not a number of type LONG"),
    ({"segment.bytes": "10"}, "Invalid value 10 for configuration segment.bytes: Value must be at least 1048576"),
    ({"cleanup.policy": "bogus"},
     "Invalid value bogus for configuration cleanup.policy: String must be one of: compact, delete"),
]


@pytest.mark.parametrize("config,message", BAD_CREATE_CONFIGS, ids=[next(iter(c)) for c, _ in BAD_CREATE_CONFIGS])
def test_create_topics_with_bad_config(broker, config, message):
    admin = admin_client(broker.bootstrap)
    topic = unique("cfg-create-bad")
    for validate_only in (True, False):
        fut = admin.create_topics([NewTopic(topic, 1, 1, config=config)], validate_only=validate_only,
                                  request_timeout=T)[topic]
        with pytest.raises(KafkaException) as ei:
            fut.result(timeout=T)
        assert err_tuple(ei.value.args[0]) == ("INVALID_CONFIG", message)
    assert not topic_exists(admin, topic)


def test_create_topics_with_replica_assignment(broker):
    admin = admin_client(broker.bootstrap)
    node = next(iter(admin.list_topics(timeout=T).brokers))
    topic = unique("cfg-assign")
    nt = NewTopic(topic, 3, -1, replica_assignment=[[node], [node], [node]], config={"retention.ms": "5000"})
    admin.create_topics([nt], request_timeout=T)[topic].result(timeout=T)
    wait_for(lambda: topic_partitions(admin, topic) == 3, what="3 partitions with leaders")
    md = admin.list_topics(topic=topic, timeout=T).topics[topic]
    assert {p.id: p.replicas for p in md.partitions.values()} == {0: [node], 1: [node], 2: [node]}
    wait_topic(admin, topic, {"retention.ms": ("5000", DYN_TOPIC)})

    for assignment, message in (
            ([[node + 1]], f"The manual partition assignment includes broker {node + 1}, but no such broker is "
                           "registered."),
            ([[node, node]], f"The manual partition assignment includes the broker {node} more than once.")):
        bad = unique("cfg-assign-bad")
        fut = admin.create_topics([NewTopic(bad, 1, -1, replica_assignment=assignment)], request_timeout=T)[bad]
        with pytest.raises(KafkaException) as ei:
            fut.result(timeout=T)
        assert err_tuple(ei.value.args[0]) == ("INVALID_REPLICA_ASSIGNMENT", message)
        assert not topic_exists(admin, bad)


# ---------------------------------------------------------------------------------------------- restart

@pytest.mark.gregor_only
@pytest.mark.timeout(240)
def test_configs_persist_across_restart(own_broker):
    b = own_broker()
    bs = b.bootstrap
    admin = admin_client(bs)
    topic = create_topic(bs, unique("cfg-persist"), config={"retention.ms": "123456", "segment.ms": "3600000"})
    assert alter_topic(admin, topic, op("cleanup.policy", "compact", APPEND), op("segment.ms", "", DELETE),
                       op("max.message.bytes", "50000", SET)) is None
    assert alter_broker(admin, op("log.retention.ms", "7200000", SET), op("log.cleaner.threads", "2", SET)) is None
    want_topic = {"retention.ms": ("123456", DYN_TOPIC), "cleanup.policy": ("delete,compact", DYN_TOPIC),
                  "segment.ms": ("604800000", DEFAULT), "max.message.bytes": ("50000", DYN_TOPIC)}
    want_broker = {"log.retention.ms": ("7200000", "DYNAMIC_BROKER_CONFIG"),
                   "log.cleaner.threads": ("2", "DYNAMIC_BROKER_CONFIG")}
    wait_topic(admin, topic, want_topic)
    wait_values(admin, describe_broker, want_broker)

    for how in ("kill9", "graceful"):
        del admin
        if how == "kill9":
            b.kill9()
        else:
            b.stop()
        b.start()
        admin = admin_client(bs)
        got = wait_for(lambda: values(describe_topic(admin, topic), *want_topic), timeout=30,
                       what="topic configs after restart")
        assert got == want_topic, how
        assert values(describe_broker(admin), *want_broker) == want_broker, how
