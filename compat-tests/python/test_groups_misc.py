"""Group join latency with default settings (recorded, generous bound) and bad group input through real
clients (exact error codes)."""

import time

import pytest
from confluent_kafka import Consumer, Producer
from kafka import KafkaConsumer
from kafka.errors import InvalidSessionTimeoutError

from helpers import COMPAT_DIR, create_topic, flush_all, rdkafka_conf, unique

TIMING_FILE = COMPAT_DIR / ".cache" / "group-timing.txt"


def record_timing(key, seconds, broker):
    """Keep one line per key in .cache/group-timing.txt (other keys' lines are preserved)."""
    TIMING_FILE.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    if TIMING_FILE.exists():
        lines = [ln for ln in TIMING_FILE.read_text().splitlines() if not ln.startswith(key + " ")]
    lines.append(f"{key} {seconds:.3f}s broker={broker.name} bin={getattr(broker, 'binary', '-')} at={time.strftime('%Y-%m-%dT%H:%M:%S')}")
    TIMING_FILE.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_subscribe_to_first_record_latency(broker, protocol):
    """Fresh consumer, fresh group, default client settings; the broker keeps its defaults
    (group.initial.rebalance.delay.ms=3000 for classic groups). Kafka 4.1.2: classic ~3.1 s, consumer ~0.1-1 s."""
    b = broker.bootstrap
    topic = create_topic(b, unique("latency"), partitions=1)
    p = Producer(rdkafka_conf(b))
    p.produce(topic, value=b"first")
    flush_all(p)
    c = Consumer(rdkafka_conf(b, **{"group.id": unique("g-lat"), "auto.offset.reset": "earliest",
                                    "group.protocol": protocol}))
    try:
        t0 = time.monotonic()
        c.subscribe([topic])
        msg = None
        while msg is None and time.monotonic() - t0 < 30:
            for m in c.consume(num_messages=1, timeout=0.1):
                assert not m.error(), m.error()
                msg = m
        elapsed = time.monotonic() - t0
    finally:
        c.close()
    assert msg is not None, "no record within 30 s of subscribe()"
    assert msg.value() == b"first"
    print(f"\n[group-timing] {protocol}: subscribe() -> first record {elapsed:.3f}s")
    record_timing(f"subscribe_to_first_record[{protocol}]", elapsed, broker)
    assert elapsed < 15, f"subscribe() -> first record took {elapsed:.1f}s"


def test_invalid_session_timeout_confluent(broker):
    """session.timeout.ms=1000 is below group.min.session.timeout.ms (6000): JoinGroup fails with
    INVALID_SESSION_TIMEOUT (26), surfaced by consume() as a non-fatal error event."""
    b = broker.bootstrap
    topic = create_topic(b, unique("badsess"), partitions=1)
    errs = []
    c = Consumer(rdkafka_conf(b, **{"group.id": unique("g-bad"), "session.timeout.ms": 1000,
                                    "heartbeat.interval.ms": 300,
                                    "error_cb": lambda e: errs.append(("error_cb", e.name()))}))
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 20
        while not errs and time.monotonic() < deadline:
            for m in c.consume(num_messages=10, timeout=0.3):
                assert m.error() is not None, "got a record although the join must fail"
                errs.append(("consume", m.error().name()))
        assert ("consume", "INVALID_SESSION_TIMEOUT") in errs, errs
        assert c.assignment() == []
    finally:
        c.close()


def test_invalid_session_timeout_kafka_python(broker):
    b = broker.bootstrap
    topic = create_topic(b, unique("badsess-kp"), partitions=1)
    c = KafkaConsumer(topic, bootstrap_servers=b, group_id=unique("g-bad-kp"), session_timeout_ms=1000,
                      heartbeat_interval_ms=300, request_timeout_ms=10000)
    try:
        with pytest.raises(InvalidSessionTimeoutError):
            c.poll(timeout_ms=10000)
    finally:
        c.close()


def test_unsupported_remote_assignor_kip848(broker):
    """group.protocol=consumer with group.remote.assignor=nope: ConsumerGroupHeartbeat fails with
    UNSUPPORTED_ASSIGNOR (112), which librdkafka treats as fatal."""
    b = broker.bootstrap
    topic = create_topic(b, unique("badassignor"), partitions=1)
    c = Consumer(rdkafka_conf(b, **{"group.id": unique("g-bad-asg"), "group.protocol": "consumer",
                                    "group.remote.assignor": "nope"}))
    errs = []
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 20
        while not errs and time.monotonic() < deadline:
            for m in c.consume(num_messages=10, timeout=0.3):
                assert m.error() is not None
                errs.append(m.error())
        assert errs, "no error surfaced"
        assert errs[0].name() == "_FATAL"
        # librdkafka's text for broker error 112 (UNSUPPORTED_ASSIGNOR):
        assert "The assignor or its version range is not supported by the consumer group" in errs[0].str()
    finally:
        c.close()
