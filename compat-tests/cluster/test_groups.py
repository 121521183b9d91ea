"""A consumer group whose coordinator is not the broker the clients bootstrap against.

The group coordinator is the leader of the group's `__consumer_offsets` partition (RF 3 here, 50 partitions), so
about two thirds of all group ids are coordinated by another node than node 1. The test asks the cluster
(AdminClient describe_consumer_groups -> FindCoordinator) for candidate ids until it finds one whose coordinator is
not node 1, then bootstraps every client with node 1 ONLY: a confluent-kafka consumer subscribes with that group,
reads 12 of 30 records, commits exactly what it read (synchronous commit of explicit offsets) and closes; the
committed offsets are read back (AdminClient list_consumer_group_offsets and kafka-consumer-groups.sh); a new
consumer in the same group resumes exactly at the committed offsets and reads the other 18 records, no record twice.
"""

import re
import time

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from chelpers import admin, rdkafka_conf, run_tool, topic_metadata, unique, wait_for

BOOTSTRAP_NODE = 1
FIRST_BATCH = 12
PER_PARTITION = 10


def find_group_coordinated_elsewhere(cluster, prefix, tries=30):
    a = admin(cluster.bootstrap_of(BOOTSTRAP_NODE))
    seen = {}
    for k in range(tries):
        gid = f"{prefix}-{k}"

        def coordinator():
            d = a.describe_consumer_groups([gid], request_timeout=10)[gid].result(timeout=15)
            return d.coordinator
        # The first FindCoordinator creates __consumer_offsets: allow for COORDINATOR_NOT_AVAILABLE meanwhile.
        node = wait_for(coordinator, timeout=30, what=f"coordinator of group {gid}")
        seen[gid] = node.id
        assert node.id in cluster.ids, f"coordinator {node} is not a cluster node"
        assert (node.host, node.port) == ("127.0.0.1", cluster.nodes[node.id].client_port), node
        if node.id != BOOTSTRAP_NODE:
            return gid, node.id
    raise AssertionError(f"no group id among {tries} candidates has a coordinator other than node "
                         f"{BOOTSTRAP_NODE}: {seen}")


def group_consumer(cluster, gid):
    return Consumer(rdkafka_conf(cluster.bootstrap_of(BOOTSTRAP_NODE), **{
        "group.id": gid, "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "session.timeout.ms": 10000}))


def read(consumer, n, timeout=45):
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        assert time.monotonic() < deadline, f"read only {len(out)}/{n} records in {timeout}s"
        for m in consumer.consume(num_messages=n - len(out), timeout=0.5):
            assert m.error() is None, m.error()
            out.append((m.partition(), m.offset(), m.value().decode()))
    return out


def test_group_coordinator_not_bootstrap_broker(cluster):
    topic = unique("grp")
    a = admin(cluster.bootstrap)
    a.create_topics([NewTopic(topic, num_partitions=3, replica_assignment=[[1, 2, 3], [2, 3, 1], [3, 1, 2]])],
                    request_timeout=30)[topic].result(timeout=40)
    wait_for(lambda: (md := topic_metadata(a, topic)) and all(l >= 0 for l, _, _ in md.values()) and len(md) == 3,
             timeout=30, what="topic leaders")
    p = Producer(rdkafka_conf(cluster.bootstrap, acks="all"))
    for part in range(3):
        for i in range(PER_PARTITION):
            p.produce(topic, value=f"p{part}-{i}", partition=part)
    assert p.flush(30) == 0
    all_records = {(part, i, f"p{part}-{i}") for part in range(3) for i in range(PER_PARTITION)}

    gid, coordinator = find_group_coordinated_elsewhere(cluster, unique("grp"))
    print(f"group {gid}: coordinator node {coordinator}, clients bootstrap with node {BOOTSTRAP_NODE} only")

    # First consumer: read 12 records, commit exactly those, leave.
    c1 = group_consumer(cluster, gid)
    c1.subscribe([topic])
    first = read(c1, FIRST_BATCH)
    commit = {}
    for part, off, _ in first:
        commit[part] = max(commit.get(part, 0), off + 1)
    committed = c1.commit(offsets=[TopicPartition(topic, part, off) for part, off in sorted(commit.items())],
                          asynchronous=False)
    assert all(tp.error is None for tp in committed), committed
    c1.close()

    # The committed offsets are stored by the coordinator (read through node 1).
    ba = admin(cluster.bootstrap_of(BOOTSTRAP_NODE))
    res = ba.list_consumer_group_offsets([ConsumerGroupTopicPartitions(gid)], request_timeout=15)[gid].result(20)
    stored = {tp.partition: tp.offset for tp in res.topic_partitions if tp.topic == topic and tp.offset >= 0}
    assert stored == commit, (stored, commit)
    desc = ba.describe_consumer_groups([gid], request_timeout=10)[gid].result(timeout=15)
    assert desc.coordinator.id == coordinator, desc.coordinator

    cli = run_tool("kafka-consumer-groups.sh", "--bootstrap-server", cluster.bootstrap_of(BOOTSTRAP_NODE),
                   "--describe", "--group", gid, "--state")
    m = re.search(r"127\.0\.0\.1:(\d+)\s+\((\d+)\)", cli.stdout)
    assert m and int(m.group(2)) == coordinator and int(m.group(1)) == cluster.nodes[coordinator].client_port, \
        cli.stdout
    cli = run_tool("kafka-consumer-groups.sh", "--bootstrap-server", cluster.bootstrap_of(BOOTSTRAP_NODE),
                   "--describe", "--group", gid)
    rows = {}
    for line in cli.stdout.splitlines():
        cols = line.split()
        if len(cols) >= 6 and cols[1] == topic:
            rows[int(cols[2])] = (cols[3], int(cols[4]))
    # A group without members lists only the partitions it has committed offsets for (Kafka 4.1.2).
    assert {part: cur for part, (cur, _) in rows.items()} == {part: str(off) for part, off in commit.items()}, \
        cli.stdout
    assert all(end == PER_PARTITION for _, end in rows.values()), cli.stdout

    # Second consumer of the same group resumes exactly at the committed offsets.
    c2 = group_consumer(cluster, gid)
    try:
        c2.subscribe([topic])
        second = read(c2, len(all_records) - FIRST_BATCH)
        extra = [m for m in c2.consume(num_messages=10, timeout=1.0) if m.error() is None]
        assert not extra, f"extra records {[(m.partition(), m.offset()) for m in extra]}"
        live = ba.describe_consumer_groups([gid], request_timeout=10)[gid].result(timeout=15)
        assert live.coordinator.id == coordinator and len(live.members) == 1, live
    finally:
        c2.close()
    for part in range(3):
        offs = [off for p_, off, _ in second if p_ == part]
        start = commit.get(part, 0)
        assert offs == list(range(start, PER_PARTITION)), f"partition {part}: resumed at {offs}, committed {start}"
    assert len(set(first) | set(second)) == len(first) + len(second), "a record was consumed twice"
    assert set(first) | set(second) == all_records
