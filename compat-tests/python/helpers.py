"""Shared helpers: unique names, topic creation, bounded consume loops, CLI tool runner."""

import os
import subprocess
import time
import uuid
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

COMPAT_DIR = Path(__file__).resolve().parent.parent
BIN_DIR = COMPAT_DIR / "bin"

# librdkafka debug output can be enabled for a run with COMPAT_RDKAFKA_DEBUG=broker,protocol,...
_RDKAFKA_DEBUG = os.environ.get("COMPAT_RDKAFKA_DEBUG")


def unique(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def rdkafka_conf(bootstrap, **extra):
    conf = {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000}
    if _RDKAFKA_DEBUG:
        conf["debug"] = _RDKAFKA_DEBUG
    conf.update(extra)
    return conf


def admin_client(bootstrap):
    return AdminClient(rdkafka_conf(bootstrap))


def wait_for(predicate, timeout=15.0, interval=0.1, what="condition"):
    """Poll predicate() until it returns a truthy value; return it, or raise AssertionError."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
        except (KafkaException, OSError) as e:  # transient client errors while the broker catches up
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def topic_partitions(admin, topic, timeout=10):
    """Partition count from a Metadata request, or None if the topic is absent / not ready."""
    md = admin.list_topics(topic=topic, timeout=timeout)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    if any(p.leader < 0 or p.error is not None for p in t.partitions.values()):
        return None
    return len(t.partitions)


def topic_exists(admin, topic, timeout=10):
    """True if the topic appears in a metadata request for all topics (no auto-creation)."""
    md = admin.list_topics(timeout=timeout)
    return topic in md.topics


def create_topic(bootstrap, topic, partitions=1, config=None, timeout=30):
    admin = admin_client(bootstrap)
    fut = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=timeout, request_timeout=timeout,
    )[topic]
    fut.result(timeout=timeout)
    wait_for(lambda: topic_partitions(admin, topic) == partitions, timeout=timeout,
             what=f"topic {topic} with {partitions} partitions in metadata")
    return topic


def confluent_consumer(bootstrap, **extra):
    # The Python binding insists on a group.id even for assign(); we never commit.
    conf = rdkafka_conf(
        bootstrap,
        **{
            "group.id": unique("compat-assign"),
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
        },
    )
    conf.update(extra)
    return Consumer(conf)


def consume_confluent(bootstrap, topic, partition, count, timeout=30, start=OFFSET_BEGINNING, **extra):
    """Read exactly `count` messages from one partition via assign(); fail on errors or timeout."""
    c = confluent_consumer(bootstrap, **extra)
    try:
        c.assign([TopicPartition(topic, partition, start)])
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(out)}/{count} messages read from {topic}[{partition}] in {timeout}s")
            for m in c.consume(num_messages=count - len(out), timeout=0.5):
                if m.error():
                    raise AssertionError(f"consumer error: {m.error()}")
                out.append(m)
        # Nothing beyond what we expected (short grace period).
        extra_msgs = [m for m in c.consume(num_messages=10, timeout=0.3) if not m.error()]
        assert not extra_msgs, f"unexpected extra messages at offsets {[m.offset() for m in extra_msgs]}"
        return out
    finally:
        c.close()


def delivery_collector():
    """Returns (callback, results list of (err, msg))."""
    results = []

    def cb(err, msg):
        results.append((err, msg))

    return cb, results


def flush_all(producer, timeout=30):
    remaining = producer.flush(timeout)
    assert remaining == 0, f"{remaining} messages still undelivered after {timeout}s"


def run_tool(tool, *args, input=None, timeout=60, check=True, env=None):
    """Run a Kafka CLI wrapper from compat-tests/bin; returns CompletedProcess (text)."""
    cmd = [str(BIN_DIR / tool), *map(str, args)]
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, env=full_env)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            f"{tool} timed out after {timeout}s\ncmd: {cmd}\nstdout:\n{e.stdout}\nstderr:\n{e.stderr}"
        ) from None
    if check and p.returncode != 0:
        raise AssertionError(f"{tool} exited {p.returncode}\ncmd: {cmd}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def kafka_error_code(exc):
    """KafkaError code from a KafkaException (or KafkaError)."""
    if isinstance(exc, KafkaException):
        exc = exc.args[0]
    assert isinstance(exc, KafkaError), f"not a KafkaError: {exc!r}"
    return exc.code()
