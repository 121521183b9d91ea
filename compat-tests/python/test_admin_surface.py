"""The admin surface of issue 6 through unmodified clients: the Kafka 4.1 CLI (kafka-configs,
kafka-topics, kafka-log-dirs, kafka-get-offsets, kafka-leader-election) and confluent-kafka's
describe_cluster / describe_topics / list_offsets(max_timestamp) / elect_leaders.

What it proves:
  * kafka-configs.sh --describe / --alter --add-config / --delete-config on topics (list values with
    [a,b]), on a broker (--entity-name) and on the cluster default (--entity-default), with Kafka's exact
    describe lines (value, sensitive flag, full synonym list with sources) and its errors for unknown
    configs, unknown topics and read-only broker configs;
  * kafka-topics.sh --describe shows the topic's non-default configs, and pages DescribeTopicPartitions
    (--partition-size-limit-per-response) without losing partitions;
  * kafka-log-dirs.sh --describe returns JSON with this broker's log dir and per-partition sizes (> 0
    after producing, 0 for an empty partition);
  * kafka-get-offsets.sh --time -3/max-timestamp (offset of the record with the largest timestamp, even
    when it is not the last one) and -4/earliest-local;
  * leader election (preferred) on a single broker: ELECTION_NOT_NEEDED per partition, unknown
    partitions rejected, "all partitions" succeeds with nothing to do;
  * describe_cluster (id, controller, nodes, authorized operations) and describe_topics (topic id,
    partitions, unknown topics).

Notes from Apache Kafka 4.1.2: every topic shows `min.insync.replicas=1` among its configs (source
DYNAMIC_DEFAULT_BROKER_CONFIG, a cluster-level default KRaft writes at format time), so kafka-topics.sh
--describe prints "Configs: min.insync.replicas=1,..." even for a topic without overrides; the tests
only check that the topic's own overrides are listed.

Validated against Apache Kafka 4.1.2:
    compat-tests/bin/kafka-reference-broker.sh start /tmp/ref 19092
    COMPAT_BOOTSTRAP=127.0.0.1:19092 compat-tests/run.sh --no-setup -k test_admin_surface
"""

import time
import json
import re
import shutil

import pytest
from confluent_kafka import ElectionType, KafkaError, KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AclOperation, OffsetSpec

from config_helpers import T, describe_broker, describe_topic, produce_sync, producer, values, wait_values
from helpers import admin_client, create_topic, flush_all, rdkafka_conf, run_tool, unique, wait_for

java = pytest.mark.skipif(shutil.which("java") is None, reason="java not installed")


def configs(bs, *args, check=True):
    return run_tool("kafka-configs.sh", "--bootstrap-server", bs, *args, check=check)


def node_id(bs):
    return next(iter(admin_client(bs).list_topics(timeout=T).brokers))


def described_lines(bs, *args):
    """kafka-configs.sh --describe output lines after the header, stripped."""
    out = configs(bs, "--describe", *args).stdout.splitlines()
    return [line.strip() for line in out[1:] if line.strip()]


def wait_lines(bs, want_present, want_absent=(), *args):
    def check():
        lines = described_lines(bs, *args)
        ok = all(w in lines for w in want_present) and not any(
            any(line.startswith(a) for line in lines) for a in want_absent)
        return (lines,) if ok else None  # a tuple: an empty list of lines is a valid answer

    return wait_for(check, timeout=30, interval=0.5,
                    what=f"kafka-configs --describe {args} showing {want_present}, not {list(want_absent)}")[0]


# ----------------------------------------------------------------------------------------- kafka-configs

