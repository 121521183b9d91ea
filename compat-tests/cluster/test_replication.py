"""Replicated partitions: ISR replication over Fetch, acks=all with min.insync.replicas, leader failover without
acknowledged loss, and the operator tools that read or change replica state.

Every test restores the nodes it stopped and checks that the ISRs are full again, so the tests share one cluster
(`broker.session.timeout.ms=6000`, `broker.heartbeat.interval.ms=2000`, `auto.leader.rebalance.enable=false`).
Records are written by `chelpers.LoadProducer` (confluent-kafka, idempotent, acks=all, numbered values in a
thread, explicit partitions) and checked by reading every partition back from offset 0 to the high watermark:
offsets without gaps, sequence numbers strictly increasing (produce order, no duplicate) and every acknowledged
record at its acknowledged offset. Timings are printed as `CLUSTER-TIMING name_ms=...`.

Kafka 4.1.2 (observed on this 2-core machine):
  * kill -9 of a partition leader: the partition stays led by the dead broker until the controller fences it
    (session timeout, ~5-8 s), then an ISR member leads; the idempotent producer retries (no failed report) and
    nothing acknowledged is lost; the restarted broker truncates what it had beyond the new leader's log, catches up
    over Fetch and rejoins the ISR. Followers store the leader's batches verbatim, so once the ISR is full and the
    producer stopped, the segment files of the three replicas hold the same bytes.
  * ISR: a killed broker leaves every ISR when it is fenced. `kafka-topics.sh --describe` with
    `--under-replicated-partitions` lists the partitions it replicates (Isr without it), `--under-min-isr-partitions`
    those whose ISR is now smaller than min.insync.replicas (3 here), `--at-min-isr-partitions` those whose ISR size
    equals it (the min.insync.replicas=2 topic now, the =3 one while all are in sync), `--unavailable-partitions` nothing (every partition has a live leader). With min.insync.replicas=3 the
    dropped replica is shown as `Elr` (eligible leader replicas, KIP-966; printed, not asserted). acks=all to a
    partition whose ISR is below min.insync.replicas fails with NOT_ENOUGH_REPLICAS (nothing appended), acks=1
    succeeds. After the restart the ISRs are full again (~5 s) and the filters print nothing.
  * `kafka-leader-election.sh --election-type preferred --all-topic-partitions` prints
    `Successfully completed leader election (PREFERRED) for partitions T-p, ...` for the partitions it moved and
    nothing for those already led by their preferred replica; `--topic T --partition p` on such a partition prints
    `Valid replica already elected for partitions T-p`.
  * `kafka-reassign-partitions.sh --execute` prints the current assignment and `Successfully started partition
    reassignment for T-0`; `--verify` prints `Reassignment of partition T-0 is completed.` (or `... is still in
    progress.`) and clears the throttles. Moving [1,2] to [2,3] makes 2 the leader; node 1 drops its replica.
  * SIGTERM (controlled shutdown) of a broker leading a partition under load: the producer sees only retriable
    errors (NOT_LEADER_OR_FOLLOWER), every delivery report succeeds; a group consumer reads every record.
"""

import os
import signal
import statistics
import threading
import time

import pytest
from confluent_kafka import KafkaError, Consumer, Producer
from confluent_kafka.admin import NewTopic

from chelpers import (LoadProducer, admin, check_log_against_acks, describe_topic, parse_topic_describe,
                      rdkafka_conf, read_partition_log, run_tool, timing, topic_metadata, unique, wait_for,
                      wait_full_isr, wait_replicas_identical)

pytestmark = pytest.mark.destructive

KILL_CYCLES = int(os.environ.get("REPL_KILL_CYCLES", "10"))
KILL_PERIOD = 10.0  # seconds between two kills (at least; a cycle also waits for the ISR to be full again)

# Exit status after SIGTERM: gregor's contract says 0; Kafka's JVM reports 128+SIGTERM.
SIGTERM_EXIT = {"gregor": 0, "kafka": 143}

SPREAD = [[1, 2, 3], [2, 3, 1], [3, 1, 2]]  # partition p led by (preferred replica) node p+1


