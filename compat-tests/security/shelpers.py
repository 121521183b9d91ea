"""Client helpers for the security tests: confluent-kafka / kafka-python / Java client configurations per listener
and mechanism, a produce + group-consume round trip, auth-error capture, and a liveness check."""

import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import secwire

PASSWORDS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}


def unique(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for(predicate, timeout=15.0, interval=0.2, what="condition"):
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


# --------------------------------------------------------------------------------------------- confluent-kafka


def ck_conf(node, listener, mechanism=None, user="alice", password=None, cert="alice", ca=True, **extra):
    """librdkafka configuration for one listener. SASL_*: sasl.mechanism/username/password. SSL/SASL_SSL: the test CA
    as trust store (hostname verification on, the broker cert has SAN IP:127.0.0.1); SSL: client cert `cert`
    (None = no client certificate)."""
    conf = {"bootstrap.servers": node.bootstrap(listener), "security.protocol": listener.lower(),
            "socket.timeout.ms": 10000, "log_level": 3}
    if listener.startswith("SASL"):
        conf.update({"sasl.mechanism": mechanism, "sasl.username": user,
                     "sasl.password": PASSWORDS.get(user) if password is None else password})
    if listener.endswith("SSL"):
        if ca:
            conf["ssl.ca.location"] = node.certs.path("ca.pem")
        conf["ssl.endpoint.identification.algorithm"] = "https"
        if listener == "SSL" and cert:
            conf["ssl.certificate.location"] = node.certs.path(f"{cert}.pem")
            conf["ssl.key.location"] = node.certs.path(f"{cert}.key")
    conf.update(extra)
    return conf


def ck_create_topic(conf, topic, partitions=1, timeout=30):
    admin = AdminClient(conf)
    fs = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                             operation_timeout=timeout, request_timeout=timeout)
    fs[topic].result(timeout=timeout)
    wait_for(lambda: topic in admin.list_topics(timeout=5).topics and
             admin.list_topics(topic=topic, timeout=5).topics[topic].error is None,
             timeout=timeout, what=f"topic {topic} in metadata")


def ck_roundtrip(conf, n=10, partitions=1, timeout=45):
    """Over one listener/mechanism: CreateTopics via the AdminClient, produce n distinct records (acks=all,
    idempotent), consume them with a group consumer (subscribe), commit, and read the committed offsets back.
    Returns (topic, produced values, consumed values, committed offsets per partition)."""
    topic = unique("sec")
    group = unique("g")
    ck_create_topic(conf, topic, partitions)
    delivered, errors = [], []

    def dr(err, msg):
        (errors if err else delivered).append(err or (msg.partition(), msg.offset(), msg.value()))

    p = Producer({**conf, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
    values = [f"{topic}-v{i}".encode() for i in range(n)]
    for i, v in enumerate(values):
        p.produce(topic, key=f"k{i}".encode(), value=v, on_delivery=dr)
    left = p.flush(timeout)
    assert left == 0 and not errors, f"produce: {left} undelivered, errors {errors}"
    assert sorted(d[2] for d in delivered) == sorted(values)

    c = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "session.timeout.ms": 10000})
    got = []
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(f"consume error: {m.error()}")
            got.append(m.value())
        c.commit(asynchronous=False)
        committed = c.committed([TopicPartition(topic, i) for i in range(partitions)], timeout=10)
        offsets = {tp.partition: tp.offset for tp in committed}
    finally:
        c.close()
    return topic, values, got, offsets


def ck_auth_errors(conf, timeout=20, want=(KafkaError._AUTHENTICATION,)):
    """Start a producer with conf and collect errors from error_cb until one with a code in `want` arrives.
    Returns (matching KafkaError or None, all errors seen)."""
    seen = []
    p = Producer({**conf, "error_cb": seen.append, "reconnect.backoff.ms": 500, "reconnect.backoff.max.ms": 2000})
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            p.poll(0.2)
            for e in seen:
                if e.code() in want:
                    return e, seen
    finally:
        p.flush(0)
    return None, seen


def ck_can_login(conf, timeout=10):
    """True if a metadata request over conf succeeds (authentication done), False on an auth error."""
    errs = []
    a = AdminClient({**conf, "error_cb": errs.append})
    try:
        md = a.list_topics(timeout=timeout)
        return md is not None and not any(e.code() == KafkaError._AUTHENTICATION for e in errs)
    except KafkaException:
        return False


