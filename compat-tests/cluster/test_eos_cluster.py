"""Exactly-once processing on the 3-node cluster with a broker bounced mid-run: exact output.

* `test_eos_worker_broker_bounce`: the transactional consume-transform-produce worker (`eos_cluster_worker.py`, the
  loop of compat-tests/python/eos_worker.py with librdkafka's error handling: retry, or abort and rewind) reads an
  input topic of 6 partitions (RF 3, min.insync.replicas 2, every node leads 2) that a `LoadProducer` keeps filling,
  and writes each record transformed to the same partition of a like output topic, committing the consumed offsets
  in the same transaction. The transactional id and the group are chosen (FindCoordinator) so that their
  coordinators — the leaders of their `__transaction_state` and `__consumer_offsets` partitions — are different
  nodes: every commit then needs transaction markers written by brokers other than the transaction coordinator
  (WriteTxnMarkers), on the output partitions and on the group's offsets partition. Twice the transaction
  coordinator is bounced while the worker runs — first SIGTERM (controlled shutdown), then kill -9 of the node that
  took over — and restarted: the worker must commit transactions while it is down and after it is back. At the end
  a read_committed consumer reads every output partition: exactly the input partition transformed, record by
  record, in order (every input record once, no duplicate, none missing); `kafka-transactions.sh list` shows the
  transaction completed (none left ongoing).
* `test_streams_eos_wordcount_broker_bounce`: the Kafka Streams 4.1.2 `exactly_once_v2` word count
  (compat-tests/java/streams/WordCountEos.java, internal topics with replication factor 3) against the cluster;
  the transaction coordinator of its producer is killed -9 while it processes a batch, more lines arrive while the
  node is down (their counts must appear while it is down), the node is restarted, a last batch is counted; the
  read_committed output ends with the exact counts, every word's count strictly increasing (no double counting)
  and never above the final one.

Kafka 4.1.2 behaviour seen here is in the README ("What the tests check").
"""

import json
import os
import signal
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

import kafka_wire
from chelpers import (LoadProducer, admin, check_log_against_acks, parse_table, rdkafka_conf, read_partition_log,
                      run_tool, timing, topic_metadata, unique, wait_for, wait_full_isr)
from cluster import BIN_DIR, COMPAT_DIR

pytestmark = pytest.mark.destructive

HERE = Path(__file__).resolve().parent
WORKER = HERE / "eos_cluster_worker.py"
LIBS = COMPAT_DIR / ".cache" / "kafka-libs"
WORDCOUNT_SOURCE = COMPAT_DIR / "java" / "streams" / "WordCountEos.java"

SIGTERM_EXIT = {"gregor": 0, "kafka": 143}  # gregor's contract; Kafka's JVM reports 128+SIGTERM
SPREAD3 = [[1, 2, 3], [2, 3, 1], [3, 1, 2]]
SPREAD6 = SPREAD3 + [[1, 3, 2], [2, 1, 3], [3, 2, 1]]  # every node leads 2 partitions
INTERNAL = ("__transaction_state", "__consumer_offsets")
DONE_STATES = ("CompleteCommit", "CompleteAbort", "Empty")

API_FIND_COORDINATOR = 10
KEY_GROUP, KEY_TRANSACTION = 0, 1


# ------------------------------------------------------------------------------------------------------- helpers

def create_topics(bootstrap, topics, timeout=60):
    """topics: [(name, assignment, {config})]; waits until every partition is led with a full ISR."""
    a = admin(bootstrap)
    new = [NewTopic(name, num_partitions=len(asg), replica_assignment=asg, config=cfg) for name, asg, cfg in topics]
    for fut in a.create_topics(new, request_timeout=timeout, operation_timeout=timeout).values():
        fut.result(timeout + 10)
    for name, asg, _ in topics:
        wait_full_isr(a, name, len(asg[0]), timeout=60)


def leaders(bootstrap, topic):
    md = topic_metadata(admin(bootstrap), topic)
    return {p: l for p, (l, _, _) in md.items()} if md else {}


def wait_all_full_isr(cluster, topics, timeout=120):
    a = admin(cluster.bootstrap)
    for t in topics:
        wait_full_isr(a, t, 3, timeout=timeout)


