"""Gregor's Prometheus endpoint (`metrics.listener`, docs/metrics.md), scraped over real HTTP after
real confluent-kafka traffic: exact message counts, log end offsets and consumer lag, consistent
byte counters, request counters and latency histograms, and the slow-request log line (which
must not fire for Fetch long polls or JoinGroup rebalance waits). Gregor-only: Apache Kafka has
no /metrics of its own (it needs the JMX exporter)."""

import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import _require_gregor_bin, free_port
from helpers import admin_client, create_topic, flush_all, rdkafka_conf, unique, wait_for

pytestmark = [
    pytest.mark.skipif(bool(os.environ.get("COMPAT_BOOTSTRAP")),
                       reason="gregor-only: /metrics is served by gregor itself"),
]

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(port, path="/metrics"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        assert r.status == 200
        ctype = r.headers.get("Content-Type", "")
        body = r.read().decode()
    assert ctype.startswith("application/openmetrics-text"), ctype
    assert body.endswith("# EOF\n"), body[-200:]
    samples = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"unparsable exposition line: {line!r}"
        labels = frozenset(_LABEL.findall(m.group(2) or ""))
        key = (m.group(1), labels)
        assert key not in samples, f"duplicate series {line!r}"
        samples[key] = float(m.group(3))
    return samples


def value(samples, name, **labels):
    """The one sample with exactly these labels, or None."""
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())))


def total(samples, name, **labels):
    """Sum over the samples of `name` whose labels include `labels`."""
    want = {(k, str(v)) for k, v in labels.items()}
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def metrics_broker(own_broker, *extra):
    port = free_port()
    b = own_broker(extra_overrides=[f"metrics.listener=http://127.0.0.1:{port}", *extra])
    wait_for(lambda: scrape(port), timeout=10, what="/metrics to answer")
    return b, port


def test_metrics_after_produce_consume_commit(own_broker):
    b, port = metrics_broker(own_broker, "gregor.slow.request.ms=0")
    topic = create_topic(b.bootstrap, unique("metrics"), partitions=2)
    counts = {0: 20, 1: 10}
    value_bytes = b"v" * 100
    p = Producer(rdkafka_conf(b.bootstrap, **{"linger.ms": 5}))
    for part, n in counts.items():
        for i in range(n):
            p.produce(topic, value=value_bytes, key=f"k{i}".encode(), partition=part)
    flush_all(p)
    n_total = sum(counts.values())

    group = unique("metrics-group")
    c = Consumer(rdkafka_conf(b.bootstrap, **{
        "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest",
    }))
    try:
        c.assign([TopicPartition(topic, part, 0) for part in counts])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < n_total and time.monotonic() < deadline:
            for m in c.consume(num_messages=n_total, timeout=0.5):
                assert not m.error(), m.error()
                got.append(m)
        assert len(got) == n_total, f"read {len(got)}/{n_total}"
        # Leave a known lag: 5 on partition 0, none on partition 1.
        committed = {0: counts[0] - 5, 1: counts[1]}
        c.commit(offsets=[TopicPartition(topic, part, off) for part, off in committed.items()],
                 asynchronous=False)

        s = scrape(port)  # the consumer is still connected
        # Records and bytes in, per topic and in the all-topics series.
        assert value(s, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic) == n_total
        assert value(s, "kafka_server_brokertopicmetrics_messagesin_total") >= n_total
        bytes_in = value(s, "kafka_server_brokertopicmetrics_bytesin_total", topic=topic)
        assert bytes_in >= n_total * len(value_bytes)
        # Batches are stored as sent: the log sizes add up to the bytes produced.
        log_size = total(s, "kafka_log_log_size", topic=topic)
        assert log_size == bytes_in, (log_size, bytes_in)
        # Every batch was fetched at least once.
        bytes_out = value(s, "kafka_server_brokertopicmetrics_bytesout_total", topic=topic)
        assert bytes_out >= bytes_in, (bytes_out, bytes_in)
        assert value(s, "kafka_server_brokertopicmetrics_totalproducerequests_total", topic=topic) >= 2
        assert value(s, "kafka_server_brokertopicmetrics_failedproducerequests_total", topic=topic) == 0
        assert value(s, "kafka_server_brokertopicmetrics_totalfetchrequests_total", topic=topic) >= 2

        for part, n in counts.items():
            assert value(s, "kafka_log_log_logendoffset", topic=topic, partition=part) == n
            assert value(s, "kafka_log_log_logstartoffset", topic=topic, partition=part) == 0
            assert value(s, "kafka_log_log_numlogsegments", topic=topic, partition=part) == 1
            assert value(s, "kafka_consumergroup_current_offset",
                         consumergroup=group, topic=topic, partition=part) == committed[part]
            assert value(s, "kafka_consumergroup_lag",
                         consumergroup=group, topic=topic, partition=part) == n - committed[part]

        # Requests by Kafka's request names (Fetch from consumers is FetchConsumer, as in Kafka).
        for request in ("Produce", "FetchConsumer", "Metadata", "OffsetCommit", "ApiVersions"):
            assert total(s, "kafka_network_requestmetrics_requests_total", request=request) > 0, request
            assert value(s, "kafka_network_requestmetrics_totaltimems_count", request=request) > 0, request
            assert value(s, "kafka_network_requestmetrics_totaltimems_bucket",
                         request=request, le="+Inf") == value(
                s, "kafka_network_requestmetrics_totaltimems_count", request=request)
        produce_versions = {dict(ls)["version"] for (n, ls) in s
                            if n == "kafka_network_requestmetrics_requests_total"
                            and ("request", "Produce") in ls}
        assert produce_versions and all(v.isdigit() for v in produce_versions), produce_versions

        assert value(s, "kafka_server_socketservermetrics_connection_count", listener="PLAINTEXT") >= 1
        assert value(s, "kafka_server_socketservermetrics_connection_creation_total",
                     listener="PLAINTEXT") >= 2
        assert value(s, "kafka_controller_kafkacontroller_activecontrollercount") == 1
        assert value(s, "kafka_server_replicamanager_underreplicatedpartitions") == 0
        assert value(s, "kafka_controller_kafkacontroller_globaltopiccount") >= 2  # + __consumer_offsets
    finally:
        c.close()

    # Other paths are 404; the endpoint keeps working.
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/nope", timeout=10)
    assert e.value.code == 404
    # Garbage on the metrics port ends that connection only (hyper answers 400).
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"\x00\xffNOT HTTP\r\n\r\n")
        assert sock.recv(64).startswith(b"HTTP/1.1 400")
    assert value(scrape(port), "kafka_log_log_logendoffset", topic=topic, partition=0) == counts[0]

    # gregor.slow.request.ms=0 logs every request that did any work, with its identity.
    log = open(b.log_path, encoding="utf-8", errors="replace").read()
    slow = [line for line in log.splitlines() if "slow request" in line]
    assert any("api=Produce" in line and "correlation_id=" in line and "client_id=" in line
               for line in slow), slow[:5]

    # A deleted topic's series go away.
    admin = admin_client(b.bootstrap)
    admin.delete_topics([topic], operation_timeout=30)[topic].result(timeout=30)
    wait_for(lambda: value(scrape(port), "kafka_log_log_size", topic=topic, partition=0) is None,
             what="deleted topic's series to disappear")
    s = scrape(port)
    assert not [k for k in s if ("topic", topic) in k[1]], "series of the deleted topic remain"


