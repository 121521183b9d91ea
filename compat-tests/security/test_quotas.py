"""Client byte-rate quotas (KIP-13), user / client-id quota entities and their precedence (KIP-55), throttle time
reported to clients with the broker muting the channel (KIP-124 / KIP-219), on the shared `node` through its
PLAINTEXT listener (and SASL_PLAINTEXT PLAIN as alice for the user quota).

Quotas are set and removed with kafka-configs.sh (`--alter --add-config producer_byte_rate=...` /
`--delete-config`, AlterClientQuotas) and read back with `--describe` (DescribeClientQuotas). Load comes from Kafka's
perf tools with `--print-metrics`; every assertion is on what those clients report:

    kafka-producer-perf-test.sh --topic T --num-records N --record-size 1024 --throughput -1 \
        --producer-props bootstrap.servers=B client.id=C acks=1 linger.ms=5 --print-metrics
      final line  "N records sent, R records/sec (X MB/sec), ..."                     -> X
      metrics     producer-metrics:produce-throttle-time-avg:{client-id=C}             (and -max)
    kafka-consumer-perf-test.sh --bootstrap-server B --topic T --messages N --consumer.config F(client.id=C) \
        --group G --timeout 20000 --print-metrics
      CSV row     start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
                  rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec             -> fetch.MB.sec
      metrics     consumer-fetch-manager-metrics:fetch-throttle-time-avg:{client-id=C}      (and -max)

Why N = 13000 records of 1 KiB for a 1 MiB/s quota (about 13 s per throttled run): Kafka measures a client's rate
over quota.window.num=11 samples of quota.window.size.seconds=1, and Rate.windowSize() never divides by less than
(samples - 1) = 10 full windows. A fresh client therefore sends ~10 MiB (quota x 10 s) at full speed before its first
throttle: 10000 x 1 KiB (the first idea) is never throttled on Kafka 4.1.2 (5.7 MB/sec, throttle 0). Past that
allowance the broker answers with throttle_time_ms = (rate - quota) / quota x window (not capped for produce) and
mutes the channel; the Java producer (16 KiB batches) then nearly stalls until the burst's samples expire ~11 s after
they were taken, and its last records complete without waiting. The run's overall rate is ~1 MB/s only when the run
ends shortly after that point: 13000 records gave 1.01-1.03 MB/sec on Kafka 4.1.2 (14000: 1.10, 20000: 1.55).

Quota configs are removed after each test (kafka-configs.sh --delete-config), client ids are unique per test (the
broker keeps a client's rate samples for 11 s and its sensors for an hour).
"""

import re
import time

import pytest

import shelpers as h
from secnode import run_tool

QUOTA = 1048576                 # bytes/s = 1 MiB/s; the perf tools' "MB" is 1024 * 1024 bytes
TOLERANCE = 0.20                # measured rate within 20 % of the quota
THROTTLED_RECORDS = 13000       # ~12.7 MiB: past the ~10 MiB first-window allowance, see the module docstring
FREE_RECORDS = 16000            # ~15.6 MiB: a throttled client could not send this faster than ~1.5 MB/s
FREE_MIN_MB_S = 3.0             # an unthrottled client on this machine: 5.7-22 MB/sec on Kafka 4.1.2
RECORD_SIZE = 1024
PROPAGATION_TIMEOUT = 15.0


# --------------------------------------------------------------------------------------------- helpers


def client_entity(client_id):
    return ["--entity-type", "clients", "--entity-name", client_id]


def user_default_client_entity(user):
    return ["--entity-type", "users", "--entity-name", user, "--entity-type", "clients", "--entity-default"]


def configs(node, *args, check=True):
    return run_tool("kafka-configs.sh", "--bootstrap-server", node.bootstrap("PLAINTEXT"), *args, check=check)


def describe_quotas(node, entity):
    """kafka-configs.sh --describe for one entity -> {config: float}. Kafka prints e.g.
    `Quota configs for client-id 'c' are producer_byte_rate=1048576.0` (values are Java doubles: 1.048576E8)."""
    out = configs(node, "--describe", *entity).stdout
    return {k: float(v) for k, v in re.findall(r"(\w+_byte_rate|request_percentage|connection_creation_rate)=([0-9.Ee+-]+)", out)}, out