def find_coordinator(cluster, key_type, key, nodes=None):
    """FindCoordinator (v4+, batched; KeyType 0 group, 1 transaction) sent to each node in turn: the node id of the
    first answer without error, else None."""
    last = None
    for i in nodes or cluster.live_ids():
        node = cluster.nodes[i]
        try:
            with kafka_wire.KafkaConnection(node.host, node.client_port, timeout=10) as c:
                v = kafka_wire.pick_version(c.api_versions()["api_keys"], API_FIND_COORDINATOR, 4, 6)
                if v is None:
                    raise AssertionError(f"node {i} supports no FindCoordinator version 4..6")
                body = kafka_wire.i8(key_type) + kafka_wire.compact_array([key], kafka_wire.compact_string)
                r = c.request(API_FIND_COORDINATOR, v, body + kafka_wire.NO_TAGS)
                r.i32()  # throttle

                def coordinator(rr):
                    out = (rr.compact_string(), rr.i32(), rr.compact_string(), rr.i32(), rr.i16(), rr.compact_string())
                    rr.tagged_fields()
                    return out

                (k, node_id, host, port, err, msg), = r.compact_array(coordinator)
                if err == 0:
                    assert k == key and node_id in cluster.ids, (k, node_id, host, port)
                    assert (host, port) == (cluster.nodes[node_id].host, cluster.nodes[node_id].client_port), \
                        (node_id, host, port)
                    return node_id
                last = f"node {i}: error {err} {msg}"
        except (OSError, ValueError, ConnectionError) as e:
            last = f"node {i}: {e!r}"
    return None


def wait_coordinator(cluster, key_type, key, exclude=(), timeout=60):
    survivors = [i for i in cluster.live_ids() if i not in exclude]

    def found():
        c = find_coordinator(cluster, key_type, key, survivors)
        return c if c is not None and c not in exclude else None
    return wait_for(found, timeout=timeout, interval=0.3,
                    what=f"a coordinator for {'transactional id' if key_type else 'group'} {key} outside {exclude}")


def transactions(bootstrap):
    """`kafka-transactions.sh list` rows: {TransactionalId: row} (TransactionalId, Coordinator, ProducerId,
    TransactionState)."""
    p = run_tool("kafka-transactions.sh", "--bootstrap-server", bootstrap, "list", timeout=60)
    return {r["TransactionalId"]: r for r in parse_table(p.stdout)}, p.stdout


def describe_transaction(bootstrap, tid):
    out = run_tool("kafka-transactions.sh", "--bootstrap-server", bootstrap, "describe", "--transactional-id", tid,
                   timeout=60).stdout
    header, row = [line.split() for line in out.strip().splitlines()[-2:]]
    return dict(zip(header, row)), out


def wait_no_transaction_ongoing(cluster, match, timeout=60):
    """Poll `kafka-transactions.sh list` until the transactional ids for which match(tid) holds are all listed in
    a completed state (CompleteCommit / CompleteAbort / Empty); returns those rows and the last output."""
    last = {}

    def done():
        rows, out = transactions(cluster.bootstrap)
        ours = {t: r for t, r in rows.items() if match(t)}
        last["out"] = out
        if ours and all(r["TransactionState"] in DONE_STATES for r in ours.values()):
            return ours
        return None
    try:
        return wait_for(done, timeout=timeout, interval=1.0, what="every transaction of the test completed"), \
            last.get("out")
    except AssertionError as e:
        raise AssertionError(f"{e}\nlast `kafka-transactions.sh list`:\n{last.get('out')}") from None


def read_output(bootstrap, topic, partitions, isolation, expected=None, timeout=120):
    """Every record of topic's partitions visible with isolation, from the beginning: {p: [(offset, key, value)]}.
    Reads until every partition reported its end (partition EOF) with at least expected[p] records, then 1.5 s
    more (anything extra would show up)."""
    c = Consumer(rdkafka_conf(bootstrap, **{"group.id": unique("eos-read"), "enable.auto.commit": False,
                                            "isolation.level": isolation, "enable.partition.eof": True}))
    out = {p: [] for p in partitions}
    eof = set()
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        deadline = time.monotonic() + timeout
        settle_until = None
        while settle_until is None or time.monotonic() < settle_until:
            for m in c.consume(num_messages=5000, timeout=0.3):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                        continue
                    raise AssertionError(f"{topic}[{m.partition()}]: consume error {m.error()}")
                out[m.partition()].append((m.offset(), m.key(), m.value()))
                eof.discard(m.partition())
            if settle_until is None and all(p in eof and len(out[p]) >= (expected or {}).get(p, 0)
                                            for p in partitions):
                settle_until = time.monotonic() + 1.5
            if settle_until is None and time.monotonic() > deadline:
                raise AssertionError(
                    f"{topic} ({isolation}): after {timeout}s read {({p: len(v) for p, v in out.items()})} records, "
                    f"expected {expected}, partitions at their end: {sorted(eof)}")
        return out
    finally:
        c.close()


