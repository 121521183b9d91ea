"""`gregor topics|produce|consume|groups`, the rpk-like command line client, checked against
third-party clients: topics the CLI creates are read back with confluent-kafka's AdminClient,
records it produces are read with confluent-kafka (and must land on the partitions the Java
client's murmur2 partitioner picks, as librdkafka's `murmur2_random` does), records confluent-kafka
produces must come out of `gregor consume` exactly, and `groups describe` must show the lag left by
a confluent-kafka consumer's commits. The CLI must work with any Kafka: run the same tests with
COMPAT_BOOTSTRAP pointing at a real Apache Kafka 4.1 (the binary still comes from GREGOR_BIN)."""

import json
import os
import socket
import subprocess

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

from conftest import find_gregor_bin
from helpers import (
    admin_client,
    consume_confluent,
    create_topic,
    flush_all,
    rdkafka_conf,
    topic_exists,
    topic_partitions,
    unique,
    wait_for,
)


@pytest.fixture(scope="module")
def gregor_bin():
    b = find_gregor_bin()
    if not b:
        pytest.skip("no gregor binary: set GREGOR_BIN or build target/debug/gregor")
    return b


def cli(gregor_bin, broker, *args, input=None, check=True, timeout=60, env=None):
    """Run `gregor ARGS -b BOOTSTRAP`; returns CompletedProcess with bytes stdout/stderr."""
    cmd = [gregor_bin, *map(str, args)]
    if broker is not None:
        cmd += ["-b", broker.bootstrap]
    full_env = {k: v for k, v in os.environ.items() if k != "GREGOR_BROKERS"}
    full_env.update(env or {})
    try:
        p = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=full_env)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"timed out: {cmd}\nstdout: {e.stdout!r}\nstderr: {e.stderr!r}") from None
    if check:
        assert p.returncode == 0, f"{cmd} exited {p.returncode}\nstdout: {p.stdout!r}\nstderr: {p.stderr!r}"
    return p


def table(out):
    """Rows (lists of cells) of an aligned table, header included."""
    return [line.split() for line in out.decode().splitlines() if line.strip()]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_topics_create_list_describe(gregor_bin, broker):
    topic = unique("cli-create")
    out = cli(gregor_bin, broker, "topics", "create", topic, "-p", "3", "-r", "1",
              "-c", "retention.ms=123456", "-c", "cleanup.policy=compact").stdout
    assert table(out) == [["TOPIC", "STATUS"], [topic, "OK"]]

    admin = admin_client(broker.bootstrap)
    wait_for(lambda: topic_partitions(admin, topic) == 3, what=f"{topic} with 3 partitions")
    res = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([res])[res].result(timeout=10)
    assert configs["retention.ms"].value == "123456"
    assert configs["cleanup.policy"].value == "compact"

    # list: aligned table and JSON.
    rows = table(cli(gregor_bin, broker, "topics", "list").stdout)
    assert rows[0] == ["NAME", "PARTITIONS", "REPLICAS"]
    assert [topic, "3", "1"] in rows
    assert not any(r[0].startswith("__") for r in rows[1:]), "internal topics are hidden by default"
    listed = json.loads(cli(gregor_bin, broker, "topics", "list", "--json").stdout)
    (mine,) = [t for t in listed if t["name"] == topic]
    assert mine["partitions"] == 3 and mine["replicas"] == 1 and mine["internal"] is False

    # describe: id, partitions, offsets, non-default configs.
    p = Producer(rdkafka_conf(broker.bootstrap))
    for i in range(5):
        p.produce(topic, key=b"k", value=f"v{i}".encode(), partition=1)
    flush_all(p)
    d = json.loads(cli(gregor_bin, broker, "topics", "describe", topic, "--json").stdout)
    md = admin.list_topics(topic=topic, timeout=10).topics[topic]
    assert d["name"] == topic and d["replicas"] == 1 and d["internal"] is False
    assert len(d["id"]) == 36 and d["id"] != "00000000-0000-0000-0000-000000000000"
    assert [x["partition"] for x in d["partitions"]] == [0, 1, 2]
    for x in d["partitions"]:
        assert x["leader"] == md.partitions[x["partition"]].leader
        assert x["replicas"] == [x["leader"]] and x["isr"] == [x["leader"]]
        assert x["log_start_offset"] == 0
        assert x["high_watermark"] == (5 if x["partition"] == 1 else 0)
    assert d["configs"]["retention.ms"] == {"value": "123456", "source": "DYNAMIC_TOPIC_CONFIG"}
    assert d["configs"]["cleanup.policy"] == {"value": "compact", "source": "DYNAMIC_TOPIC_CONFIG"}
    text = cli(gregor_bin, broker, "topics", "describe", topic).stdout.decode()
    assert "retention.ms" in text and "123456" in text and d["id"] in text
    assert ["1", str(md.partitions[1].leader)] == table(text.split("PARTITIONS\n==========\n")[1].encode())[2][:2]

    # Creating it again fails with Kafka's error name and message.
    again = cli(gregor_bin, broker, "topics", "create", topic, check=False)
    assert again.returncode != 0
    assert b"TOPIC_ALREADY_EXISTS" in again.stderr and b"already exists" in again.stderr


