"""kafka-topics.sh against the 3-node cluster: replica placement, ISR, RF validation, manual assignment.

Kafka 4.1.2 (verified): `--create --replication-factor 3 --partitions 6` places 3 distinct replicas per partition,
Isr = Replicas right after creation, the first replica leads and the leaders are spread evenly (2 per node);
`--replication-factor 4` on 3 brokers exits 1 with
  "Error while executing topic command : Unable to replicate the partition 4 time(s): The target replication factor
   of 4 cannot be reached because only 3 broker(s) are registered."
(InvalidReplicationFactorException, error INVALID_REPLICATION_FACTOR 38); `--replica-assignment` is kept verbatim
(replica order included) and its first replica leads.
"""

from collections import Counter

from chelpers import admin, create_topic_cli, describe_topic, run_tool, topic_metadata, unique, wait_for

RF4_MESSAGE = ("Unable to replicate the partition 4 time(s): The target replication factor of 4 cannot be reached "
               "because only 3 broker(s) are registered.")


def test_create_rf3_six_partitions_spread(cluster):
    topic = unique("rf3")
    p = create_topic_cli(cluster.bootstrap, topic, partitions=6, rf=3)
    assert f"Created topic {topic}." in p.stdout, p.stdout + p.stderr

    desc, raw = describe_topic(cluster.bootstrap, topic)
    h = desc["header"]
    assert h["PartitionCount"] == "6", raw
    assert h["ReplicationFactor"] == "3", raw
    parts = desc["partitions"]
    assert sorted(parts) == list(range(6)), raw
    for p_id, row in parts.items():
        assert len(row["Replicas"]) == 3 and sorted(row["Replicas"]) == [1, 2, 3], f"partition {p_id}: {row['raw']}"
        assert sorted(row["Isr"]) == [1, 2, 3], f"partition {p_id} ISR not full: {row['raw']}"
        assert row["Leader"] in row["Replicas"], row["raw"]
    leaders = Counter(row["Leader"] for row in parts.values())
    assert set(leaders) == {1, 2, 3}, f"leaders not spread over all nodes: {dict(leaders)}\n{raw}"
    assert sorted(leaders.values()) == [2, 2, 2], f"leaders unevenly spread: {dict(leaders)}\n{raw}"

    # Clients see the same placement through Metadata.
    md = wait_for(lambda: topic_metadata(admin(cluster.bootstrap), topic), what="topic in metadata")
    for p_id, (leader, replicas, isrs) in md.items():
        assert leader == parts[p_id]["Leader"], (p_id, md, raw)
        assert sorted(replicas) == [1, 2, 3] and sorted(isrs) == [1, 2, 3], (p_id, md)


def test_create_rf4_on_three_brokers_fails(cluster):
    topic = unique("rf4")
    p = create_topic_cli(cluster.bootstrap, topic, partitions=1, rf=4, check=False)
    assert p.returncode == 1, p
    out = p.stdout + p.stderr
    assert f"Error while executing topic command : {RF4_MESSAGE}" in out, out
    assert "InvalidReplicationFactorException" in out, out
    listed = run_tool("kafka-topics.sh", "--bootstrap-server", cluster.bootstrap, "--list").stdout.split()
    assert topic not in listed


def test_manual_replica_assignment_honoured(cluster):
    topic = unique("assign")
    assignment = "3:1,1:2,2:3,2:1"
    expected = [[3, 1], [1, 2], [2, 3], [2, 1]]
    p = create_topic_cli(cluster.bootstrap, topic, assignment=assignment)
    assert f"Created topic {topic}." in p.stdout, p.stdout + p.stderr
    desc, raw = describe_topic(cluster.bootstrap, topic)
    assert desc["header"]["PartitionCount"] == "4", raw
    assert desc["header"]["ReplicationFactor"] == "2", raw
    for p_id, replicas in enumerate(expected):
        row = desc["partitions"][p_id]
        assert row["Replicas"] == replicas, f"partition {p_id}: expected replicas {replicas}: {row['raw']}"
        assert row["Leader"] == replicas[0], f"partition {p_id}: preferred replica should lead: {row['raw']}"
        assert sorted(row["Isr"]) == sorted(replicas), row["raw"]
    md = wait_for(lambda: topic_metadata(admin(cluster.bootstrap), topic), what="topic in metadata")
    assert {p_id: md[p_id][1] for p_id in md} == dict(enumerate(expected)), md
