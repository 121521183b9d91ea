"""(e) idempotent producer, (f) oversized records, (g) topic auto-creation via Metadata."""

import os

import pytest
from confluent_kafka import KafkaError, Producer
from kafka import KafkaProducer

from helpers import (admin_client, consume_confluent, create_topic, delivery_collector, flush_all, rdkafka_conf,
                     topic_partitions, unique, wait_for)

N_IDEMPOTENT = 1000


@pytest.mark.parametrize("codec", ["none", "lz4"])
def test_idempotent_producer_librdkafka(broker, codec):
    topic = create_topic(broker.bootstrap, unique("idem"), partitions=1)
    p = Producer(rdkafka_conf(broker.bootstrap, **{
        "enable.idempotence": True, "acks": "all", "retries": 10, "max.in.flight.requests.per.connection": 5,
        "linger.ms": 2, "batch.num.messages": 50, "compression.type": codec}))
    cb, results = delivery_collector()
    for i in range(N_IDEMPOTENT):
        p.produce(topic, value=str(i).encode(), key=b"k", partition=0, on_delivery=cb)
        p.poll(0)
    flush_all(p)
    errs = [e for e, _ in results if e is not None]
    assert not errs, errs[:5]
    # Delivery reports: each value acknowledged once, offsets 0..N-1 in produce order.
    by_value = {m.value(): m.offset() for _, m in results}
    assert len(results) == N_IDEMPOTENT
    assert [by_value[str(i).encode()] for i in range(N_IDEMPOTENT)] == list(range(N_IDEMPOTENT))
    msgs = consume_confluent(broker.bootstrap, topic, 0, N_IDEMPOTENT)
    assert [m.value() for m in msgs] == [str(i).encode() for i in range(N_IDEMPOTENT)]
    assert [m.offset() for m in msgs] == list(range(N_IDEMPOTENT))


def test_idempotent_producer_kafka_python(broker):
    topic = create_topic(broker.bootstrap, unique("idem-kpy"), partitions=1)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True, acks="all", retries=10,
                      linger_ms=2, request_timeout_ms=15000, max_block_ms=15000)
    try:
        futs = [p.send(topic, value=str(i).encode(), partition=0) for i in range(N_IDEMPOTENT)]
        p.flush(timeout=30)
        assert [f.get(timeout=30).offset for f in futs] == list(range(N_IDEMPOTENT))
    finally:
        p.close(timeout=10)
    msgs = consume_confluent(broker.bootstrap, topic, 0, N_IDEMPOTENT)
    assert [m.value() for m in msgs] == [str(i).encode() for i in range(N_IDEMPOTENT)]


@pytest.mark.parametrize("codec", ["none", "gzip"])
def test_oversized_record_rejected_broker_keeps_serving(broker, codec):
    topic = create_topic(broker.bootstrap, unique("big"), partitions=1)
    # Producer limit raised to 10 MB so the 2 MB record reaches the broker (default broker limit ~1 MB).
    p = Producer(rdkafka_conf(broker.bootstrap, **{
        "message.max.bytes": 10 * 1024 * 1024, "acks": "all", "compression.type": codec,
        "message.timeout.ms": 20000}))
    cb, results = delivery_collector()
    p.produce(topic, value=os.urandom(2 * 1024 * 1024), partition=0, on_delivery=cb)
    flush_all(p)
    assert len(results) == 1
    err = results[0][0]
    assert err is not None, "2 MB record was accepted"
    assert err.code() == KafkaError.MSG_SIZE_TOO_LARGE, f"expected MESSAGE_TOO_LARGE from the broker, got {err}"

    # Same producer (same connection) keeps working.
    cb2, results2 = delivery_collector()
    p.produce(topic, value=b"small", key=b"after", partition=0, on_delivery=cb2)
    flush_all(p)
    assert results2[0][0] is None, results2[0][0]
    assert results2[0][1].offset() == 0
    msgs = consume_confluent(broker.bootstrap, topic, 0, 1)
    assert (msgs[0].key(), msgs[0].value()) == (b"after", b"small")