class WorkerProgress:
    """The worker's PROGRESS_FILE: lines `T kind rest...` (T = time.monotonic() of the worker)."""

    def __init__(self, path):
        self.path = path

    def events(self):
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        out = []
        for line in text.split("\n")[:-1]:
            t, kind, *rest = line.split(" ", 2)
            out.append((float(t), kind, rest[0] if rest else ""))
        return out

    def of(self, kind):
        return [e for e in self.events() if e[1] == kind]

    def commits_after(self, t):
        return [e for e in self.of("commit") if e[0] > t]

    def tail(self, n=30):
        return "\n".join(f"{t:.3f} {k} {r}" for t, k, r in self.events()[-n:])


# ------------------------------------------------------------------------------------------------------- worker

def pick_ids(cluster, tries=30):
    """A transactional id and a group id whose coordinators are different nodes (FindCoordinator; the first
    transactional FindCoordinator creates __transaction_state, answered COORDINATOR_NOT_AVAILABLE meanwhile)."""
    seen = []
    for _ in range(tries):
        tid, group = unique("eos-tid"), unique("eos-group")
        tc = wait_coordinator(cluster, KEY_TRANSACTION, tid, timeout=90)
        gc = wait_coordinator(cluster, KEY_GROUP, group, timeout=90)
        if tc != gc:
            return tid, group, tc, gc
        seen.append((tid, group, tc))
    raise AssertionError(f"no transactional id / group pair with different coordinators in {tries} tries: {seen}")


