"""Unmodified clients over every secured listener: a produce + group-consume round trip whose records, offsets and
committed group offsets are read back."""

import pytest

import shelpers as h
from secnode import run_tool

N = 10


@pytest.mark.parametrize("listener,mechanism", [
    ("SASL_PLAINTEXT", "PLAIN"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-256"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-512"),
    ("SSL", None),                      # mTLS: client certificate CN=alice signed by the test CA
    ("SASL_SSL", "SCRAM-SHA-512"),
    ("SASL_SSL", "PLAIN"),
])
def test_confluent_roundtrip(node, listener, mechanism):
    conf = h.ck_conf(node, listener, mechanism)
    topic, values, got, committed = h.ck_roundtrip(conf, n=N)
    assert sorted(got) == sorted(values), f"consumed {got!r}, produced {values!r}"
    assert len(got) == N, f"duplicates: {got!r}"
    assert committed == {0: N}, f"committed offsets {committed}"


@pytest.mark.parametrize("listener,mechanism", [
    ("SASL_PLAINTEXT", "SCRAM-SHA-256"),
    ("SSL", None),
])
def test_kafka_python_roundtrip(node, listener, mechanism):
    conf = h.kp_conf(node, listener, mechanism)
    topic, values, got, committed = h.kp_roundtrip(conf, n=N)
    assert sorted(got) == sorted(values), f"consumed {got!r}, produced {values!r}"
    assert len(got) == N
    assert committed == N, f"committed offset {committed}"


def test_java_console_sasl_ssl_scram(node, tmp_path):
    """kafka-topics (AdminClient), kafka-console-producer and kafka-console-consumer (group) over SASL_SSL with
    SCRAM-SHA-256 (alice's credential has 8192 iterations), configured by client property files."""
    cfg = tmp_path / "client.properties"
    cfg.write_text(h.java_client_props(node, "SASL_SSL", "SCRAM-SHA-256"))
    b = node.bootstrap("SASL_SSL")
    topic, group = h.unique("jsec"), h.unique("jg")
    p = run_tool("kafka-topics.sh", "--bootstrap-server", b, "--command-config", cfg, "--create", "--topic", topic,
                 "--partitions", "2", "--replication-factor", "1")
    assert f"Created topic {topic}." in p.stdout, p.stdout
    lines = [f"{topic}-line{i}" for i in range(6)]
    run_tool("kafka-console-producer.sh", "--bootstrap-server", b, "--producer.config", cfg, "--topic", topic,
             input="".join(l + "\n" for l in lines))
    p = run_tool("kafka-console-consumer.sh", "--bootstrap-server", b, "--consumer.config", cfg, "--topic", topic,
                 "--group", group, "--from-beginning", "--max-messages", str(len(lines)), "--timeout-ms", "30000")
    got = [l for l in p.stdout.splitlines() if l.strip()]
    assert sorted(got) == sorted(lines), f"stdout {p.stdout!r} stderr {p.stderr[-2000:]}"
    assert f"Processed a total of {len(lines)} messages" in p.stderr
    # the group's committed offsets, read back through the same secured listener
    p = run_tool("kafka-consumer-groups.sh", "--bootstrap-server", b, "--command-config", cfg, "--describe",
                 "--group", group)
    rows = [l.split() for l in p.stdout.splitlines() if l.startswith(group)]
    assert len(rows) == 2, p.stdout
    assert sum(int(r[3]) for r in rows) == len(lines), p.stdout  # CURRENT-OFFSET column
    assert all(r[3] == r[4] and r[5] == "0" for r in rows), p.stdout  # == LOG-END-OFFSET, LAG 0


def test_java_admin_over_mtls(node, tmp_path):
    """The Java AdminClient over the SSL listener with a PEM key store (client key + certificate) and a PEM trust
    store: kafka-topics --create then --describe shows the topic with its 3 partitions led by broker 1."""
    cfg = tmp_path / "ssl.properties"
    cfg.write_text(h.java_client_props(node, "SSL"))
    b = node.bootstrap("SSL")
    topic = h.unique("jssl")
    run_tool("kafka-topics.sh", "--bootstrap-server", b, "--command-config", cfg, "--create", "--topic", topic,
             "--partitions", "3", "--replication-factor", "1")
    p = run_tool("kafka-topics.sh", "--bootstrap-server", b, "--command-config", cfg, "--describe", "--topic", topic)
    parts = [l for l in p.stdout.splitlines() if "Partition:" in l]
    assert len(parts) == 3 and all("Leader: 1" in l for l in parts), p.stdout