def create_topics(bootstrap, topics, timeout=30):
    """topics: [(name, assignment or (partitions, rf), {config})]; waits until every partition is led with a full
    ISR."""
    a = admin(bootstrap)
    new = []
    for name, placement, config in topics:
        if isinstance(placement, list):
            new.append(NewTopic(name, num_partitions=len(placement), replica_assignment=placement, config=config))
        else:
            new.append(NewTopic(name, num_partitions=placement[0], replication_factor=placement[1], config=config))
    for name, fut in a.create_topics(new, request_timeout=timeout, operation_timeout=timeout).items():
        fut.result(timeout + 10)
    for name, placement, _ in topics:
        rf = len(placement[0]) if isinstance(placement, list) else placement[1]
        wait_full_isr(a, name, rf, timeout=30)
    return a


def leaders(bootstrap, topic):
    md = topic_metadata(admin(bootstrap), topic)
    return {p: l for p, (l, _, _) in md.items()} if md else None


def wait_leader_moved(cluster, topic, part, old, survivors, timeout):
    """Poll Metadata through the survivors until topic[part] is led by one of them; returns the new leader."""
    def moved():
        md = topic_metadata(admin(cluster.bootstrap_of(*survivors)), topic, timeout=3)
        if md and md[part][0] in survivors:
            return md[part][0]
        return None
    return wait_for(moved, timeout=timeout, interval=0.1,
                    what=f"{topic}[{part}] led by one of {survivors} after broker {old} stopped")


def verify_logs(cluster, load, what):
    """Read every partition written by load back and check it against the acknowledgements."""
    unacked = {}
    for topic, part in load.targets:
        log, high = read_partition_log(cluster.bootstrap, topic, part)
        unacked[(topic, part)] = check_log_against_acks(topic, part, log, high, load.acked[(topic, part)])
    print(f"{what}: {load.acked_count()} acknowledged records all present once, in order; records in the log never "
          f"acknowledged: {unacked}; failed reports: {len(load.errors)}")


def describe_filtered(cluster, pattern, flag, bootstrap=None):
    """`kafka-topics.sh --describe --topic PATTERN FLAG` -> {(topic, partition): row}."""
    p = run_tool("kafka-topics.sh", "--bootstrap-server", bootstrap or cluster.bootstrap, "--describe", "--topic",
                 pattern, flag, timeout=60)
    rows = {}
    for topic, d in parse_topic_describe(p.stdout).items():
        assert not d["header"], f"{flag}: unexpected topic header line in\n{p.stdout}"
        for part, row in d["partitions"].items():
            rows[(topic, part)] = row
    return rows, p.stdout


