"""Kafka 4.1 CLI with consumer groups: kafka-console-consumer joining a group (no --partition) and
kafka-consumer-groups.sh --list / --describe (offsets+lag, --members, --state) / --reset-offsets /
--delete-offsets / --delete. The describe of a group that only has committed offsets and no members must
work (the Java tool then prints "Consumer group 'G' has no active members." on stderr plus the table)."""

import re

from confluent_kafka import Producer

from group_helpers import committed_map
from group_workers import Worker, wait_until
from helpers import create_topic, flush_all, rdkafka_conf, run_tool, unique


def produce(bootstrap, topic, per_partition, tag):
    """per_partition: {partition: count}; values f"{tag}{p}-{i}". Returns the values."""
    p = Producer(rdkafka_conf(bootstrap))
    vals = []
    for part, n in per_partition.items():
        for i in range(n):
            v = f"{tag}{part}-{i}"
            p.produce(topic, value=v.encode(), partition=part)
            vals.append(v)
    flush_all(p)
    return vals


def groups_cmd(bootstrap, *args, check=True):
    return run_tool("kafka-consumer-groups.sh", "--bootstrap-server", bootstrap, *args, check=check)


def parse_tables(out):
    """Whitespace tables printed by kafka-consumer-groups.sh: list of row dicts (all tables together)."""
    rows, header = [], None
    for line in out.splitlines():
        toks = line.split()
        if not toks:
            header = None
            continue
        if toks[0] in ("GROUP", "TOPIC"):
            header = toks
            continue
        if header and len(toks) == len(header):
            rows.append(dict(zip(header, toks)))
    return rows


def describe_offsets(bootstrap, group, topic):
    p = groups_cmd(bootstrap, "--describe", "--group", group)
    rows = [r for r in parse_tables(p.stdout) if r.get("TOPIC") == topic]
    return {int(r["PARTITION"]): r for r in rows}, p


def describe_state(bootstrap, group):
    p = groups_cmd(bootstrap, "--describe", "--group", group, "--state")
    m = re.search(rf"^{re.escape(group)}\s+(\S+)\s+\((\d+)\)\s+(\S+)\s+(\S+)\s+(\d+)\s*$", p.stdout, re.M)
    assert m, p.stdout
    return {"coordinator": m.group(1), "id": int(m.group(2)), "strategy": m.group(3), "state": m.group(4),
            "members": int(m.group(5))}


def list_groups(bootstrap):
    return set(groups_cmd(bootstrap, "--list").stdout.split())


def console_group_consume(bootstrap, topic, group, n, from_beginning=True):
    args = ["--bootstrap-server", bootstrap, "--topic", topic, "--group", group, "--max-messages", n,
            "--timeout-ms", 40000]
    if from_beginning:
        args.append("--from-beginning")
    p = run_tool("kafka-console-consumer.sh", *args, timeout=60)
    assert f"Processed a total of {n} messages" in p.stderr, p.stderr
    return p.stdout.splitlines()


