"""Log compaction (issue 6), proven with confluent-kafka.

What it proves:
  * many updates to a small key space plus tombstones, on a `cleanup.policy=compact` topic with small
    segments (`segment.ms`), `min.cleanable.dirty.ratio=0.01` and `delete.retention.ms=0`: after cleaning,
    a fresh consumer from the beginning reads exactly the latest value of every live key, no deleted
    key, each surviving record at the offset it was written at (compaction never renumbers), and the
    end offset is unchanged;
  * kill -9 while the cleaner works and again after it finished: the broker recovers, converges to
    the same view and loses nothing;
  * a keyless record to a compacted topic (`compact` or `compact,delete`) is rejected with
    INVALID_RECORD (code 87; Kafka's message: "Compacted topic cannot accept message without key in
    topic partition T-0") and nothing is appended; keyed records still go to offset 0.

The cleaning tests need `log.cleaner.backoff.ms=500` (own_broker, see config_helpers.FAST_LOG_TASKS).
Kafka never cleans the active segment, so while waiting the tests append a record under a separate
"roller" key, which rolls a new segment (segment.ms elapsed) and dirties the log; that key is left out of
the exact comparison.

Validated against Apache Kafka 4.1.2 with
    COMPAT_DURABILITY_REFERENCE=1 compat-tests/run.sh --no-setup -k test_compaction
and, for the keyless test, also with COMPAT_BOOTSTRAP pointing at bin/kafka-reference-broker.sh.
"""

import time

import pytest
from confluent_kafka import KafkaError

from config_helpers import FAST_LOG_TASKS, producer, produce_sync, read_partition, watermarks
from helpers import create_topic, delivery_collector, unique

COMPACT = {
    "cleanup.policy": "compact",
    "segment.ms": "100",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "0",
    "min.compaction.lag.ms": "0",
}
ROLLER = b"__roller"
KEYS = 10
ROUNDS = 12
DELETED = [0, 3, 7]


def key(i):
    return f"key-{i}".encode()


def produce_updates(bs, topic):
    """ROUNDS updates of each of KEYS keys (one round per segment), then tombstones for DELETED.
    Returns {key: (offset, value)} of the latest write of every key (value None = tombstone)."""
    p = producer(bs)
    latest = {}
    for r in range(ROUNDS):
        for i in range(KEYS):
            v = f"value-{i}-round-{r}".encode()
            latest[key(i)] = (produce_sync(p, topic, key=key(i), value=v), v)
        time.sleep(0.12)  # > segment.ms: the next round starts a new segment
    for i in DELETED:
        latest[key(i)] = (produce_sync(p, topic, key=key(i), value=None), None)
    return latest


def expected_view(latest):
    """[(offset, key, value)] a fully cleaned log shows for the non-roller keys."""
    return sorted((o, k, v) for k, (o, v) in latest.items() if v is not None)


def data_records(records):
    return [r for r in records if r[1] != ROLLER]


def wait_compacted(bs, topic, latest, timeout=45):
    """Append roller records until a fresh read shows exactly the expected view; returns the
    roller's offsets. Fails with the last read on timeout."""
    p = producer(bs)
    want = expected_view(latest)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        produce_sync(p, topic, key=ROLLER, value=b"roll")
        last = data_records(read_partition(bs, topic))
        if last == want:
            return
        time.sleep(0.3)
    raise AssertionError(f"not compacted after {timeout}s:\nwant {want}\nlast {last}")


def check_compacted_read(bs, topic, latest):
    records = read_partition(bs, topic)
    assert data_records(records) == expected_view(latest)
    offsets = [o for o, _, _ in records]
    assert offsets == sorted(set(offsets)), "offsets out of order or duplicated"
    # No deleted key anywhere, no stale value of a live key.
    assert not {k for _, k, _ in records} & {key(i) for i in DELETED}
    assert all(v is not None for _, k, v in records if k != ROLLER)


@pytest.mark.gregor_only
@pytest.mark.timeout(180)
def test_compaction_keeps_latest_value_per_key_and_drops_tombstones(own_broker):
    b = own_broker(overrides=FAST_LOG_TASKS)
    bs = b.bootstrap
    topic = create_topic(bs, unique("compact"), config=COMPACT)
    latest = produce_updates(bs, topic)
    end = max(o for o, _ in latest.values()) + 1
    assert end == KEYS * ROUNDS + len(DELETED)

    wait_compacted(bs, topic, latest)
    check_compacted_read(bs, topic, latest)
    # The first offsets held only obsolete values: the log start moved past them or they are gaps;
    # either way the end offset counts every record ever written (rollers included).
    earliest, hi = watermarks(bs, topic)
    assert hi > end
    assert earliest <= min(o for o, _, _ in expected_view(latest))


@pytest.mark.gregor_only
@pytest.mark.timeout(240)
def test_compaction_survives_kill9(own_broker):
    b = own_broker(overrides=FAST_LOG_TASKS)
    bs = b.bootstrap
    topic = create_topic(bs, unique("compact-kill"), config=COMPACT)
    latest = produce_updates(bs, topic)
    # Roll the last segment and give the cleaner a moment to start, then kill -9 while it works.
    p = producer(bs)
    produce_sync(p, topic, key=ROLLER, value=b"roll")
    time.sleep(0.6)
    b.kill9()
    b.start()

    wait_compacted(bs, topic, latest, timeout=60)
    before = read_partition(bs, topic)
    _, hi_before = watermarks(bs, topic)

    # kill -9 after cleaning: nothing lost, same view, and producing continues at the old end offset.
    b.kill9()
    b.start()
    # The roller records share one key, so the cleaner may legitimately compact an older one
    # away at any moment (a segment sealed by segment.ms makes it cleanable); every other
    # record must be exactly as before.
    def data(view):
        return [r for r in view if r[1] != ROLLER]
    assert data(read_partition(bs, topic)) == data(before)
    assert watermarks(bs, topic)[1] == hi_before
    check_compacted_read(bs, topic, latest)
    p = producer(bs)
    assert produce_sync(p, topic, key=key(1), value=b"after-restart") == hi_before


@pytest.mark.parametrize("policy", ["compact", "compact,delete"])
@pytest.mark.parametrize("idempotent", [True, False], ids=["idempotent", "plain"])
def test_keyless_record_to_compacted_topic_is_rejected(broker, policy, idempotent):
    bs = broker.bootstrap
    topic = create_topic(bs, unique("compact-nokey"), config={"cleanup.policy": policy})
    p = producer(bs, **{"enable.idempotence": idempotent})
    cb, results = delivery_collector()
    p.produce(topic, value=b"no key", partition=0, on_delivery=cb)
    assert p.flush(30) == 0
    [(err, _msg)] = results
    assert err is not None, "keyless record accepted by a compacted topic"
    assert err.code() == KafkaError.INVALID_RECORD, err
    assert not err.retriable()

    # Nothing was appended: a keyed record lands at offset 0 and is the only one.
    assert produce_sync(p, topic, key=b"k", value=b"v") == 0
    assert read_partition(bs, topic) == [(0, b"k", b"v")]