class Quota:
    """Context manager: add quota configs to an entity, wait until --describe shows them (DescribeClientQuotas is
    answered by the broker), and delete them on exit (also when the test fails)."""

    def __init__(self, node, entity, **values):
        self.node, self.entity, self.values = node, entity, values

    def __enter__(self):
        spec = ",".join(f"{k}={v}" for k, v in self.values.items())
        p = configs(self.node, "--alter", "--add-config", spec, *self.entity)
        assert "Completed updating config" in p.stdout, p.stdout
        want = {k: float(v) for k, v in self.values.items()}
        deadline = time.monotonic() + PROPAGATION_TIMEOUT
        while True:
            got, out = describe_quotas(self.node, self.entity)
            if all(got.get(k) == v for k, v in want.items()):
                return self
            if time.monotonic() > deadline:
                raise AssertionError(f"quota {want} for {self.entity} not described after {PROPAGATION_TIMEOUT}s: "
                                     f"{out!r}")
            time.sleep(0.5)

    def __exit__(self, *exc):
        p = configs(self.node, "--alter", "--delete-config", ",".join(self.values), *self.entity, check=False)
        if exc[0] is None:
            assert p.returncode == 0, f"--delete-config failed: {p.stdout}\n{p.stderr}"
        return False


def parse_metrics(stdout):
    """--print-metrics table -> {"group:name:{tags}": value (float, or str for non-numeric values)}."""
    metrics = {}
    for line in stdout.splitlines():
        m = re.match(r"^([\w-]+:[\w-]+:\{[^}]*\})\s*:\s*(\S.*?)\s*$", line)
        if m:
            try:
                metrics[m.group(1)] = float(m.group(2))
            except ValueError:
                metrics[m.group(1)] = m.group(2)
    return metrics


def create_topic(node):
    topic = h.unique("quota")
    h.ck_create_topic({"bootstrap.servers": node.bootstrap("PLAINTEXT")}, topic)
    return topic


def producer_perf(node, topic, records, client_id, listener="PLAINTEXT", config=None):
    """kafka-producer-perf-test.sh; returns dict(records, mb_s, throttle_avg, throttle_max, elapsed, stdout)."""
    args = ["--topic", topic, "--num-records", records, "--record-size", RECORD_SIZE, "--throughput", -1]
    if config:
        args += ["--producer.config", config]
    args += ["--producer-props", f"bootstrap.servers={node.bootstrap(listener)}", f"client.id={client_id}",
             "acks=1", "linger.ms=5", "--print-metrics"]
    t0 = time.monotonic()
    p = run_tool("kafka-producer-perf-test.sh", *args, timeout=120)
    elapsed = time.monotonic() - t0
    final = [l for l in p.stdout.splitlines() if "records sent" in l and "99.9th" in l]
    assert final, f"no final summary line in\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}"
    m = re.match(r"^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)", final[-1])
    assert m, final[-1]
    metrics = parse_metrics(p.stdout)
    tag = f"{{client-id={client_id}}}"
    avg_key, max_key = (f"producer-metrics:produce-throttle-time-{s}:{tag}" for s in ("avg", "max"))
    assert avg_key in metrics and max_key in metrics, f"{avg_key} / {max_key} missing from\n{p.stdout[-5000:]}"
    return {"records": int(m.group(1)), "mb_s": float(m.group(3)), "throttle_avg": metrics[avg_key],
            "throttle_max": metrics[max_key], "summary": final[-1], "elapsed": elapsed, "stdout": p.stdout}


def consumer_perf(node, topic, messages, client_id, tmp_path):
    """kafka-consumer-perf-test.sh (group consumer); returns the CSV row as a dict plus the fetch throttle metrics."""
    cfg = tmp_path / f"{client_id}.properties"
    cfg.write_text(f"client.id={client_id}\n")
    t0 = time.monotonic()
    p = run_tool("kafka-consumer-perf-test.sh", "--bootstrap-server", node.bootstrap("PLAINTEXT"), "--topic", topic,
                 "--messages", messages, "--consumer.config", cfg, "--group", h.unique("quota-g"),
                 "--timeout", 20000, "--print-metrics", timeout=120)
    elapsed = time.monotonic() - t0
    lines = p.stdout.splitlines()
    hdr = [i for i, l in enumerate(lines) if l.startswith("start.time")]
    assert hdr and hdr[0] + 1 < len(lines), f"no stats in\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}"
    names = [c.strip() for c in lines[hdr[0]].split(",")]
    values = [c.strip() for c in lines[hdr[0] + 1].split(",")]
    row = dict(zip(names, values))
    metrics = parse_metrics(p.stdout)
    tag = f"{{client-id={client_id}}}"
    avg_key, max_key = (f"consumer-fetch-manager-metrics:fetch-throttle-time-{s}:{tag}" for s in ("avg", "max"))
    assert avg_key in metrics and max_key in metrics, f"{avg_key} / {max_key} missing from\n{p.stdout[-5000:]}"
    return {"row": row, "nmsg": int(row["data.consumed.in.nMsg"]), "mb_s": float(row["MB.sec"]),
            "fetch_mb_s": float(row["fetch.MB.sec"]), "throttle_avg": metrics[avg_key],
            "throttle_max": metrics[max_key], "elapsed": elapsed, "stderr": p.stderr}