@pytest.mark.timeout(600)
def test_eos_worker_broker_bounce(cluster, tmp_path):
    t_start = time.monotonic()
    src, dst = unique("eos-in"), unique("eos-out")
    create_topics(cluster.bootstrap, [(src, SPREAD6, {"min.insync.replicas": "2"}),
                                      (dst, SPREAD6, {"min.insync.replicas": "2"})])
    parts = list(range(len(SPREAD6)))
    tid, group, txn_coord, group_coord = pick_ids(cluster)
    wait_all_full_isr(cluster, INTERNAL)
    print(f"transactional id {tid}: coordinator node {txn_coord}; group {group}: coordinator node {group_coord}; "
          f"{src} leaders {leaders(cluster.bootstrap, src)}, {dst} leaders {leaders(cluster.bootstrap, dst)}")

    progress = WorkerProgress(tmp_path / "progress")
    stop_file = tmp_path / "stop.json"
    worker_log = open(tmp_path / "worker.log", "ab")
    worker = None
    load = LoadProducer(cluster.bootstrap, [(src, p) for p in parts], interval=0.05).start()

    def worker_failed(extra=""):
        return (f"{extra}\nworker exit status {worker.poll()}; progress tail:\n{progress.tail()}\n"
                f"worker log:\n{(tmp_path / 'worker.log').read_text()[-4000:]}")

    def wait_commit_after(t0, timeout, what):
        try:
            wait_for(lambda: progress.commits_after(t0) or worker.poll() is not None, timeout=timeout, interval=0.1,
                     what=what)
        except AssertionError as e:
            raise AssertionError(worker_failed(str(e))) from None
        assert worker.poll() is None, worker_failed(f"the worker exited while waiting for {what}")
        return progress.commits_after(t0)[0][0] - t0

    try:
        load.wait_acked_after(-1, timeout=60)
        worker = subprocess.Popen([sys.executable, str(WORKER), cluster.bootstrap, src, dst, group, tid,
                                   str(progress.path), str(stop_file)],
                                  stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: len(progress.of("commit")) >= 3 or worker.poll() is not None, timeout=120,
                 what="the worker's first 3 commits")
        assert len(progress.of("commit")) >= 3, worker_failed("the worker did not commit 3 transactions")
        described, text = describe_transaction(cluster.bootstrap, tid)
        assert int(described["CoordinatorId"]) == txn_coord, text

        for phase, sig in (("sigterm", signal.SIGTERM), ("kill9", signal.SIGKILL)):
            victim = wait_coordinator(cluster, KEY_TRANSACTION, tid)
            led = {t: sorted(p for p, l in leaders(cluster.bootstrap, t).items() if l == victim) for t in (src, dst)}
            assert led[src] or led[dst], f"transaction coordinator {victim} leads no partition of {src}/{dst}"
            survivors = [i for i in cluster.ids if i != victim]
            t0 = time.monotonic()
            rc = cluster.kill(victim, sig)
            if sig == signal.SIGTERM:
                assert rc == SIGTERM_EXIT[cluster.impl], f"node {victim} exited {rc} after SIGTERM"
            new_coord = wait_coordinator(cluster, KEY_TRANSACTION, tid, exclude=[victim],
                                         timeout=cluster.session_timeout_ms / 1000 + 60)
            t_moved = time.monotonic() - t0
            # Transactions commit while the old coordinator is down (through the new one).
            t_commit = wait_commit_after(t0, cluster.session_timeout_ms / 1000 + 90,
                                         f"a commit after the {phase} of coordinator {victim}")
            timing(f"eos_{phase}_coordinator_to_moved", t_moved * 1000)
            timing(f"eos_{phase}_coordinator_to_commit", t_commit * 1000)
            time.sleep(2)
            down_commits = len(progress.commits_after(t0))
            t1 = time.monotonic()
            cluster.restart(victim)
            wait_all_full_isr(cluster, (src, dst) + INTERNAL)
            t_restart = time.monotonic() - t1
            wait_commit_after(time.monotonic(), 90, f"a commit after node {victim} rejoined")
            print(f"{phase}: transaction coordinator {victim} (leading {led}) stopped (exit {rc}); coordinator "
                  f"{new_coord} after {t_moved:.1f}s, first commit after {t_commit:.1f}s, {down_commits} commits "
                  f"while it was down; restarted, ISRs full after {t_restart:.1f}s; worker commits so far "
                  f"{len(progress.of('commit'))}, aborts {len(progress.of('abort'))}")
            assert worker.poll() is None, worker_failed()

        load.stop()
        assert not load.errors, f"{len(load.errors)} failed input delivery reports: {load.errors[:10]}"
        inputs, ends = {}, {}
        for p in parts:
            log, high = read_partition_log(cluster.bootstrap, src, p)
            check_log_against_acks(src, p, log, high, load.acked[(src, p)])
            inputs[p], ends[p] = log, high
        tmp = stop_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(ends))
        tmp.rename(stop_file)
        try:
            rc = worker.wait(180)
        except subprocess.TimeoutExpired:
            raise AssertionError(worker_failed(f"the worker did not finish within 180 s of the input's end {ends}"))
        assert rc == 0, worker_failed()
    finally:
        if load._thread.is_alive():
            load._stop.set()
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        worker_log.close()

    total = sum(len(v) for v in inputs.values())
    committed = read_output(cluster.bootstrap, dst, parts, "read_committed",
                            expected={p: len(v) for p, v in inputs.items()})
    for p in parts:
        got = [(k.decode(), v.decode()) for _, k, v in committed[p]]
        want = [(f"{p}:{o}", f"out-{v}") for o, v in inputs[p]]
        if got != want:
            keys = Counter(k for k, _ in got)
            dup = sorted(k for k, n in keys.items() if n > 1)
            missing = sorted({k for k, _ in want} - set(keys))
            extra = sorted(set(keys) - {k for k, _ in want})
            raise AssertionError(
                f"{dst}[{p}] (read_committed) is not {src}[{p}] transformed exactly once: {len(got)} records, "
                f"expected {len(want)}; duplicated sources {dup[:10]} ({len(dup)}), missing {missing[:10]} "
                f"({len(missing)}), unknown {extra[:10]}; first difference at index "
                f"{next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))}")
    everything = read_output(cluster.bootstrap, dst, parts, "read_uncommitted")
    aborted = sum(len(v) for v in everything.values()) - total

    rows, listed = wait_no_transaction_ongoing(cluster, lambda t: t == tid)
    described, text = describe_transaction(cluster.bootstrap, tid)
    assert described["TransactionState"] == "CompleteCommit", text
    commits, aborts, retries = progress.of("commit"), progress.of("abort"), progress.of("retry")
    assert not progress.of("fatal"), progress.tail()
    print(f"{total} input records, each exactly once in the read_committed output (in order per partition); "
          f"{aborted} aborted records in the log; worker: {len(commits)} commits, {len(aborts)} aborts "
          f"{[r for _, _, r in aborts[:5]]}, {len(retries)} retried calls {[r for _, _, r in retries[:5]]}; "
          f"`kafka-transactions.sh list`: {rows}")
    timing("eos_worker_test", (time.monotonic() - t_start) * 1000)


