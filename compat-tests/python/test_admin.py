"""(a) confluent-kafka AdminClient: CreateTopics / Metadata / CreatePartitions / DeleteTopics."""

import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewPartitions, NewTopic

from helpers import admin_client, create_topic, kafka_error_code, topic_exists, topic_partitions, unique, wait_for

T = 30  # seconds for every admin call


def test_create_list_describe_alter_delete(broker):
    admin = admin_client(broker.bootstrap)
    topic = unique("admin")
    futs = admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)],
                               operation_timeout=T, request_timeout=T)
    assert set(futs) == {topic}
    assert futs[topic].result(timeout=T) is None

    # Listed among all topics, and described with 3 partitions 0..2, each with a leader.
    wait_for(lambda: topic_exists(admin, topic), what="topic in list_topics()")
    wait_for(lambda: topic_partitions(admin, topic) == 3, what="3 partitions with leaders")
    md = admin.list_topics(topic=topic, timeout=T).topics[topic]
    assert sorted(md.partitions) == [0, 1, 2]
    brokers = admin.list_topics(timeout=T).brokers
    for p in md.partitions.values():
        assert p.leader in brokers
        assert p.replicas == [p.leader]
        assert p.isrs == [p.leader]

    # CreatePartitions 3 -> 5
    futs = admin.create_partitions([NewPartitions(topic, 5)], operation_timeout=T, request_timeout=T)
    assert futs[topic].result(timeout=T) is None
    wait_for(lambda: topic_partitions(admin, topic) == 5, what="5 partitions after create_partitions")
    assert sorted(admin.list_topics(topic=topic, timeout=T).topics[topic].partitions) == [0, 1, 2, 3, 4]

    # Shrinking is invalid.
    futs = admin.create_partitions([NewPartitions(topic, 2)], operation_timeout=T, request_timeout=T)
    with pytest.raises(KafkaException) as ei:
        futs[topic].result(timeout=T)
    assert kafka_error_code(ei.value) == KafkaError.INVALID_PARTITIONS

    # DeleteTopics: gone from metadata within a few seconds.
    futs = admin.delete_topics([topic], operation_timeout=T, request_timeout=T)
    assert futs[topic].result(timeout=T) is None
    wait_for(lambda: not topic_exists(admin, topic), timeout=10, what="deleted topic to disappear from metadata")


def test_create_topic_with_broker_default_partitions(broker):
    """NewTopic(name) sends num_partitions=-1, replication_factor=-1 (CreateTopics v4+): broker defaults."""
    admin = admin_client(broker.bootstrap)
    topic = unique("admin-default")
    nt = NewTopic(topic)
    assert (nt.num_partitions, nt.replication_factor) == (-1, -1)
    admin.create_topics([nt], operation_timeout=T, request_timeout=T)[topic].result(timeout=T)
    wait_for(lambda: topic_partitions(admin, topic) == 1, what="default topic with 1 partition")
    md = admin.list_topics(topic=topic, timeout=T).topics[topic]
    assert len(md.partitions) == 1
    assert len(md.partitions[0].replicas) == 1


def test_create_existing_topic_fails(broker):
    admin = admin_client(broker.bootstrap)
    topic = create_topic(broker.bootstrap, unique("admin-exists"), partitions=2)
    futs = admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)],
                               operation_timeout=T, request_timeout=T)
    with pytest.raises(KafkaException) as ei:
        futs[topic].result(timeout=T)
    assert kafka_error_code(ei.value) == KafkaError.TOPIC_ALREADY_EXISTS
    # The existing topic is untouched.
    assert topic_partitions(admin, topic) == 2


def test_create_validate_only_does_not_create(broker):
    admin = admin_client(broker.bootstrap)
    topic = unique("admin-validate")
    futs = admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)],
                               validate_only=True, operation_timeout=T, request_timeout=T)
    assert futs[topic].result(timeout=T) is None
    # Validation of an invalid request still fails.
    bad = unique("admin-validate-bad")
    futs = admin.create_topics([NewTopic(bad, num_partitions=1, replication_factor=3)],
                               validate_only=True, operation_timeout=T, request_timeout=T)
    with pytest.raises(KafkaException) as ei:
        futs[bad].result(timeout=T)
    assert kafka_error_code(ei.value) == KafkaError.INVALID_REPLICATION_FACTOR
    time.sleep(1.0)
    assert not topic_exists(admin, topic), "validate_only create_topics created the topic"
    assert not topic_exists(admin, bad)


def test_delete_unknown_topic_fails(broker):
    admin = admin_client(broker.bootstrap)
    topic = unique("admin-missing")
    futs = admin.delete_topics([topic], operation_timeout=T, request_timeout=T)
    with pytest.raises(KafkaException) as ei:
        futs[topic].result(timeout=T)
    assert kafka_error_code(ei.value) == KafkaError.UNKNOWN_TOPIC_OR_PART
