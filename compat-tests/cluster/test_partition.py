"""Network partition: a partition leader cut off from its followers (and from the controllers on those nodes).

The nodes run in network namespaces (`@pytest.mark.cluster_config(netns=True)`, `Cluster(netns=True)`): node N
listens on 10.77.S.N, the test's clients connect from the root namespace through a bridge, and `cluster.cut(L)`
adds iptables DROP rules in L's namespace for every packet from or to the other two nodes (all ports: client,
inter-broker fetches and the controller quorum), while the clients still reach all three nodes.

test_leader_cut_off_from_followers: topic RF 3, one partition led by a node L that is not the quorum leader,
`min.insync.replicas=2`. Two confluent-kafka producers (acks=all, no idempotence, no retries, request.timeout.ms
3000, message.timeout.ms 6000, so every failure surfaces as a failed delivery report and no record is ever sent
twice) write numbered records in threads: one bootstrapped with all three nodes (a normal client), one bootstrapped
with L only (it keeps asking L for metadata, so it sticks to L for as long as L believes it leads). While L is cut
off: the records sent to it must fail (NOT_ENOUGH_REPLICAS or a timeout), the majority's controller fences L after
the session timeout and elects a new leader, a fresh producer through the majority gets acks=all acknowledged
there. The cut stays a few seconds longer (both leaders take records), then it heals and L must come back into the
ISR. Checked: every acknowledged record is in the partition exactly once at its acknowledged offset (read back from
offset 0 to the high watermark, values unique), every record L appended while isolated (its segment files decoded
before the heal, compared with the snapshot taken at the cut) is gone and was never acknowledged, and the three
replicas' segment files are byte-identical (L truncated its divergent tail and copied the new leader's records).
Timings are printed as `CLUSTER-TIMING name_ms=...`.

Kafka 4.1.2 (observed on this 2-core machine): see README.md ("Network partition").
"""

import struct
import threading
import time

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import NewTopic

from chelpers import (admin, rdkafka_conf, read_partition_log, replica_log_bytes, timing, topic_metadata, unique,
                      wait_for, wait_replicas_identical)
from cluster import netns_unavailable

pytestmark = [pytest.mark.destructive, pytest.mark.cluster_config(netns=True)]

# No idempotence and no retries: a record is sent in exactly one Produce request, so it is in the log at most
# once, and a failure is reported instead of being retried away. request.timeout.ms is also the broker-side acks
# timeout of the Produce request.
PRODUCER_CONF = {"acks": "all", "enable.idempotence": False, "retries": 0, "request.timeout.ms": 3000,
                 "message.timeout.ms": 6000, "linger.ms": 5}

# What acks=all to a leader that cannot reach its followers may answer (or what the client reports when it never
# answers): refused before the append, refused after it, the broker's acks timeout, the client's timeouts.
ISOLATED_ERRORS = {KafkaError.NOT_ENOUGH_REPLICAS, KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                   KafkaError.REQUEST_TIMED_OUT, KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT}

CUT_EXTRA = 4.0  # seconds the cut lasts after the first acknowledgement by the new leader


@pytest.fixture
def netns_cluster(request):
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    return request.getfixturevalue("cluster")