@pytest.mark.timeout(150 + KILL_CYCLES * 40)
def test_leader_kill9_cycles_no_acked_loss(cluster):
    one, three = unique("kill-cycles-1p"), unique("kill-cycles-3p")
    create_topics(cluster.bootstrap, [(one, (1, 3), {"min.insync.replicas": "2"}),
                                      (three, SPREAD, {"min.insync.replicas": "2"})])
    load = LoadProducer(cluster.bootstrap, [(one, 0)] + [(three, p) for p in range(3)]).start()
    failovers, first_acks = [], []
    try:
        load.wait_acked_after(-1, timeout=30)
        last_kill = time.monotonic() - KILL_PERIOD
        for cycle in range(KILL_CYCLES):
            for t, rf in ((one, 3), (three, 3)):
                wait_full_isr(admin(cluster.bootstrap), t, rf, timeout=90)
            time.sleep(max(0.0, last_kill + KILL_PERIOD - time.monotonic()))
            victim = leaders(cluster.bootstrap, one)[0]
            survivors = [i for i in cluster.ids if i != victim]
            seq_at_kill = load.next_seq
            last_kill = t0 = time.monotonic()
            cluster.kill(victim, signal.SIGKILL)
            new = wait_leader_moved(cluster, one, 0, victim, survivors, timeout=cluster.session_timeout_ms / 1000 + 40)
            failovers.append(time.monotonic() - t0)
            # Records produced after the kill are acknowledged (by the new leaders of every partition).
            first_acks.append(load.wait_acked_after(seq_at_kill, timeout=90) - t0)
            print(f"cycle {cycle + 1}/{KILL_CYCLES}: killed leader {victim}, {one}[0] led by {new} after "
                  f"{failovers[-1]:.1f}s, first ack of a later record after {first_acks[-1]:.1f}s; "
                  f"{load.acked_count()} acked, {len(load.errors)} failed reports", flush=True)
            cluster.restart(victim)
        for t in (one, three):
            wait_full_isr(admin(cluster.bootstrap), t, 3, timeout=90)
        # Some more records with every replica back, then stop.
        load.wait_acked_after(load.next_seq, timeout=60)
    finally:
        load.stop()
    timing("leader_kill9_to_new_leader_median", statistics.median(failovers) * 1000)
    timing("leader_kill9_to_new_leader_max", max(failovers) * 1000)
    timing("leader_kill9_to_next_ack_max", max(first_acks) * 1000)
    assert load.acked_count() > 0
    if load.errors:
        print(f"failed delivery reports ({len(load.errors)}): {load.errors[:10]}")

    verify_logs(cluster, load, f"{KILL_CYCLES} kill -9 cycles")

    # All three replicas back in the ISR (as kafka-topics.sh sees it), then the same bytes on every replica's disk.
    for t, nparts in ((one, 1), (three, 3)):
        def full(t=t, nparts=nparts):
            desc, raw = describe_topic(cluster.bootstrap, t)
            rows = desc["partitions"]
            ok = len(rows) == nparts and all(sorted(r["Isr"]) == [1, 2, 3] and r["Leader"] in (1, 2, 3)
                                             for r in rows.values())
            return raw if ok else None
        wait_for(full, timeout=60, interval=1, what=f"{t}: every partition with Isr 1,2,3 in --describe")
    for topic, part in load.targets:
        size = wait_replicas_identical(cluster, topic, part, cluster.ids, timeout=60)
        print(f"{topic}[{part}]: 3 replicas hold the same {size} bytes of segments")


