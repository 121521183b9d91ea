"""Exactly-once consume-transform-produce (KIP-98/KIP-447) with confluent-kafka: a worker
process (eos_worker.py) is SIGKILLed inside an open transaction and restarted with the same
transactional.id; a read_committed reader of the output sees every input record transformed
exactly once."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from confluent_kafka import Producer, TopicPartition

from helpers import confluent_consumer, create_topic, flush_all, rdkafka_conf, unique, wait_for

WORKER = Path(__file__).resolve().parent / "eos_worker.py"
RECORDS = 300


def read_partition(bootstrap, topic, isolation, expect_at_least=0, timeout=30):
    c = confluent_consumer(bootstrap, **{"isolation.level": isolation})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        out = []
        deadline = time.monotonic() + timeout
        idle_since = time.monotonic()
        while time.monotonic() < deadline:
            msgs = c.consume(num_messages=500, timeout=0.3)
            for m in msgs:
                assert not m.error(), m.error()
                out.append(m)
            if msgs:
                idle_since = time.monotonic()
            elif len(out) >= expect_at_least and time.monotonic() - idle_since > 1.5:
                break
        return out
    finally:
        c.close()


def progress_lines(path):
    try:
        return path.read_text().split("\n")[:-1]
    except FileNotFoundError:
        return []


def test_consume_transform_produce_survives_sigkill(broker, tmp_path):
    src = create_topic(broker.bootstrap, unique("eos-in"), partitions=2)
    dst = create_topic(broker.bootstrap, unique("eos-out"), partitions=1)
    group, tid = unique("eos-g"), unique("eos-tid")
    p = Producer(rdkafka_conf(broker.bootstrap))
    for i in range(RECORDS):
        p.produce(src, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % 2)
    flush_all(p)

    progress = tmp_path / "progress"
    args = [sys.executable, str(WORKER), broker.bootstrap, src, dst, group, tid, str(progress)]
    first = subprocess.Popen(args, start_new_session=True)
    try:
        # Kill it inside an open transaction (its records flushed, not committed) after a few
        # committed ones.
        def sixth_open():
            assert first.poll() is None, f"worker exited with {first.returncode}"
            return "open 6" in progress_lines(progress)

        wait_for(sixth_open, timeout=60, what="the worker's 6th transaction to be open")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    lines = progress_lines(progress)
    assert lines[-1] == "open 6" and "commit 5" in lines, lines

    second = subprocess.Popen(args, start_new_session=True)
    try:
        assert second.wait(90) == 0
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)

    expected = Counter(f"out-v{i}".encode() for i in range(RECORDS))
    committed = read_partition(broker.bootstrap, dst, "read_committed", expect_at_least=RECORDS)
    got = Counter(m.value() for m in committed)
    assert got == expected, (
        f"duplicates: {sorted(got - expected)[:10]}, missing: {sorted(expected - got)[:10]}")
    assert all(m.key() == b"k" + m.value()[len(b"out-v"):] for m in committed)
    # The killed transaction's records are in the log, aborted: read_uncommitted sees them.
    everything = read_partition(broker.bootstrap, dst, "read_uncommitted",
                                expect_at_least=RECORDS + 1)
    assert len(everything) > RECORDS
