"""Bad input on the controller listener: BrokerRegistration / BrokerHeartbeat frames crafted from the Kafka protocol
schemas (kafka_wire.py; no Python client implements these APIs), sent to the active controller (the quorum leader
from `kafka-metadata-quorum.sh describe --status`) and to a follower controller. Afterwards the cluster must be
unchanged: the same 3 unfenced brokers (also after a full broker session timeout, so that a registration that was
wrongly accepted would have fenced the real broker by then), the topic intact, the quorum intact.

What Apache Kafka 4.1.2 answers (observed; combined nodes, static voters):
  * ApiVersions v3 on the CONTROLLER listener: BrokerRegistration (62) v0-4, BrokerHeartbeat (63) v0-1,
    SupportedFeatures {metadata.version: 7-27}; finalized features metadata.version 27, group.version 1,
    transaction.version 2, eligible.leader.replicas.version 1. The versions used below are the highest both sides
    support: BrokerRegistration v4, BrokerHeartbeat v1.
  * BrokerRegistration with a wrong ClusterId (unused broker id 100, and a live broker's id)
      -> INCONSISTENT_CLUSTER_ID (104), BrokerEpoch -1.
  * BrokerRegistration of a live broker id with the right ClusterId and a new IncarnationId
      -> DUPLICATE_BROKER_REGISTRATION (101), BrokerEpoch -1 (checked before the features).
  * BrokerHeartbeat of a live broker with an epoch the controller never issued (0 or 2^62)
      -> STALE_BROKER_EPOCH (77), IsCaughtUp false, IsFenced true, ShouldShutDown false.
  * BrokerHeartbeat of an unknown broker id (99) -> also STALE_BROKER_EPOCH (77), *not* BROKER_ID_NOT_REGISTERED
    (102): ClusterControlManager.checkBrokerEpoch throws StaleBrokerEpochException when there is no registration.
  * The same requests to a follower controller -> NOT_CONTROLLER (41).
  * BrokerHeartbeat on the client (PLAINTEXT broker) listener, whose ApiVersions does not list 62/63, a truncated
    BrokerRegistration and an unknown api key (9999) on the controller listener: the connection is closed without
    a response; the listener keeps serving new connections.
"""

import time
import uuid

from confluent_kafka.admin import NewTopic

import kafka_wire as kw
from chelpers import admin, describe_topic, list_endpoints, wait_full_isr, unique

WRONG_CLUSTER_ID = "AAAAAAAAAAAAAAAAAAAAAB"  # a valid Uuid string, not this cluster's id


def connect_controller(cluster, node_id):
    return kw.KafkaConnection("127.0.0.1", cluster.nodes[node_id].controller_port, timeout=10)


def negotiated(conn):
    av = conn.api_versions()
    keys = av["api_keys"]
    assert kw.API_BROKER_REGISTRATION in keys and kw.API_BROKER_HEARTBEAT in keys, \
        f"controller listener does not offer BrokerRegistration/BrokerHeartbeat: {keys}"
    reg_v = kw.pick_version(keys, kw.API_BROKER_REGISTRATION, 0, 4)
    hb_v = kw.pick_version(keys, kw.API_BROKER_HEARTBEAT, 0, 1)
    assert reg_v is not None and hb_v is not None, keys
    return reg_v, hb_v, av


def assert_closed_without_answer(conn, what):
    try:
        data = conn.recv_frame()
    except (ConnectionError, OSError):
        return
    raise AssertionError(f"{what}: expected the connection to be closed, got a {len(data)}-byte response")


def snapshot(cluster, topic):
    brokers = {i: cluster.node_metadata(i)["brokers"] for i in cluster.ids}
    rows, _ = list_endpoints(cluster.bootstrap, include_fenced=True)
    desc, _ = describe_topic(cluster.bootstrap, topic)
    parts = {p: (r["Leader"], r["Replicas"], sorted(r["Isr"])) for p, r in desc["partitions"].items()}
    return brokers, sorted((r["ID"], r["PORT"], r["STATE"]) for r in rows), parts


