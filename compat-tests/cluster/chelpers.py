"""Helpers for the cluster tests: clients, bounded polling, CLI output parsers."""

import os
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