def test_cli_topics_delete(gregor_bin, broker):
    admin = admin_client(broker.bootstrap)
    a, b = unique("cli-del"), unique("cli-del")
    cli(gregor_bin, broker, "topics", "create", a, b, "-p", "2")
    wait_for(lambda: topic_partitions(admin, a) == 2 and topic_partitions(admin, b) == 2, what="both topics")
    out = cli(gregor_bin, broker, "topics", "delete", a, b).stdout
    assert sorted(table(out)[1:]) == sorted([[a, "OK"], [b, "OK"]])
    wait_for(lambda: not topic_exists(admin, a) and not topic_exists(admin, b), what="topics gone")
    missing = cli(gregor_bin, broker, "topics", "delete", a, check=False)
    assert missing.returncode != 0
    assert b"UNKNOWN_TOPIC_OR_PARTITION" in missing.stderr


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_cli_produce_keyed_compressed(gregor_bin, broker, codec):
    topic = create_topic(broker.bootstrap, unique(f"cli-prod-{codec}"), partitions=4)
    keys = [f"key-{i}" for i in range(40)]
    lines = [f"{k}:value {i}:{codec}" for i, k in enumerate(keys)] + ["no-separator-here"]
    p = cli(gregor_bin, broker, "produce", topic, "--key-separator", ":", "-z", codec,
            "-H", "hk=hv", "-H", "other=x=y", input=("\n".join(lines) + "\n").encode())
    assert b"produced 41 records" in p.stderr

    # Where the Java client's partitioner puts each key: librdkafka's murmur2_random is that.
    ref_topic = create_topic(broker.bootstrap, unique("cli-ref"), partitions=4)
    ref = Producer(rdkafka_conf(broker.bootstrap, partitioner="murmur2_random"))
    expected_partition = {}

    def record(err, msg):
        assert err is None, err
        expected_partition[msg.key().decode()] = msg.partition()

    for k in keys:
        ref.produce(ref_topic, key=k.encode(), value=b"x", on_delivery=record)
    flush_all(ref)

    got = []
    for part in range(4):
        c = Consumer(rdkafka_conf(broker.bootstrap, **{"group.id": unique("g"), "enable.auto.commit": False}))
        try:
            c.assign([TopicPartition(topic, part, 0)])
            wm = c.get_watermark_offsets(TopicPartition(topic, part), timeout=10)
        finally:
            c.close()
        if wm[1] > 0:
            got += consume_confluent(broker.bootstrap, topic, part, wm[1])
    assert len(got) == 41
    by_value = {m.value().decode(): m for m in got}
    for i, k in enumerate(keys):
        m = by_value[f"value {i}:{codec}"]
        assert m.key() == k.encode()
        assert m.partition() == expected_partition[k], f"key {k}"
        assert m.headers() == [("hk", b"hv"), ("other", b"x=y")]
    unkeyed = by_value["no-separator-here"]
    assert unkeyed.key() is None
    assert len(set(expected_partition.values())) > 1, "keys should spread over partitions"


