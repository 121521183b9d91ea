"""KIP-368 SASL re-authentication (`connections.max.reauth.ms`) on a SECOND single-node broker (`reauth_node`,
module-scoped, stopped at the end of the module) whose SASL_PLAINTEXT listener has short session lifetimes, set with
the listener prefix and, for SCRAM-SHA-512, the listener + mechanism prefix (both are Kafka syntax):

    listener.name.sasl_plaintext.connections.max.reauth.ms=3000
    listener.name.sasl_plaintext.scram-sha-512.connections.max.reauth.ms=6000

(the shared node keeps connections.max.reauth.ms=0, which test_raw_protocol.py relies on). Raw frames check the
session lifetime in SaslAuthenticate, the close of an expired session, re-authentication on the same connection and
its failures; unmodified clients (Java producer/consumer perf tools, confluent-kafka) run for several lifetimes and
must re-authenticate transparently.
"""

import json
import re
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer

import secnode
import secwire as w
import shelpers as h
from secnode import run_tool

LIFETIME_MS = 3000                  # PLAIN, SCRAM-SHA-256
LIFETIME_512_MS = 6000              # SCRAM-SHA-512 (mechanism-prefixed override)
REAUTH_PROPS = {
    "listener.name.sasl_plaintext.connections.max.reauth.ms": str(LIFETIME_MS),
    "listener.name.sasl_plaintext.scram-sha-512.connections.max.reauth.ms": str(LIFETIME_512_MS),
}
LIFETIMES = {"PLAIN": LIFETIME_MS, "SCRAM-SHA-256": LIFETIME_MS, "SCRAM-SHA-512": LIFETIME_512_MS}
MARGIN = 0.6                        # seconds slept past an expiry (or kept before one)
PLAIN_FAIL = "Authentication failed: Invalid username or password"
SCRAM_REAUTH_FAIL = "Authentication failed during re-authentication due to invalid credentials with SASL mechanism {}"


@pytest.fixture(scope="module")
def reauth_node(tmp_path_factory, certs):
    if "SASL_PLAINTEXT" not in secnode.selected_listeners():
        pytest.skip("the re-authentication node needs the SASL_PLAINTEXT listener (SECURITY_LISTENERS)")
    impl = secnode.selected_impl()
    try:
        n = secnode.SecNode(tmp_path_factory.mktemp(f"reauth-node-{impl}"), certs, impl=impl,
                            listeners=("PLAINTEXT", "SASL_PLAINTEXT"), extra_props=REAUTH_PROPS)
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    error = None
    try:
        secs = n.start()
    except Exception as e:  # noqa: BLE001 - reported as every test's error
        error = f"{impl} did not start with the re-authentication properties ({n.props_path}): {e}"
    if error:
        pytest.fail(error, pytrace=False)
    print(f"{impl} re-authentication node started in {secs:.1f}s: ports {n.ports}", flush=True)
    try:
        for user, creds in secnode.SCRAM_USERS.items():
            for cred in creds:
                n.scram_alter(user, add=[cred])
        run_tool("kafka-topics.sh", "--bootstrap-server", n.bootstrap("PLAINTEXT"), "--create",
                 "--topic", "sec-liveness", "--partitions", "1", "--replication-factor", "1")
        yield n
    finally:
        rc = n.stop()
        print(f"{impl} re-authentication node stopped: exit {rc}", flush=True)


# --------------------------------------------------------------------------------------------- raw helpers


def conn(node):
    return w.RawConn("127.0.0.1", node.port("SASL_PLAINTEXT"), timeout=10)


def handshake(c, mechanism, corr):
    return w.parse_sasl_handshake_v1(c.roundtrip(w.sasl_handshake_v1(mechanism, corr=corr), corr))


def authenticate(c, token, corr):
    return w.parse_sasl_authenticate_v1(c.roundtrip(w.sasl_authenticate_v1(token, corr=corr), corr))


