"""Committed group offsets survive a broker restart (gregor-only: a private broker is stopped gracefully or
SIGKILLed and restarted on the same port and data dir; skipped with COMPAT_BOOTSTRAP).
COMPAT_DURABILITY_REFERENCE=1 runs it against a private Apache Kafka to validate the test itself.

After the restart: list_consumer_groups shows the group (state EMPTY), list_consumer_group_offsets and a
consumer's committed() return the last committed offsets with their metadata strings, and a new member of
the group resumes at exactly those offsets."""

import time

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, TopicPartition

from group_helpers import group_offsets, produce_keyed
from helpers import admin_client, create_topic, rdkafka_conf, unique, wait_for

PARTS = 3


def consume_n(c, n, timeout=40):
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        for m in c.consume(num_messages=n - len(out), timeout=0.3):
            assert not m.error(), m.error()
            out.append((m.partition(), m.offset(), m.value().decode()))
    assert len(out) == n, f"consumed {len(out)}/{n}"
    return out


def group_state(admin, group):
    res = admin.list_consumer_groups(request_timeout=10).result(timeout=15)
    return {g.group_id: g.state for g in res.valid}.get(group)


@pytest.mark.gregor_only
@pytest.mark.timeout(240)
@pytest.mark.parametrize("how", ["graceful", "kill9"])
def test_committed_group_survives_restart(own_broker, how):
    b = own_broker()
    bs = b.bootstrap
    topic = create_topic(bs, unique("grp-restart"), partitions=PARTS)
    group = unique("g-restart")
    produced = produce_keyed(bs, topic, 0, 30, partitions=PARTS)
    hw = {p: sum(1 for (pp, _) in produced if pp == p) for p in range(PARTS)}

    c = Consumer(rdkafka_conf(bs, **{"group.id": group, "enable.auto.commit": False,
                                     "auto.offset.reset": "earliest"}))
    c.subscribe([topic])
    got = consume_n(c, 30)
    assert sorted((p, o) for p, o, _ in got) == sorted(produced)
    # Two commits per partition; the second (latest) one must be what survives.
    c.commit(offsets=[TopicPartition(topic, p, 1, metadata="first") for p in range(PARTS)], asynchronous=False)
    final = {p: hw[p] - (1 if p == 2 else 0) for p in range(PARTS)}  # partition 2 left one record behind
    res = c.commit(offsets=[TopicPartition(topic, p, final[p], metadata=f"meta-{p}") for p in range(PARTS)],
                   asynchronous=False)
    assert all(tp.error is None for tp in res), res
    c.close()  # LeaveGroup -> group EMPTY with offsets

    admin = admin_client(bs)
    wait_for(lambda: group_state(admin, group) == ConsumerGroupState.EMPTY, 20, what="group EMPTY before restart")
    expected = {(topic, p): (final[p], f"meta-{p}") for p in range(PARTS)}
    before = {k: (tp.offset, tp.metadata) for k, tp in group_offsets(bs, group).items()}
    assert before == expected

    del admin  # no client of the old incarnation keeps reconnecting (log noise)
    if how == "graceful":
        b.stop()
        b.start()
    else:
        b.kill9()
        b.start()

    admin = admin_client(bs)
    # The coordinator may answer COORDINATOR_LOAD_IN_PROGRESS for a while; the clients retry.
    wait_for(lambda: group_state(admin, group) == ConsumerGroupState.EMPTY, 60,
             what="group listed as EMPTY after the restart")
    after = wait_for(lambda: {k: (tp.offset, tp.metadata) for k, tp in group_offsets(bs, group).items()}, 30,
                     what="group offsets after restart")
    assert after == expected

    c = Consumer(rdkafka_conf(bs, **{"group.id": group, "enable.auto.commit": False,
                                     "auto.offset.reset": "earliest"}))
    try:
        com = c.committed([TopicPartition(topic, p) for p in range(PARTS)], timeout=30)
        assert [(tp.offset, tp.metadata, tp.error) for tp in com] == \
            [(final[p], f"meta-{p}", None) for p in range(PARTS)]
        # A member resumes exactly at the committed offsets: the left-behind record and new ones only.
        more = produce_keyed(bs, topic, 30, 6)
        c.subscribe([topic])
        want = sorted([(2, final[2])] + list(more))
        got = consume_n(c, len(want))
        assert sorted((p, o) for p, o, _ in got) == want
        assert not [m for m in c.consume(num_messages=10, timeout=1.0) if not m.error()]
    finally:
        c.close()