def test_cli_produce_fixed_key_and_partition(gregor_bin, broker):
    topic = create_topic(broker.bootstrap, unique("cli-prod-fixed"), partitions=3)
    p = cli(gregor_bin, broker, "produce", topic, "-k", "the-key", "-p", "2", "--acks", "1",
            "--json", input=b"a\nb\n\nlast-without-newline")
    summary = json.loads(p.stdout)
    assert summary == {"topic": topic, "records": 4, "partitions": [
        {"partition": 2, "records": 4, "first_offset": 0, "last_offset": 3}]}
    msgs = consume_confluent(broker.bootstrap, topic, 2, 4)
    assert [(m.key(), m.value(), m.offset()) for m in msgs] == [
        (b"the-key", b"a", 0), (b"the-key", b"b", 1), (b"the-key", b"", 2),
        (b"the-key", b"last-without-newline", 3)]


def test_cli_consume_exact_output(gregor_bin, broker):
    topic = create_topic(broker.bootstrap, unique("cli-cons"), partitions=2)
    p = Producer(rdkafka_conf(broker.bootstrap, **{"compression.type": "lz4", "linger.ms": 5}))
    sent = {0: [], 1: []}
    for i in range(6):
        part = i % 2
        key = None if i == 4 else f"k{i}".encode()
        p.produce(topic, key=key, value=f"value-{i}".encode(), partition=part,
                  headers=[("h", f"{i}".encode())] if i % 3 == 0 else None)
        sent[part].append((key, f"value-{i}".encode(), i))
    flush_all(p)

    out = cli(gregor_bin, broker, "consume", topic, "-e", "-f", r"%p %o %k=%v [%h]\n").stdout.decode()
    lines = out.splitlines()
    expected = {part: [f"{part} {off} {(k or b'').decode()}={v.decode()} [{'h=' + str(i) if i % 3 == 0 else ''}]"
                       for off, (k, v, i) in enumerate(sent[part])] for part in (0, 1)}
    for part in (0, 1):
        assert [l for l in lines if l.startswith(f"{part} ")] == expected[part]
    assert len(lines) == 6

    # The default format is the value and a newline; -p and -o -N (N before the end).
    out = cli(gregor_bin, broker, "consume", topic, "-e", "-p", "1", "-o", "-2").stdout
    assert out == b"value-3\nvalue-5\n"
    out = cli(gregor_bin, broker, "consume", topic, "-e", "-p", "0", "-o", "1", "-n", "1").stdout
    assert out == b"value-2\n"

    # --json: one object per record, matching what confluent-kafka reads.
    recs = [json.loads(l) for l in cli(gregor_bin, broker, "consume", topic, "-e", "--json").stdout.splitlines()]
    assert len(recs) == 6
    for part in (0, 1):
        ref = consume_confluent(broker.bootstrap, topic, part, 3)
        mine = [r for r in recs if r["partition"] == part]
        assert [(r["topic"], r["offset"], r["timestamp"], r["key"], r["value"]) for r in mine] == [
            (topic, m.offset(), m.timestamp()[1], m.key() and m.key().decode(), m.value().decode()) for m in ref]
        assert [r["headers"] for r in mine] == [
            [{"key": k, "value": v.decode()} for k, v in (m.headers() or [])] for m in ref]

    # -n stops early; following (no -e) ends at -n too.
    assert len(cli(gregor_bin, broker, "consume", topic, "-n", "4").stdout.splitlines()) == 4


