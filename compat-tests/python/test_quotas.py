"""Client quotas (issue 6): AlterClientQuotas / DescribeClientQuotas through kafka-configs.sh, and
produce throttling seen by confluent-kafka.

What it proves:
  * kafka-configs.sh --alter --entity-type clients / users / users+clients / --entity-default with
    --add-config producer_byte_rate=..., consumer_byte_rate=..., request_percentage=... and
    --delete-config, and --describe for one entity, for all entities of a type and for the default;
  * the broker rejects invalid quota values with INVALID_REQUEST and Kafka's messages ("Quota
    producer_byte_rate must be greater than 0", "consumer_byte_rate cannot be a fractional value.");
  * a producer_byte_rate quota is enforced: a client.id over its rate gets a ProduceResponse with a
    non-zero throttle_time_ms (librdkafka's throttle_cb), a client.id without a quota does not.

Kafka formats quota values as doubles ("1048576.0"); the order of the entries within one line is not
fixed, so the tests parse them.

Validated against Apache Kafka 4.1.2:
    compat-tests/bin/kafka-reference-broker.sh start /tmp/ref 19092
    COMPAT_BOOTSTRAP=127.0.0.1:19092 compat-tests/run.sh --no-setup -k test_quotas
"""

import re
import shutil
import time

import pytest
from confluent_kafka import Producer

from helpers import create_topic, rdkafka_conf, run_tool, unique, wait_for

java = pytest.mark.skipif(shutil.which("java") is None, reason="java not installed")

LINE = re.compile(r"^Quota configs for (.+) are (.*)$")


def configs(bs, *args, check=True):
    return run_tool("kafka-configs.sh", "--bootstrap-server", bs, *args, check=check)


def describe_quotas(bs, *entity):
    """{entity description: {quota: float}} from kafka-configs.sh --describe."""
    out = configs(bs, "--describe", *entity).stdout
    got = {}
    for line in out.splitlines():
        m = LINE.match(line.strip())
        assert m, f"unexpected line {line!r} in\n{out}"
        got[m.group(1)] = {k: float(v) for k, v in (kv.split("=") for kv in m.group(2).split(", "))}
    return got


def wait_quotas(bs, entity, want):
    return wait_for(lambda: (lambda g: (g,) if g == want else None)(describe_quotas(bs, *entity)), timeout=20,
                    interval=0.5, what=f"quotas {want} for {entity}")[0]


@java
def test_client_and_user_quotas_cli(broker):
    bs = broker.bootstrap
    client = unique("q-client")
    user = unique("q-user")
    c_ent = ("--entity-type", "clients", "--entity-name", client)
    u_ent = ("--entity-type", "users", "--entity-name", user)
    uc_ent = u_ent + ("--entity-type", "clients", "--entity-name", client)

    out = configs(bs, "--alter", *c_ent, "--add-config", "producer_byte_rate=1048576,consumer_byte_rate=2097152")
    assert out.stdout.strip() == f"Completed updating config for client {client}."
    out = configs(bs, "--alter", *u_ent, "--add-config", "producer_byte_rate=1024,request_percentage=50")
    assert out.stdout.strip() == f"Completed updating config for user {user}."
    out = configs(bs, "--alter", *uc_ent, "--add-config", "consumer_byte_rate=4096")
    assert out.stdout.strip() == f"Completed updating config for user {user}."

    wait_quotas(bs, c_ent, {f"client-id '{client}'": {"producer_byte_rate": 1048576.0,
                                                       "consumer_byte_rate": 2097152.0}})
    wait_quotas(bs, u_ent, {f"user-principal '{user}'": {"producer_byte_rate": 1024.0, "request_percentage": 50.0}})
    wait_quotas(bs, uc_ent, {f"user-principal '{user}', client-id '{client}'": {"consumer_byte_rate": 4096.0}})
    # All entities of a type (this broker may hold others from other tests).
    all_clients = describe_quotas(bs, "--entity-type", "clients")
    assert all_clients[f"client-id '{client}'"] == {"producer_byte_rate": 1048576.0, "consumer_byte_rate": 2097152.0}
    all_users = describe_quotas(bs, "--entity-type", "users")
    assert all_users[f"user-principal '{user}'"] == {"producer_byte_rate": 1024.0, "request_percentage": 50.0}

    # Change one value, delete another.
    configs(bs, "--alter", *c_ent, "--add-config", "producer_byte_rate=65536")
    configs(bs, "--alter", *c_ent, "--delete-config", "consumer_byte_rate")
    wait_quotas(bs, c_ent, {f"client-id '{client}'": {"producer_byte_rate": 65536.0}})
    # Deleting the last quota removes the entity.
    configs(bs, "--alter", *c_ent, "--delete-config", "producer_byte_rate")
    configs(bs, "--alter", *u_ent, "--delete-config", "producer_byte_rate,request_percentage")
    configs(bs, "--alter", *uc_ent, "--delete-config", "consumer_byte_rate")
    wait_quotas(bs, c_ent, {})
    wait_quotas(bs, u_ent, {})
    wait_quotas(bs, uc_ent, {})
    assert f"client-id '{client}'" not in describe_quotas(bs, "--entity-type", "clients")