class NumberedProducer:
    """A confluent-kafka producer thread writing f"{tag}-{seq}" to topic[0] every `interval` seconds.

    For every value: the time it was produced; delivery reports are served in the thread and recorded with the time
    they arrived: `acked` {value: (offset, t)}, `failed` {value: (KafkaError, t)}.
    """

    def __init__(self, tag, bootstrap, topic, interval=0.05):
        self.tag, self.topic, self.interval = tag, topic, interval
        self.conf = rdkafka_conf(bootstrap, **PRODUCER_CONF)
        self.sent, self.acked, self.failed = {}, {}, {}
        self.next_seq = 0
        self.unflushed = None
        self.exc = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"producer-{tag}", daemon=True)

    def _report(self, err, msg):
        v = msg.value().decode()
        if err is None:
            self.acked[v] = (msg.offset(), time.monotonic())
        else:
            self.failed[v] = (err, time.monotonic())

    def _run(self):
        try:
            p = Producer(self.conf)
            while not self._stop.is_set():
                v = f"{self.tag}-{self.next_seq}"
                t = time.monotonic()  # taken before the record can be sent: sent[v] <= when it left the client
                try:
                    p.produce(self.topic, value=v.encode(), partition=0, on_delivery=self._report)
                except BufferError:
                    p.poll(0.1)
                    continue
                self.sent[v] = t
                self.next_seq += 1
                p.poll(0)
                time.sleep(self.interval)
            self.unflushed = p.flush(30)
        except BaseException as e:  # noqa: BLE001 - re-raised by stop()
            self.exc = e

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), f"producer {self.tag} did not finish"
        if self.exc is not None:
            raise AssertionError(f"producer {self.tag} failed: {self.exc!r}")
        assert self.unflushed == 0, f"producer {self.tag}: {self.unflushed} record(s) without a delivery report"

    def wait_acked(self, produced_after, timeout):
        """Wait for the acknowledgement of a record produced at or after `produced_after`; returns its ack time."""
        deadline = time.monotonic() + timeout
        while True:
            if self.exc is not None:
                raise AssertionError(f"producer {self.tag} failed: {self.exc!r}")
            acks = [t for v, (_, t) in list(self.acked.items()) if self.sent.get(v, 0) >= produced_after]
            if acks:
                return min(acks)
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"producer {self.tag}: no record produced after t={produced_after:.1f} acknowledged within "
                    f"{timeout}s ({len(self.acked)} acked, {len(self.failed)} failed, last failures "
                    f"{[(v, e.name()) for v, (e, _) in list(self.failed.items())[-3:]]})")
            time.sleep(0.05)

    def produced_between(self, t0, t1):
        return [v for v, t in list(self.sent.items()) if t0 <= t < t1]


def decode_records(blob):
    """Uncompressed record batches (magic 2) of a segment file: [(offset, partition leader epoch, value str)].
    A trailing incomplete batch (being written) is ignored."""

    def varint(b, i):
        shift = result = 0
        while True:
            byte = b[i]
            i += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return (result >> 1) ^ -(result & 1), i

    out, pos = [], 0
    while pos + 12 <= len(blob):
        base_offset, length = struct.unpack_from(">qi", blob, pos)
        end = pos + 12 + length
        if length <= 0 or end > len(blob):
            break
        epoch, magic = struct.unpack_from(">ib", blob, pos + 12)
        assert magic == 2, f"record batch at byte {pos}: magic {magic}"
        attributes, = struct.unpack_from(">h", blob, pos + 21)
        assert attributes & 0x07 == 0, f"record batch at byte {pos}: compressed (attributes {attributes:#x})"
        count, = struct.unpack_from(">i", blob, pos + 57)
        i = pos + 61
        for _ in range(count):
            _, i = varint(blob, i)  # record length
            i += 1  # attributes
            _, i = varint(blob, i)  # timestamp delta
            delta, i = varint(blob, i)
            klen, i = varint(blob, i)
            i += max(klen, 0)
            vlen, i = varint(blob, i)
            value = blob[i:i + vlen].decode() if vlen >= 0 else None
            i += max(vlen, 0)
            headers, i = varint(blob, i)
            for _ in range(headers):
                hk, i = varint(blob, i)
                i += hk
                hv, i = varint(blob, i)
                i += max(hv, 0)
            if not attributes & 0x20:  # not a control batch
                out.append((base_offset + delta, epoch, value))
        pos = end
    return out