def test_cli_consume_with_group_commits(gregor_bin, broker):
    topic = create_topic(broker.bootstrap, unique("cli-cg"), partitions=1)
    group = unique("cli-cg-group")
    p = Producer(rdkafka_conf(broker.bootstrap))
    for i in range(5):
        p.produce(topic, value=f"m{i}".encode(), partition=0)
    flush_all(p)
    out = cli(gregor_bin, broker, "consume", topic, "-g", group, "-e", "-n", "3").stdout
    assert out == b"m0\nm1\nm2\n"
    admin = admin_client(broker.bootstrap)
    from confluent_kafka import ConsumerGroupTopicPartitions
    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])])
    (tp,) = res[group].result(timeout=10).topic_partitions
    assert tp.offset == 3
    # The next run starts from the committed offset.
    assert cli(gregor_bin, broker, "consume", topic, "-g", group, "-e").stdout == b"m3\nm4\n"


def test_cli_groups_describe_lag(gregor_bin, broker):
    topic = create_topic(broker.bootstrap, unique("cli-lag"), partitions=2)
    group = unique("cli-lag-group")
    p = Producer(rdkafka_conf(broker.bootstrap))
    for i in range(10):
        p.produce(topic, value=b"x", partition=0)
    for i in range(6):
        p.produce(topic, value=b"y", partition=1)
    flush_all(p)

    c = Consumer(rdkafka_conf(broker.bootstrap, **{
        "group.id": group, "client.id": "lag-checker", "enable.auto.commit": False,
        "auto.offset.reset": "earliest"}))
    try:
        c.subscribe([topic])

        def assigned():
            c.poll(0.2)
            return len(c.assignment()) == 2

        wait_for(assigned, timeout=30, what="assignment of both partitions")
        c.commit(offsets=[TopicPartition(topic, 0, 4), TopicPartition(topic, 1, 6)], asynchronous=False)

        # While the member is alive: its client id and assignment show.
        d = json.loads(cli(gregor_bin, broker, "groups", "describe", group, "--json").stdout)
        assert d["state"] == "Stable"
        assert d["protocol_type"] == "consumer"
        (m,) = d["members"]
        assert m["client_id"] == "lag-checker"
        assert m["host"]
        assert m["assignment"] == [{"topic": topic, "partitions": [0, 1]}]
        assert d["total_lag"] == 6
        offsets = {(o["topic"], o["partition"]): o for o in d["offsets"]}
        assert offsets[(topic, 0)] == {
            "topic": topic, "partition": 0, "committed_offset": 4, "log_end_offset": 10, "lag": 6,
            "member_id": m["member_id"]}
        assert offsets[(topic, 1)]["lag"] == 0 and offsets[(topic, 1)]["committed_offset"] == 6

        text = cli(gregor_bin, broker, "groups", "describe", group).stdout
        rows = table(text)
        assert ["TOTAL-LAG", "6"] in rows
        assert [topic, "0", "4", "10", "6", m["member_id"], "lag-checker"] == rows[[r[0] for r in rows].index(topic)][:7]
        listed = table(cli(gregor_bin, broker, "groups", "list").stdout)
        assert listed[0] == ["GROUP", "STATE", "PROTOCOL-TYPE"]
        assert [group, "Stable", "consumer"] in listed

        # A group with active members cannot be deleted.
        busy = cli(gregor_bin, broker, "groups", "delete", group, check=False)
        assert busy.returncode != 0 and b"NON_EMPTY_GROUP" in busy.stderr
    finally:
        c.close()

    d = json.loads(cli(gregor_bin, broker, "groups", "describe", group, "--json").stdout)
    assert d["state"] == "Empty" and d["members"] == [] and d["total_lag"] == 6
    out = cli(gregor_bin, broker, "groups", "delete", group).stdout
    assert table(out) == [["GROUP", "STATUS"], [group, "OK"]]
    gone = cli(gregor_bin, broker, "groups", "describe", group, check=False)
    assert gone.returncode != 0 and b"GROUP_ID_NOT_FOUND" in gone.stderr


