"""DeleteRecords (issue 6): confluent-kafka AdminClient.delete_records and kafka-delete-records.sh.

What it proves:
  * delete_records returns the new low watermark; ListOffsets earliest moves there (latest does not);
    a consumer from the beginning starts at the new log start; other partitions are untouched;
  * the log start never moves back (a lower offset answers the current low watermark), -1 means the
    high watermark, the high watermark itself empties the partition (producing continues at the old
    end), and an offset beyond the high watermark fails with OFFSET_OUT_OF_RANGE for that partition
    only;
  * a consumer positioned below the new log start resets per auto.offset.reset (earliest -> log start;
    error -> _AUTO_OFFSET_RESET);
  * kafka-delete-records.sh with an offset JSON file prints each partition's low watermark (or its
    error), and kafka-get-offsets.sh --time -2 / -4 (earliest / earliest-local) then show the new start;
  * the new log start survives a restart (own_broker).

Validated against Apache Kafka 4.1.2:
    compat-tests/bin/kafka-reference-broker.sh start /tmp/ref 19092
    COMPAT_BOOTSTRAP=127.0.0.1:19092 compat-tests/run.sh --no-setup -k test_delete_records
    COMPAT_DURABILITY_REFERENCE=1 compat-tests/run.sh --no-setup -k test_delete_records_persist
"""

import json
import shutil
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import OffsetSpec

from config_helpers import T, read_partition, watermarks
from helpers import admin_client, confluent_consumer, create_topic, flush_all, rdkafka_conf, run_tool, unique


def produce_n(bs, topic, partition, n, start=0):
    p = Producer(rdkafka_conf(bs, **{"linger.ms": 5}))
    for i in range(start, start + n):
        p.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=partition)
    flush_all(p)