def login(c, mechanism, user="alice", password=None, corr=1):
    """SaslHandshake v1 + SaslAuthenticate v1 (PLAIN: one token; SCRAM: client-first, client-final). Returns the
    last SaslAuthenticate response (its session_lifetime_ms); asserts every step before the last succeeded."""
    password = h.PASSWORDS[user] if password is None else password
    r = handshake(c, mechanism, corr)
    assert r["error_code"] == 0, r
    if mechanism == "PLAIN":
        return authenticate(c, w.plain_token(user, password), corr + 1)
    scram = w.ScramClient(mechanism, user, password)
    r = authenticate(c, scram.first(), corr + 1)
    assert r["error_code"] == 0 and r["session_lifetime_ms"] == 0, r
    r = authenticate(c, scram.final(r["auth_bytes"]), corr + 2)
    if r["error_code"] == 0:
        assert scram.verify(r["auth_bytes"]), r
    return r


def metadata(c, node, corr):
    md = w.parse_metadata_v1(c.roundtrip(w.metadata_v1(corr=corr), corr))
    assert md["brokers"] == {1: ("127.0.0.1", node.port("SASL_PLAINTEXT"))}, md
    return md


def assert_closed(c, timeout=10):
    how, extra = c.outcome(timeout=timeout)
    assert how in ("eof", "reset"), f"connection not closed within {timeout}s ({how}); received {extra[:64]!r}"
    assert extra == b"", f"expected a close without a response, got {extra[:64]!r}"


def sleep_until(t):
    time.sleep(max(0.0, t - time.monotonic()))


# --------------------------------------------------------------------------------------------- raw frames


def test_session_lifetime_and_expiry(reauth_node):
    """One connection per mechanism: the final SaslAuthenticate carries session_lifetime_ms = the listener's
    connections.max.reauth.ms (3000; SCRAM-SHA-512: its mechanism-prefixed 6000; the SCRAM server-first carries 0).
    Metadata is answered before expiry; once a session has expired, the next request (Metadata; ApiVersions too)
    closes the connection without a response, while the connections whose session is still valid keep being served, and a
    new connection authenticates and is served."""
    node = reauth_node
    conns = {m: conn(node) for m in LIFETIMES}
    done = {}  # when each login had completed: the session ends LIFETIME after a moment before that
    try:
        for m, c in conns.items():
            r = login(c, m)
            done[m] = time.monotonic()
            assert r["error_code"] == 0 and r["session_lifetime_ms"] == LIFETIMES[m], (m, r)
            metadata(c, node, 10)
        sleep_until(max(done["PLAIN"], done["SCRAM-SHA-256"]) + LIFETIME_MS / 1000 + MARGIN)
        conns["PLAIN"].send(w.metadata_v1(corr=11))
        assert_closed(conns["PLAIN"])
        conns["SCRAM-SHA-256"].send(w.api_versions_v0(corr=11))  # ApiVersions is no exception
        assert_closed(conns["SCRAM-SHA-256"])
        metadata(conns["SCRAM-SHA-512"], node, 11)  # its session lasts 6 s
        with conn(node) as fresh:
            assert login(fresh, "PLAIN")["session_lifetime_ms"] == LIFETIME_MS
            metadata(fresh, node, 10)
        sleep_until(done["SCRAM-SHA-512"] + LIFETIME_512_MS / 1000 + MARGIN)
        conns["SCRAM-SHA-512"].send(w.metadata_v1(corr=12))
        assert_closed(conns["SCRAM-SHA-512"])
    finally:
        for c in conns.values():
            c.close()
    h.assert_serving(node)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_reauthenticate_on_same_connection(reauth_node, mechanism):
    """Halfway through the session the client re-authenticates on the same connection (SaslHandshake v1 +
    SaslAuthenticate v1 again): success with a fresh session_lifetime_ms. A second re-authentication right after
    (Kafka allows one per second) is refused with ILLEGAL_SASL_STATE and an empty mechanism list, and the
    connection stays usable. Past the original expiry requests are still answered; past the renewed one the
    connection is closed at the next request."""
    node = reauth_node
    life = LIFETIMES[mechanism] / 1000
    with conn(node) as c:
        assert login(c, mechanism)["session_lifetime_ms"] == LIFETIMES[mechanism]
        t0 = time.monotonic()  # the first session ends before t0 + life
        metadata(c, node, 10)
        sleep_until(t0 + life / 2)
        r = login(c, mechanism, corr=20)
        t1 = time.monotonic()  # the renewed one after t0 + life / 2 + life, before t1 + life
        assert r["error_code"] == 0 and r["session_lifetime_ms"] == LIFETIMES[mechanism], r
        assert r["error_message"] in ("", None), r
        metadata(c, node, 30)
        r = handshake(c, mechanism, 31)
        assert r["error_code"] == 34 and r["mechanisms"] == [], r
        metadata(c, node, 32)
        sleep_until(t0 + life + MARGIN)
        metadata(c, node, 33)
        sleep_until(t1 + life + MARGIN)
        c.send(w.metadata_v1(corr=34))
        assert_closed(c)


