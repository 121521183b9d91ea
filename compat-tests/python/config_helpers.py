"""Helpers for the topic-config / retention / compaction / admin tests (issue 6): config describe and
alter through confluent-kafka's AdminClient, watermarks, and whole-partition reads."""

import random
import time

from confluent_kafka import OFFSET_BEGINNING, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, ResourceType

from helpers import admin_client, confluent_consumer, rdkafka_conf, wait_for

T = 30  # seconds for every admin call

SET = AlterConfigOpType.SET
DELETE = AlterConfigOpType.DELETE
APPEND = AlterConfigOpType.APPEND
SUBTRACT = AlterConfigOpType.SUBTRACT

# Broker overrides for the tests that need the log background tasks to run quickly. Kafka names;
# `log.initial.task.delay.ms` is Kafka-internal (LogManager waits 30 s by default before the first
# retention check) and gregor may ignore it.
FAST_LOG_TASKS = {
    "log.retention.check.interval.ms": "500",
    "log.initial.task.delay.ms": "0",
    "log.cleaner.backoff.ms": "500",
}


def topic_resource(topic, entries=None):
    return ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)


def broker_resource(node_id="1", entries=None):
    return ConfigResource(ResourceType.BROKER, str(node_id), incremental_configs=entries)


def describe(admin, resource):
    """{name: ConfigEntry} of one resource (DescribeConfigs; librdkafka asks for synonyms)."""
    return admin.describe_configs([resource], request_timeout=T)[resource].result(timeout=T)


def describe_topic(admin, topic):
    return describe(admin, ConfigResource(ResourceType.TOPIC, topic))


def describe_broker(admin, node_id="1"):
    return describe(admin, ConfigResource(ResourceType.BROKER, str(node_id)))


def values(entries, *names):
    """{name: (value, source name)} for the given names of a describe result."""
    return {n: (entries[n].value, ConfigSource(entries[n].source).name) for n in names}


def op(name, value, operation):
    return ConfigEntry(name, value, incremental_operation=operation)


def incremental_alter(admin, resource, validate_only=False):
    """IncrementalAlterConfigs for one resource; None on success, else the KafkaError."""
    fut = admin.incremental_alter_configs([resource], validate_only=validate_only, request_timeout=T)[resource]
    try:
        return fut.result(timeout=T)
    except KafkaException as e:
        return e.args[0]


def alter_topic(admin, topic, *entries, validate_only=False):
    return incremental_alter(admin, topic_resource(topic, list(entries)), validate_only=validate_only)


def alter_broker(admin, *entries, node_id="1", validate_only=False):
    return incremental_alter(admin, broker_resource(node_id, list(entries)), validate_only=validate_only)


def err_tuple(err):
    """(code name, message) of a KafkaError, or None."""
    return None if err is None else (err.name(), err.str())


def watermarks(bootstrap, topic, partition=0):
    """(earliest, latest) from ListOffsets (a fresh consumer, uncached)."""
    c = confluent_consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
    finally:
        c.close()


def read_partition(bootstrap, topic, partition=0, timeout=20):
    """A fresh consumer reads the partition from the beginning up to the current end offset.
    Returns [(offset, key, value)]; fails on any consumer error."""
    c = confluent_consumer(bootstrap)
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
        out = []
        if hi <= lo:
            return out
        c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        while True:
            if out and out[-1][0] >= hi - 1:
                return out
            if time.monotonic() > deadline:
                raise AssertionError(f"read of {topic}[{partition}] stuck at {out[-1][0] if out else None} "
                                     f"(watermarks {lo}..{hi}) after {timeout}s")
            for m in c.consume(num_messages=500, timeout=0.5):
                if m.error():
                    raise AssertionError(f"consumer error: {m.error()}")
                out.append((m.offset(), m.key(), m.value()))
    finally:
        c.close()


def producer(bootstrap, **extra):
    return Producer(rdkafka_conf(bootstrap, **{"linger.ms": 0, **extra}))


def produce_sync(p, topic, key=None, value=None, partition=0, timestamp=None):
    """Produce one record and wait for its delivery report; returns the offset (raises on error)."""
    got = []
    kwargs = {"partition": partition, "on_delivery": lambda err, msg: got.append((err, msg))}
    if timestamp is not None:
        kwargs["timestamp"] = timestamp
    p.produce(topic, key=key, value=value, **kwargs)
    assert p.flush(30) == 0, "record not delivered in 30 s"
    err, msg = got[0]
    assert err is None, f"produce to {topic} failed: {err}"
    return msg.offset()


def wait_config(admin, describe_fn, name, want, timeout=15):
    """Poll a describe until config `name` has (value, source name) == want. Kafka applies config
    changes asynchronously (the controller writes a metadata record that the broker then replays), so a
    describe right after a successful alter may still show the old value."""
    return wait_values(admin, describe_fn, {name: want}, timeout=timeout)


def wait_values(admin, describe_fn, want, timeout=15):
    """Poll describe_fn(admin) until values(..., *want) == want; returns the last describe result."""
    last = {}

    def check():
        entries = describe_fn(admin)
        last["v"] = values(entries, *want)
        return entries if last["v"] == want else None

    try:
        return wait_for(check, timeout=timeout, what=f"configs {want}")
    except AssertionError as e:
        raise AssertionError(f"{e}; last seen {last.get('v')}") from None


def wait_topic(admin, topic, want, timeout=15):
    return wait_values(admin, lambda a: describe_topic(a, topic), want, timeout=timeout)


def config_barrier(bootstrap, admin, topic=None):
    """Make sure every config change accepted before this call is visible to describes: set a unique
    value on a private topic and wait until it shows (Kafka applies metadata changes in order). Needed
    before asserting that a rejected alter changed nothing."""
    from helpers import create_topic, unique

    topic = topic or create_topic(bootstrap, unique("cfg-barrier"))
    value = str(random.randrange(10**6, 10**12))
    assert alter_topic(admin, topic, op("retention.ms", value, SET)) is None
    wait_topic(admin, topic, {"retention.ms": (value, "DYNAMIC_TOPIC_CONFIG")})
    return topic


__all__ = [
    "APPEND", "DELETE", "FAST_LOG_TASKS", "SET", "SUBTRACT", "T", "admin_client", "alter_broker", "alter_topic",
    "broker_resource", "describe", "describe_broker", "describe_topic", "err_tuple", "incremental_alter", "op",
    "produce_sync", "producer", "read_partition", "topic_resource", "values", "wait_config", "wait_topic", "wait_values", "watermarks", "config_barrier",
]