def test_isr_shrinks_and_grows_under_replicated_tools(cluster):
    prefix = unique("isr")
    strict, relaxed = f"{prefix}-min3", f"{prefix}-min2"  # min.insync.replicas 3 and 2
    pattern = f"{prefix}-.*"
    create_topics(cluster.bootstrap, [(strict, SPREAD, {"min.insync.replicas": "3"}),
                                      (relaxed, SPREAD, {"min.insync.replicas": "2"})])
    all_parts = {(t, p) for t in (strict, relaxed) for p in range(3)}
    for flag in ("--under-replicated-partitions", "--under-min-isr-partitions", "--unavailable-partitions"):
        rows, raw = describe_filtered(cluster, pattern, flag)
        assert rows == {}, f"{flag} with every replica in sync:\n{raw}"
    # ISR 3 = min.insync.replicas 3: the strict topic is "at min ISR" already.
    rows, raw = describe_filtered(cluster, pattern, "--at-min-isr-partitions")
    assert set(rows) == {(strict, p) for p in range(3)}, f"--at-min-isr-partitions with every replica in sync:\n{raw}"

    quorum_leader = cluster.quorum_leader()
    victim = next(i for i in reversed(cluster.ids) if i != quorum_leader)
    survivors = [i for i in cluster.ids if i != victim]
    boot = cluster.bootstrap_of(*survivors)
    t0 = time.monotonic()
    cluster.kill(victim, signal.SIGKILL)

    def under_replicated():
        rows, raw = describe_filtered(cluster, pattern, "--under-replicated-partitions", boot)
        return (rows, raw) if set(rows) == all_parts else None
    rows, raw = wait_for(under_replicated, timeout=cluster.session_timeout_ms / 1000 + 45, interval=0.5,
                         what=f"every partition of {pattern} listed by --under-replicated-partitions")
    timing("kill9_to_under_replicated_listed", (time.monotonic() - t0) * 1000)
    print(raw)
    for (t, p), r in rows.items():
        assert r["Replicas"] == SPREAD[p], raw
        assert sorted(r["Isr"]) == sorted(set(SPREAD[p]) - {victim}), raw
        assert r["Leader"] in survivors, raw

    rows, raw = describe_filtered(cluster, pattern, "--under-min-isr-partitions", boot)
    assert set(rows) == {(strict, p) for p in range(3)}, f"--under-min-isr-partitions:\n{raw}"
    rows, raw = describe_filtered(cluster, pattern, "--at-min-isr-partitions", boot)
    assert set(rows) == {(relaxed, p) for p in range(3)}, f"--at-min-isr-partitions:\n{raw}"
    rows, raw = describe_filtered(cluster, pattern, "--unavailable-partitions", boot)
    assert rows == {}, f"--unavailable-partitions with a live leader for every partition:\n{raw}"

    # acks=all needs min.insync.replicas in-sync replicas: refused (not appended) on the strict topic, accepted on
    # the relaxed one; acks=1 is accepted everywhere.
    def produce_each(topic, acks, tag):
        p = Producer(rdkafka_conf(boot, acks=acks, retries=0, **{"enable.idempotence": False,
                                                                 "message.timeout.ms": 30000}))
        reports = {}
        for part in range(3):
            p.produce(topic, value=f"{tag}-{part}", partition=part,
                      on_delivery=lambda err, msg: reports.__setitem__(msg.partition(), (err, msg.offset())))
        assert p.flush(40) == 0
        return reports

    refused = produce_each(strict, "all", "refused")
    assert {part: err.code() if err else None for part, (err, _) in refused.items()} == \
        {p: KafkaError.NOT_ENOUGH_REPLICAS for p in range(3)}, refused
    accepted = produce_each(strict, "1", "acks1")
    assert all(err is None for err, _ in accepted.values()), accepted
    relaxed_ok = produce_each(relaxed, "all", "relaxed")
    assert all(err is None for err, _ in relaxed_ok.values()), relaxed_ok

    t1 = time.monotonic()
    cluster.restart(victim)

    def in_sync_again():
        rows, raw = describe_filtered(cluster, pattern, "--under-replicated-partitions")
        return raw or "(empty)" if not rows else None
    wait_for(in_sync_again, timeout=90, interval=0.5, what=f"--under-replicated-partitions empty for {pattern}")
    timing("restart_to_under_replicated_empty", (time.monotonic() - t1) * 1000)
    for t in (strict, relaxed):
        desc, raw = describe_topic(cluster.bootstrap, t)
        for p, r in desc["partitions"].items():
            assert sorted(r["Isr"]) == [1, 2, 3] and r["Replicas"] == SPREAD[p], raw
    for flag in ("--under-min-isr-partitions", "--unavailable-partitions"):
        rows, raw = describe_filtered(cluster, pattern, flag)
        assert rows == {}, f"{flag} after the restart:\n{raw}"
    rows, raw = describe_filtered(cluster, pattern, "--at-min-isr-partitions")
    assert set(rows) == {(strict, p) for p in range(3)}, f"--at-min-isr-partitions after the restart:\n{raw}"

    after = produce_each(strict, "all", "after")
    assert all(err is None for err, _ in after.values()), after
    # The refused records were never appended: each strict partition holds the acks=1 record, then the last one.
    for part in range(3):
        log, high = read_partition_log(cluster.bootstrap, strict, part)
        assert [v for _, v in log] == [f"acks1-{part}", f"after-{part}"], (part, log)


