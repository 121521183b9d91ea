"""confluent-kafka AdminClient group APIs against live and empty groups: list_consumer_groups (with a state
filter), describe_consumer_groups (members, assignment, state, coordinator, assignor, type),
list_consumer_group_offsets, alter_consumer_group_offsets, delete_consumer_groups, and the errors for a
non-empty / unknown group. Also a "simple" group (assign() + commit with metadata, never joined)."""

from confluent_kafka import (Consumer, ConsumerGroupState, ConsumerGroupTopicPartitions, ConsumerGroupType,
                             KafkaError, KafkaException, TopicPartition)

from group_helpers import committed_map, describe_group, group_offsets, produce_keyed
from group_workers import Worker, wait_until
from helpers import admin_client, create_topic, kafka_error_code, rdkafka_conf, unique


def listed(admin, **kw):
    res = admin.list_consumer_groups(request_timeout=15, **kw).result(timeout=20)
    assert not res.errors, res.errors
    return {g.group_id: g for g in res.valid}


def test_admin_group_apis(broker, tmp_path):
    b = broker.bootstrap
    admin = admin_client(b)
    topic = create_topic(b, unique("adm-grp"), partitions=3)
    group = unique("g-adm")
    produced = produce_keyed(b, topic, 0, 30, partitions=3)
    hw = {p: sum(1 for (pp, _) in produced if pp == p) for p in range(3)}

    w = Worker("adm", b, topic, group, conf={"client.id": "adm-member"}, log_dir=tmp_path)
    try:
        wait_until(lambda: len(w.records()) == 30, 40, "member consumed all records", [w])
        wait_until(lambda: committed_map(b, group, topic, 3) == hw, 15, "commits")

        # list_consumer_groups: the live group is STABLE and classic; state filters include/exclude it.
        g = listed(admin)[group]
        assert (g.state, g.type, g.is_simple_consumer_group) == \
            (ConsumerGroupState.STABLE, ConsumerGroupType.CLASSIC, False)
        assert group in listed(admin, states={ConsumerGroupState.STABLE})
        assert group not in listed(admin, states={ConsumerGroupState.EMPTY})

        # describe_consumer_groups: one member with all 3 partitions.
        d = describe_group(b, group)
        assert (d.group_id, d.state, d.type, d.is_simple_consumer_group, d.partition_assignor) == \
            (group, ConsumerGroupState.STABLE, ConsumerGroupType.CLASSIC, False, "range")
        host, port = b.rsplit(":", 1)
        assert (d.coordinator.host, d.coordinator.port) == (host, int(port))
        assert len(d.members) == 1
        m = d.members[0]
        assert (m.client_id, m.host, m.group_instance_id) == ("adm-member", "/127.0.0.1", None)
        assert m.member_id.startswith("adm-member-")
        assert sorted((tp.topic, tp.partition) for tp in m.assignment.topic_partitions) == \
            [(topic, 0), (topic, 1), (topic, 2)]

        # Deleting a group with members fails with NON_EMPTY_GROUP.
        try:
            admin.delete_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
            raise AssertionError("deleting a non-empty group succeeded")
        except KafkaException as e:
            assert kafka_error_code(e) == KafkaError.NON_EMPTY_GROUP
        w.terminate()
    finally:
        w.cleanup()

    # After the member left: EMPTY, no members, offsets kept.
    d = describe_group(b, group)
    assert (d.state, d.members) == (ConsumerGroupState.EMPTY, [])
    assert group in listed(admin, states={ConsumerGroupState.EMPTY})
    assert group not in listed(admin, states={ConsumerGroupState.STABLE})
    offs = group_offsets(b, group)  # all partitions of the group (OffsetFetch with null topics)
    assert {k: (tp.offset, tp.metadata or "", tp.error) for k, tp in offs.items()} == \
        {(topic, p): (hw[p], "", None) for p in range(3)}

    # alter_consumer_group_offsets with metadata, then list shows exactly that.
    new = [TopicPartition(topic, 0, 1, metadata="m0"), TopicPartition(topic, 1, 0), TopicPartition(topic, 2, hw[2])]
    res = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, new)],
                                             request_timeout=15)[group].result(timeout=20)
    assert res.group_id == group
    assert sorted((tp.partition, tp.offset, tp.error) for tp in res.topic_partitions) == \
        [(0, 1, None), (1, 0, None), (2, hw[2], None)]
    offs = group_offsets(b, group, topic, 3)
    assert {p: (tp.offset, tp.metadata or "") for (_, p), tp in offs.items()} == \
        {0: (1, "m0"), 1: (0, ""), 2: (hw[2], "")}

    # A consumer of the group resumes at the altered offsets.
    c = Consumer(rdkafka_conf(b, **{"group.id": group, "enable.auto.commit": False}))
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=15)
        assert [(tp.offset, tp.metadata or "") for tp in got] == [(1, "m0"), (0, ""), (hw[2], "")]
    finally:
        c.close()

    # delete_consumer_groups: gone from the list; describing it now gives state DEAD, no members.
    admin.delete_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
    assert group not in listed(admin)
    d = describe_group(b, group)
    assert (d.state, d.members) == (ConsumerGroupState.DEAD, [])
    assert committed_map(b, group, topic, 3) == {0: -1001, 1: -1001, 2: -1001}

    # Deleting an unknown group: GROUP_ID_NOT_FOUND.
    try:
        admin.delete_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
        raise AssertionError("deleting an unknown group succeeded")
    except KafkaException as e:
        assert kafka_error_code(e) == KafkaError.GROUP_ID_NOT_FOUND


def test_admin_simple_group_offsets_only(broker):
    """assign() + commit with metadata, no JoinGroup: the group exists with offsets only."""
    b = broker.bootstrap
    admin = admin_client(b)
    topic = create_topic(b, unique("adm-simple"), partitions=2)
    group = unique("g-simple")
    c = Consumer(rdkafka_conf(b, **{"group.id": group, "enable.auto.commit": False}))
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        res = c.commit(offsets=[TopicPartition(topic, 0, 3, metadata="hello")], asynchronous=False)
        assert [(tp.partition, tp.offset, tp.error) for tp in res] == [(0, 3, None)]
        got = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=15)
        assert [(tp.offset, tp.metadata) for tp in got] == [(3, "hello"), (-1001, None)]
    finally:
        c.close()
    g = listed(admin)[group]
    assert (g.state, g.type, g.is_simple_consumer_group) == (ConsumerGroupState.EMPTY, ConsumerGroupType.CLASSIC, True)
    d = describe_group(b, group)
    assert (d.state, d.members, d.is_simple_consumer_group, d.partition_assignor) == \
        (ConsumerGroupState.EMPTY, [], True, "")
    offs = group_offsets(b, group)
    assert {k: (tp.offset, tp.metadata) for k, tp in offs.items()} == {(topic, 0): (3, "hello")}
    admin.delete_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
    assert group not in listed(admin)