def test_reauthenticate_after_expiry(reauth_node):
    """An expired session may still re-authenticate (only requests other than SaslHandshake close it): after the
    lifetime has passed, SaslHandshake + SaslAuthenticate succeed and Metadata is answered again."""
    node = reauth_node
    with conn(node) as c:
        assert login(c, "PLAIN")["session_lifetime_ms"] == LIFETIME_MS
        sleep_until(time.monotonic() + LIFETIME_MS / 1000 + MARGIN)
        r = login(c, "PLAIN", corr=20)
        assert r["error_code"] == 0 and r["session_lifetime_ms"] == LIFETIME_MS, r
        metadata(c, node, 30)


@pytest.mark.parametrize("case", ["other-principal", "plain-wrong-password", "scram-wrong-password",
                                  "other-mechanism"])
def test_failed_reauthentication_closes(reauth_node, case):
    """Re-authentication that fails: as another user (admin after alice) -> SASL_AUTHENTICATION_FAILED with
    Kafka's "Cannot change principals" message; a wrong password -> SASL_AUTHENTICATION_FAILED with the
    re-authentication variant of the mechanism's message; another mechanism (SCRAM-SHA-256 after PLAIN) -> the
    handshake is accepted, the SaslAuthenticate gets no response. In every case the connection is then closed,
    and the broker keeps serving others."""
    node = reauth_node
    first = "SCRAM-SHA-256" if case == "scram-wrong-password" else "PLAIN"
    with conn(node) as c:
        assert login(c, first)["error_code"] == 0
        metadata(c, node, 10)
        if case == "other-principal":
            r = login(c, "PLAIN", user="admin", corr=20)
            assert r["error_code"] == 58, r
            assert r["error_message"] == ("Cannot change principals during re-authentication from User.alice: "
                                          "User.admin"), r
        elif case == "plain-wrong-password":
            r = login(c, "PLAIN", password="wrong", corr=20)
            assert r["error_code"] == 58 and r["error_message"] == PLAIN_FAIL, r
        elif case == "scram-wrong-password":
            r = login(c, "SCRAM-SHA-256", password="wrong", corr=20)
            assert r["error_code"] == 58 and r["error_message"] == SCRAM_REAUTH_FAIL.format("SCRAM-SHA-256"), r
        else:
            r = handshake(c, "SCRAM-SHA-256", 20)
            assert r["error_code"] == 0, r
            c.send(w.sasl_authenticate_v1(w.ScramClient("SCRAM-SHA-256", "alice", "alice-secret").first(), corr=21))
        assert_closed(c)
    h.assert_serving(node)


# --------------------------------------------------------------------------------------------- clients