@java
def test_kafka_configs_topic(broker):
    bs = broker.bootstrap
    topic = create_topic(bs, unique("cli-cfg"), config={"retention.ms": "86400000"})
    ent = ("--entity-type", "topics", "--entity-name", topic)

    lines = described_lines(bs, *ent)
    assert lines == ["retention.ms=86400000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=86400000}"]

    out = configs(bs, "--alter", *ent, "--add-config", "segment.ms=600000,cleanup.policy=[compact,delete]").stdout
    assert f"Completed updating config for topic {topic}." in out
    out = configs(bs, "--alter", *ent, "--delete-config", "retention.ms").stdout
    assert f"Completed updating config for topic {topic}." in out
    wait_lines(bs, [
        "cleanup.policy=compact,delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,delete, "
        "DEFAULT_CONFIG:log.cleanup.policy=delete}",
        "segment.ms=600000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:segment.ms=600000}",
    ], ["retention.ms="], *ent)

    # --all: every config, defaults with their broker synonym.
    lines = described_lines(bs, *ent, "--all")
    for want in (
            "retention.ms=604800000 sensitive=false synonyms={}",
            "segment.bytes=1073741824 sensitive=false synonyms={DEFAULT_CONFIG:log.segment.bytes=1073741824}",
            "max.message.bytes=1048588 sensitive=false synonyms={DEFAULT_CONFIG:message.max.bytes=1048588}",
            "min.cleanable.dirty.ratio=0.5 sensitive=false synonyms={DEFAULT_CONFIG:log.cleaner.min.cleanable.ratio=0.5}",
            "delete.retention.ms=86400000 sensitive=false synonyms={DEFAULT_CONFIG:log.cleaner.delete.retention.ms=86400000}",
            "segment.ms=600000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:segment.ms=600000}"):
        assert want in lines, f"{want!r} not in\n" + "\n".join(lines)
    assert len(lines) == 33

    # Errors: unknown config, bad value, unknown topic; delete of a config that is not set.
    p = configs(bs, "--alter", *ent, "--add-config", "no.such=1", check=False)
    assert p.returncode != 0
    assert "InvalidConfigurationException: Unknown topic config name: no.such" in p.stdout + p.stderr
    p = configs(bs, "--alter", *ent, "--add-config", "retention.ms=abc", check=False)
    assert p.returncode != 0
    assert ("InvalidConfigurationException: Invalid value abc for configuration retention.ms: Not a number of "
            "type LONG") in p.stdout + p.stderr
    p = configs(bs, "--alter", "--entity-type", "topics", "--entity-name", unique("cli-cfg-missing"),
                "--add-config", "retention.ms=1000", check=False)
    assert p.returncode != 0
    assert "UnknownTopicOrPartitionException" in p.stdout + p.stderr
    p = configs(bs, "--alter", *ent, "--delete-config", "retention.bytes", check=False)
    assert p.returncode != 0
    assert "Invalid config(s): retention.bytes" in p.stdout + p.stderr


@java
def test_kafka_configs_broker_and_cluster_default(broker):
    bs = broker.bootstrap
    node = str(node_id(bs))
    ent = ("--entity-type", "brokers", "--entity-name", node)
    dflt = ("--entity-type", "brokers", "--entity-default")
    assert not any(line.startswith(("log.cleaner.threads=", "log.retention.ms=")) for line in described_lines(bs, *ent))
    try:
        out = configs(bs, "--alter", *ent, "--add-config", "log.cleaner.threads=2,log.retention.ms=691200000").stdout
        assert f"Completed updating config for broker {node}." in out
        out = configs(bs, "--alter", *dflt, "--add-config", "log.retention.ms=777600000").stdout
        assert "Completed updating default config for brokers in the cluster." in out
        wait_lines(bs, [
            "log.cleaner.threads=2 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:log.cleaner.threads=2, "
            "DEFAULT_CONFIG:log.cleaner.threads=1}",
            "log.retention.ms=691200000 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:log.retention.ms=691200000, "
            "DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=777600000, DEFAULT_CONFIG:log.retention.hours=168}",
        ], (), *ent)
        wait_lines(bs, ["log.retention.ms=777600000 sensitive=false "
                        "synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=777600000}"], (), *dflt)

        # The same through DescribeConfigs: the per-broker value wins over the cluster default.
        admin = admin_client(bs)
        assert values(describe_broker(admin, node), "log.retention.ms", "log.cleaner.threads") == {
            "log.retention.ms": ("691200000", "DYNAMIC_BROKER_CONFIG"),
            "log.cleaner.threads": ("2", "DYNAMIC_BROKER_CONFIG")}

        # Read-only broker config.
        p = configs(bs, "--alter", *ent, "--add-config", "num.partitions=3", check=False)
        assert p.returncode != 0
        assert ("InvalidRequestException: Cannot update these configs dynamically: Set(num.partitions)"
                in p.stdout + p.stderr)
    finally:
        configs(bs, "--alter", *ent, "--delete-config", "log.cleaner.threads,log.retention.ms", check=False)
        configs(bs, "--alter", *dflt, "--delete-config", "log.retention.ms", check=False)
    wait_lines(bs, [], ["log.cleaner.threads=", "log.retention.ms="], *ent)
    wait_lines(bs, [], ["log.retention.ms="], *dflt)


