"""Produce to and consume from partitions led by different brokers, with three unmodified clients:
confluent-kafka (librdkafka), the Java client (kafka-verifiable-producer.sh / kafka-console-consumer.sh) and
franz-go (compat-tests/cluster/franzgo, built once into the cache dir).

Topic: 3 partitions, RF 3, assignment 1:2:3,2:3:1,3:1:2, so partition p is led by node p+1; Metadata must show
exactly these three leaders before anything is produced. Each producer writes to every partition (acks=all); the
acked (partition, offset) of every record is recorded. Per partition the acked offsets must be exactly 0..n-1
(no gaps, no duplicates) and every consumer must read back exactly that sequence (key and value at each offset).
"""

import json
import subprocess
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from chelpers import admin, rdkafka_conf, run_tool, topic_metadata, unique, wait_for

ASSIGNMENT = [[1, 2, 3], [2, 3, 1], [3, 1, 2]]
PER_PARTITION = 10


def create_spread_topic(cluster, topic):
    a = admin(cluster.bootstrap)
    nt = NewTopic(topic, num_partitions=len(ASSIGNMENT), replica_assignment=ASSIGNMENT)
    fut = a.create_topics([nt], request_timeout=30)[topic]
    fut.result(timeout=40)

    def leaders_ok():
        md = topic_metadata(a, topic)
        if not md or len(md) != 3:
            return None
        if any(l < 0 or sorted(i) != [1, 2, 3] for l, _, i in md.values()):
            return None
        return md
    md = wait_for(leaders_ok, timeout=30, what=f"{topic}: 3 partitions with leaders and full ISR")
    leaders = {p: md[p][0] for p in md}
    assert leaders == {0: 1, 1: 2, 2: 3}, f"partitions not led by distinct brokers as assigned: {md}"
    return leaders


def produce_confluent(cluster, topic):
    p = Producer(rdkafka_conf(cluster.bootstrap, acks="all", **{"enable.idempotence": True, "linger.ms": 5}))
    acked, errors = [], []

    def cb(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked.append((msg.partition(), msg.offset(), msg.key().decode(), msg.value().decode()))

    for part in range(3):
        for i in range(PER_PARTITION):
            k = f"confluent-{part}-{i}"
            p.produce(topic, key=k, value=f"{k}-value", partition=part, on_delivery=cb)
    remaining = p.flush(30)
    assert remaining == 0 and not errors, (remaining, errors)
    assert len(acked) == 3 * PER_PARTITION
    return acked


def produce_java(cluster, topic, tmp_path):
    # Keys "0".."29" (--repeating-keys 30) are hashed by the default partitioner over the 3 partitions;
    # values "7.0".."7.29" (--value-prefix takes an integer).
    n = 3 * PER_PARTITION
    p = run_tool("kafka-verifiable-producer.sh", "--bootstrap-server", cluster.bootstrap, "--topic", topic,
                 "--max-messages", n, "--acks", "-1", "--value-prefix", 7, "--repeating-keys", n,
                 timeout=90)
    events = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    errors = [e for e in events if e.get("name") == "producer_send_error"]
    assert not errors, errors
    ok = [e for e in events if e.get("name") == "producer_send_success"]
    assert len(ok) == n, p.stdout
    done = [e for e in events if e.get("name") == "tool_data"]
    assert done and done[-1]["sent"] == n and done[-1]["acked"] == n, p.stdout
    acked = [(e["partition"], e["offset"], e["key"], e["value"]) for e in ok]
    assert {a[0] for a in acked} == {0, 1, 2}, f"Java producer did not reach every partition: {acked}"
    return acked


def franzgo(franzgo_bin, *args, timeout=60):
    cmd = [franzgo_bin, *map(str, args)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"franzgo timed out: {cmd}\n{e.stdout}\n{e.stderr}") from None
    assert p.returncode == 0, f"franzgo exited {p.returncode}: {cmd}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


def produce_franzgo(cluster, topic, franzgo_bin):
    recs = franzgo(franzgo_bin, "produce", "-brokers", cluster.bootstrap, "-topic", topic, "-partitions", "0,1,2",
                   "-count", PER_PARTITION, "-prefix", "franzgo", "-timeout", "45s")
    assert len(recs) == 3 * PER_PARTITION, recs
    return [(r["partition"], r["offset"], r["key"], r["value"]) for r in recs]


def by_partition(records):
    out = {0: [], 1: [], 2: []}
    for part, off, k, v in sorted(records, key=lambda r: (r[0], r[1])):
        out[part].append((off, k, v))
    return out


def consume_confluent(cluster, topic, total, timeout=30):
    c = Consumer(rdkafka_conf(cluster.bootstrap, **{
        "group.id": unique("assign-only"), "enable.auto.commit": False, "auto.offset.reset": "earliest"}))
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(3)])
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < total:
            assert time.monotonic() < deadline, f"confluent consumer read only {len(out)}/{total}"
            for m in c.consume(num_messages=total - len(out), timeout=0.5):
                assert m.error() is None, m.error()
                out.append((m.partition(), m.offset(), m.key().decode() if m.key() is not None else None,
                            m.value().decode()))
        extra = [m for m in c.consume(num_messages=10, timeout=0.5) if m.error() is None]
        assert not extra, f"unexpected extra records {[(m.partition(), m.offset()) for m in extra]}"
        return out
    finally:
        c.close()