def within(rate, quota_mb=QUOTA / 1048576):
    return abs(rate - quota_mb) <= TOLERANCE * quota_mb


def show(r):
    return {k: v for k, v in r.items() if k not in ("stdout", "stderr")}


# --------------------------------------------------------------------------------------------- tests


def test_producer_byte_rate_quota_throttles_client(node):
    """producer_byte_rate=1048576 on a client id: the Java producer with that client.id reports a positive
    produce-throttle-time-avg and an overall rate within 20 % of 1 MiB/s; after --delete-config the entity's
    quota is gone from --describe."""
    client_id = h.unique("quota-client")
    topic = create_topic(node)
    with Quota(node, client_entity(client_id), producer_byte_rate=QUOTA):
        r = producer_perf(node, topic, THROTTLED_RECORDS, client_id)
    print(f"throttled producer: {show(r)}")
    assert r["records"] == THROTTLED_RECORDS, r["summary"]
    assert r["throttle_avg"] > 0 and r["throttle_max"] > 0, show(r)
    assert within(r["mb_s"]), f"rate {r['mb_s']} MB/sec not within {TOLERANCE:.0%} of 1 MB/s: {show(r)}"
    h.wait_for(lambda: describe_quotas(node, client_entity(client_id))[0] == {}, timeout=PROPAGATION_TIMEOUT,
               interval=0.5, what=f"--describe of client-id {client_id} without the deleted quota")


def test_other_client_id_not_throttled(node):
    """While client id A has producer_byte_rate=1 MiB/s, a producer with another client.id (no quota of its own,
    no default quota) is never throttled: throttle time 0 and well above 1 MB/s, sending more than the ~10 MiB a
    throttled client could burst."""
    quoted = h.unique("quota-client")
    free = h.unique("free-client")
    topic = create_topic(node)
    with Quota(node, client_entity(quoted), producer_byte_rate=QUOTA):
        r = producer_perf(node, topic, FREE_RECORDS, free)
    print(f"unthrottled producer: {show(r)}")
    assert r["records"] == FREE_RECORDS, r["summary"]
    assert r["throttle_avg"] == 0 and r["throttle_max"] == 0, show(r)
    assert r["mb_s"] > FREE_MIN_MB_S, show(r)


def test_consumer_byte_rate_quota_throttles_fetch(node, tmp_path):
    """consumer_byte_rate=1048576 on a client id: kafka-consumer-perf-test with that client.id reports a positive
    fetch-throttle-time-avg and a fetch rate (fetch.MB.sec: group join excluded) within 20 % of 1 MiB/s."""
    client_id = h.unique("quota-consumer")
    topic = create_topic(node)
    w = producer_perf(node, topic, THROTTLED_RECORDS + 1000, h.unique("quota-writer"))
    assert w["records"] == THROTTLED_RECORDS + 1000 and w["throttle_avg"] == 0, show(w)
    with Quota(node, client_entity(client_id), consumer_byte_rate=QUOTA):
        r = consumer_perf(node, topic, THROTTLED_RECORDS, client_id, tmp_path)
    print(f"throttled consumer: {show(r)}")
    assert THROTTLED_RECORDS <= r["nmsg"] <= THROTTLED_RECORDS + 1000, show(r)
    assert r["throttle_avg"] > 0 and r["throttle_max"] > 0, show(r)
    assert within(r["fetch_mb_s"]), f"fetch rate {r['fetch_mb_s']} MB/sec not within {TOLERANCE:.0%}: {show(r)}"
    assert r["mb_s"] <= 1.0 + TOLERANCE, show(r)  # overall rate (group join included) is lower still


def test_user_default_client_quota_beats_client_id_quota(node, tmp_path):
    """KIP-55 precedence: /config/users/alice/clients/<default> (1 MiB/s) wins over /config/clients/C (100 MiB/s).
    alice (SASL_PLAINTEXT PLAIN) producing with client.id=C is throttled at ~1 MiB/s; the same client.id on PLAINTEXT
    (User:ANONYMOUS, no user quota) gets C's generous quota and is not throttled."""
    sasl = node.bootstrap("SASL_PLAINTEXT")  # skips when the listener is not configured
    assert sasl
    client_id = h.unique("c1")
    cfg = tmp_path / "alice.properties"
    cfg.write_text(h.java_client_props(node, "SASL_PLAINTEXT", "PLAIN", user="alice"))
    topic = create_topic(node)
    with Quota(node, user_default_client_entity("alice"), producer_byte_rate=QUOTA), \
            Quota(node, client_entity(client_id), producer_byte_rate=100 * QUOTA):
        alice = producer_perf(node, topic, THROTTLED_RECORDS, client_id, listener="SASL_PLAINTEXT", config=cfg)
        anon = producer_perf(node, topic, FREE_RECORDS, client_id)
    print(f"alice as {client_id}: {show(alice)}")
    print(f"ANONYMOUS as {client_id}: {show(anon)}")
    assert alice["records"] == THROTTLED_RECORDS, alice["summary"]
    assert alice["throttle_avg"] > 0 and alice["throttle_max"] > 0, show(alice)
    assert within(alice["mb_s"]), f"alice's rate {alice['mb_s']} MB/sec not within {TOLERANCE:.0%}: {show(alice)}"
    assert anon["records"] == FREE_RECORDS, anon["summary"]
    assert anon["throttle_avg"] == 0 and anon["throttle_max"] == 0, show(anon)
    assert anon["mb_s"] > FREE_MIN_MB_S, show(anon)