def delete_records(admin, offsets):
    """{(topic, partition): low_watermark or (error code name, message)} for {(topic, partition): offset}."""
    futs = admin.delete_records([TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                                request_timeout=T, operation_timeout=T)
    out = {}
    for tp, fut in futs.items():
        try:
            out[(tp.topic, tp.partition)] = fut.result(timeout=T).low_watermark
        except KafkaException as e:
            out[(tp.topic, tp.partition)] = (e.args[0].name(), e.args[0].str())
    return out


def list_offset(admin, topic, partition, spec):
    tp = TopicPartition(topic, partition)
    return admin.list_offsets({tp: spec}, request_timeout=T)[tp].result(timeout=T).offset


def test_delete_records_moves_log_start(broker):
    bs = broker.bootstrap
    admin = admin_client(bs)
    topic = create_topic(bs, unique("delrec"), partitions=2)
    produce_n(bs, topic, 0, 10)
    produce_n(bs, topic, 1, 3)

    assert delete_records(admin, {(topic, 0): 4}) == {(topic, 0): 4}
    assert list_offset(admin, topic, 0, OffsetSpec.earliest()) == 4
    assert list_offset(admin, topic, 0, OffsetSpec.latest()) == 10
    assert watermarks(bs, topic, 0) == (4, 10)
    assert watermarks(bs, topic, 1) == (0, 3)
    got = read_partition(bs, topic, 0)
    assert got == [(i, f"k{i}".encode(), f"v{i}".encode()) for i in range(4, 10)]
    assert len(read_partition(bs, topic, 1)) == 3

    # Never backwards: a lower offset answers the current low watermark and changes nothing.
    assert delete_records(admin, {(topic, 0): 2}) == {(topic, 0): 4}
    assert watermarks(bs, topic, 0) == (4, 10)

    # Beyond the high watermark: OFFSET_OUT_OF_RANGE for that partition; the other one still succeeds.
    res = delete_records(admin, {(topic, 0): 11, (topic, 1): -1})
    assert res[(topic, 0)][0] == "OFFSET_OUT_OF_RANGE"
    assert res[(topic, 1)] == 3  # -1 = up to the high watermark
    assert watermarks(bs, topic, 0) == (4, 10)
    assert watermarks(bs, topic, 1) == (3, 3)
    assert read_partition(bs, topic, 1) == []

    # Up to the high watermark: empty, and producing continues at the old end offset.
    assert delete_records(admin, {(topic, 0): 10}) == {(topic, 0): 10}
    assert watermarks(bs, topic, 0) == (10, 10)
    assert read_partition(bs, topic, 0) == []
    produce_n(bs, topic, 0, 2, start=10)
    assert watermarks(bs, topic, 0) == (10, 12)
    assert [o for o, _, _ in read_partition(bs, topic, 0)] == [10, 11]
    assert list_offset(admin, topic, 0, OffsetSpec.earliest()) == 10


def test_delete_records_empty_partition(broker):
    bs = broker.bootstrap
    admin = admin_client(bs)
    topic = create_topic(bs, unique("delrec-empty"))
    assert delete_records(admin, {(topic, 0): 0}) == {(topic, 0): 0}
    assert delete_records(admin, {(topic, 0): -1}) == {(topic, 0): 0}
    assert delete_records(admin, {(topic, 0): 1})[(topic, 0)][0] == "OFFSET_OUT_OF_RANGE"
    assert watermarks(bs, topic) == (0, 0)


@pytest.mark.parametrize("reset", ["earliest", "error"])
def test_consumer_below_log_start_resets(broker, reset):
    bs = broker.bootstrap
    admin = admin_client(bs)
    topic = create_topic(bs, unique("delrec-reset"))
    produce_n(bs, topic, 0, 10)
    assert delete_records(admin, {(topic, 0): 6}) == {(topic, 0): 6}

    c = confluent_consumer(bs, **{"auto.offset.reset": reset})
    try:
        c.assign([TopicPartition(topic, 0, 2)])  # Fetch at 2 < log start 6: OFFSET_OUT_OF_RANGE
        deadline = time.monotonic() + 20
        msgs = []
        while time.monotonic() < deadline and not msgs:
            msgs = c.consume(num_messages=10, timeout=0.5)
        assert msgs, "nothing consumed in 20 s"
        if reset == "earliest":
            assert not msgs[0].error(), msgs[0].error()
            assert msgs[0].offset() == 6
        else:
            err = msgs[0].error()
            assert err is not None and err.code() == KafkaError._AUTO_OFFSET_RESET, err
    finally:
        c.close()


@pytest.mark.skipif(shutil.which("java") is None, reason="java not installed")
def test_kafka_delete_records_cli(broker, tmp_path):
    bs = broker.bootstrap
    topic = create_topic(bs, unique("delrec-cli"), partitions=2)
    produce_n(bs, topic, 0, 5)
    produce_n(bs, topic, 1, 4)
    spec = tmp_path / "offsets.json"
    spec.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": 0, "offset": 2}, {"topic": topic, "partition": 1, "offset": 1}]}))
    out = run_tool("kafka-delete-records.sh", "--bootstrap-server", bs, "--offset-json-file", spec).stdout
    assert "Records delete operation completed:" in out, out
    assert f"partition: {topic}-0\tlow_watermark: 2" in out, out
    assert f"partition: {topic}-1\tlow_watermark: 1" in out, out

    for time_spec in ("-2", "earliest", "-4", "earliest-local"):
        got = run_tool("kafka-get-offsets.sh", "--bootstrap-server", bs, "--topic", topic, "--time", time_spec)
        assert sorted(got.stdout.split()) == [f"{topic}:0:2", f"{topic}:1:1"], time_spec
    got = run_tool("kafka-get-offsets.sh", "--bootstrap-server", bs, "--topic", topic, "--time", "-1")
    assert sorted(got.stdout.split()) == [f"{topic}:0:5", f"{topic}:1:4"]

    # Beyond the high watermark: the tool reports the partition's error (and still exits 0).
    spec.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "offset": 99}]}))
    out = run_tool("kafka-delete-records.sh", "--bootstrap-server", bs, "--offset-json-file", spec).stdout
    assert (f"partition: {topic}-0\terror: org.apache.kafka.common.errors.OffsetOutOfRangeException: "
            "The requested offset is not within the range of offsets maintained by the server.") in out, out
    assert watermarks(bs, topic, 0) == (2, 5)


@pytest.mark.gregor_only
@pytest.mark.timeout(240)
def test_delete_records_persists_across_restart(own_broker):
    b = own_broker()
    bs = b.bootstrap
    topic = create_topic(bs, unique("delrec-persist"), partitions=2)
    produce_n(bs, topic, 0, 10)
    produce_n(bs, topic, 1, 5)
    assert delete_records(admin_client(bs), {(topic, 0): 7, (topic, 1): 5}) == {(topic, 0): 7, (topic, 1): 5}
    b.stop()
    b.start()
    assert watermarks(bs, topic, 0) == (7, 10)
    assert watermarks(bs, topic, 1) == (5, 5)
    assert [o for o, _, _ in read_partition(bs, topic, 0)] == [7, 8, 9]