# ------------------------------------------------------------------------------------------ kafka-topics

@java
def test_kafka_topics_describe_shows_overrides(broker):
    bs = broker.bootstrap
    topic = unique("cli-topic-cfg")
    run_tool("kafka-topics.sh", "--bootstrap-server", bs, "--create", "--topic", topic, "--partitions", 2,
             "--config", "retention.ms=86400000", "--config", "cleanup.policy=compact,delete",
             "--config", "max.message.bytes=65536")
    wait_values(admin_client(bs), lambda a: describe_topic(a, topic),
                {"retention.ms": ("86400000", "DYNAMIC_TOPIC_CONFIG")})
    out = run_tool("kafka-topics.sh", "--bootstrap-server", bs, "--describe", "--topic", topic).stdout
    header = out.splitlines()[0]
    m = re.match(rf"Topic: {re.escape(topic)}\tTopicId: \S+\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: (.*)$",
                 header)
    assert m, header
    shown = m.group(1)
    for want in ("retention.ms=86400000", "cleanup.policy=compact,delete", "max.message.bytes=65536"):
        assert want in shown, header
    for default in ("segment.bytes=", "retention.bytes=", "compression.type="):
        assert default not in shown, header


@java
def test_kafka_topics_describe_pages_partitions(broker):
    """DescribeTopicPartitions with a small per-response partition limit: the tool follows the cursor."""
    bs = broker.bootstrap
    big = create_topic(bs, unique("cli-page-a"), partitions=12)
    small = create_topic(bs, unique("cli-page-b"), partitions=3)
    out = run_tool("kafka-topics.sh", "--bootstrap-server", bs, "--describe", "--topic", f"{big}|{small}",
                   "--partition-size-limit-per-response", 5).stdout
    parts = re.findall(r"Topic: (\S+)\tPartition: (\d+)\tLeader: \d+", out)
    assert sorted((t, int(p)) for t, p in parts) == sorted(
        [(big, i) for i in range(12)] + [(small, i) for i in range(3)]), out
    assert f"Topic: {big}\tTopicId:" in out and f"Topic: {small}\tTopicId:" in out


# ---------------------------------------------------------------------------------------- kafka-log-dirs