def test_preferred_leader_election_tool(cluster):
    topic = unique("preferred")
    create_topics(cluster.bootstrap, [(topic, SPREAD, {})])
    assert leaders(cluster.bootstrap, topic) == {0: 1, 1: 2, 2: 3}

    quorum_leader = cluster.quorum_leader()
    victim = next(i for i in cluster.ids if i != quorum_leader)
    part = victim - 1  # the partition whose preferred leader is the victim
    rc = cluster.kill(victim, signal.SIGTERM, timeout=30)
    assert rc == SIGTERM_EXIT[cluster.impl], f"node {victim} exited {rc} after SIGTERM"
    moved = wait_leader_moved(cluster, topic, part, victim, [i for i in cluster.ids if i != victim], timeout=30)
    assert moved == SPREAD[part][1], f"{topic}[{part}] led by {moved}, not by the next replica {SPREAD[part][1]}"

    cluster.restart(victim)
    wait_full_isr(admin(cluster.bootstrap), topic, 3, timeout=60)
    # No automatic rebalance (auto.leader.rebalance.enable=false): the leadership stays where it went.
    assert leaders(cluster.bootstrap, topic) == {**{0: 1, 1: 2, 2: 3}, part: moved}

    t0 = time.monotonic()
    p = run_tool("kafka-leader-election.sh", "--bootstrap-server", cluster.bootstrap, "--election-type", "preferred",
                 "--all-topic-partitions", timeout=60)
    elected = []
    for line in p.stdout.splitlines():
        prefix = "Successfully completed leader election (PREFERRED) for partitions "
        if line.startswith(prefix):
            elected += [x.strip() for x in line[len(prefix):].split(",")]
    assert f"{topic}-{part}" in elected, p.stdout + p.stderr
    assert not [x for x in elected if x.startswith(f"{topic}-") and x != f"{topic}-{part}"], p.stdout
    wait_for(lambda: leaders(cluster.bootstrap, topic) == {0: 1, 1: 2, 2: 3}, timeout=30,
             what=f"{topic}: every partition led by its first replica")
    timing("preferred_election_tool_to_leader_back", (time.monotonic() - t0) * 1000)
    desc, raw = describe_topic(cluster.bootstrap, topic)
    for p_, r in desc["partitions"].items():
        assert r["Leader"] == SPREAD[p_][0] and r["Replicas"] == SPREAD[p_] and sorted(r["Isr"]) == [1, 2, 3], raw

    again = run_tool("kafka-leader-election.sh", "--bootstrap-server", cluster.bootstrap, "--election-type",
                     "preferred", "--topic", topic, "--partition", part, timeout=60)
    assert f"Valid replica already elected for partitions {topic}-{part}" in again.stdout, again.stdout + again.stderr


def test_reassign_partitions_under_load(cluster, tmp_path):
    topic = unique("reassign")
    create_topics(cluster.bootstrap, [(topic, [[1, 2]], {})])
    load = LoadProducer(cluster.bootstrap, [(topic, 0)]).start()
    try:
        load.wait_acked_after(200, timeout=60)
        plan = tmp_path / "reassign.json"
        plan.write_text(f'{{"version":1,"partitions":[{{"topic":"{topic}","partition":0,"replicas":[2,3]}}]}}')
        t0 = time.monotonic()
        p = run_tool("kafka-reassign-partitions.sh", "--bootstrap-server", cluster.bootstrap,
                     "--reassignment-json-file", plan, "--execute", timeout=60)
        assert f"Successfully started partition reassignment for {topic}-0" in p.stdout, p.stdout + p.stderr
        assert f'{{"topic":"{topic}","partition":0,"replicas":[1,2]' in p.stdout, p.stdout  # the rollback plan

        def completed():
            v = run_tool("kafka-reassign-partitions.sh", "--bootstrap-server", cluster.bootstrap,
                         "--reassignment-json-file", plan, "--verify", timeout=60)
            if f"Reassignment of partition {topic}-0 is completed." in v.stdout:
                return v.stdout
            assert f"Reassignment of partition {topic}-0 is still in progress." in v.stdout, v.stdout + v.stderr
            return None
        out = wait_for(completed, timeout=90, interval=1, what=f"--verify: reassignment of {topic}-0 completed")
        timing("reassign_execute_to_verified_complete", (time.monotonic() - t0) * 1000)
        print(out)
        # The producer keeps being acknowledged by the new replica set.
        load.wait_acked_after(load.next_seq, timeout=60)
    finally:
        load.stop()
    assert not load.errors, f"failed delivery reports during the reassignment: {load.errors[:10]}"

    desc, raw = describe_topic(cluster.bootstrap, topic)
    r = desc["partitions"][0]
    assert r["Replicas"] == [2, 3] and sorted(r["Isr"]) == [2, 3] and r["Leader"] == 2, raw
    verify_logs(cluster, load, "reassignment [1,2] -> [2,3] under load")
    size = wait_replicas_identical(cluster, topic, 0, [2, 3], timeout=60)
    print(f"{topic}[0]: replicas 2 and 3 hold the same {size} bytes of segments")
    # Node 1 no longer hosts the partition (Kafka renames the directory to <topic>-0.<id>-delete at once).
    wait_for(lambda: not (cluster.nodes[1].data_dir / f"{topic}-0").exists(), timeout=60,
             what=f"node 1 dropped its replica of {topic}-0")