# ------------------------------------------------------------------------------------------------------- streams

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]


def lines(start, count):
    """Deterministic lines of 1-4 words (as in compat-tests/python/test_eos_streams.py)."""
    out = []
    for i in range(start, start + count):
        n = 1 + i % 4
        out.append(" ".join(WORDS[(i * 3 + j * 5) % len(WORDS)] for j in range(n)).title())
    return out


def expected_counts(all_lines):
    return Counter(w.lower() for line in all_lines for w in line.split())


def produce_lines(bootstrap, topic, batch, first, partitions):
    p = Producer(rdkafka_conf(bootstrap, **{"acks": "all", "enable.idempotence": True,
                                            "message.timeout.ms": 120000}))
    for i, line in enumerate(batch, start=first):
        p.produce(topic, key=f"line-{i}".encode(), value=line.encode(), partition=i % partitions)
    left = p.flush(150)
    assert left == 0, f"{left} input lines not acknowledged within 150 s"


class CountOutput:
    """Latest committed count per word of the output topic (read_committed), read incrementally."""

    def __init__(self, bootstrap, topic, partitions):
        self.c = Consumer(rdkafka_conf(bootstrap, **{"group.id": unique("wc-read"), "enable.auto.commit": False,
                                                     "isolation.level": "read_committed"}))
        self.c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        self.counts = {}
        self.history = []

    def poll(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for m in self.c.consume(num_messages=500, timeout=0.2):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"output consumer: {m.error()}")
                word, (count,) = m.key().decode(), struct.unpack(">q", m.value())
                self.history.append((word, count))
                self.counts[word] = count

    def wait_for(self, expected, timeout, app, describe_app):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert app.poll() is None, describe_app(f"the Streams app exited {app.returncode}")
            self.poll(0.5)
            if self.counts == dict(expected):
                return
        raise AssertionError(describe_app(f"counts {self.counts} never became {dict(expected)} in {timeout}s"))

    def close(self):
        self.c.close()


@pytest.fixture(scope="module")
def wordcount_classes(cache_dir):
    """WordCountEos.java compiled once into the cache dir (recompiled when the source changes)."""
    import hashlib
    import shutil

    if shutil.which("javac") is None or not list(LIBS.glob("kafka-streams-*.jar")):
        pytest.fail("needs javac and the kafka-streams jar (compat-tests/setup.sh)", pytrace=False)
    out = cache_dir / f"wordcount-{hashlib.sha256(WORDCOUNT_SOURCE.read_bytes()).hexdigest()[:12]}"
    if not (out / "WordCountEos.class").is_file():
        tmp = out.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["nice", "-n", "10", "javac", "-d", str(tmp), "-cp", f"{LIBS}/*", str(WORDCOUNT_SOURCE)],
                       check=True, capture_output=True, timeout=300)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return out


