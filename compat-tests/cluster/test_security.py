"""Brokers that authenticate to each other: the inter-broker listener is SASL_SSL (PLAIN, the brokers' own
credentials from `listener.name.internal.plain.sasl.jaas.config`, certificates checked against the test CA with
`ssl.endpoint.identification.algorithm=https`), clients use PLAINTEXT, the controllers a PLAINTEXT CONTROLLER
listener. Kafka 4.1.2 configured identically passes the same test.

    listeners=PLAINTEXT://127.0.0.1:P,INTERNAL://127.0.0.1:I,CONTROLLER://127.0.0.1:C
    listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL
    inter.broker.listener.name=INTERNAL
    sasl.mechanism.inter.broker.protocol=PLAIN
    listener.name.internal.sasl.enabled.mechanisms=PLAIN
    listener.name.internal.plain.sasl.jaas.config=...PlainLoginModule required username="broker" password=... user_broker=...;
    ssl.keystore.type=PEM, ssl.keystore.location=broker-bundle.pem, ssl.truststore.type=PEM, ssl.truststore.location=ca.pem

Replication runs over that listener: a replication-factor-3 topic reaches a full ISR, acks=all writes succeed and
read back. A broker restarted with a wrong inter-broker password cannot fetch from the leaders (its SASL
authentication fails), so it stays out of every ISR; restarted with the right one it rejoins them.

This test starts its own cluster (the shared one is stopped first).
"""

import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from chelpers import admin, timing, topic_metadata, unique, wait_for, wait_full_isr
from cluster import COMPAT_DIR, Cluster, free_ports, selected_impl

sys.path.insert(0, str(COMPAT_DIR / "security"))
from secnode import Certs  # noqa: E402

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="{pw}" '
        'user_broker="broker-secret";')


@pytest.fixture
def secure_cluster(cluster_manager, tmp_path):
    cluster_manager.shutdown()  # one cluster at a time on this machine
    certs = Certs(tmp_path / "certs")
    certs.generate()
    extra = {
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL",
        "inter.broker.listener.name": "INTERNAL",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.internal.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.internal.plain.sasl.jaas.config": JAAS.format(pw="broker-secret"),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": certs.path("broker-bundle.pem"),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": certs.path("ca.pem"),
        "broker.session.timeout.ms": "6000",
        "replica.lag.time.max.ms": "10000",
    }
    c = Cluster(n=3, extra_props=extra, base_dir=tmp_path / f"cluster-{selected_impl()}")
    internal = free_ports(3)
    for i in c.ids:
        n = c.nodes[i]
        c.node_props[i] = {
            "listeners": f"PLAINTEXT://{n.bootstrap},INTERNAL://127.0.0.1:{internal[i - 1]},"
                         f"CONTROLLER://{n.controller_endpoint}",
            "advertised.listeners": f"PLAINTEXT://{n.bootstrap},INTERNAL://127.0.0.1:{internal[i - 1]}",
        }
    try:
        secs = c.start()
    except Exception as e:  # noqa: BLE001
        logs = "\n".join(f"--- node {i} ---\n{c.log(i, 30)}" for i in c.ids)
        c.stop()
        pytest.fail(f"the SASL_SSL inter-broker cluster did not start: {e}\n{logs}", pytrace=False)
    print(f"SASL_SSL inter-broker cluster ({c.impl}) started in {secs:.1f}s", flush=True)
    try:
        yield c
    finally:
        print(f"stopped: {c.stop()}", flush=True)


def produce(bootstrap, topic, n, partitions):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    acked = []
    for i in range(n):
        p.produce(topic, value=f"v{i}".encode(), partition=i % partitions,
                  on_delivery=lambda err, msg: acked.append(err))
    assert p.flush(60) == 0
    assert len(acked) == n and all(e is None for e in acked), [e for e in acked if e][:3]


def test_replication_over_sasl_ssl_inter_broker_listener(secure_cluster):
    c = secure_cluster
    adm = admin(c.bootstrap)
    topic = unique("ib-sec")
    adm.create_topics([NewTopic(topic, 3, 3)])[topic].result(timeout=60)
    t0 = time.monotonic()
    wait_full_isr(adm, topic, 3, timeout=60)
    timing("sasl_ssl_full_isr", (time.monotonic() - t0) * 1000)
    produce(c.bootstrap, topic, 300, 3)
    wait_full_isr(adm, topic, 3, timeout=30)

    # node 3 with a wrong inter-broker password: it cannot fetch, so it never rejoins an ISR
    c.kill(3)
    wait_for(lambda: all(3 not in isr for _, _, isr in topic_metadata(adm, topic).values()), timeout=30,
             what="node 3 out of every ISR")
    c.restart(3, overrides={"listener.name.internal.plain.sasl.jaas.config": JAAS.format(pw="wrong")})
    produce(c.bootstrap, topic, 30, 3)
    time.sleep(12)  # > replica.lag.time.max.ms: a follower that fetched would be back by now
    md = topic_metadata(adm, topic)
    assert all(3 not in isr for _, _, isr in md.values()), md

    # the right password again: node 3 catches up and rejoins every ISR
    t0 = time.monotonic()
    c.restart(3)
    wait_full_isr(adm, topic, 3, timeout=60)
    timing("sasl_ssl_rejoin", (time.monotonic() - t0) * 1000)