def consume_java(cluster, topic, total):
    p = run_tool("kafka-console-consumer.sh", "--bootstrap-server", cluster.bootstrap, "--topic", topic,
                 "--from-beginning", "--max-messages", total, "--timeout-ms", 30000,
                 "--property", "print.partition=true", "--property", "print.offset=true",
                 "--property", "print.key=true", timeout=90)
    out = []
    for line in p.stdout.splitlines():
        cols = line.split("\t")
        assert len(cols) == 4 and cols[0].startswith("Partition:") and cols[1].startswith("Offset:"), line
        out.append((int(cols[0][len("Partition:"):]), int(cols[1][len("Offset:"):]), cols[2], cols[3]))
    assert f"Processed a total of {total} messages" in p.stderr, p.stderr[-2000:]
    return out


def test_three_clients_across_leaders(cluster, franzgo_bin, tmp_path):
    topic = unique("spread")
    create_spread_topic(cluster, topic)

    acked = produce_confluent(cluster, topic)
    acked += produce_java(cluster, topic, tmp_path)
    acked += produce_franzgo(cluster, topic, franzgo_bin)
    total = len(acked)
    assert total == 9 * PER_PARTITION

    expected = by_partition(acked)
    for part, recs in expected.items():
        assert [o for o, _, _ in recs] == list(range(len(recs))), \
            f"partition {part}: acked offsets are not exactly 0..{len(recs) - 1}: {[o for o, _, _ in recs]}"
        producers = {k.split("-")[0] if not k.isdigit() else "java" for _, k, _ in recs}
        assert producers == {"confluent", "java", "franzgo"}, f"partition {part}: records from {producers}"

    # Every consumer reads back exactly the acked records, in offset order within each partition.
    confluent = consume_confluent(cluster, topic, total)
    java = consume_java(cluster, topic, total)
    franz = [(r["partition"], r["offset"], r["key"], r["value"]) for r in
             franzgo(franzgo_bin, "consume", "-brokers", cluster.bootstrap, "-topic", topic, "-partitions", "0,1,2",
                     "-count", total, "-timeout", "45s")]
    for name, got in (("confluent-kafka", confluent), ("java console consumer", java), ("franz-go", franz)):
        assert len(got) == total, f"{name}: read {len(got)} records, expected {total}"
        for part in range(3):
            seq = [(o, k, v) for p, o, k, v in got if p == part]
            assert seq == expected[part], f"{name}: partition {part} differs\n got: {seq}\nwant: {expected[part]}"

    # The leaders did not move while we worked: three different brokers served the three partitions.
    md = topic_metadata(admin(cluster.bootstrap), topic)
    assert {p: md[p][0] for p in md} == {0: 1, 1: 2, 2: 3}, md
