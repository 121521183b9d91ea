"""(i) Apache Kafka 4.1 CLI tools (unmodified, via compat-tests/bin wrappers) against the broker.

API usage observed against Apache Kafka 4.1.2 (see README.md):
  kafka-topics --create:   ApiVersions, Metadata, CreateTopics v7
  kafka-topics --describe: Metadata, DescribeCluster, DescribeTopicPartitions, DescribeConfigs, ListPartitionReassignments
  kafka-topics --alter:    Metadata, DescribeCluster, CreatePartitions, DescribeTopicPartitions
  kafka-console-producer:  Metadata, InitProducerId, Produce (idempotent, acks=all)
  kafka-console-consumer --partition P --offset earliest: Metadata, ListOffsets, Fetch (no group APIs)
  kafka-get-offsets:       Metadata, DescribeCluster, DescribeTopicPartitions, ListOffsets
"""

import re
import shutil

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewPartitions

from helpers import admin_client, create_topic, flush_all, rdkafka_conf, run_tool, topic_exists, topic_partitions, unique, wait_for

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="java not installed")


def test_kafka_topics_lifecycle(broker):
    b = broker.bootstrap
    topic = unique("cli-topics")
    out = run_tool("kafka-topics.sh", "--bootstrap-server", b, "--create", "--topic", topic,
                   "--partitions", 3, "--replication-factor", 1).stdout
    assert f"Created topic {topic}." in out

    out = run_tool("kafka-topics.sh", "--bootstrap-server", b, "--list").stdout
    assert topic in out.split()

    out = run_tool("kafka-topics.sh", "--bootstrap-server", b, "--describe", "--topic", topic).stdout
    assert re.search(rf"Topic: {re.escape(topic)}\s+TopicId: \S+\s+PartitionCount: 3\s+ReplicationFactor: 1", out), out
    parts = re.findall(rf"Topic: {re.escape(topic)}\s+Partition: (\d+)\s+Leader: (\d+)\s+Replicas: (\d+)\s+Isr: (\d+)", out)
    assert [int(p[0]) for p in parts] == [0, 1, 2], out
    assert all(p[1] == p[2] == p[3] for p in parts), out

    run_tool("kafka-topics.sh", "--bootstrap-server", b, "--alter", "--topic", topic, "--partitions", 4)
    admin = admin_client(b)
    wait_for(lambda: topic_partitions(admin, topic) == 4, what="4 partitions after --alter")
    out = run_tool("kafka-topics.sh", "--bootstrap-server", b, "--describe", "--topic", topic).stdout
    assert "PartitionCount: 4" in out, out

    # Creating it again fails with a clear error.
    p = run_tool("kafka-topics.sh", "--bootstrap-server", b, "--create", "--topic", topic, "--partitions", 1,
                 check=False)
    assert p.returncode != 0
    assert "already exists" in (p.stdout + p.stderr)

    run_tool("kafka-topics.sh", "--bootstrap-server", b, "--delete", "--topic", topic)
    wait_for(lambda: not topic_exists(admin, topic), timeout=10, what="topic deleted")


def test_kafka_topics_create_with_broker_defaults(broker):
    """No --partitions/--replication-factor: CreateTopics with -1/-1 -> broker default (1 partition)."""
    topic = unique("cli-default")
    run_tool("kafka-topics.sh", "--bootstrap-server", broker.bootstrap, "--create", "--topic", topic)
    wait_for(lambda: topic_partitions(admin_client(broker.bootstrap), topic) == 1, what="1 partition")


def console_consume(bootstrap, topic, n, *extra, partition=0):
    p = run_tool("kafka-console-consumer.sh", "--bootstrap-server", bootstrap, "--topic", topic,
                 "--partition", partition, "--offset", "earliest", "--max-messages", n, "--timeout-ms", 20000,
                 *extra, timeout=60)
    return p.stdout.splitlines()


def test_console_producer_consumer_and_get_offsets(broker):
    b = broker.bootstrap
    topic = create_topic(b, unique("cli-console"), partitions=1)
    lines = [f"line {i} ✓" for i in range(7)]
    # Values only (no key); one partition keeps the order checkable.
    run_tool("kafka-console-producer.sh", "--bootstrap-server", b, "--topic", topic,
             input="".join(x + "\n" for x in lines))
    # A second partition with 3 records from another client, so get-offsets has two partitions to report.
    admin = admin_client(b)
    admin.create_partitions([NewPartitions(topic, 2)], request_timeout=30)[topic].result(timeout=30)
    wait_for(lambda: topic_partitions(admin, topic) == 2, what="2 partitions")
    p = Producer(rdkafka_conf(b))
    for i in range(3):
        p.produce(topic, value=b"other", partition=1)
    flush_all(p)

    out = console_consume(b, topic, len(lines), "--property", "print.key=true", "--property", "print.offset=true")
    assert out == [f"Offset:{i}\tnull\t{line}" for i, line in enumerate(lines)]

    out = run_tool("kafka-get-offsets.sh", "--bootstrap-server", b, "--topic", topic).stdout.split()
    assert sorted(out) == [f"{topic}:0:{len(lines)}", f"{topic}:1:3"]
    out = run_tool("kafka-get-offsets.sh", "--bootstrap-server", b, "--topic", topic, "--time", "-2").stdout.split()
    assert sorted(out) == [f"{topic}:0:0", f"{topic}:1:0"]
    out = run_tool("kafka-get-offsets.sh", "--bootstrap-server", b, "--topic", topic, "--partitions", "1",
                   "--time", "-1").stdout.split()
    assert out == [f"{topic}:1:3"]


def test_console_producer_with_keys(broker):
    b = broker.bootstrap
    topic = create_topic(b, unique("cli-keys"), partitions=1)
    pairs = [("k1", "v1"), ("k2", "value two"), ("k1", "v3:with:colons")]
    run_tool("kafka-console-producer.sh", "--bootstrap-server", b, "--topic", topic,
             "--property", "parse.key=true", "--property", "key.separator=:",
             "--producer-property", "compression.type=lz4",
             input="".join(f"{k}:{v}\n" for k, v in pairs))
    out = console_consume(b, topic, len(pairs), "--property", "print.key=true")
    assert out == [f"{k}\t{v}" for k, v in pairs]
    out = run_tool("kafka-get-offsets.sh", "--bootstrap-server", b, "--topic", topic).stdout.split()
    assert out == [f"{topic}:0:{len(pairs)}"]
