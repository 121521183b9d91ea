"""Helpers for the cluster tests: clients, bounded polling, CLI output parsers."""

import os
import re
import time
import uuid

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from cluster import run_tool, selected_impl  # noqa: F401  (run_tool re-exported for the tests)

TIMINGS = []


def timing(name, value, unit="ms"):
    line = f"CLUSTER-TIMING {name}_{unit}={value:.0f}" if isinstance(value, float) else \
        f"CLUSTER-TIMING {name}_{unit}={value}"
    line += f" impl={selected_impl()}"
    print(line, flush=True)
    TIMINGS.append(line)
    path = os.environ.get("CLUSTER_TIMINGS_FILE")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def unique(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def rdkafka_conf(bootstrap, **extra):
    conf = {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000, "log_level": 3}
    conf.update(extra)
    return conf


def admin(bootstrap, **extra):
    return AdminClient(rdkafka_conf(bootstrap, **extra))


def wait_for(predicate, timeout=15.0, interval=0.2, what="condition"):
    """Poll predicate() until it returns a truthy value; return it, else raise AssertionError with the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
        except (KafkaException, OSError, ValueError) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def parse_topic_describe(text):
    """`kafka-topics.sh --describe` output -> {topic: {"header": {...}, "partitions": {p: {...}}}}.
    Partition rows: Leader (int or None for 'none'), Replicas/Isr/Elr/LastKnownElr (lists of int)."""
    out = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = {}
        for piece in line.split("\t"):
            if ":" in piece:
                k, _, v = piece.partition(":")
                fields[k.strip()] = v.strip()
        if "Partition" in fields:
            topic = fields["Topic"]
            p = int(fields["Partition"])

            def ids(v):
                return [int(x) for x in v.split(",") if x.strip()] if v else []

            row = {
                "Leader": None if fields.get("Leader") in ("none", "-1") else int(fields["Leader"]),
                "Replicas": ids(fields.get("Replicas", "")),
                "Isr": ids(fields.get("Isr", "")),
                "Elr": ids(fields.get("Elr", "")),
                "LastKnownElr": ids(fields.get("LastKnownElr", "")),
                "raw": line,
            }
            out.setdefault(topic, {"header": {}, "partitions": {}})["partitions"][p] = row
        elif "PartitionCount" in fields:
            out.setdefault(fields["Topic"], {"header": {}, "partitions": {}})["header"] = fields
    return out


def describe_topic(bootstrap, topic, timeout=60):
    p = run_tool("kafka-topics.sh", "--bootstrap-server", bootstrap, "--describe", "--topic", topic, timeout=timeout)
    parsed = parse_topic_describe(p.stdout)
    assert topic in parsed, f"topic {topic} not in --describe output:\n{p.stdout}\n{p.stderr}"
    return parsed[topic], p.stdout


def partition_leaders(adm, topic, timeout=10):
    """{partition: leader} from a Metadata request (confluent-kafka), None when the topic is unknown or a
    partition has no leader / an error."""
    md = adm.list_topics(topic=topic, timeout=timeout)
    t = md.topics.get(topic)
    if t is None or t.error is not None or not t.partitions:
        return None
    out = {}
    for p, pm in t.partitions.items():
        if pm.error is not None or pm.leader < 0:
            return None
        out[p] = pm.leader
    return out


def topic_metadata(adm, topic, timeout=10):
    """{partition: (leader, replicas, isrs)} from Metadata, or None."""
    md = adm.list_topics(topic=topic, timeout=timeout)
    t = md.topics.get(topic)
    if t is None or t.error is not None or not t.partitions:
        return None
    return {p: (pm.leader, list(pm.replicas), list(pm.isrs)) for p, pm in t.partitions.items()}


def broker_ids_metadata(adm, timeout=10):
    """{id: "host:port"} from a Metadata request (confluent-kafka list_topics)."""
    md = adm.list_topics(timeout=timeout)
    return {b.id: f"{b.host}:{b.port}" for b in md.brokers.values()}


def broker_ids_describe_cluster(adm, timeout=10):
    """{id: "host:port"} from DescribeCluster (confluent-kafka describe_cluster)."""
    d = adm.describe_cluster(request_timeout=timeout).result(timeout=timeout + 5)
    return {n.id: f"{n.host}:{n.port}" for n in d.nodes}


def list_endpoints(bootstrap, include_fenced=True, timeout=60):
    """`kafka-cluster.sh list-endpoints --bootstrap-server B [--include-fenced-brokers]` rows as dicts."""
    args = ["list-endpoints", "--bootstrap-server", bootstrap]
    if include_fenced:
        args.append("--include-fenced-brokers")
    p = run_tool("kafka-cluster.sh", *args, timeout=timeout)
    return parse_table(p.stdout), p.stdout


def parse_table(text):
    lines = [l for l in text.splitlines() if l.strip()]
    if not lines:
        return []
    header = lines[0].split()
    rows = []
    for l in lines[1:]:
        cols = l.split()
        assert len(cols) == len(header), f"row {l!r} does not match header {header}"
        rows.append(dict(zip(header, cols)))
    return rows


def create_topic_cli(bootstrap, topic, partitions=None, rf=None, assignment=None, timeout=60, check=True):
    args = ["--bootstrap-server", bootstrap, "--create", "--topic", topic]
    if assignment is not None:
        args += ["--replica-assignment", assignment]
    else:
        args += ["--partitions", partitions, "--replication-factor", rf]
    return run_tool("kafka-topics.sh", *args, timeout=timeout, check=check)


def wait_full_isr(adm, topic, rf, timeout=30):
    """Wait until every partition of topic has a leader and an ISR equal to its rf replicas (Metadata)."""
    def ok():
        md = topic_metadata(adm, topic)
        if not md:
            return None
        if all(l >= 0 and len(r) == rf and sorted(i) == sorted(r) for l, r, i in md.values()):
            return md
        return None
    return wait_for(ok, timeout=timeout, what=f"{topic}: every partition led with ISR = {rf} replicas")


def describe_cluster(bootstrap, timeout=10):
    """confluent-kafka AdminClient.describe_cluster() (the client is kept alive until the future resolves)."""
    a = admin(bootstrap)
    return a.describe_cluster(request_timeout=timeout).result(timeout=timeout + 5)


# ---------------------------------------------------------------------------------------------------- replication

class LoadProducer:
    """A confluent-kafka producer (idempotent, acks=all unless overridden) writing numbered records in a thread.

    Every `interval` seconds the next sequence number `seq` is produced, as the value str(seq), to each of `targets`
    [(topic, partition)] (explicit partitions). Delivery reports are served in the same thread:
    `acked[(topic, partition)]` lists (seq, offset) in report order, `errors` every failed report as
    (topic, partition, seq, KafkaError). `stop()` ends producing, flushes (bounded) and joins the thread.
    """

    def __init__(self, bootstrap, targets, interval=0.01, flush_timeout=90, **conf):
        import threading

        self.conf = rdkafka_conf(bootstrap, **{"acks": "all", "enable.idempotence": True,
                                               "message.timeout.ms": 120000, "linger.ms": 5, **conf})
        self.targets = [(t, int(p)) for t, p in targets]
        self.interval = interval
        self.flush_timeout = flush_timeout
        self.acked = {tp: [] for tp in self.targets}
        self.max_acked = {tp: -1 for tp in self.targets}
        self.errors = []
        self.next_seq = 0
        self.unflushed = None
        self.exc = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-producer", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _report(self, err, msg):
        tp = (msg.topic(), msg.partition())
        seq = int(msg.value())
        if err is not None:
            self.errors.append((tp[0], tp[1], seq, err))
        else:
            self.acked[tp].append((seq, msg.offset()))
            if seq > self.max_acked[tp]:
                self.max_acked[tp] = seq

    def _run(self):
        from confluent_kafka import Producer

        try:
            p = Producer(self.conf)
            while not self._stop.is_set():
                seq = self.next_seq
                for topic, part in self.targets:
                    while True:
                        try:
                            p.produce(topic, value=str(seq).encode(), partition=part, on_delivery=self._report)
                            break
                        except BufferError:  # local queue full (no leader for a while): wait for reports
                            p.poll(0.1)
                self.next_seq = seq + 1
                p.poll(0)
                time.sleep(self.interval)
            self.unflushed = p.flush(self.flush_timeout)
        except BaseException as e:  # noqa: BLE001 - re-raised by stop()
            self.exc = e

    def acked_count(self):
        return sum(len(v) for v in self.acked.values())

    def wait_acked_after(self, seq, timeout, tps=None):
        """Wait until every target in tps (default all) has an acknowledged record with a sequence > seq."""
        tps = tps or self.targets
        deadline = time.monotonic() + timeout
        while not all(self.max_acked[tp] > seq for tp in tps):
            if self.exc is not None:
                raise AssertionError(f"load producer failed: {self.exc!r}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no record produced after seq {seq} acknowledged within {timeout}s on "
                    f"{[tp for tp in tps if self.max_acked[tp] <= seq]} (max acked {self.max_acked}, "
                    f"next seq {self.next_seq}, {len(self.errors)} failed reports, last {self.errors[-3:]})")
            time.sleep(0.05)
        return time.monotonic()

    def stop(self):
        self._stop.set()
        self._thread.join(self.flush_timeout + 30)
        assert not self._thread.is_alive(), "load producer thread did not finish"
        if self.exc is not None:
            raise AssertionError(f"load producer failed: {self.exc!r}")
        assert self.unflushed == 0, f"{self.unflushed} record(s) still unacknowledged {self.flush_timeout}s after stop"


def read_partition_log(bootstrap, topic, part, timeout=60):
    """Every record of topic[part] from the beginning up to the high watermark, as [(offset, value str)]
    (confluent-kafka, assign; the high watermark is asked once, before reading)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    c = Consumer(rdkafka_conf(bootstrap, **{"group.id": unique("read-log"), "enable.auto.commit": False,
                                            "enable.partition.eof": True}))
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic, part), timeout=15)
        out = []
        if high <= low:
            return out, high
        c.assign([TopicPartition(topic, part, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        while not out or out[-1][0] < high - 1:
            assert time.monotonic() < deadline, \
                f"{topic}[{part}]: read {len(out)} records up to offset {out[-1][0] if out else None}, " \
                f"high watermark {high}, in {timeout}s"
            for m in c.consume(num_messages=5000, timeout=0.5):
                if m.error() is not None:
                    if m.error().code() == -191:  # _PARTITION_EOF
                        continue
                    raise AssertionError(f"{topic}[{part}]: consume error {m.error()}")
                if m.offset() < high:
                    out.append((m.offset(), m.value().decode()))
        return out, high
    finally:
        c.close()


def check_log_against_acks(topic, part, log, high, acked):
    """The log of one partition written by a LoadProducer: offsets 0..high-1 without gaps, sequence numbers
    strictly increasing (produce order, no duplicate), and every acknowledged (seq, offset) exactly there.
    Returns the number of records in the log that were never acknowledged."""
    where = f"{topic}[{part}]"
    offsets = [o for o, _ in log]
    assert offsets == list(range(high)), \
        f"{where}: offsets are not exactly 0..{high - 1} (first gap/duplicate near " \
        f"{next((i for i, o in enumerate(offsets) if o != i), None)})"
    seqs = [int(v) for _, v in log]
    bad = [(offsets[i], seqs[i - 1], seqs[i]) for i in range(1, len(seqs)) if seqs[i] <= seqs[i - 1]]
    assert not bad, f"{where}: sequence numbers not strictly increasing (duplicates or reordering) at " \
                    f"(offset, previous seq, seq) {bad[:10]} ({len(bad)} in all)"
    by_offset = dict(log)
    lost = [(s, o) for s, o in acked if by_offset.get(o) != str(s)]
    assert not lost, f"{where}: {len(lost)} of {len(acked)} acknowledged records missing or changed; " \
                     f"first (seq, acked offset, found there): {[(s, o, by_offset.get(o)) for s, o in lost[:10]]}"
    return len(log) - len(acked)


SEGMENT_FILE = re.compile(r"^\d{20}\.log$")


def replica_log_bytes(cluster, node, topic, part):
    """The concatenation of a replica's segment files (<log.dirs>/<topic>-<part>/<20-digit base offset>.log, in base
    offset order) on node's disk, or None when the partition directory does not exist."""
    d = cluster.nodes[node].data_dir / f"{topic}-{part}"
    if not d.is_dir():
        return None
    files = sorted(f for f in os.listdir(d) if SEGMENT_FILE.match(f))
    return b"".join((d / f).read_bytes() for f in files)


def wait_replicas_identical(cluster, topic, part, nodes, timeout=60):
    """Wait until every node in nodes holds the same non-empty segment bytes for topic[part]; returns the size.
    (Followers store the leader's batches verbatim, so once they caught up the bytes are equal.)"""
    deadline = time.monotonic() + timeout
    while True:
        blobs = {n: replica_log_bytes(cluster, n, topic, part) for n in nodes}
        if all(b for b in blobs.values()) and len(set(blobs.values())) == 1:
            return len(next(iter(blobs.values())))
        if time.monotonic() > deadline:
            sizes = {n: None if b is None else len(b) for n, b in blobs.items()}
            present = [b for b in blobs.values() if b is not None]
            first_diff = None
            if len(present) > 1:
                shortest = min(len(b) for b in present)
                first_diff = next((i for i in range(shortest) if len({b[i] for b in present}) > 1), shortest)
            files = {n: sorted(os.listdir(cluster.nodes[n].data_dir / f"{topic}-{part}"))
                     if (cluster.nodes[n].data_dir / f"{topic}-{part}").is_dir() else None for n in nodes}
            raise AssertionError(f"{topic}[{part}]: replica segment bytes differ after {timeout}s: sizes {sizes}, "
                                 f"first differing byte {first_diff}; files {files}")
        time.sleep(0.5)