# --------------------------------------------------------------------------------------------- kafka-python


def kp_conf(node, listener, mechanism=None, user="alice", password=None, cert="alice"):
    conf = {"bootstrap_servers": node.bootstrap(listener), "security_protocol": listener,
            "request_timeout_ms": 20000}
    if listener.startswith("SASL"):
        conf.update({"sasl_mechanism": mechanism, "sasl_plain_username": user,
                     "sasl_plain_password": PASSWORDS.get(user) if password is None else password})
    if listener.endswith("SSL"):
        conf.update({"ssl_cafile": node.certs.path("ca.pem"), "ssl_check_hostname": True})
        if listener == "SSL" and cert:
            conf.update({"ssl_certfile": node.certs.path(f"{cert}.pem"),
                         "ssl_keyfile": node.certs.path(f"{cert}.key")})
    return conf


def kp_roundtrip(conf, n=10, timeout=45):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition as KTP
    from kafka.admin import NewTopic as KNewTopic

    topic = unique("kp")
    group = unique("kg")
    admin = KafkaAdminClient(**conf)
    try:
        admin.create_topics([KNewTopic(topic, 1, 1)], timeout_ms=30000)
    finally:
        admin.close()
    prod = KafkaProducer(acks="all", **conf)
    values = [f"{topic}-v{i}".encode() for i in range(n)]
    try:
        metas = [prod.send(topic, key=f"k{i}".encode(), value=v) for i, v in enumerate(values)]
        prod.flush(timeout)
        offsets_written = sorted(f.get(timeout=timeout).offset for f in metas)
    finally:
        prod.close(timeout=10)
    assert offsets_written == list(range(n)), offsets_written
    cons = KafkaConsumer(group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
                         consumer_timeout_ms=1000, **conf)
    got = []
    try:
        cons.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            for recs in cons.poll(timeout_ms=500).values():
                got.extend(r.value for r in recs)
        cons.commit()
        committed = cons.committed(KTP(topic, 0))
    finally:
        cons.close()
    return topic, values, got, committed


# --------------------------------------------------------------------------------------------- Java clients


def java_client_props(node, listener, mechanism=None, user="alice", password=None, cert="alice"):
    """A Java client .properties text (for --command-config / --producer.config / --consumer.config). TLS: PEM
    trust store (the test CA) and, for SSL, a PEM key store file with the client key + certificate."""
    lines = [f"security.protocol={listener}"]
    if listener.startswith("SASL"):
        module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if mechanism == "PLAIN"
                  else "org.apache.kafka.common.security.scram.ScramLoginModule")
        pw = PASSWORDS.get(user) if password is None else password
        lines += [f"sasl.mechanism={mechanism}",
                  f'sasl.jaas.config={module} required username="{user}" password="{pw}";']
    if listener.endswith("SSL"):
        lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={node.certs.path('ca.pem')}"]
        if listener == "SSL" and cert:
            lines += ["ssl.keystore.type=PEM", f"ssl.keystore.location={node.certs.path(cert + '-bundle.pem')}"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------- liveness


def assert_serving(node):
    """The broker process is alive, the PLAINTEXT listener answers ApiVersions, and a normal client can still
    authenticate (SASL_PLAINTEXT + PLAIN; or the first other secured listener configured) and produce a record whose
    offset it reads back."""
    node.check_alive()
    av = secwire.plaintext_api_versions("127.0.0.1", node.port("PLAINTEXT"))
    assert av["error_code"] == 0 and secwire.API_API_VERSIONS in av["api_keys"], av
    if "SASL_PLAINTEXT" in node.listeners:
        conf = ck_conf(node, "SASL_PLAINTEXT", "PLAIN", user="admin")
    elif "SASL_SSL" in node.listeners:
        conf = ck_conf(node, "SASL_SSL", "PLAIN", user="admin")
    elif "SSL" in node.listeners:
        conf = ck_conf(node, "SSL")
    else:
        conf = {"bootstrap.servers": node.bootstrap("PLAINTEXT")}
    delivered = []
    p = Producer({**conf, "acks": "all", "error_cb": lambda e: None})
    p.produce("sec-liveness", value=b"still-alive", on_delivery=lambda err, m: delivered.append((err, m.offset())))
    assert p.flush(30) == 0, f"liveness produce over {conf['bootstrap.servers']} not delivered within 30s"
    assert delivered and delivered[0][0] is None and delivered[0][1] >= 0, delivered
