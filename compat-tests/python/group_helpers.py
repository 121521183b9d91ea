"""Helpers shared by the consumer-group tests (test_groups_*.py)."""

import time

from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

from helpers import admin_client, confluent_consumer, flush_all, rdkafka_conf


def produce_keyed(bootstrap, topic, start, count, partitions=None, prefix="r"):
    """Produce values f"{prefix}{i}" with keys f"k{i}" (i in start..start+count-1) through the default
    partitioner. Returns {(partition, offset): value}. With `partitions`, asserts every partition got one."""
    p = Producer(rdkafka_conf(bootstrap, **{"linger.ms": 5, "acks": "all"}))
    out, errors = {}, []

    def cb(err, msg):
        if err is not None:
            errors.append(err)
        else:
            out[(msg.partition(), msg.offset())] = msg.value().decode()

    for i in range(start, start + count):
        p.produce(topic, key=f"k{i}".encode(), value=f"{prefix}{i}".encode(), on_delivery=cb)
    flush_all(p)
    assert not errors, errors[:3]
    assert len(out) == count
    if partitions is not None:
        assert {pp for pp, _ in out} == set(range(partitions)), "keys did not spread over all partitions"
    return out


def high_watermarks(bootstrap, topic, partitions):
    c = confluent_consumer(bootstrap)
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
                for p in range(partitions)}
    finally:
        c.close()


def group_offsets(bootstrap, group, topic=None, partitions=None, timeout=15):
    """Committed offsets of a group via the AdminClient (OffsetFetch): {(topic, partition): TopicPartition}
    (all of the group's partitions, or just topic's `partitions`)."""
    admin = admin_client(bootstrap)
    tps = None if topic is None else [TopicPartition(topic, p) for p in range(partitions)]
    fut = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)],
                                            request_timeout=timeout)[group]
    res = fut.result(timeout=timeout)
    return {(tp.topic, tp.partition): tp for tp in res.topic_partitions}


def committed_map(bootstrap, group, topic, partitions):
    """{partition: committed offset} (-1001 = none) for topic's partitions."""
    return {p: tp.offset for (t, p), tp in group_offsets(bootstrap, group, topic, partitions).items()}


def broker_config_value(bootstrap, name, default=None, broker_id="1"):
    """A broker config value via DescribeConfigs (None/default if the broker does not answer)."""
    admin = admin_client(bootstrap)
    try:
        md = admin.list_topics(timeout=10)
        broker_id = str(next(iter(md.brokers)))
        res = ConfigResource(ResourceType.BROKER, broker_id)
        cfg = admin.describe_configs([res], request_timeout=10)[res].result(timeout=15)
        entry = cfg.get(name)
        return default if entry is None or entry.value is None else entry.value
    except Exception:  # noqa: BLE001 - only a tuning hint
        return default


def describe_group(bootstrap, group, timeout=15):
    admin = admin_client(bootstrap)
    return admin.describe_consumer_groups([group], request_timeout=timeout)[group].result(timeout=timeout)


def wait_group_state(bootstrap, group, state_name, timeout=30):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = describe_group(bootstrap, group)
            if last.state.name == state_name:
                return last
        except Exception as e:  # noqa: BLE001
            last = e
        time.sleep(0.3)
    raise AssertionError(f"group {group} not {state_name} after {timeout}s (last: {last!r})")
