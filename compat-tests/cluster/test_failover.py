"""Node failures: kill -9 of the metadata-quorum leader, kill -9 of another broker, SIGTERM (controlled shutdown).

Every test restores the node it stopped, and checks that the cluster is whole again, so the tests can share one
cluster (`broker.session.timeout.ms=6000`, `broker.heartbeat.interval.ms=2000`). Timings are printed as
`CLUSTER-TIMING name_ms=...`.

Kafka 4.1.2 (observed on this 2-core machine):
  * kill -9 of the quorum leader: a CreateTopics (confluent-kafka AdminClient, through the surviving brokers, RF 2)
    sent right after the kill succeeds after ~2 s (the broker forwards it to the new active controller);
    `describe --status` through the surviving controllers names a new leader; `kafka-topics.sh --create` works; the
    restarted node rejoins as a Follower of the new leader and catches up.
  * kill -9 of a broker that is not the quorum leader: it leaves the Metadata and DescribeCluster broker lists after
    ~5 s (session timeout 6 s counted from its last heartbeat, which was 0-2 s before the kill);
    `kafka-cluster.sh list-endpoints --include-fenced-brokers` shows it `fenced`; its partitions get other leaders
    and it leaves every ISR; after the restart it is listed again and rejoins the ISRs.
  * SIGTERM: controlled shutdown (the broker gives up its leaderships, then the controller lets it go) and exit after
    ~2.5 s. The JVM's exit status for a SIGTERM-initiated shutdown is 143 (128 + 15), not 0; gregor's contract is
    exit status 0. The broker is gone from Metadata when the process exits (no session-timeout wait), its partition
    already led by another replica; the others keep serving produce and fetch.
"""

import signal
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from cluster import parse_quorum_replication
from chelpers import (admin, broker_ids_describe_cluster, broker_ids_metadata, describe_topic, list_endpoints,
                      rdkafka_conf, run_tool, timing, topic_metadata, unique, wait_for, wait_full_isr)

pytestmark = pytest.mark.destructive

# Exit status after SIGTERM: gregor's contract says 0; Kafka's JVM reports 128+SIGTERM.
SIGTERM_EXIT = {"gregor": 0, "kafka": 143}


def create_topic(bootstrap, topic, partitions=None, rf=None, assignment=None, timeout=30):
    a = admin(bootstrap)
    if assignment is not None:
        nt = NewTopic(topic, num_partitions=len(assignment), replica_assignment=assignment)
    else:
        nt = NewTopic(topic, num_partitions=partitions, replication_factor=rf)
    a.create_topics([nt], request_timeout=timeout, operation_timeout=timeout)[topic].result(timeout + 10)
    return a


def wait_whole(cluster, topic, rf, timeout=45):
    """Every node lists all 3 brokers (cluster.wait_ready) and topic's partitions are back to a full ISR."""
    cluster.wait_ready(timeout=cluster.start_timeout)
    wait_full_isr(admin(cluster.bootstrap), topic, rf, timeout=timeout)


