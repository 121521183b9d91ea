"""Static membership (KIP-345) with the Java client: a kafka-console-consumer with
group.instance.id=static-1 stops (a static member does not send LeaveGroup on close) and comes back within
session.timeout.ms; the group must NOT rebalance and the member resumes from its committed offsets.

Observable "no rebalance" (as seen against Apache Kafka 4.1.2):
  * the other, dynamic member (confluent-kafka, heartbeat every 1 s) gets no revoke/assign callback;
  * the restarted Java consumer joins with the SAME generation id (its INFO log line
    "Successfully joined group with generation Generation{generationId=N, ...}") - if it is the group
    leader the JoinGroup response says skipAssignment ("Skipped assignment for returning static leader");
  * DescribeGroups keeps 2 members, state Stable, static-1 keeps its partition; its member id is NEW
    (the coordinator replaces the old member id of that instance id).
"""

import os
import re
import subprocess
import time

from confluent_kafka import Producer

from group_helpers import describe_group, high_watermarks
from group_workers import Worker, wait_until
from helpers import BIN_DIR, create_topic, flush_all, rdkafka_conf, unique

LOG4J = """status = error
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = STDERR
logger.coord.name = org.apache.kafka.clients.consumer.internals
logger.coord.level = info
"""


def produce_to(bootstrap, topic, partition, values):
    p = Producer(rdkafka_conf(bootstrap))
    for v in values:
        p.produce(topic, value=v.encode(), partition=partition)
    flush_all(p)


def start_static_consumer(bootstrap, topic, group, max_messages, tmp_path, run):
    log4j = tmp_path / "log4j2-static.properties"
    log4j.write_text(LOG4J)
    err = open(tmp_path / f"static-{run}.stderr", "w")
    cmd = [str(BIN_DIR / "kafka-console-consumer.sh"), "--bootstrap-server", bootstrap, "--topic", topic,
           "--group", group, "--from-beginning", "--max-messages", str(max_messages),
           "--consumer-property", "group.instance.id=static-1",
           "--consumer-property", "session.timeout.ms=30000",
           "--property", "print.partition=true", "--property", "print.offset=true"]
    env = {**os.environ, "KAFKA_LOG4J_OPTS": f"-Dlog4j2.configurationFile={log4j}"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    err.close()
    return proc, tmp_path / f"static-{run}.stderr"


def finish(proc, timeout=45):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"console consumer did not finish in {timeout}s; stdout so far:\n{out}")
    assert proc.returncode == 0, f"console consumer exited {proc.returncode}:\n{out}"
    return [tuple(line.split("\t")) for line in out.splitlines() if line.startswith("Partition:")]


def generations(stderr_path):
    return [int(g) for g in re.findall(r"Successfully joined group with generation Generation\{generationId=(\d+)",
                                       stderr_path.read_text())]


def static_member(desc):
    ms = [m for m in desc.members if m.group_instance_id == "static-1"]
    assert len(ms) == 1, [(m.member_id, m.group_instance_id) for m in desc.members]
    return ms[0]


def test_static_member_restart_without_rebalance(broker, tmp_path):
    b = broker.bootstrap
    topic = create_topic(b, unique("static"), partitions=2)
    group = unique("g-static")
    dyn = Worker("dyn", b, topic, group, conf={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
                 log_dir=tmp_path)
    try:
        wait_until(lambda: dyn.assignment() == {0, 1}, 30, "dynamic member owning both partitions", [dyn])
        proc, err1 = start_static_consumer(b, topic, group, 5, tmp_path, 1)

        def two_members():
            d = describe_group(b, group)
            return (d.state.name == "STABLE" and len(d.members) == 2 and len(dyn.assignment()) == 1
                    and all(len(m.assignment.topic_partitions) == 1 for m in d.members)) and d

        desc1 = wait_until(two_members, 40, "static + dynamic member, one partition each", [dyn])
        sm1 = static_member(desc1)
        static_part = sm1.assignment.topic_partitions[0].partition
        assert dyn.assignment() == {1 - static_part}
        callbacks_before = dyn.count("assign") + dyn.count("revoke")

        for p in (0, 1):
            produce_to(b, topic, p, [f"a{p}-{i}" for i in range(5)])
        got1 = finish(proc)
        assert got1 == [(f"Partition:{static_part}", f"Offset:{i}", f"a{static_part}-{i}") for i in range(5)]
        gen1 = generations(err1)
        assert len(gen1) == 1, err1.read_text()[-3000:]

        # Closed static member: no LeaveGroup, it stays in the group until its session times out.
        d = describe_group(b, group)
        assert d.state.name == "STABLE" and len(d.members) == 2
        assert static_member(d).member_id == sm1.member_id

        for p in (0, 1):
            produce_to(b, topic, p, [f"b{p}-{i}" for i in range(3)])
        proc2, err2 = start_static_consumer(b, topic, group, 3, tmp_path, 2)
        got2 = finish(proc2)
        # Resumed at the committed offset 5 of its partition: only the 3 new records.
        assert got2 == [(f"Partition:{static_part}", f"Offset:{5 + i}", f"b{static_part}-{i}") for i in range(3)]
        gen2 = generations(err2)
        assert gen2 == gen1, f"generation changed on static rejoin: {gen1} -> {gen2} (a rebalance happened)"

        wait_until(lambda: len(dyn.records()) == 8, 20, "dynamic member read its 8 records", [dyn])
        time.sleep(2.5)  # > 2 heartbeat intervals of the dynamic member: it would have seen a rebalance
        assert dyn.count("assign") + dyn.count("revoke") == callbacks_before, \
            f"dynamic member saw a rebalance: {[e for e in dyn.snapshot() if e['ev'] in ('assign', 'revoke')]}"
        assert dyn.assignment() == {1 - static_part}
        d = describe_group(b, group)
        assert d.state.name == "STABLE" and len(d.members) == 2
        sm2 = static_member(d)
        assert [tp.partition for tp in sm2.assignment.topic_partitions] == [static_part]
        assert sm2.member_id != sm1.member_id, "Kafka hands the returning static member a new member id"
        hw = high_watermarks(b, topic, 2)
        assert hw == {0: 8, 1: 8}
        dyn.terminate()
    finally:
        dyn.cleanup()