# The Java tools' log configuration plus DEBUG for the client's SASL authenticator, whose lines
# "Finished re-authentication with session expiration in 3000 ms ..." count the re-authentications.
SASL_DEBUG_LOG4J = (secnode.BIN_DIR / "log4j2-tools.properties").read_text() + """
logger.sasl.name = org.apache.kafka.common.security.authenticator.SaslClientAuthenticator
logger.sasl.level = debug
"""


def metric(stdout, name):
    """One value of a --print-metrics table (`group:name:{tags}   : value`), None when absent."""
    m = re.search(r"^" + re.escape(name) + r"\s*:\s*([0-9.Ee+-]+)\s*$", stdout, re.M)
    return float(m.group(1)) if m else None


def test_java_clients_reauthenticate(reauth_node, tmp_path):
    """kafka-producer-perf-test (1200 records at 100/s) and kafka-consumer-perf-test (group consumer) run side by
    side for ~12 s (4 session lifetimes) over SASL_PLAINTEXT SCRAM-SHA-256: every record is sent and consumed, no
    WARN/ERROR is logged, and both re-authenticate: the producer's successful-reauthentication-total >= 2 with
    failed-reauthentication-total 0 (--print-metrics; the consumer tool prints no such metric), and >= 2 "Finished
    re-authentication" DEBUG lines of the SASL client authenticator in each tool's log."""
    node = reauth_node
    records = 1200
    topic, group = h.unique("reauth-j"), h.unique("reauth-jg")
    h.ck_create_topic({"bootstrap.servers": node.bootstrap("PLAINTEXT")}, topic)
    cfg = tmp_path / "client.properties"
    cfg.write_text(h.java_client_props(node, "SASL_PLAINTEXT", "SCRAM-SHA-256"))
    log4j = tmp_path / "log4j2.properties"
    log4j.write_text(SASL_DEBUG_LOG4J)
    env = {"KAFKA_LOG4J_OPTS": f"-Dlog4j2.configurationFile={log4j}"}
    b = node.bootstrap("SASL_PLAINTEXT")
    results = {}

    def consume():
        results["consumer"] = run_tool("kafka-consumer-perf-test.sh", "--bootstrap-server", b, "--topic", topic,
                                       "--messages", records, "--consumer.config", cfg, "--group", group,
                                       "--timeout", 30000, timeout=120, check=False, env=env)

    t = threading.Thread(target=consume)
    t.start()
    t0 = time.monotonic()
    prod = run_tool("kafka-producer-perf-test.sh", "--topic", topic, "--num-records", records, "--record-size", 100,
                    "--throughput", 100, "--producer.config", cfg, "--producer-props", f"bootstrap.servers={b}",
                    "client.id=reauth-producer", "acks=all", "--print-metrics", timeout=120, check=False, env=env)
    produced_in = time.monotonic() - t0
    t.join(150)
    cons = results["consumer"]
    assert prod.returncode == 0, f"producer exited {prod.returncode}\n{prod.stdout[-3000:]}\n{prod.stderr[-3000:]}"
    assert cons.returncode == 0, f"consumer exited {cons.returncode}\n{cons.stdout[-3000:]}\n{cons.stderr[-3000:]}"
    final = [l for l in prod.stdout.splitlines() if "records sent" in l and "99.9th" in l]
    assert final and final[-1].startswith(f"{records} records sent"), prod.stdout[-3000:]
    ok, failed = (metric(prod.stdout, f"producer-metrics:{m}-reauthentication-total:{{client-id=reauth-producer}}")
                  for m in ("successful", "failed"))
    lines = cons.stdout.splitlines()
    hdr = [i for i, l in enumerate(lines) if l.startswith("start.time")]
    assert hdr and hdr[0] + 1 < len(lines), cons.stdout[-3000:]
    row = dict(zip([c.strip() for c in lines[hdr[0]].split(",")], [c.strip() for c in lines[hdr[0] + 1].split(",")]))
    reauth_lines = {who: len(re.findall(r"Finished re-authentication with session expiration in 3000 ms", p.stderr))
                    for who, p in (("producer", prod), ("consumer", cons))}
    print(f"java clients: produced in {produced_in:.1f}s: {final[-1]}; consumed {row.get('data.consumed.in.nMsg')}; "
          f"producer re-authentications ok={ok} failed={failed}; 'Finished re-authentication' lines {reauth_lines}")
    assert int(row["data.consumed.in.nMsg"]) == records, row
    assert ok is not None and ok >= 2 and failed == 0, (ok, failed)
    assert all(n >= 2 for n in reauth_lines.values()), reauth_lines
    for who, p in (("producer", prod), ("consumer", cons)):
        bad = [l for l in p.stderr.splitlines() if re.match(r"^\[[^]]*\] (WARN|ERROR) ", l)]
        assert not bad, f"{who} logged:\n" + "\n".join(bad[:20])


