"""Kafka Streams 4.1.2 with processing.guarantee=exactly_once_v2: a word count
(compat-tests/java/streams/WordCountEos.java) is SIGKILLed while processing and restarted; the
read_committed output ends with exact counts (no double-counted and no lost line)."""

import os
import shutil
import signal
import struct
import subprocess
import time
from collections import Counter

import pytest
from confluent_kafka import Producer, TopicPartition

from helpers import BIN_DIR, COMPAT_DIR, confluent_consumer, create_topic, flush_all, rdkafka_conf, unique

LIBS = COMPAT_DIR / ".cache" / "kafka-libs"
SOURCE = COMPAT_DIR / "java" / "streams" / "WordCountEos.java"
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]


def compile_app(out_dir):
    if shutil.which("javac") is None or not list(LIBS.glob("kafka-streams-*.jar")):
        pytest.skip("needs javac and the kafka-streams jar (compat-tests/setup.sh)")
    subprocess.run(["javac", "-d", str(out_dir), "-cp", f"{LIBS}/*", str(SOURCE)], check=True,
                   capture_output=True, timeout=120)


def lines(start, count):
    """Deterministic lines of 1-4 words."""
    out = []
    for i in range(start, start + count):
        n = 1 + i % 4
        out.append(" ".join(WORDS[(i * 3 + j * 5) % len(WORDS)] for j in range(n)).title())
    return out


def expected_counts(all_lines):
    return Counter(w.lower() for line in all_lines for w in line.split())


class Output:
    """Latest committed count per word of the (2-partition) output topic, read incrementally."""

    def __init__(self, bootstrap, topic):
        self.c = confluent_consumer(bootstrap, **{"isolation.level": "read_committed"})
        self.c.assign([TopicPartition(topic, p, 0) for p in range(2)])
        self.counts = {}
        self.history = []

    def poll(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for m in self.c.consume(num_messages=500, timeout=0.2):
                assert not m.error(), m.error()
                word, (count,) = m.key().decode(), struct.unpack(">q", m.value())
                self.history.append((word, count))
                self.counts[word] = count

    def wait_for(self, expected, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll(0.5)
            if self.counts == dict(expected):
                return
        raise AssertionError(f"counts {self.counts} never became {dict(expected)}")

    def close(self):
        self.c.close()


def produce(bootstrap, topic, batch):
    p = Producer(rdkafka_conf(bootstrap))
    for i, line in enumerate(batch):
        p.produce(topic, key=f"line-{i}".encode(), value=line.encode(), partition=i % 2)
    flush_all(p)


def test_word_count_exactly_once_v2_survives_sigkill(broker, tmp_path):
    classes = tmp_path / "classes"
    compile_app(classes)
    src = create_topic(broker.bootstrap, unique("wc-in"), partitions=2)
    dst = create_topic(broker.bootstrap, unique("wc-out"), partitions=2)
    app_id = unique("wc-app")
    cmd = ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
           f"-Dlog4j2.configurationFile={BIN_DIR / 'log4j2-tools.properties'}",
           "-cp", f"{classes}:{LIBS}/*", "WordCountEos",
           broker.bootstrap, src, dst, app_id, str(tmp_path / "state")]
    log = open(tmp_path / "streams.log", "ab")

    def start():
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(proc):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    first_batch, second_batch, third_batch = lines(0, 60), lines(60, 60), lines(120, 60)
    out = Output(broker.bootstrap, dst)
    app = start()
    try:
        produce(broker.bootstrap, src, first_batch)
        out.wait_for(expected_counts(first_batch), timeout=60)
        # Kill it while it works through the second batch, then add a third while it is down.
        produce(broker.bootstrap, src, second_batch)
        time.sleep(0.3)
        kill(app)
        produce(broker.bootstrap, src, third_batch)
        app = start()
        final = expected_counts(first_batch + second_batch + third_batch)
        out.wait_for(final, timeout=90)
        # Settled: nothing more arrives, and no committed count ever went past the final one.
        out.poll(2)
        assert out.counts == dict(final)
        assert all(count <= final[word] for word, count in out.history)
    finally:
        kill(app)
        out.close()
        log.close()