def test_cli_bad_input(gregor_bin, broker):
    nosuch = unique("cli-nosuch")
    for args in (["consume", nosuch, "-e"], ["topics", "describe", nosuch], ["produce", nosuch]):
        r = cli(gregor_bin, broker, *args, input=b"x\n", check=False)
        assert r.returncode != 0, args
        assert b"UNKNOWN_TOPIC_OR_PARTITION" in r.stderr and b"does not host" in r.stderr, r.stderr
    assert not topic_exists(admin_client(broker.bootstrap), nosuch), "the CLI must not auto-create topics"

    topic = create_topic(broker.bootstrap, unique("cli-bad"), partitions=1)
    r = cli(gregor_bin, broker, "consume", topic, "--no-such-flag", check=False)
    assert r.returncode == 2 and b"--no-such-flag" in r.stderr
    r = cli(gregor_bin, broker, "produce", topic, "-z", "brotli", input=b"", check=False)
    assert r.returncode == 2 and b"brotli" in r.stderr
    r = cli(gregor_bin, broker, "consume", topic, "-f", "%x", check=False)
    assert r.returncode != 0 and b"%x" in r.stderr
    r = cli(gregor_bin, broker, "consume", topic, "-p", "7", "-e", check=False)
    assert r.returncode != 0 and b"UNKNOWN_TOPIC_OR_PARTITION" in r.stderr

    port = free_port()
    r = cli(gregor_bin, None, "topics", "list", "-b", f"127.0.0.1:{port}", "--timeout", "3s", check=False)
    assert r.returncode != 0 and f"cannot connect to 127.0.0.1:{port}".encode() in r.stderr
    # GREGOR_BROKERS is the default bootstrap.
    r = cli(gregor_bin, None, "topics", "list", check=False, env={"GREGOR_BROKERS": f"127.0.0.1:{port}"})
    assert r.returncode != 0 and f"127.0.0.1:{port}".encode() in r.stderr
    r = cli(gregor_bin, None, "topics", "list", env={"GREGOR_BROKERS": broker.bootstrap})
    assert [topic, "1", "1"] in table(r.stdout)


def test_cli_groups_describe_kip848(gregor_bin, broker):
    """A KIP-848 (group.protocol=consumer) group: DescribeGroups does not know it, the CLI falls back
    to ConsumerGroupDescribe."""
    topic = create_topic(broker.bootstrap, unique("cli-848"), partitions=2)
    group = unique("cli-848-group")
    p = Producer(rdkafka_conf(broker.bootstrap))
    for i in range(5):
        p.produce(topic, value=b"x", partition=0)
    flush_all(p)
    c = Consumer(rdkafka_conf(broker.bootstrap, **{
        "group.id": group, "group.protocol": "consumer", "client.id": "new-protocol",
        "enable.auto.commit": False, "auto.offset.reset": "earliest"}))
    try:
        c.subscribe([topic])

        def assigned():
            c.poll(0.2)
            return len(c.assignment()) == 2

        wait_for(assigned, timeout=30, what="assignment of both partitions")
        c.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
        d = json.loads(cli(gregor_bin, broker, "groups", "describe", group, "--json").stdout)
        assert d["state"] == "Stable" and d["protocol_type"] == "consumer"
        (m,) = d["members"]
        assert m["assignment"] == [{"topic": topic, "partitions": [0, 1]}]
        offsets = {o["partition"]: o for o in d["offsets"]}
        assert (offsets[0]["committed_offset"], offsets[0]["log_end_offset"], offsets[0]["lag"]) == (1, 5, 4)
        assert offsets[1]["committed_offset"] is None and offsets[1]["member_id"] == m["member_id"]
        assert d["total_lag"] == 4
        assert m["client_id"] == "new-protocol"
        assert m["host"]
    finally:
        c.close()
