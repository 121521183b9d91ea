"""Time- and size-based retention (issue 6), proven with confluent-kafka against a private broker.

What it proves:
  * a topic with `retention.ms=1000` and small segments (`segment.ms`) loses its old segments within a
    few retention checks while a consumer at the head keeps reading without any error; the earliest
    offset (ListOffsets) advances, a fresh consumer from the beginning starts at the new log start, and
    once every record is older than retention.ms the log is empty with its offsets kept (earliest ==
    latest == the number of records ever written);
  * `retention.bytes` likewise deletes the oldest segments until the partition fits the limit, and
    keeps the newest records;
  * retention set later with IncrementalAlterConfigs takes effect without a restart.

The broker runs with `log.retention.check.interval.ms=500` (a static broker config, hence own_broker;
see config_helpers.FAST_LOG_TASKS). Validated against Apache Kafka 4.1.2 with
    COMPAT_DURABILITY_REFERENCE=1 compat-tests/run.sh --no-setup -k test_retention
"""

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from config_helpers import FAST_LOG_TASKS, SET, alter_topic, op, producer, produce_sync, read_partition, watermarks
from helpers import admin_client, confluent_consumer, create_topic, unique, wait_for

pytestmark = [pytest.mark.gregor_only, pytest.mark.timeout(180)]


class HeadConsumer:
    """A consumer assigned from offset 0 that must see every record, in order, with no error."""

    def __init__(self, bootstrap, topic):
        self.c = confluent_consumer(bootstrap)
        self.c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        self.offsets = []

    def poll(self, timeout=0.05):
        for m in self.c.consume(num_messages=100, timeout=timeout):
            assert not m.error(), f"head consumer got an error: {m.error()}"
            self.offsets.append(m.offset())

    def drain_to(self, end, timeout=15):
        deadline = time.monotonic() + timeout
        while (not self.offsets or self.offsets[-1] < end - 1) and time.monotonic() < deadline:
            self.poll(0.2)
        assert self.offsets == list(range(end)), f"head consumer read {self.offsets}, expected 0..{end - 1}"

    def close(self):
        self.c.close()


def test_retention_ms_deletes_old_segments_while_head_consumer_reads(own_broker):
    b = own_broker(overrides=FAST_LOG_TASKS)
    bs = b.bootstrap
    topic = create_topic(bs, unique("ret-ms"), config={"retention.ms": "1000", "segment.ms": "100"})
    p = producer(bs)
    head = HeadConsumer(bs, topic)
    try:
        # Produce a record every ~150 ms (each one rolls a new segment: segment.ms=100) until retention
        # has removed some of the old segments; the head consumer keeps up the whole time.
        produced = 0
        deadline = time.monotonic() + 30
        while True:
            produce_sync(p, topic, key=b"k", value=f"v{produced}".encode())
            produced += 1
            head.poll()
            earliest, latest = watermarks(bs, topic)
            assert latest == produced
            if earliest > 0 and produced >= 10:
                break
            assert time.monotonic() < deadline, f"earliest offset still 0 after {produced} records / 30 s"
            time.sleep(0.15)
        head.drain_to(produced)

        # A fresh consumer from the beginning starts at the (new) log start offset, not at 0.
        first = read_partition(bs, topic)
        assert first, "log unexpectedly empty"
        assert first[0][0] > 0
        assert [o for o, _, _ in first] == list(range(first[0][0], produced))

        # Nothing new: every record expires, the whole log goes (Kafka rolls the active segment) but
        # the offsets stay: earliest == latest == records ever written, and producing continues there.
        wait_for(lambda: watermarks(bs, topic) == (produced, produced), timeout=20,
                 what=f"all records expired (watermarks == ({produced}, {produced}))")
        assert read_partition(bs, topic) == []
        assert produce_sync(p, topic, key=b"k", value=b"after") == produced
        head.drain_to(produced + 1)
    finally:
        head.close()


def test_retention_bytes_keeps_the_newest_segments(own_broker):
    b = own_broker(overrides=FAST_LOG_TASKS)
    bs = b.bootstrap
    limit = 3000
    value_size = 500
    topic = create_topic(bs, unique("ret-bytes"), config={"retention.bytes": str(limit), "segment.ms": "100"})
    p = producer(bs)
    n = 24
    for i in range(n):
        produce_sync(p, topic, key=b"k", value=f"{i:04d}".encode().ljust(value_size, b"."))
        time.sleep(0.12)  # > segment.ms: the next record rolls a new segment

    # Size retention removes whole segments, oldest first, until the partition is below the limit
    # (the active segment always stays).
    earliest = wait_for(lambda: watermarks(bs, topic)[0] or None, timeout=20, what="earliest offset > 0")

    def settled():
        lo, hi = watermarks(bs, topic)
        # Each record is > value_size bytes on disk, so at most limit // value_size of them fit.
        return (lo, hi) if hi - lo <= limit // value_size else None

    earliest, latest = wait_for(settled, timeout=20, what=f"partition within retention.bytes={limit}")
    assert latest == n
    assert earliest > 0
    got = read_partition(bs, topic)
    assert [o for o, _, _ in got] == list(range(earliest, n))
    assert [v[:4] for _, _, v in got] == [f"{i:04d}".encode() for i in range(earliest, n)]
    assert len(got) >= 1


def test_retention_set_later_applies_without_restart(own_broker):
    b = own_broker(overrides=FAST_LOG_TASKS)
    bs = b.bootstrap
    admin = admin_client(bs)
    topic = create_topic(bs, unique("ret-later"), config={"segment.ms": "100"})
    p = producer(bs)
    for i in range(5):
        produce_sync(p, topic, key=b"k", value=f"v{i}".encode())
        time.sleep(0.12)
    time.sleep(1.5)  # several retention checks with the default retention.ms (7 days): nothing goes
    assert watermarks(bs, topic) == (0, 5)

    assert alter_topic(admin, topic, op("retention.ms", "1000", SET)) is None
    # The records are older than 1 s already; the next checks delete them (all segments; Kafka rolls
    # the active one).
    wait_for(lambda: watermarks(bs, topic) == (5, 5), timeout=20, what="records deleted after the alter")
    assert produce_sync(p, topic, key=b"k", value=b"next") == 5