def test_auto_create_topic_on_produce(broker):
    topic = unique("auto")
    admin = admin_client(broker.bootstrap)
    assert topic not in admin.list_topics(timeout=10).topics
    p = Producer(rdkafka_conf(broker.bootstrap, **{"acks": "all", "message.timeout.ms": 30000}))
    cb, results = delivery_collector()
    p.produce(topic, value=b"first", key=b"k", on_delivery=cb)
    flush_all(p)
    assert results[0][0] is None, results[0][0]
    assert (results[0][1].partition(), results[0][1].offset()) == (0, 0)
    wait_for(lambda: topic_partitions(admin, topic) == 1, what="auto-created topic with 1 partition")
    msgs = consume_confluent(broker.bootstrap, topic, 0, 1)
    assert (msgs[0].key(), msgs[0].value()) == (b"k", b"first")


def test_auto_create_topic_kafka_python(broker):
    topic = unique("auto-kpy")
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", request_timeout_ms=15000, max_block_ms=20000)
    try:
        meta = p.send(topic, value=b"hello").get(timeout=30)
        assert (meta.partition, meta.offset) == (0, 0)
    finally:
        p.close(timeout=10)
    admin = admin_client(broker.bootstrap)
    wait_for(lambda: topic_partitions(admin, topic) == 1, what="auto-created topic with 1 partition")
    assert consume_confluent(broker.bootstrap, topic, 0, 1)[0].value() == b"hello"


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_log_append_time_topic_stamps_records(broker, codec):
    """message.timestamp.type=LogAppendTime: the broker replaces the producer's timestamps with
    its append time (Kafka's LogValidator), reports it in the produce response, and consumers read
    timestamp type LOG_APPEND_TIME."""
    import time
    from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME

    topic = create_topic(broker.bootstrap, unique("lat"), partitions=1,
                         config={"message.timestamp.type": "LogAppendTime"})
    old = 1_000_000_000_000  # 2001: far outside "now"
    p = Producer(rdkafka_conf(broker.bootstrap, **{"compression.type": codec, "linger.ms": 5}))
    cb, results = delivery_collector()
    before = int(time.time() * 1000)
    for i in range(20):
        p.produce(topic, value=f"v{i}".encode(), partition=0, timestamp=old + i, on_delivery=cb)
    flush_all(p)
    after = int(time.time() * 1000)
    assert [e for e, _ in results if e is not None] == []
    for _, m in results:
        ts_type, ts = m.timestamp()
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME, (ts_type, ts)
        assert before - 1000 <= ts <= after + 1000, (ts, before, after)
    msgs = consume_confluent(broker.bootstrap, topic, 0, 20)
    assert [m.value() for m in msgs] == [f"v{i}".encode() for i in range(20)]
    for m in msgs:
        ts_type, ts = m.timestamp()
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME and ts_type != TIMESTAMP_CREATE_TIME
        assert before - 1000 <= ts <= after + 1000, (ts, before, after)


@pytest.mark.parametrize("min_isr", ["1", "2"])
def test_acks_all_min_insync_capped_at_replication_factor(broker, min_isr):
    """acks=all needs min(min.insync.replicas, replication factor) in-sync replicas (Kafka's
    effective min ISR, KAFKA-18762): a replication-factor-1 topic with min.insync.replicas=2
    accepts acks=all writes, both from librdkafka and from the Java-protocol kafka-python."""
    topic = create_topic(broker.bootstrap, unique("minisr"), partitions=1,
                         config={"min.insync.replicas": min_isr})
    p = Producer(rdkafka_conf(broker.bootstrap, **{"acks": "all", "message.timeout.ms": 20000}))
    cb, results = delivery_collector()
    for i in range(10):
        p.produce(topic, value=f"v{i}".encode(), partition=0, on_delivery=cb)
    flush_all(p)
    assert [e for e, _ in results] == [None] * 10
    kp = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", retries=0,
                       request_timeout_ms=15000, max_block_ms=15000)
    try:
        assert kp.send(topic, value=b"kp", partition=0).get(timeout=30).offset == 10
    finally:
        kp.close(timeout=10)
    msgs = consume_confluent(broker.bootstrap, topic, 0, 11)
    assert [m.value() for m in msgs] == [f"v{i}".encode() for i in range(10)] + [b"kp"]