class GroupReader:
    """A confluent-kafka consumer in a consumer group (subscribe, auto commit) polling in a thread; records
    {(partition, offset): value} and how often an offset came twice."""

    def __init__(self, bootstrap, topic, group):
        self.conf = rdkafka_conf(bootstrap, **{"group.id": group, "auto.offset.reset": "earliest",
                                               "session.timeout.ms": 10000})
        self.topic = topic
        self.records = {}
        self.redelivered = 0
        self.errors = []
        self.exc = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="group-reader", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        try:
            c = Consumer(self.conf)
            c.subscribe([self.topic])
            while not self._stop.is_set():
                for m in c.consume(num_messages=1000, timeout=0.2):
                    if m.error() is not None:
                        self.errors.append(m.error())
                        continue
                    key = (m.partition(), m.offset())
                    value = m.value().decode()
                    if key in self.records:
                        self.redelivered += 1
                        assert self.records[key] == value, f"{key}: read {self.records[key]!r}, then {value!r}"
                    self.records[key] = value
            c.close()
        except BaseException as e:  # noqa: BLE001 - re-raised by stop()
            self.exc = e

    def stop(self):
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "group consumer thread did not finish"
        if self.exc is not None:
            raise AssertionError(f"group consumer failed: {self.exc!r}")


def test_sigterm_under_load_only_retriable_errors(cluster):
    quorum_leader = cluster.quorum_leader()
    victim = next(i for i in cluster.ids if i != quorum_leader)
    rest = [i for i in cluster.ids if i != victim]
    topic = unique("sigterm-load")
    # Partition 0 led by the victim, 1 and 2 by the others; the victim replicates all three.
    assignment = [[victim, *rest], [rest[0], victim, rest[1]], [rest[1], rest[0], victim]]
    create_topics(cluster.bootstrap, [(topic, assignment, {"min.insync.replicas": "2"})])
    assert leaders(cluster.bootstrap, topic) == {0: victim, 1: rest[0], 2: rest[1]}

    reader = GroupReader(cluster.bootstrap, topic, unique("sigterm-group")).start()
    try:
        load = LoadProducer(cluster.bootstrap, [(topic, p) for p in range(3)]).start()
        try:
            load.wait_acked_after(100, timeout=60)
            wait_for(lambda: len(reader.records) >= 100, timeout=60, what="the group consumer reading")
            seq = load.next_seq
            t0 = time.monotonic()
            rc = cluster.kill(victim, signal.SIGTERM, timeout=30)
            timing("sigterm_under_load_to_exit", (time.monotonic() - t0) * 1000)
            assert rc == SIGTERM_EXIT[cluster.impl], f"node {victim} exited {rc} after SIGTERM"
            # Acknowledged on every partition while the victim is down (partition 0 by its new leader).
            load.wait_acked_after(seq, timeout=60)
            timing("sigterm_under_load_to_acked_everywhere", (time.monotonic() - t0) * 1000)
            assert leaders(cluster.bootstrap_of(*rest), topic)[0] in rest
            time.sleep(2)
            cluster.restart(victim)
            wait_full_isr(admin(cluster.bootstrap), topic, 3, timeout=90)
            load.wait_acked_after(load.next_seq, timeout=60)
        finally:
            load.stop()
        assert not load.errors, \
            f"{len(load.errors)} failed delivery reports (must all be retried): {load.errors[:10]}"

        expected = {(p, off): str(s) for (_, p), acked in load.acked.items() for s, off in acked}
        wait_for(lambda: all(k in reader.records for k in expected), timeout=60, interval=0.5,
                 what=f"the group consumer reading all {len(expected)} acknowledged records")
    finally:
        reader.stop()
    wrong = {k: (v, reader.records[k]) for k, v in expected.items() if reader.records[k] != v}
    assert not wrong, f"consumed values differ from the acknowledged ones: {list(wrong.items())[:10]}"
    unknown = {k: v for k, v in reader.records.items() if k not in expected}
    assert not unknown, f"the consumer read records that were never acknowledged: {list(unknown.items())[:10]}"
    print(f"{len(expected)} acknowledged records consumed; offsets redelivered after rebalances: "
          f"{reader.redelivered}; consumer errors: {[str(e) for e in reader.errors[:5]]}")
    verify_logs(cluster, load, "SIGTERM under load")