def produce(bootstrap, topic, partitions, prefix, n):
    p = Producer(rdkafka_conf(bootstrap, acks="all", **{"enable.idempotence": True, "message.timeout.ms": 30000}))
    errors = []
    for part in partitions:
        for i in range(n):
            p.produce(topic, value=f"{prefix}-{part}-{i}", partition=part,
                      on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(40) == 0 and not errors, errors


def read_partition(bootstrap, topic, part, n, timeout=30):
    c = Consumer(rdkafka_conf(bootstrap, **{"group.id": unique("assign"), "enable.auto.commit": False}))
    try:
        c.assign([TopicPartition(topic, part, OFFSET_BEGINNING)])
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            assert time.monotonic() < deadline, f"{topic}[{part}]: read {len(out)}/{n}"
            for m in c.consume(num_messages=n - len(out), timeout=0.5):
                assert m.error() is None, m.error()
                out.append((m.offset(), m.value().decode()))
        assert not [m for m in c.consume(num_messages=5, timeout=0.5) if m.error() is None]
        return out
    finally:
        c.close()


def test_quorum_leader_kill9(cluster):
    before = unique("before-kill")
    create_topic(cluster.bootstrap, before, partitions=3, rf=3)
    wait_full_isr(admin(cluster.bootstrap), before, 3)

    old = cluster.quorum_leader()
    rest = [i for i in cluster.ids if i != old]
    a = admin(cluster.bootstrap_of(*rest))
    t0 = time.monotonic()
    cluster.kill(old, signal.SIGKILL)

    # The first CreateTopics that succeeds after the kill: each attempt a new topic (RF 2) through a fresh
    # AdminClient bootstrapped with the survivors. Fresh, because librdkafka sends CreateTopics to the Metadata
    # "controller", which KRaft brokers pick at random among the unfenced brokers: until the dead node is fenced it
    # may be named, and a long-lived client would keep waiting for it.
    attempts, errors, created = 0, [], None
    while created is None:
        assert time.monotonic() - t0 < 60, f"no CreateTopics succeeded within 60 s of the kill: {errors[-3:]}"
        attempts += 1
        name = unique("after-kill")
        fresh = admin(cluster.bootstrap_of(*rest))
        try:
            fresh.create_topics([NewTopic(name, num_partitions=1, replication_factor=2)], request_timeout=3,
                                operation_timeout=3)[name].result(timeout=6)
            created = name
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            errors.append(f"{time.monotonic() - t0:.1f}s: {e!r}")
            time.sleep(0.1)
    create_ms = (time.monotonic() - t0) * 1000
    timing("quorum_leader_kill_to_create_topics", create_ms)
    print(f"killed quorum leader {old}; first CreateTopics ok after {create_ms:.0f} ms, {attempts} attempt(s); "
          f"errors before: {errors}")

    new = cluster.wait_quorum_leader(exclude=[old], timeout=30)
    timing("quorum_leader_kill_to_new_leader_seen_by_tool", (time.monotonic() - t0) * 1000)
    assert new in rest
    status = cluster.quorum_status()
    assert status["LeaderId"] == new and sorted(v["id"] for v in status["CurrentVoters"]) == [1, 2, 3], status
    hw_during_outage = status["HighWatermark"]

    cli_topic = unique("cli-after-kill")
    p = run_tool("kafka-topics.sh", "--bootstrap-server", cluster.bootstrap_of(*rest), "--create", "--topic",
                 cli_topic, "--partitions", 3, "--replication-factor", 2, timeout=90)
    assert f"Created topic {cli_topic}." in p.stdout, p.stdout + p.stderr
    listed = run_tool("kafka-topics.sh", "--bootstrap-server", cluster.bootstrap_of(*rest), "--list").stdout.split()
    assert {before, created, cli_topic} <= set(listed), listed
    # Once the dead node is fenced, every partition of the new topic is led by a live broker.
    wait_for(lambda: (md := topic_metadata(a, cli_topic)) and len(md) == 3 and
             all(l in rest for l, _, _ in md.values()), timeout=cluster.session_timeout_ms / 1000 + 15,
             what=f"{cli_topic}: every partition led by a live broker")

    # The old leader comes back as a follower and catches up with what was committed meanwhile.
    cluster.restart(old)

    def rejoined():
        rows = parse_quorum_replication(cluster.describe_quorum("--replication").stdout)
        row = next((r for r in rows if int(r["NodeId"]) == old), None)
        leader_row = rows[0] if rows else None
        if row and row["Status"] == "Follower" and leader_row["Status"] == "Leader" and \
                int(leader_row["NodeId"]) != old and int(row["LogEndOffset"]) >= hw_during_outage:
            return rows
        return None
    rows = wait_for(rejoined, timeout=60, interval=1, what=f"node {old} listed as a caught-up Follower")
    print("after restart:", rows)
    wait_whole(cluster, before, 3)
    desc, raw = describe_topic(cluster.bootstrap, before)
    assert desc["header"]["PartitionCount"] == "3", raw


def test_broker_kill9_fenced_after_session_timeout(cluster):
    topic = unique("fence")
    create_topic(cluster.bootstrap, topic, partitions=6, rf=3)
    wait_full_isr(admin(cluster.bootstrap), topic, 3)
    leader = cluster.quorum_leader()
    victim = next(i for i in reversed(cluster.ids) if i != leader)
    rest = [i for i in cluster.ids if i != victim]
    led_before = [p for p, (l, _, _) in topic_metadata(admin(cluster.bootstrap), topic).items() if l == victim]
    assert led_before, "the victim leads no partition of a 6-partition RF-3 topic"

    session = cluster.session_timeout_ms
    t0 = time.monotonic()
    cluster.kill(victim, signal.SIGKILL)
    # Polled with fresh clients bootstrapped with the survivors only: what a client sees now. Until the victim is
    # fenced, a survivor may still name it as the "controller" (a random live broker), so DescribeCluster may time
    # out meanwhile; such errors are retried.
    gone_md = gone_dc = None
    while gone_md is None or gone_dc is None:
        elapsed = time.monotonic() - t0
        assert elapsed < session / 1000 + 10, \
            f"broker {victim} still listed {elapsed:.1f}s after kill -9 (session timeout {session} ms)"
        if gone_md is None:
            raw_md = [cluster.node_metadata(i)["brokers"] for i in rest]
            if all(victim not in b for b in raw_md) and \
                    victim not in broker_ids_metadata(admin(cluster.bootstrap_of(*rest)), timeout=2):
                gone_md = time.monotonic() - t0
        if gone_dc is None:
            try:
                if victim not in broker_ids_describe_cluster(admin(cluster.bootstrap_of(*rest)), timeout=2):
                    gone_dc = time.monotonic() - t0
            except KafkaException:
                pass
        time.sleep(0.1)
    timing("broker_kill_to_fenced_metadata", gone_md * 1000)
    timing("broker_kill_to_fenced_describe_cluster", gone_dc * 1000)
    # Not fenced before its session expired: its last heartbeat was at most one interval before the kill.
    lower = (session - cluster.heartbeat_interval_ms - 500) / 1000
    assert min(gone_md, gone_dc) >= lower, \
        f"broker {victim} left the broker list after {min(gone_md, gone_dc):.1f}s, before its session could expire"
    a = admin(cluster.bootstrap_of(*rest))
    assert broker_ids_metadata(a) == {i: f"127.0.0.1:{cluster.nodes[i].client_port}" for i in rest}
    assert broker_ids_describe_cluster(a) == {i: f"127.0.0.1:{cluster.nodes[i].client_port}" for i in rest}

    rows, raw = list_endpoints(cluster.bootstrap_of(*rest), include_fenced=True)
    states = {int(r["ID"]): r["STATE"] for r in rows}
    assert states == {**{i: "unfenced" for i in rest}, victim: "fenced"}, raw

    def moved():
        md = topic_metadata(a, topic)
        if md and all(l in rest and victim not in isr for l, _, isr in md.values()):
            return md
        return None
    md = wait_for(moved, timeout=10, what=f"leaders and ISRs without broker {victim}")
    assert all(len(r) == 3 for _, r, _ in md.values()), md  # replicas stay assigned

    t1 = time.monotonic()
    cluster.restart(victim)
    timing("broker_restart_to_listed", (time.monotonic() - t1) * 1000)
    assert broker_ids_describe_cluster(admin(cluster.bootstrap)) == {
        i: f"127.0.0.1:{cluster.nodes[i].client_port}" for i in cluster.ids}
    rows, raw = list_endpoints(cluster.bootstrap, include_fenced=True)
    assert {int(r["ID"]): r["STATE"] for r in rows} == {i: "unfenced" for i in cluster.ids}, raw
    wait_whole(cluster, topic, 3)


def test_sigterm_controlled_shutdown(cluster):
    leader = cluster.quorum_leader()
    victim = next(i for i in cluster.ids if i != leader)
    rest = [i for i in cluster.ids if i != victim]
    topic = unique("ctrl-shutdown")
    # Partition 0 is led by the victim; 1 and 2 by the others.
    assignment = [[victim, *rest], [rest[0], victim, rest[1]], [rest[1], rest[0], victim]]
    create_topic(cluster.bootstrap, topic, assignment=assignment)
    wait_full_isr(admin(cluster.bootstrap), topic, 3)
    assert {p: l for p, (l, _, _) in topic_metadata(admin(cluster.bootstrap), topic).items()} == \
        {0: victim, 1: rest[0], 2: rest[1]}
    produce(cluster.bootstrap, topic, range(3), "before", 10)

    t0 = time.monotonic()
    rc = cluster.kill(victim, signal.SIGTERM, timeout=30)
    exit_ms = (time.monotonic() - t0) * 1000
    timing("sigterm_to_exit", exit_ms)
    assert rc == SIGTERM_EXIT[cluster.impl], f"node {victim} exited {rc} after SIGTERM"

    # Controlled: gone from the broker lists right away, partition 0 already led by another replica and the victim
    # out of every ISR. Fencing by session timeout could not happen before session - heartbeat interval (4 s) after
    # the exit (the last heartbeat was sent while shutting down), so this bound tells the two apart.
    t_exit = time.monotonic()
    bound = (cluster.session_timeout_ms - cluster.heartbeat_interval_ms - 500) / 1000

    def gone():
        raw_md = [cluster.node_metadata(i)["brokers"] for i in rest]
        fresh = admin(cluster.bootstrap_of(*rest))
        md = topic_metadata(fresh, topic, timeout=2)
        if any(victim in b for b in raw_md) or victim in broker_ids_metadata(fresh, timeout=2) or not md:
            return None
        if victim in broker_ids_describe_cluster(fresh, timeout=2):
            return None
        if all(l in rest and victim not in isr for l, _, isr in md.values()):
            return md
        return None
    wait_for(gone, timeout=bound, interval=0.1, what=f"broker {victim} gone and its leadership moved after exit")
    timing("sigterm_exit_to_unlisted", (time.monotonic() - t_exit) * 1000)

    # The others keep serving produce and fetch on every partition.
    produce(cluster.bootstrap_of(*rest), topic, range(3), "during", 10)
    for part in range(3):
        got = read_partition(cluster.bootstrap_of(*rest), topic, part, 20)
        assert got == [(i, f"before-{part}-{i}") for i in range(10)] + \
            [(10 + i, f"during-{part}-{i}") for i in range(10)], (part, got)

    cluster.restart(victim)
    wait_whole(cluster, topic, 3)