def test_confluent_clients_reauthenticate(reauth_node):
    """confluent-kafka (librdkafka 2.16; KIP-368 re-authentication since 2.2) producer (PLAIN) and group consumer
    (SCRAM-SHA-256) over SASL_PLAINTEXT, producing and consuming for 10 s (> 3 lifetimes): every record is delivered
    and consumed, no error callback, librdkafka's statistics show no disconnect of the broker connections (the
    sessions were renewed on the same connections), and its `debug=security` log has >= 2 "Auth in state REAUTH"
    lines for each client."""
    node = reauth_node
    topic, group = h.unique("reauth-ck"), h.unique("reauth-ckg")
    h.ck_create_topic({"bootstrap.servers": node.bootstrap("PLAINTEXT")}, topic)
    errors, stats, logs = [], {}, []

    def on_stats(who):
        def cb(s):
            stats[who] = json.loads(s)
        return cb

    common = {"error_cb": errors.append, "statistics.interval.ms": 500, "debug": "security",
              "logger": _Logs(logs)}
    pconf = h.ck_conf(node, "SASL_PLAINTEXT", "PLAIN", **common, stats_cb=on_stats("producer"), acks="all")
    cconf = h.ck_conf(node, "SASL_PLAINTEXT", "SCRAM-SHA-256", **common, stats_cb=on_stats("consumer"),
                      **{"group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": True})
    p, c = Producer(pconf), Consumer(cconf)
    c.subscribe([topic])
    delivered, got = [], []
    try:
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < 10:
            p.produce(topic, value=f"v{i}".encode(), on_delivery=lambda err, m: delivered.append(err))
            i += 1
            p.poll(0)
            m = c.poll(0.1)
            if m is not None and not m.error():
                got.append(m.value())
        assert p.flush(20) == 0
        deadline = time.monotonic() + 20
        while len(got) < i and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m.value())
        time.sleep(1)  # one more statistics round
        p.poll(0)
        c.poll(0.1)
    finally:
        c.close()
    reauths = {who: sum(1 for l in logs if f"[rdkafka#{who}-" in l and "Auth in state REAUTH" in l)
               for who in ("producer", "consumer")}
    disconnects = {who: {b["name"]: b["disconnects"] for b in s["brokers"].values() if b["nodeid"] >= 0}
                   for who, s in stats.items()}
    print(f"confluent clients: {i} produced, {len(got)} consumed, disconnects {disconnects}, "
          f"re-authentications {reauths}")
    assert set(disconnects) == {"producer", "consumer"} and all(disconnects.values()), disconnects
    assert delivered == [None] * i, delivered
    assert sorted(got) == sorted(f"v{n}".encode() for n in range(i))
    assert not errors, errors
    assert all(d == 0 for per in disconnects.values() for d in per.values()), disconnects
    assert all(n >= 2 for n in reauths.values()), reauths


class _Logs:
    """A logging.Logger stand-in for librdkafka's `logger` option: keeps the formatted lines."""

    def __init__(self, lines):
        self.lines = lines

    def log(self, level, fmt, *args):
        self.lines.append(fmt % args if args else fmt)
