"""(d) ListOffsets: earliest / latest / by timestamp, via librdkafka (Consumer + AdminClient) and kafka-python."""

from confluent_kafka import OFFSET_END, IsolationLevel, Producer, TopicPartition
from confluent_kafka.admin import OffsetSpec
from kafka import TopicPartition as KTP

from helpers import admin_client, confluent_consumer, create_topic, delivery_collector, flush_all, rdkafka_conf, unique
from test_kafka_python import kp_consumer

N = 20
BASE = 1_650_000_000_000
STEP = 1000  # record i has timestamp BASE + i*STEP


def _setup_topic(bootstrap):
    """2 partitions; partition 1 gets N records with increasing timestamps, partition 0 stays empty."""
    topic = create_topic(bootstrap, unique("offsets"), partitions=2)
    p = Producer(rdkafka_conf(bootstrap, **{"linger.ms": 5, "batch.num.messages": 7}))
    cb, results = delivery_collector()
    for i in range(N):
        p.produce(topic, value=f"v{i}".encode(), partition=1, timestamp=BASE + i * STEP, on_delivery=cb)
    flush_all(p)
    assert all(e is None for e, _ in results)
    return topic


def _queries():
    """(timestamp, expected offset or None)."""
    return [
        (BASE - 10_000, 0),                # before everything -> first record
        (BASE, 0),                         # exact match
        (BASE + 1, 1),                     # first with ts >= t
        (BASE + 5 * STEP, 5),
        (BASE + 12 * STEP - 500, 12),
        (BASE + (N - 1) * STEP, N - 1),    # last record
        (BASE + (N - 1) * STEP + 1, None), # later than all
    ]


def test_list_offsets_librdkafka(broker):
    topic = _setup_topic(broker.bootstrap)
    c = confluent_consumer(broker.bootstrap)
    try:
        # Watermarks come from ListOffsets (earliest/latest).
        assert c.get_watermark_offsets(TopicPartition(topic, 1), timeout=10, cached=False) == (0, N)
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, 0)
        for ts, want in _queries():
            res = c.offsets_for_times([TopicPartition(topic, 1, ts)], timeout=10)
            assert res[0].error is None
            assert res[0].offset == (OFFSET_END if want is None else want), f"offsets_for_times({ts})"
        # empty partition: no record with ts >= t
        res = c.offsets_for_times([TopicPartition(topic, 0, BASE)], timeout=10)
        assert res[0].offset == OFFSET_END
    finally:
        c.close()


def test_list_offsets_admin_client(broker):
    topic = _setup_topic(broker.bootstrap)
    admin = admin_client(broker.bootstrap)
    tp = TopicPartition(topic, 1)

    def one(spec):
        futs = admin.list_offsets({tp: spec}, isolation_level=IsolationLevel.READ_UNCOMMITTED, request_timeout=15)
        return futs[tp].result(timeout=15)

    assert one(OffsetSpec.earliest()).offset == 0
    assert one(OffsetSpec.latest()).offset == N
    mx = one(OffsetSpec.max_timestamp())
    assert (mx.offset, mx.timestamp) == (N - 1, BASE + (N - 1) * STEP)
    for ts, want in _queries():
        r = one(OffsetSpec.for_timestamp(ts))
        assert r.offset == (-1 if want is None else want), f"for_timestamp({ts})"
        if want is not None:
            assert r.timestamp == BASE + want * STEP


def test_list_offsets_kafka_python(broker):
    topic = _setup_topic(broker.bootstrap)
    c = kp_consumer(broker.bootstrap)
    try:
        tps = [KTP(topic, 0), KTP(topic, 1)]
        assert c.beginning_offsets(tps) == {tps[0]: 0, tps[1]: 0}
        assert c.end_offsets(tps) == {tps[0]: 0, tps[1]: N}
        for ts, want in _queries():
            res = c.offsets_for_times({tps[1]: ts})[tps[1]]
            if want is None:
                assert res is None, f"offsets_for_times({ts}) = {res}"
            else:
                assert (res.offset, res.timestamp) == (want, BASE + want * STEP), f"offsets_for_times({ts})"
        assert c.offsets_for_times({tps[0]: BASE})[tps[0]] is None
    finally:
        c.close()