@java
def test_kafka_log_dirs(broker):
    bs = broker.bootstrap
    topic = create_topic(bs, unique("cli-logdirs"), partitions=2)
    p = Producer(rdkafka_conf(bs))
    for i in range(20):
        p.produce(topic, value=b"x" * 100, partition=0)
    flush_all(p)
    node = node_id(bs)

    def describe():
        out = run_tool("kafka-log-dirs.sh", "--bootstrap-server", bs, "--describe", "--topic-list", topic).stdout
        lines = out.splitlines()
        assert lines[0] == "Querying brokers for log directories information", out
        assert lines[1] == f"Received log directory information from brokers {node}", out
        return json.loads(lines[2])

    doc = wait_for(lambda: (lambda d: d if _sizes(d, topic).get(f"{topic}-0", 0) > 0 else None)(describe()),
                   timeout=15, interval=0.5, what="partition size > 0 in kafka-log-dirs")
    assert doc["version"] == 1
    [b] = doc["brokers"]
    assert b["broker"] == node
    [d] = b["logDirs"]
    assert d["error"] is None
    assert d["logDir"].startswith("/")
    parts = {p["partition"]: p for p in d["partitions"]}
    assert set(parts) == {f"{topic}-0", f"{topic}-1"}
    assert parts[f"{topic}-0"]["size"] >= 20 * 100
    assert parts[f"{topic}-1"]["size"] == 0
    for p in parts.values():
        assert (p["offsetLag"], p["isFuture"]) == (0, False)

    # A topic that does not exist: the log dir is listed with no partitions.
    out = run_tool("kafka-log-dirs.sh", "--bootstrap-server", bs, "--describe",
                   "--topic-list", unique("cli-logdirs-missing")).stdout
    doc = json.loads(out.splitlines()[2])
    assert [ld["partitions"] for br in doc["brokers"] for ld in br["logDirs"]] == [[]]


def _sizes(doc, topic):
    return {p["partition"]: p["size"] for b in doc["brokers"] for d in b["logDirs"] for p in d["partitions"]
            if p["partition"].startswith(topic + "-")}


# -------------------------------------------------------------------------------------- kafka-get-offsets

BASE = (int(time.time()) - 3600) * 1000  # recent: inside the 7-day retention
TS_STEPS = [1, 5, 3, 2, 4]  # record i has timestamp BASE + TS_STEPS[i] * 1000: the max is offset 1


def _timestamped_topic(bs):
    topic = create_topic(bs, unique("cli-maxts"), partitions=2)
    p = producer(bs)
    for i, step in enumerate(TS_STEPS):
        assert produce_sync(p, topic, key=b"k", value=f"v{i}".encode(), timestamp=BASE + step * 1000) == i
    return topic


@java
def test_kafka_get_offsets_max_timestamp_and_earliest_local(broker):
    bs = broker.bootstrap
    topic = _timestamped_topic(bs)

    def get(time_spec):
        return sorted(run_tool("kafka-get-offsets.sh", "--bootstrap-server", bs, "--topic", topic,
                               "--time", time_spec).stdout.split())

    # Max timestamp: offset 1 holds the largest timestamp; the empty partition has none (not printed).
    assert get("-3") == [f"{topic}:0:1"]
    assert get("max-timestamp") == [f"{topic}:0:1"]
    # Earliest local (no tiered storage: same as earliest).
    assert get("-4") == [f"{topic}:0:0", f"{topic}:1:0"]
    assert get("earliest-local") == [f"{topic}:0:0", f"{topic}:1:0"]
    assert get("-1") == [f"{topic}:0:5", f"{topic}:1:0"]
    # By timestamp: first offset with timestamp >= t.
    assert get(str(BASE + 2500)) == [f"{topic}:0:1"]
    assert get(str(BASE + 3500)) == [f"{topic}:0:1"]
    assert get(str(BASE + 5001)) == []


def test_list_offsets_max_timestamp_not_last(broker):
    bs = broker.bootstrap
    topic = _timestamped_topic(bs)
    admin = admin_client(bs)
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    res = admin.list_offsets({tp0: OffsetSpec.max_timestamp(), tp1: OffsetSpec.max_timestamp()},
                             request_timeout=T)
    r0 = res[tp0].result(timeout=T)
    assert (r0.offset, r0.timestamp) == (1, BASE + 5000)
    r1 = res[tp1].result(timeout=T)
    assert (r1.offset, r1.timestamp) == (-1, -1)


# ------------------------------------------------------------------------------------------ leader election