def test_console_consumer_group_and_consumer_groups_command(broker, tmp_path):
    b = broker.bootstrap
    topic = create_topic(b, unique("cli-grp"), partitions=2)
    group = unique("g-cli")
    vals = produce(b, topic, {0: 4, 1: 6}, "a")

    # Group consumption without --partition: exactly the 10 records, offsets committed on close.
    got = console_group_consume(b, topic, group, 10)
    assert sorted(got) == sorted(vals)
    assert group in list_groups(b)

    # Describe a group that has only offsets (console consumer left): offsets, log-end, lag 0, no member.
    rows, p = describe_offsets(b, group, topic)
    assert set(rows) == {0, 1}, p.stdout
    for part, end in ((0, 4), (1, 6)):
        r = rows[part]
        assert (r["GROUP"], r["CURRENT-OFFSET"], r["LOG-END-OFFSET"], r["LAG"]) == (group, str(end), str(end), "0")
        assert (r["CONSUMER-ID"], r["HOST"], r["CLIENT-ID"]) == ("-", "-", "-")
    assert f"Consumer group '{group}' has no active members." in p.stderr
    st = describe_state(b, group)
    assert (st["state"], st["members"], st["strategy"]) == ("Empty", 0, "-")
    assert st["coordinator"] == b
    p = groups_cmd(b, "--describe", "--group", group, "--members")
    assert [r for r in parse_tables(p.stdout) if r.get("GROUP") == group] == []
    assert f"Consumer group '{group}' has no active members." in p.stderr

    # Lag after producing more.
    vals += produce(b, topic, {0: 3, 1: 2}, "b")
    rows, _ = describe_offsets(b, group, topic)
    assert [(rows[q]["CURRENT-OFFSET"], rows[q]["LOG-END-OFFSET"], rows[q]["LAG"]) for q in (0, 1)] == \
        [("4", "7", "3"), ("6", "8", "2")]

    # An active member (confluent-kafka, classic protocol): --members / --state / describe show it.
    w = Worker("cli", b, topic, group, conf={"client.id": "cli-member"}, log_dir=tmp_path)
    try:
        wait_until(lambda: w.assignment() == {0, 1} and len(w.records()) == 5, 40, "member consumed the lag", [w])
        wait_until(lambda: committed_map(b, group, topic, 2) == {0: 7, 1: 8}, 15, "commits")
        p = groups_cmd(b, "--describe", "--group", group, "--members", "--verbose")
        mem = [r for r in parse_tables(p.stdout) if r.get("GROUP") == group]
        assert len(mem) == 1, p.stdout
        assert (mem[0]["CLIENT-ID"], mem[0]["#PARTITIONS"], mem[0]["HOST"]) == ("cli-member", "2", "/127.0.0.1")
        assert mem[0]["CURRENT-ASSIGNMENT"] == f"{topic}:0,1", p.stdout
        st = describe_state(b, group)
        assert (st["state"], st["members"], st["strategy"]) == ("Stable", 1, "range")
        rows, _ = describe_offsets(b, group, topic)
        assert [(rows[q]["CURRENT-OFFSET"], rows[q]["LAG"], rows[q]["CLIENT-ID"]) for q in (0, 1)] == \
            [("7", "0", "cli-member"), ("8", "0", "cli-member")]
        assert rows[0]["CONSUMER-ID"] == mem[0]["CONSUMER-ID"] != "-"
        # Offsets cannot be reset while the group has members.
        p = groups_cmd(b, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--execute",
                       check=False)
        assert "inactive" in (p.stdout + p.stderr), p.stdout + p.stderr
        w.terminate()
    finally:
        w.cleanup()


def test_consumer_groups_reset_delete_offsets_delete(broker):
    b = broker.bootstrap
    topic = create_topic(b, unique("cli-grp2"), partitions=2)
    group = unique("g-cli2")
    vals = produce(b, topic, {0: 7, 1: 8}, "a")
    got = console_group_consume(b, topic, group, 15)
    assert sorted(got) == sorted(vals)

    # Reset to earliest: describe shows 0, and a group consumer re-reads everything from offset 0.
    p = groups_cmd(b, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--execute")
    new = {int(r["PARTITION"]): r["NEW-OFFSET"] for r in parse_tables(p.stdout) if r.get("GROUP") == group}
    assert new == {0: "0", 1: "0"}, p.stdout
    rows, _ = describe_offsets(b, group, topic)
    assert [(rows[q]["CURRENT-OFFSET"], rows[q]["LAG"]) for q in (0, 1)] == [("0", "7"), ("0", "8")]
    got = console_group_consume(b, topic, group, 15, from_beginning=False)
    assert sorted(got) == sorted(vals)
    rows, _ = describe_offsets(b, group, topic)
    assert [(rows[q]["CURRENT-OFFSET"], rows[q]["LAG"]) for q in (0, 1)] == [("7", "0"), ("8", "0")]

    # Delete the topic's offsets: the group stays, without offsets for the topic.
    p = groups_cmd(b, "--delete-offsets", "--group", group, "--topic", topic)
    assert f"Request succeeded for deleting offsets from group {group}." in p.stdout, p.stdout
    status = {int(r["PARTITION"]): r["STATUS"] for r in parse_tables(p.stdout) if r.get("TOPIC") == topic}
    assert status == {0: "Successful", 1: "Successful"}
    assert committed_map(b, group, topic, 2) == {0: -1001, 1: -1001}
    rows, p = describe_offsets(b, group, topic)
    assert rows == {}, p.stdout
    assert group in list_groups(b)

    # Delete the group.
    p = groups_cmd(b, "--delete", "--group", group)
    assert f"Deletion of requested consumer groups ('{group}') was successful." in p.stdout, p.stdout
    assert group not in list_groups(b)