def test_controller_rejects_bad_registrations_and_heartbeats(cluster):
    topic = unique("bad-input")
    a = admin(cluster.bootstrap)
    a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)], request_timeout=30)[topic].result(40)
    wait_full_isr(a, topic, 3)
    before = snapshot(cluster, topic)
    assert before[1] == sorted((str(i), str(cluster.nodes[i].client_port), "unfenced") for i in cluster.ids), before

    leader = cluster.quorum_leader()
    follower = next(i for i in cluster.ids if i != leader)
    victim = follower  # a live broker whose id the bogus requests use
    answers = {}

    with connect_controller(cluster, leader) as conn:
        reg_v, hb_v, av = negotiated(conn)
        answers["versions"] = (reg_v, hb_v)
        features = av["supported_features"]
        own_listener = [("PLAINTEXT", "127.0.0.1", cluster.nodes[victim].client_port, 0)]

        for broker_id in (100, victim):
            err, epoch = conn.broker_registration(reg_v, broker_id, WRONG_CLUSTER_ID, uuid.uuid4(), own_listener,
                                                  features, log_dirs=[uuid.uuid4()])
            answers[f"register id {broker_id} wrong cluster id"] = err
            assert (err, epoch) == (104, -1), \
                f"registration of {broker_id} with a wrong ClusterId: {kw.error_name(err)}, epoch {epoch}"

        err, epoch = conn.broker_registration(reg_v, victim, cluster.cluster_id, uuid.uuid4(), own_listener,
                                              features, log_dirs=[uuid.uuid4()])
        answers["register live id, new incarnation"] = err
        assert (err, epoch) == (101, -1), \
            f"second registration of live broker {victim}: {kw.error_name(err)}, epoch {epoch}"

        for bogus_epoch in (0, 2 ** 62):
            hb = conn.broker_heartbeat(hb_v, victim, bogus_epoch, current_metadata_offset=0, want_fence=False)
            answers[f"heartbeat live id epoch {bogus_epoch}"] = hb["error_code"]
            assert hb["error_code"] == 77, f"heartbeat with epoch {bogus_epoch}: {kw.error_name(hb['error_code'])}"
            assert hb["is_fenced"] and not hb["should_shut_down"] and not hb["is_caught_up"], hb

        hb = conn.broker_heartbeat(hb_v, 99, 1, want_fence=False)
        answers["heartbeat unknown id 99"] = hb["error_code"]
        assert hb["error_code"] == 77, f"heartbeat of unknown broker 99: {kw.error_name(hb['error_code'])}"

    with connect_controller(cluster, follower) as conn:
        reg_v2, hb_v2, _ = negotiated(conn)
        err, _ = conn.broker_registration(reg_v2, 100, WRONG_CLUSTER_ID, uuid.uuid4(),
                                          [("PLAINTEXT", "127.0.0.1", 1, 0)], {}, log_dirs=[uuid.uuid4()])
        answers["follower controller: registration"] = err
        assert err == 41, f"registration sent to follower controller {follower}: {kw.error_name(err)}"
        hb = conn.broker_heartbeat(hb_v2, victim, 0)
        answers["follower controller: heartbeat"] = hb["error_code"]
        assert hb["error_code"] == 41, f"heartbeat sent to follower controller: {kw.error_name(hb['error_code'])}"

    # The broker listener does not serve the controller APIs: not advertised, connection closed.
    with kw.KafkaConnection("127.0.0.1", cluster.nodes[leader].client_port) as conn:
        keys = conn.api_versions()["api_keys"]
        assert kw.API_BROKER_REGISTRATION not in keys and kw.API_BROKER_HEARTBEAT not in keys, keys
        conn.send_raw(conn.header(kw.API_BROKER_HEARTBEAT, hb_v, True)
                      + kw.i32(victim) + kw.i64(0) + kw.i64(0) + b"\x01\x00" + kw.NO_TAGS)
        assert_closed_without_answer(conn, "BrokerHeartbeat on the broker listener")

    # Malformed frames on the controller listener.
    with connect_controller(cluster, leader) as conn:
        conn.send_raw(conn.header(kw.API_BROKER_REGISTRATION, reg_v, True) + kw.i32(victim) + b"\x05ab")
        assert_closed_without_answer(conn, "truncated BrokerRegistration")
    with connect_controller(cluster, leader) as conn:
        conn.send_raw(conn.header(9999, 0, True))
        assert_closed_without_answer(conn, "unknown api key 9999")
    with connect_controller(cluster, leader) as conn:
        assert kw.API_BROKER_HEARTBEAT in conn.api_versions()["api_keys"]

    print("controller answers (Kafka error codes):", answers)

    # Nothing changed, and nothing changes within a broker session timeout: a bogus registration that had replaced
    # the victim's would leave the real broker heartbeating with a stale epoch, so it would be fenced by now.
    deadline = time.monotonic() + cluster.session_timeout_ms / 1000 + 2
    expected = before[0]
    while time.monotonic() < deadline:
        for i in cluster.ids:
            got = cluster.node_metadata(i)["brokers"]
            assert got == expected[i], f"node {i} Metadata brokers changed: {got} (before: {expected[i]})"
        time.sleep(0.5)
    after = snapshot(cluster, topic)
    assert after == before, f"cluster changed:\nbefore {before}\nafter  {after}"
    status = cluster.quorum_status()
    assert sorted(v["id"] for v in status["CurrentVoters"]) == [1, 2, 3] and status["LeaderId"] in (1, 2, 3), status