@java
def test_kafka_leader_election_cli(broker):
    bs = broker.bootstrap
    topic = create_topic(bs, unique("cli-elect"), partitions=2)
    out = run_tool("kafka-leader-election.sh", "--bootstrap-server", bs, "--election-type", "preferred",
                   "--topic", topic, "--partition", 0)
    assert out.stdout.strip() == f"Valid replica already elected for partitions {topic}-0", out.stdout
    out = run_tool("kafka-leader-election.sh", "--bootstrap-server", bs, "--election-type", "preferred",
                   "--all-topic-partitions")
    assert "could not be elected" not in out.stdout + out.stderr

    p = run_tool("kafka-leader-election.sh", "--bootstrap-server", bs, "--election-type", "preferred",
                 "--topic", topic, "--partition", 7, check=False)
    assert p.returncode != 0
    assert (f"Error completing leader election (PREFERRED) for partition: {topic}-7: "
            f"org.apache.kafka.common.errors.UnknownTopicOrPartitionException: No such partition as {topic}-7"
            in p.stdout + p.stderr)
    missing = unique("cli-elect-missing")
    p = run_tool("kafka-leader-election.sh", "--bootstrap-server", bs, "--election-type", "preferred",
                 "--topic", missing, "--partition", 0, check=False)
    assert p.returncode != 0
    assert f"UnknownTopicOrPartitionException: No such topic as {missing}" in p.stdout + p.stderr


def test_elect_leaders_admin_client(broker):
    bs = broker.bootstrap
    admin = admin_client(bs)
    topic = create_topic(bs, unique("elect"), partitions=2)
    for election in (ElectionType.PREFERRED, ElectionType.UNCLEAN):
        res = admin.elect_leaders(election, [TopicPartition(topic, 0), TopicPartition(topic, 1),
                                             TopicPartition(topic, 9)]).result(timeout=T)
        got = {tp.partition: (err.code() if err else None) for tp, err in res.items()}
        assert got == {0: KafkaError.ELECTION_NOT_NEEDED, 1: KafkaError.ELECTION_NOT_NEEDED,
                       9: KafkaError.UNKNOWN_TOPIC_OR_PART}, election
    # All partitions: nothing needs an election.
    assert admin.elect_leaders(ElectionType.PREFERRED, None).result(timeout=T) == {}


# -------------------------------------------------------------------------------- describe cluster / topics

def test_describe_cluster(broker):
    bs = broker.bootstrap
    admin = admin_client(bs)
    dc = admin.describe_cluster(include_authorized_operations=True, request_timeout=T).result(timeout=T)
    md = admin.list_topics(timeout=T)
    assert dc.cluster_id and dc.cluster_id == md.cluster_id
    assert [n.id for n in dc.nodes] == list(md.brokers)
    [n] = dc.nodes
    assert f"{n.host}:{n.port}" == bs
    assert dc.controller is not None and dc.controller.id == n.id
    # No authorizer: every cluster operation is allowed.
    assert set(dc.authorized_operations) == {
        AclOperation.CREATE, AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.CLUSTER_ACTION,
        AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS, AclOperation.IDEMPOTENT_WRITE}


def test_describe_topics(broker):
    bs = broker.bootstrap
    admin = admin_client(bs)
    topics = [create_topic(bs, unique("desc-topics"), partitions=n) for n in (1, 4, 9)]
    missing = unique("desc-topics-missing")
    node = node_id(bs)
    futs = admin.describe_topics(TopicCollection(topics + [missing]), include_authorized_operations=True,
                                 request_timeout=T)
    ids = set()
    for name, n in zip(topics, (1, 4, 9)):
        d = futs[name].result(timeout=T)
        assert d.name == name and not d.is_internal
        assert d.topic_id is not None
        ids.add(str(d.topic_id))
        assert [p.id for p in d.partitions] == list(range(n))
        for p in d.partitions:
            assert (p.leader.id, [r.id for r in p.replicas], [r.id for r in p.isr]) == (node, [node], [node])
        assert set(d.authorized_operations) == {
            AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DELETE, AclOperation.ALTER,
            AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS}
    assert len(ids) == 3
    with pytest.raises(KafkaException) as ei:
        futs[missing].result(timeout=T)
    assert ei.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