def produce_until_throttled(node, topic, client_id, max_requests, deadline_s=30.0):
    """confluent-kafka producer (linger.ms=0, one Produce request per flush) sending one record per request until its
    throttle_cb reports a throttle from the broker; returns (requests sent, [throttle ms reported])."""
    from confluent_kafka import Producer
    throttles = []
    p = Producer({"bootstrap.servers": node.bootstrap("PLAINTEXT"), "client.id": client_id, "linger.ms": 0,
                  "acks": 1, "throttle_cb": lambda e: throttles.append(e.throttle_time * 1000.0)})
    sent, deadline = 0, time.monotonic() + deadline_s
    while sent < max_requests and not throttles and time.monotonic() < deadline:
        p.produce(topic, value=b"x" * 100)
        assert p.flush(20) == 0, "record not delivered"
        sent += 1
    del p  # the throttled connection stays muted on the broker; nothing more is sent on it
    return sent, throttles


def test_request_percentage_quota_throttles_client(node):
    """request_percentage=0.01 (KIP-124: 0.01 % of one request-handler thread) on a client id: a producer with that
    client.id sending one small Produce request at a time is answered with a throttle time (librdkafka's
    throttle_cb) within a few hundred requests, never longer than one quota window (1 s, unlike byte-rate throttles);
    another client id sending as many requests is never throttled."""
    quoted = h.unique("req-quota")
    free = h.unique("req-free")
    topic = create_topic(node)
    with Quota(node, client_entity(quoted), request_percentage=0.01):
        sent, throttles = produce_until_throttled(node, topic, quoted, max_requests=2000)
        print(f"request quota: throttled after {sent} requests: {throttles} ms")
        assert throttles and throttles[0] > 0, f"no throttle after {sent} requests"
        # Kafka's ClientRequestQuotaManager bounds a request-time throttle by one quota window (1 s)
        assert max(throttles) <= 1000, throttles
        free_sent, free_throttles = produce_until_throttled(node, topic, free, max_requests=max(sent, 200))
        print(f"no quota: {free_sent} requests, throttles {free_throttles}")
        assert free_throttles == [] and free_sent == max(sent, 200)


def test_ip_connection_creation_rate(node):
    """connection_creation_rate=2 on the ip 127.0.0.2 (KIP-612, `--entity-type ips`): connections from 127.0.0.2
    (hand-written ApiVersions v0 frames, a fresh connection each time) are served until the rate over the quota
    windows passes 2/s, then accepted and closed unanswered within the throttle time (at most one window, 1 s);
    meanwhile connections from 127.0.0.1 are served."""
    import socket

    import secwire
    port = node.port("PLAINTEXT")

    def attempt(source):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
        with secwire.RawConn(None, None, timeout=5.0, sock=sock) as c:
            c.send(secwire.api_versions_v0(corr=5))
            t0 = time.monotonic()
            try:
                c.recv_response(5)
                return "served", time.monotonic() - t0
            except secwire.Closed as e:  # a throttled connection is closed without an answer
                return e.how, time.monotonic() - t0
            except socket.timeout:
                return "timeout", time.monotonic() - t0

    with Quota(node, ["--entity-type", "ips", "--entity-name", "127.0.0.2"], connection_creation_rate=2):
        results = []
        for _ in range(26):
            results.append(attempt("127.0.0.2"))
            if results[-1][0] != "served":
                break
        other = attempt("127.0.0.1")
    print(f"connections from 127.0.0.2: {[r[0] for r in results]}; last closed after {results[-1][1]:.2f}s")
    served = sum(1 for r in results if r[0] == "served")
    assert 18 <= served <= 22, results  # 2/s over the 10-window minimum span: 20 on Kafka 4.1.2 and gregor
    assert results[-1][0] in ("eof", "reset") and results[-1][1] <= 1.5, results[-1]
    assert other[0] == "served", other