def test_long_polls_and_rebalance_waits_are_not_slow_requests(own_broker):
    b, port = metrics_broker(own_broker, "gregor.slow.request.ms=300",
                             "group.initial.rebalance.delay.ms=1000",
                             "offsets.topic.num.partitions=1")
    topic = create_topic(b.bootstrap, unique("idle"), partitions=1)
    c = Consumer(rdkafka_conf(b.bootstrap, **{
        "group.id": unique("idle-group"), "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 1000, "enable.auto.commit": False,
    }))
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            msg = c.poll(0.5)
            assert msg is None or msg.error() is None or msg.error().code() < 0, msg.error()
        s = scrape(port)
    finally:
        c.close()
    # Long polls happened (Fetch requests over 500 ms, counted in TotalTimeMs as in Kafka) ...
    fetches = value(s, "kafka_network_requestmetrics_totaltimems_count", request="FetchConsumer")
    fast = value(s, "kafka_network_requestmetrics_totaltimems_bucket", request="FetchConsumer", le="500.0")
    assert fetches and fetches - fast >= 2, (fetches, fast)
    # ... and the JoinGroup waited for the initial rebalance delay ...
    joins = value(s, "kafka_network_requestmetrics_totaltimems_count", request="JoinGroup")
    slow_joins = joins - value(s, "kafka_network_requestmetrics_totaltimems_bucket",
                               request="JoinGroup", le="500.0")
    assert slow_joins >= 1, joins
    # ... but none of that waiting is logged as a slow request.
    log = open(b.log_path, encoding="utf-8", errors="replace").read()
    slow = [line for line in log.splitlines() if "slow request" in line]
    assert not slow, slow[:5]


def test_metrics_listener_bind_failure_is_a_clear_startup_error(tmp_path):
    binary = _require_gregor_bin()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        kafka_port = free_port()
        p = subprocess.run(
            [binary,
             "--override", f"listeners=PLAINTEXT://127.0.0.1:{kafka_port}",
             "--override", f"log.dirs={tmp_path / 'data'}",
             "--override", f"metrics.listener=http://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=30,
        )
    assert p.returncode != 0
    assert f"metrics.listener=http://127.0.0.1:{port}" in p.stderr, p.stderr
    assert "in use" in p.stderr, p.stderr
