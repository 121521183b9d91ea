"""Group consumer worker processes for the consumer-group tests.

Run as a script, this is ONE consumer group member (a separate OS process, so a test can SIGKILL it):

  python group_workers.py --client confluent|kafka-python --bootstrap B --topic T --group G
                          [--conf key=value ...]

It subscribes to T in group G, and prints one JSON object per line on stdout (flushed at once):
  {"ev": "start"}                                        process is up, before subscribe()
  {"ev": "assign", "parts": [...], "now": [...]}         partitions added; "now" = current assignment
  {"ev": "revoke", "parts": [...], "now": [...]}         partitions revoked (also on_lost)
  {"ev": "rec", "p": P, "o": O, "v": "value"}            a consumed record (printed BEFORE its commit)
  {"ev": "commit", "offsets": {"P": next_offset}}         synchronous commit of the batch succeeded
  {"ev": "commit_failed", "err": "NAME", "str": "..."}   the commit was rejected (e.g. during a rebalance)
  {"ev": "error", "err": "NAME", "str": "...", "fatal": bool}   client error surfaced by the client
  {"ev": "closed"}                                       clean close() done (after SIGTERM)
Consumption loop: poll a batch, print its records, then commit exactly the batch's next offsets with a
synchronous commit (confluent: commit(offsets=..., asynchronous=False); kafka-python: commit(offsets)).
SIGTERM -> close() (which leaves the group for dynamic members) and exit 0.

Imported by the tests, `Worker` starts such a process and collects its events, and
`check_group_consumption` checks exactly-once / at-least-once outcomes over several workers.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------------------------------
# Worker process side
# ----------------------------------------------------------------------------------------------------

def _emit(**ev):
    sys.stdout.write(json.dumps(ev) + "\n")
    sys.stdout.flush()


def _parse_conf(items):
    conf = {}
    for item in items or []:
        k, _, v = item.partition("=")
        conf[k] = v
    return conf


def _run_confluent(args, stop):
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    current = set()

    def on_assign(consumer, parts):
        current.update(p.partition for p in parts)
        _emit(ev="assign", parts=sorted(p.partition for p in parts), now=sorted(current))

    def on_revoke(consumer, parts):
        current.difference_update(p.partition for p in parts)
        _emit(ev="revoke", parts=sorted(p.partition for p in parts), now=sorted(current))

    def error_cb(err):
        _emit(ev="error", err=err.name(), str=err.str(), fatal=err.fatal())

    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "error_cb": error_cb,
    }
    if os.environ.get("COMPAT_RDKAFKA_DEBUG"):
        conf["debug"] = os.environ["COMPAT_RDKAFKA_DEBUG"]
    conf.update(_parse_conf(args.conf))
    c = Consumer(conf)
    c.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)
    while not stop.is_set():
        msgs = c.consume(num_messages=100, timeout=0.2)
        nxt = {}
        for m in msgs:
            if m.error():
                e = m.error()
                _emit(ev="error", err=e.name(), str=e.str(), fatal=e.fatal())
                continue
            v = m.value()
            _emit(ev="rec", p=m.partition(), o=m.offset(), v=None if v is None else v.decode("utf-8", "replace"))
            nxt[m.partition()] = m.offset() + 1
        if not nxt:
            continue
        try:
            res = c.commit(offsets=[TopicPartition(args.topic, p, o) for p, o in sorted(nxt.items())],
                           asynchronous=False)
            bad = [tp for tp in res or [] if tp.error is not None]
            if bad:
                _emit(ev="commit_failed", err=bad[0].error.name(), str=str(bad[0].error))
            else:
                _emit(ev="commit", offsets={str(p): o for p, o in nxt.items()})
        except KafkaException as e:
            err = e.args[0]
            name = err.name() if isinstance(err, KafkaError) else repr(err)
            _emit(ev="commit_failed", err=name, str=str(err))
    c.close()


def _run_kafka_python(args, stop):
    from kafka import KafkaConsumer, TopicPartition
    from kafka.consumer.subscription_state import ConsumerRebalanceListener
    from kafka.errors import KafkaError as KPError
    from kafka.structs import OffsetAndMetadata

    current = set()

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            current.difference_update(tp.partition for tp in revoked)
            _emit(ev="revoke", parts=sorted(tp.partition for tp in revoked), now=sorted(current))

        def on_partitions_assigned(self, assigned):
            current.update(tp.partition for tp in assigned)
            _emit(ev="assign", parts=sorted(tp.partition for tp in assigned), now=sorted(current))

    conf = {"bootstrap_servers": args.bootstrap, "group_id": args.group, "enable_auto_commit": False,
            "auto_offset_reset": "earliest"}
    for k, v in _parse_conf(args.conf).items():
        conf[k] = int(v) if v.lstrip("-").isdigit() else v
    c = KafkaConsumer(**conf)
    c.subscribe([args.topic], listener=Listener())
    while not stop.is_set():
        batches = c.poll(timeout_ms=200)
        nxt = {}
        for tp, recs in batches.items():
            for r in recs:
                _emit(ev="rec", p=r.partition, o=r.offset,
                      v=None if r.value is None else r.value.decode("utf-8", "replace"))
                nxt[r.partition] = r.offset + 1
        if not nxt:
            continue
        try:
            c.commit({TopicPartition(args.topic, p): OffsetAndMetadata(o, "", -1) for p, o in nxt.items()})
            _emit(ev="commit", offsets={str(p): o for p, o in nxt.items()})
        except KPError as e:
            _emit(ev="commit_failed", err=type(e).__name__, str=str(e))
    c.close()


def main(argv=None):
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--client", choices=["confluent", "kafka-python"], default="confluent")
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--conf", action="append", default=[], help="client property key=value")
    args = ap.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    _emit(ev="start", pid=os.getpid())
    if args.client == "confluent":
        _run_confluent(args, stop)
    else:
        _run_kafka_python(args, stop)
    _emit(ev="closed")


# ----------------------------------------------------------------------------------------------------
# Test side
# ----------------------------------------------------------------------------------------------------

class Worker:
    """A group_workers.py subprocess and the events it printed."""

    def __init__(self, name, bootstrap, topic, group, client="confluent", conf=None, log_dir=None):
        self.name = name
        self.events = []
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        cmd = [sys.executable, str(HERE / "group_workers.py"), "--client", client, "--bootstrap", bootstrap,
               "--topic", topic, "--group", group]
        for k, v in (conf or {}).items():
            cmd += ["--conf", f"{k}={v}"]
        self.stderr_path = Path(log_dir or "/tmp") / f"worker-{name}-{os.getpid()}-{id(self)}.stderr"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.started_at = time.monotonic()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            ev["t"] = time.monotonic()
            with self.changed:
                self.events.append(ev)
                self.changed.notify_all()
        with self.changed:
            self.events.append({"ev": "eof", "t": time.monotonic()})
            self.changed.notify_all()

    # --- views -------------------------------------------------------------------------------------
    def snapshot(self):
        with self.lock:
            return list(self.events)

    def assignment(self):
        """Current assignment (set of partitions) according to the rebalance callbacks."""
        now = set()
        for ev in self.snapshot():
            if ev["ev"] in ("assign", "revoke"):
                now = set(ev["now"])
        return now

    def records(self):
        return [(ev["p"], ev["o"], ev["v"]) for ev in self.snapshot() if ev["ev"] == "rec"]

    def committed(self):
        """partition -> highest next-offset this worker reports as successfully committed."""
        out = {}
        for ev in self.snapshot():
            if ev["ev"] == "commit":
                for p, o in ev["offsets"].items():
                    out[int(p)] = max(out.get(int(p), 0), o)
        return out

    def errors(self):
        return [ev for ev in self.snapshot() if ev["ev"] in ("error", "commit_failed")]

    def count(self, kind):
        return sum(1 for ev in self.snapshot() if ev["ev"] == kind)

    def stderr_tail(self, n=30):
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    # --- control -----------------------------------------------------------------------------------
    def kill9(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._reader.join(timeout=5)

    def terminate(self, timeout=30):
        """SIGTERM -> the worker closes its consumer cleanly (leaves the group) and exits."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(f"worker {self.name} did not exit {timeout}s after SIGTERM:\n{self.stderr_tail()}")
        self._reader.join(timeout=5)

    def cleanup(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self._stderr.close()
        try:
            self.stderr_path.unlink()
        except OSError:
            pass

    def __repr__(self):
        return f"Worker({self.name}, pid={self.proc.pid}, assignment={sorted(self.assignment())})"


def wait_until(pred, timeout, what, workers=(), interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            detail = "\n".join(
                f"  {w!r} exit={w.proc.poll()} errors={w.errors()[-3:]} stderr:\n{w.stderr_tail(10)}"
                for w in workers)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{detail}")
        time.sleep(interval)


def balanced(workers, partitions):
    """True when the live workers' current assignments are disjoint, cover all partitions and no live
    worker is empty (with at most as many workers as partitions)."""
    live = [w for w in workers if w.proc.poll() is None]
    sets = [w.assignment() for w in live]
    union = set().union(*sets) if sets else set()
    return (union == set(range(partitions)) and sum(len(s) for s in sets) == partitions
            and all(sets))


def check_group_consumption(workers, produced):
    """produced: {(partition, offset): value}. Every produced record consumed at least once with the right
    value; nothing else consumed; a record appears more than once only if at most one of its consumptions
    was covered by that consumer's own successful commit (committed records are never consumed again).
    Returns {(p, o): number of consumptions}."""
    consumptions = {}  # (p, o) -> list of (worker name, committed by that worker's next commit)
    for w in workers:
        pending = []  # records of the current batch, resolved by the next commit / commit_failed event
        for ev in w.snapshot():
            if ev["ev"] == "rec":
                p, o, v = ev["p"], ev["o"], ev["v"]
                assert (p, o) in produced, f"{w.name} consumed unexpected record p{p}@{o}={v!r}"
                assert produced[(p, o)] == v, f"{w.name} read p{p}@{o}={v!r}, produced {produced[(p, o)]!r}"
                pending.append((p, o))
            elif ev["ev"] in ("commit", "commit_failed"):
                offs = {int(k): x for k, x in ev.get("offsets", {}).items()}
                for p, o in pending:
                    consumptions.setdefault((p, o), []).append((w.name, o < offs.get(p, -1)))
                pending = []
        for p, o in pending:  # consumed, commit outcome unknown (killed before it printed one)
            consumptions.setdefault((p, o), []).append((w.name, False))
    missing = sorted(set(produced) - set(consumptions))
    assert not missing, f"{len(missing)} records never consumed, e.g. {missing[:10]}"
    dup_committed = {k: v for k, v in consumptions.items() if sum(1 for _, c in v if c) > 1}
    assert not dup_committed, (f"{len(dup_committed)} committed records consumed again, e.g. "
                               f"{sorted(dup_committed.items())[:5]}")
    return {k: len(v) for k, v in consumptions.items()}


if __name__ == "__main__":
    main()