@java
def test_default_client_quota_cli(broker):
    bs = broker.bootstrap
    dflt = ("--entity-type", "clients", "--entity-default")
    assert describe_quotas(bs, *dflt) == {}
    try:
        out = configs(bs, "--alter", *dflt, "--add-config", "producer_byte_rate=999999999")
        assert out.stdout.strip() == "Completed updating default config for clients in the cluster."
        wait_quotas(bs, dflt, {"the default client-id": {"producer_byte_rate": 999999999.0}})
        assert describe_quotas(bs, "--entity-type", "clients")["the default client-id"] == {
            "producer_byte_rate": 999999999.0}
    finally:
        configs(bs, "--alter", *dflt, "--delete-config", "producer_byte_rate", check=False)
    wait_quotas(bs, dflt, {})


BAD_QUOTAS = [
    ("producer_byte_rate=0", "Quota producer_byte_rate must be greater than 0"),
    ("producer_byte_rate=-5", "Quota producer_byte_rate must be greater than 0"),
    ("request_percentage=0", "Quota request_percentage must be greater than 0"),
    ("consumer_byte_rate=1.5", "consumer_byte_rate cannot be a fractional value."),
]


@java
@pytest.mark.parametrize("setting,message", BAD_QUOTAS, ids=[s for s, _ in BAD_QUOTAS])
def test_invalid_quota_rejected(broker, setting, message):
    bs = broker.bootstrap
    c_ent = ("--entity-type", "clients", "--entity-name", unique("q-bad"))
    p = configs(bs, "--alter", *c_ent, "--add-config", setting, check=False)
    assert p.returncode != 0
    assert f"org.apache.kafka.common.errors.InvalidRequestException: {message}" in p.stdout + p.stderr
    assert describe_quotas(bs, *c_ent) == {}


@java
def test_producer_byte_rate_throttles(broker):
    bs = broker.bootstrap
    topic = create_topic(bs, unique("q-throttle"))
    client = unique("q-throttled")
    ent = ("--entity-type", "clients", "--entity-name", client)
    configs(bs, "--alter", *ent, "--add-config", "producer_byte_rate=20000")
    wait_quotas(bs, ent, {f"client-id '{client}'": {"producer_byte_rate": 20000.0}})
    try:
        def burst(client_id):
            events = []
            p = Producer(rdkafka_conf(bs, **{"client.id": client_id, "linger.ms": 5,
                                             "throttle_cb": lambda e: events.append(e.throttle_time)}))
            for _ in range(200):
                p.produce(topic, value=b"x" * 1000)
                p.poll(0)
            assert p.flush(60) == 0
            deadline = time.monotonic() + 5
            while not events and time.monotonic() < deadline:
                p.poll(0.2)
            return events

        # 200 KB at 20 KB/s: the broker answers with a throttle time (seconds in the callback).
        events = burst(client)
        assert events and max(events) > 0, f"no throttling reported for {client}: {events}"
        # Without a quota (and no default quota): no throttling.
        assert burst(unique("q-free")) == []
    finally:
        configs(bs, "--alter", *ent, "--delete-config", "producer_byte_rate", check=False)
