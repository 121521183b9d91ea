"""(b) confluent-kafka (librdkafka) Producer -> broker -> Consumer, per compression codec."""

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Producer, TopicPartition

from helpers import (confluent_consumer, consume_confluent, create_topic, delivery_collector, flush_all,
                     rdkafka_conf, unique)
from records import sample_records

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PARTITION = 1  # explicit, non-zero partition of a 2-partition topic


def produce_confluent(bootstrap, topic, partition, recs, **conf):
    p = Producer(rdkafka_conf(bootstrap, **conf))
    cb, results = delivery_collector()
    for r in recs:
        p.produce(topic, value=r["value"], key=r["key"], headers=r["headers"] or None,
                  partition=partition, timestamp=r["ts"], on_delivery=cb)
        p.poll(0)
    flush_all(p)
    errors = [(e, m.offset()) for e, m in results if e is not None]
    assert not errors, f"delivery errors: {errors}"
    return sorted(m.offset() for _, m in results)


def norm_headers(h):
    return [(k, v) for k, v in (h or [])]


def assert_roundtrip(msgs, recs, topic, partition):
    assert len(msgs) == len(recs)
    for i, (m, r) in enumerate(zip(msgs, recs)):
        assert (m.topic(), m.partition(), m.offset()) == (topic, partition, i)
        assert m.key() == r["key"], f"offset {i}: key"
        assert m.value() == r["value"], f"offset {i}: value"
        assert norm_headers(m.headers()) == r["headers"], f"offset {i}: headers"
        assert m.timestamp() == (TIMESTAMP_CREATE_TIME, r["ts"]), f"offset {i}: timestamp"


@pytest.mark.parametrize("codec", CODECS)
def test_produce_consume_roundtrip(broker, codec):
    topic = create_topic(broker.bootstrap, unique(f"cfk-{codec}"), partitions=2)
    recs = sample_records()
    # linger so that many records share one (compressed) batch
    offsets = produce_confluent(broker.bootstrap, topic, PARTITION, recs,
                                **{"compression.type": codec, "linger.ms": 50, "acks": "all"})
    assert offsets == list(range(len(recs)))
    msgs = consume_confluent(broker.bootstrap, topic, PARTITION, len(recs))
    assert_roundtrip(msgs, recs, topic, PARTITION)
    # The other partition stays empty.
    c = confluent_consumer(broker.bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 0)
        assert c.get_watermark_offsets(TopicPartition(topic, PARTITION), timeout=10) == (0, len(recs))
    finally:
        c.close()


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_many_batches_and_fetch_from_middle(broker, codec):
    """Several produce requests/batches; consuming from an offset inside a batch returns exactly the rest."""
    topic = create_topic(broker.bootstrap, unique(f"cfk-mid-{codec}"), partitions=1)
    recs = [{"key": str(i).encode(), "value": f"v{i}".encode() * 3, "headers": [], "ts": 1_600_000_000_000 + i}
            for i in range(500)]
    for start in range(0, 500, 100):  # 5 flushes -> at least 5 batches
        produce_confluent(broker.bootstrap, topic, 0, recs[start:start + 100],
                          **{"compression.type": codec, "linger.ms": 20})
    for start in (0, 1, 57, 250, 499):
        msgs = consume_confluent(broker.bootstrap, topic, 0, 500 - start, start=start)
        assert [m.offset() for m in msgs] == list(range(start, 500))
        assert [m.value() for m in msgs] == [r["value"] for r in recs[start:]]
