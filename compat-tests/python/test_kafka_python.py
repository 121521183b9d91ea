"""(c) kafka-python (pure Python client) KafkaProducer -> broker -> KafkaConsumer, per codec.
The same data is also read back with librdkafka (cross-client check of the stored batches)."""

import time

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import MessageSizeTooLargeError

from helpers import consume_confluent, create_topic, unique
from records import sample_records

PARTITION = 1


def kp_producer(bootstrap, **kw):
    return KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=15000, max_block_ms=15000,
                        **kw)


def kp_consumer(bootstrap, **kw):
    return KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         request_timeout_ms=15000,**kw)


def kp_read(bootstrap, topic, partition, count, timeout=30, start=None):
    c = kp_consumer(bootstrap)
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        if start is None:
            c.seek_to_beginning(tp)
        else:
            c.seek(tp, start)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500, max_records=count - len(out)).values():
                out.extend(recs)
        assert len(out) == count, f"only {len(out)}/{count} records read in {timeout}s"
        more = c.poll(timeout_ms=300)
        assert not any(more.values()), f"unexpected extra records: {more}"
        return out
    finally:
        c.close()


def kp_produce(bootstrap, topic, partition, recs, **kw):
    p = kp_producer(bootstrap, **kw)
    try:
        futs = [p.send(topic, value=r["value"], key=r["key"], headers=r["headers"], partition=partition,
                       timestamp_ms=r["ts"]) for r in recs]
        p.flush(timeout=30)
        return [f.get(timeout=30) for f in futs]
    finally:
        p.close(timeout=10)


@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
def test_kafka_python_roundtrip(broker, codec):
    topic = create_topic(broker.bootstrap, unique(f"kpy-{codec or 'none'}"), partitions=2)
    recs = sample_records()
    metas = kp_produce(broker.bootstrap, topic, PARTITION, recs, compression_type=codec, linger_ms=50, acks="all")
    assert [m.offset for m in metas] == list(range(len(recs)))
    assert all(m.partition == PARTITION and m.topic == topic for m in metas)

    got = kp_read(broker.bootstrap, topic, PARTITION, len(recs))
    for i, (m, r) in enumerate(zip(got, recs)):
        assert (m.topic, m.partition, m.offset) == (topic, PARTITION, i)
        assert m.key == r["key"], f"offset {i}: key"
        assert m.value == r["value"], f"offset {i}: value"
        assert list(m.headers) == r["headers"], f"offset {i}: headers"
        assert (m.timestamp_type, m.timestamp) == (0, r["ts"]), f"offset {i}: timestamp"

    # Cross-client: librdkafka decodes the batches kafka-python wrote (e.g. xerial-framed snappy).
    msgs = consume_confluent(broker.bootstrap, topic, PARTITION, len(recs))
    for i, (m, r) in enumerate(zip(msgs, recs)):
        assert (m.offset(), m.key(), m.value()) == (i, r["key"], r["value"])
        assert [(k, v) for k, v in (m.headers() or [])] == r["headers"]
        assert m.timestamp() == (TIMESTAMP_CREATE_TIME, r["ts"])


@pytest.mark.parametrize("codec", ["snappy", "lz4"])
def test_kafka_python_reads_librdkafka_batches(broker, codec):
    from test_produce_consume_confluent import produce_confluent
    topic = create_topic(broker.bootstrap, unique(f"kpy-x-{codec}"), partitions=1)
    recs = sample_records()
    produce_confluent(broker.bootstrap, topic, 0, recs, **{"compression.type": codec, "linger.ms": 50})
    got = kp_read(broker.bootstrap, topic, 0, len(recs))
    assert [(m.offset, m.key, m.value, list(m.headers), m.timestamp) for m in got] == \
        [(i, r["key"], r["value"], r["headers"], r["ts"]) for i, r in enumerate(recs)]
    # seek into the middle of a compressed batch
    got = kp_read(broker.bootstrap, topic, 0, len(recs) - 5, start=5)
    assert [m.offset for m in got] == list(range(5, len(recs)))


def test_kafka_python_message_too_large(broker):
    topic = create_topic(broker.bootstrap, unique("kpy-big"), partitions=1)
    p = kp_producer(broker.bootstrap, max_request_size=10 * 1024 * 1024, acks="all", retries=0)
    try:
        fut = p.send(topic, value=b"x" * (2 * 1024 * 1024 + 7), partition=0)
        with pytest.raises(MessageSizeTooLargeError):
            fut.get(timeout=30)
        meta = p.send(topic, value=b"small", partition=0).get(timeout=30)
        assert meta.offset == 0
    finally:
        p.close(timeout=10)
    assert [m.value for m in kp_read(broker.bootstrap, topic, 0, 1)] == [b"small"]