@pytest.mark.timeout(600)
def test_streams_eos_wordcount_broker_bounce(cluster, wordcount_classes, tmp_path):
    t_start = time.monotonic()
    src, dst, app_id = unique("wc-in"), unique("wc-out"), unique("wc-app")
    create_topics(cluster.bootstrap, [(src, SPREAD3, {"min.insync.replicas": "2"}),
                                      (dst, SPREAD3, {"min.insync.replicas": "2"})])
    parts = len(SPREAD3)
    cmd = ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
           f"-Dlog4j2.configurationFile={BIN_DIR / 'log4j2-tools.properties'}",
           "-cp", f"{wordcount_classes}:{LIBS}/*", "WordCountEos",
           cluster.bootstrap, src, dst, app_id, str(tmp_path / "state"), "3"]
    app_log_path = tmp_path / "streams.log"
    app_log = open(app_log_path, "ab")

    def describe_app(msg):
        try:
            text = app_log_path.read_text(errors="replace")
        except OSError:
            text = ""
        return f"{msg}\nStreams app log tail ({app_log_path}):\n{text[-5000:]}"

    batches = [lines(0, 60), lines(60, 60), lines(120, 60), lines(180, 60)]
    firsts = [0, 60, 120, 180]
    out = CountOutput(cluster.bootstrap, dst, parts)
    app = subprocess.Popen(cmd, stdout=app_log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        produce_lines(cluster.bootstrap, src, batches[0], firsts[0], parts)
        out.wait_for(expected_counts(batches[0]), 240, app, describe_app)
        t_first = time.monotonic() - t_start
        internal = [f"{app_id}-word-counts-repartition", f"{app_id}-word-counts-changelog"]
        wait_all_full_isr(cluster, internal + list(INTERNAL), timeout=60)  # RF 3: the app's setting took effect

        def streams_tids():
            rows, _ = transactions(cluster.bootstrap)
            return sorted(t for t in rows if t.startswith(app_id + "-"))
        tids = wait_for(streams_tids, timeout=60, interval=1.0, what=f"a transactional id of {app_id}")
        victim = wait_coordinator(cluster, KEY_TRANSACTION, tids[0])
        group_coord = wait_coordinator(cluster, KEY_GROUP, app_id)
        survivors = [i for i in cluster.ids if i != victim]
        led = {t: sorted(p for p, l in leaders(cluster.bootstrap, t).items() if l == victim)
               for t in (src, dst, *internal)}

        # Kill -9 the transaction coordinator while the app works through the second batch; a third batch arrives
        # while the node is down and must be counted before it is back.
        produce_lines(cluster.bootstrap, src, batches[1], firsts[1], parts)
        time.sleep(0.3)
        t0 = time.monotonic()
        cluster.kill(victim, signal.SIGKILL)
        produce_lines(cluster.bootstrap_of(*survivors), src, batches[2], firsts[2], parts)
        new_coord = wait_coordinator(cluster, KEY_TRANSACTION, tids[0], exclude=[victim],
                                     timeout=cluster.session_timeout_ms / 1000 + 60)
        out.wait_for(expected_counts(batches[0] + batches[1] + batches[2]), 240, app, describe_app)
        t_counted = time.monotonic() - t0
        timing("streams_eos_kill9_coordinator_to_counts_exact", t_counted * 1000)
        assert not cluster.alive(victim)
        cluster.restart(victim)
        wait_all_full_isr(cluster, [src, dst, *internal, *INTERNAL])
        produce_lines(cluster.bootstrap, src, batches[3], firsts[3], parts)
        final = expected_counts([l for b in batches for l in b])
        out.wait_for(final, 240, app, describe_app)
        # Settled: nothing more arrives.
        out.poll(3)
        assert out.counts == dict(final)
        assert app.poll() is None, describe_app(f"the Streams app exited {app.returncode}")
        app.send_signal(signal.SIGTERM)  # clean close: the open transaction (if any) is committed or aborted
        try:
            rc = app.wait(90)
        except subprocess.TimeoutExpired:
            raise AssertionError(describe_app("the Streams app did not close within 90 s of SIGTERM")) from None
        print(f"Streams app closed, exit status {rc}")
    finally:
        if app.poll() is None:
            os.killpg(app.pid, signal.SIGKILL)
            app.wait(10)
        out.close()
        app_log.close()

    over = [(w, c) for w, c in out.history if c > final[w]]
    assert not over, f"committed counts above the final ones (double counting): {over[:10]}"
    per_word = {}
    for w, c in out.history:
        per_word.setdefault(w, []).append(c)
    not_increasing = {w: cs for w, cs in per_word.items() if any(b <= a for a, b in zip(cs, cs[1:]))}
    assert not not_increasing, f"a word's committed counts repeat or go down: {not_increasing}"
    rows, listed = wait_no_transaction_ongoing(cluster, lambda t: t.startswith(app_id + "-"))
    text = app_log_path.read_text(errors="replace")
    states = [l.split("state ", 1)[1] for l in text.splitlines() if l.startswith("state ")]
    print(f"first batch counted {t_first:.1f}s after the start; transactional id(s) {tids}, coordinator {victim} "
          f"(leading {led}), group coordinator {group_coord}; killed -9: coordinator {new_coord}, counts of the "
          f"3 batches exact {t_counted:.1f}s after the kill; final counts exact ({sum(final.values())} words, "
          f"{len(out.history)} committed count records); app states {states}; `kafka-transactions.sh list`: {rows}")
    timing("streams_eos_test", (time.monotonic() - t_start) * 1000)