def utc():
    """Wall clock (UTC, as gregor logs it) to find the moment in the node logs."""
    t = time.time()
    return time.strftime("%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def leader_view(bootstrap, topic):
    """(leader, sorted isr) of topic[0] in the Metadata of a fresh client bootstrapped with `bootstrap` only (its
    first Metadata request goes to that node), or None."""
    md = topic_metadata(admin(bootstrap), topic, timeout=3)
    if not md:
        return None
    leader, _, isr = md[0]
    return leader, sorted(isr)


@pytest.mark.timeout(300)
def test_leader_cut_off_from_followers(netns_cluster):
    cluster = netns_cluster
    topic = unique("cut-leader")
    quorum_before = cluster.quorum_status()
    quorum_leader = quorum_before["LeaderId"]
    old = next(i for i in cluster.ids if i != quorum_leader)
    majority = [i for i in cluster.ids if i != old]
    a = admin(cluster.bootstrap)
    fut = a.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[[old] + majority],
                                    config={"min.insync.replicas": "2"})], request_timeout=30, operation_timeout=30)
    fut[topic].result(40)
    wait_for(lambda: leader_view(cluster.bootstrap, topic) == (old, cluster.ids), timeout=30,
             what=f"{topic}[0] led by {old} with Isr {cluster.ids}")
    print(f"{topic}[0] led by node {old} ({cluster.nodes[old].host}), quorum leader {quorum_leader}; "
          f"{cluster}", flush=True)

    every = NumberedProducer("all", cluster.bootstrap, topic).start()  # bootstrapped with every node
    pinned = NumberedProducer("pinned", cluster.bootstrap_of(old), topic).start()  # with the old leader only
    producers = (every, pinned)
    probes = {"acked": {}, "failed": {}}
    healed = False
    try:
        t_warm = time.monotonic()
        for p in producers:
            p.wait_acked(t_warm, timeout=30)

        # ---- cut the leader off from both followers (the clients still reach it)
        before = replica_log_bytes(cluster, old, topic, 0) or b""
        cluster.cut(old)
        t_cut = time.monotonic()  # every rule in effect: a record produced from now on cannot reach a follower
        at_cut = decode_records(replica_log_bytes(cluster, old, topic, 0) or b"")
        print(f"cut at {utc()}: iptables in node {old}'s namespace\n{cluster.net.rules(old)}", flush=True)
        assert not cluster.reachable(old, majority[0]) and not cluster.reachable(majority[0], old), \
            f"node {old} and node {majority[0]} still reach each other after the cut"
        assert cluster.reachable(majority[0], majority[1]), "the majority's nodes do not reach each other"

        # The majority's controller fences the old leader after the session timeout and elects a new leader.
        last_old_seen = t_cut
        deadline = t_cut + cluster.session_timeout_ms / 1000 + 40
        new = None
        while new is None:
            view = None
            try:
                view = leader_view(cluster.bootstrap_of(*majority), topic)
            except Exception as e:  # noqa: BLE001 - retried until the deadline
                view = repr(e)
            if isinstance(view, tuple) and view[0] in majority:
                new = view[0]
                break
            if isinstance(view, tuple) and view[0] == old:
                last_old_seen = time.monotonic()
            assert time.monotonic() < deadline, \
                f"no new leader of {topic}[0] in the majority's Metadata {deadline - t_cut:.0f}s after the cut " \
                f"(last: {view})"
            time.sleep(0.2)
        t_new = time.monotonic()
        print(f"{t_new - t_cut:.1f}s after the cut the majority names leader {new}, Isr {view[1]} "
              f"(old leader named until {last_old_seen - t_cut:.1f}s)", flush=True)
        assert old not in view[1], f"the majority's Metadata still lists the isolated node {old} in the ISR: {view}"
        timing("partition_cut_to_new_leader", (t_new - t_cut) * 1000)

        # A fresh producer through the majority: acks=all is acknowledged by the new leader (ISR = the majority).
        t_probe_ack, attempt = None, 0
        while t_probe_ack is None:
            assert time.monotonic() < t_new + 45, \
                f"no acks=all record acknowledged through {majority} within 45 s of the new leader; probes " \
                f"{ {v: e.name() for v, e in probes['failed'].items()} }"
            v = f"probe-{attempt}"
            attempt += 1
            reports = []
            pr = Producer(rdkafka_conf(cluster.bootstrap_of(*majority), **PRODUCER_CONF))
            pr.produce(topic, value=v.encode(), partition=0, on_delivery=lambda e, m: reports.append((e, m)))
            pr.flush(15)
            assert reports, f"{v}: no delivery report within 15 s"
            err, msg = reports[0]
            if err is None:
                probes["acked"][v] = msg.offset()
                t_probe_ack = time.monotonic()
            else:
                probes["failed"][v] = err
                time.sleep(0.3)
        timing("partition_cut_to_first_ack_new_leader", (t_probe_ack - t_cut) * 1000)
        print(f"{t_probe_ack - t_cut:.1f}s after the cut: {v} acknowledged at offset {probes['acked'][v]} "
              f"(attempt {attempt})", flush=True)

        # Both leaders take records for a while; then heal.
        time.sleep(max(0.0, t_probe_ack + CUT_EXTRA - time.monotonic()))
        old_view = None
        try:
            old_view = leader_view(cluster.bootstrap_of(old), topic)
        except Exception as e:  # noqa: BLE001 - informational
            old_view = repr(e)
        isolated_log = decode_records(replica_log_bytes(cluster, old, topic, 0) or b"")
        t_heal = time.monotonic()
        cluster.heal(old)
        healed = True
        timing("partition_cut_duration", (t_heal - t_cut) * 1000)
        appended = [r for r in isolated_log if r[0] > (at_cut[-1][0] if at_cut else -1)]
        print(f"healed at {utc()} after {t_heal - t_cut:.1f}s; the old leader's own Metadata during the cut: "
              f"(leader, Isr) = {old_view}; it appended {len(appended)} record(s) while isolated (offsets "
              f"{appended[0][0] if appended else None}..{appended[-1][0] if appended else None}, leader epoch "
              f"{sorted({r[1] for r in appended})}), log {len(before)} bytes before the cut", flush=True)
        for p in producers:
            cut_acks = [t for v, (_, t) in list(p.acked.items()) if t_cut <= p.sent.get(v, 0) < t_heal]
            if cut_acks:
                timing(f"partition_cut_to_first_ack_{p.tag}_producer", (min(cut_acks) - t_cut) * 1000)
            print(f"producer {p.tag}: {len(p.produced_between(t_cut, t_heal))} records produced during the cut, "
                  f"{len(cut_acks)} of them acknowledged"
                  + (f", the first {min(cut_acks) - t_cut:.1f}s after the cut" if cut_acks else ""), flush=True)

        # ---- the old leader rejoins: the majority's and its own Metadata show the new leader with a full ISR
        want = (new, cluster.ids)
        wait_for(lambda: leader_view(cluster.bootstrap_of(*majority), topic) == want
                 and leader_view(cluster.bootstrap_of(old), topic) == want,
                 timeout=90, interval=0.3, what=f"{topic}[0] led by {new} with Isr {cluster.ids} in the Metadata of "
                                                f"the majority and of node {old}")
        timing("partition_heal_to_isr_full", (time.monotonic() - t_heal) * 1000)
        # Both producers get records acknowledged again (the pinned one once the old leader tells it it no longer
        # leads).
        for p in producers:
            t_ack = p.wait_acked(time.monotonic(), timeout=60)
            timing(f"partition_heal_to_ack_{p.tag}_producer", (t_ack - t_heal) * 1000)
        # Informational: whether the isolated voter's return disturbed the metadata quorum (a voter that campaigned
        # while cut off and comes back with a higher epoch can depose the leader unless elections use pre-votes).
        quorum_after = cluster.quorum_status()
        print(f"metadata quorum: leader {quorum_before['LeaderId']} epoch {quorum_before['LeaderEpoch']} before the "
              f"cut, leader {quorum_after['LeaderId']} epoch {quorum_after['LeaderEpoch']} after the heal", flush=True)
    finally:
        if not healed:
            cluster.heal()
        for p in producers:
            p._stop.set()
        for p in producers:
            p.stop()

    # ---- records sent to the isolated leader failed: NOT_ENOUGH_REPLICAS or a timeout.
    # Until min(3 s after the cut, the last time the majority still named the old leader) the old leader was every
    # client's leader (the controller cannot fence it before session timeout - heartbeat interval = 4 s), so what was
    # produced then went to it. (Whether it acknowledged anything is decided by the log below: an acknowledgement
    # by the isolated leader names an offset of its divergent tail, which does not survive.)
    window_end = min(t_cut + 3.0, last_old_seen if last_old_seen > t_cut else t_new - 1.0)
    isolated = [(p, v) for p in producers for v in p.produced_between(t_cut, window_end)]
    refused = [(p, v) for p, v in isolated if v in p.failed]
    codes = {}
    for p, v in refused:
        name = p.failed[v][0].name()
        codes[name] = codes.get(name, 0) + 1
    assert refused, f"none of the {len(isolated)} records produced in the first {window_end - t_cut:.1f}s of the " \
                    f"cut (new leader named {t_new - t_cut:.1f}s after it) failed"
    assert all(p.failed[v][0].code() in ISOLATED_ERRORS for p, v in refused), \
        f"acks=all to the isolated leader failed with unexpected errors: {codes}"
    print(f"{len(isolated)} records produced in the first {window_end - t_cut:.1f}s of the cut (sent to the isolated "
          f"leader): {len(refused)} failed {codes}, {len(isolated) - len(refused)} acknowledged", flush=True)

    # ---- the replicas converge byte for byte (checked against the consumer's view below)
    size = wait_replicas_identical(cluster, topic, 0, cluster.ids, timeout=60)
    final = decode_records(replica_log_bytes(cluster, old, topic, 0))

    # ---- read back: every acknowledged record exactly once at its acknowledged offset
    log, high = read_partition_log(cluster.bootstrap, topic, 0)
    offsets = [o for o, _ in log]
    assert offsets == list(range(high)), f"offsets are not exactly 0..{high - 1}"
    values = [v for _, v in log]
    produced = {v for p in producers for v in p.sent} | set(probes["acked"]) | set(probes["failed"])
    assert set(values) <= produced, f"records nobody produced: {sorted(set(values) - produced)[:10]}"
    acked = {v: off for p in producers for v, (off, _) in p.acked.items()}
    acked.update(probes["acked"])
    by_offset = dict(log)
    lost = [(v, off, by_offset.get(off)) for v, off in acked.items() if by_offset.get(off) != v]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged records missing or moved (value, acked offset, " \
                     f"found there): {sorted(lost, key=lambda x: x[1])[:10]}"
    count = {}
    for v in values:
        count[v] = count.get(v, 0) + 1
    twice = sorted(v for v, n in count.items() if n > 1)
    assert not [v for v in twice if v in acked], \
        f"acknowledged records in the log more than once: {[(v, count[v]) for v in twice if v in acked][:10]}"
    failed = {v for p in producers for v in p.failed} | set(probes["failed"])
    print(f"log: {high} records; {len(acked)} acknowledged, each once at its offset; {len(failed)} failed, "
          f"{len(failed & set(values))} of them in the log anyway; records in the log twice: {twice[:10]}", flush=True)

    # ---- what the old leader appended while isolated is gone from every replica
    assert [(o, v) for o, _, v in final] == log, \
        f"the replicas' segment files ({len(final)} records) do not hold what the consumer read ({high} records)"
    # The old leader's log just before the heal, record by record (offset, leader epoch, value), against the final
    # log: its divergent suffix -- everything it appended while isolated, and what it had appended before the cut but
    # not replicated -- is gone. A value from it may be in the final log elsewhere: the client sent the record again
    # after the old leader answered NOT_LEADER_OR_FOLLOWER once it learned of the new leader (librdkafka retries that
    # error without counting a retry: the record was "not persisted").
    final_set = set(final)
    survived = [r for r in appended if r in final_set]
    assert not survived, f"records the old leader appended while isolated are still in the log: {survived[:10]}"
    truncated = [r for r in isolated_log if r not in final_set]
    kept = len(isolated_log) - len(truncated)
    assert isolated_log[:kept] == final[:kept] and truncated == isolated_log[kept:], \
        f"the old leader's log before the heal is not the final log's prefix plus a divergent suffix: first " \
        f"difference at {next((a for a, b in zip(isolated_log, final) if a != b), None)}"
    resent = [v for _, _, v in truncated if v in count]
    print(f"replicas 1..3 hold the same {size} bytes of segments; the old leader's divergent tail (offsets "
          f"{truncated[0][0] if truncated else None}..{truncated[-1][0] if truncated else None}, "
          f"{len(truncated)} record(s), {len(appended)} appended while isolated, leader epoch "
          f"{sorted({e for _, e, _ in truncated})}) was truncated; those offsets now hold leader epoch(s) "
          f"{sorted({e for o, e, _ in final if truncated and o >= truncated[0][0]})}; {len(resent)} of its records "
          f"were sent again by the client and are in the final log again", flush=True)
