"""kafka-metadata-quorum.sh describe --status / --replication: structure, not volatile numbers.

Kafka 4.1.2 (static `controller.quorum.voters`, 3 combined nodes) prints for --status:
    ClusterId:              <22-char id>
    LeaderId:               3
    LeaderEpoch:            1
    HighWatermark:          23
    MaxFollowerLag:         0
    MaxFollowerLagTimeMs:   417
    CurrentVoters:          [{"id": 1, "endpoints": ["CONTROLLER://127.0.0.1:C1"]}, {"id": 2, ...}, {"id": 3, ...}]
    CurrentObservers:       []
(no "directoryId" with static voters; combined nodes are voters, so there are no observers) and for --replication a
tab-separated table `NodeId DirectoryId LogEndOffset Lag LastFetchTimestamp LastCaughtUpTimestamp Status` with one
Leader row and two Follower rows (DirectoryId AAAAAAAAAAAAAAAAAAAAAA), plus Observer rows for broker-only nodes.
The same answer comes through a broker (`--bootstrap-server`, DescribeQuorum forwarded to the controller).
"""

import re

from cluster import parse_quorum_replication, parse_quorum_status, run_tool

from chelpers import describe_cluster


def check_status(cluster, status, raw):
    assert isinstance(status.get("ClusterId"), str) and re.fullmatch(r"[A-Za-z0-9_-]{22}", status["ClusterId"]), raw
    assert status["ClusterId"] == cluster.cluster_id, (status["ClusterId"], cluster.cluster_id)
    voters = status.get("CurrentVoters")
    assert isinstance(voters, list) and len(voters) == 3, raw
    by_id = {v["id"]: v for v in voters}
    assert sorted(by_id) == [1, 2, 3], raw
    for i, v in by_id.items():
        assert v["endpoints"] == [f"CONTROLLER://127.0.0.1:{cluster.nodes[i].controller_port}"], raw
    assert status.get("LeaderId") in by_id, f"LeaderId is not a voter:\n{raw}"
    assert isinstance(status.get("LeaderEpoch"), int) and status["LeaderEpoch"] >= 1, raw
    assert isinstance(status.get("HighWatermark"), int) and status["HighWatermark"] > 0, raw
    assert isinstance(status.get("MaxFollowerLag"), int) and status["MaxFollowerLag"] >= 0, raw
    assert isinstance(status.get("MaxFollowerLagTimeMs"), int), raw
    observers = status.get("CurrentObservers")
    assert isinstance(observers, list), raw
    assert not {o["id"] for o in observers} & set(by_id), f"a voter is also listed as observer:\n{raw}"
    return status


def test_describe_status_via_controllers(cluster):
    p = run_tool("kafka-metadata-quorum.sh", "--bootstrap-controller", cluster.controller_bootstrap,
                 "describe", "--status")
    status = check_status(cluster, parse_quorum_status(p.stdout), p.stdout)
    # Clients see the same cluster id through DescribeCluster.
    d = describe_cluster(cluster.bootstrap)
    assert d.cluster_id == status["ClusterId"]


def test_describe_status_via_broker(cluster):
    p = run_tool("kafka-metadata-quorum.sh", "--bootstrap-server", cluster.bootstrap, "describe", "--status")
    check_status(cluster, parse_quorum_status(p.stdout), p.stdout)


def test_describe_replication(cluster):
    p = run_tool("kafka-metadata-quorum.sh", "--bootstrap-controller", cluster.controller_bootstrap,
                 "describe", "--replication")
    raw = p.stdout
    header = raw.splitlines()[0].split()
    assert header == ["NodeId", "DirectoryId", "LogEndOffset", "Lag", "LastFetchTimestamp",
                      "LastCaughtUpTimestamp", "Status"], raw
    rows = parse_quorum_replication(raw)
    voters = [r for r in rows if r["Status"] in ("Leader", "Follower")]
    observers = [r for r in rows if r["Status"] == "Observer"]
    assert len(voters) + len(observers) == len(rows), f"unexpected Status values:\n{raw}"
    assert sorted(int(r["NodeId"]) for r in voters) == [1, 2, 3], raw
    assert [r["Status"] for r in voters].count("Leader") == 1, raw
    leader = next(r for r in voters if r["Status"] == "Leader")
    assert rows[0] is leader, f"the leader row comes first:\n{raw}"
    assert int(leader["Lag"]) == 0, raw
    for r in rows:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", r["DirectoryId"]), raw
        assert int(r["LogEndOffset"]) > 0, raw
        assert int(r["Lag"]) >= 0, raw
        # LastFetchTimestamp / LastCaughtUpTimestamp: epoch ms (or -1 when unknown).
        for col in ("LastFetchTimestamp", "LastCaughtUpTimestamp"):
            v = int(r[col])
            assert v == -1 or v > 1_600_000_000_000, raw
        # Lag is the leader's LogEndOffset minus this replica's (both from the same DescribeQuorum answer).
        assert int(r["Lag"]) == int(leader["LogEndOffset"]) - int(r["LogEndOffset"]), raw
    # The leader of --replication is the LeaderId of --status.
    assert int(leader["NodeId"]) == cluster.quorum_leader(), raw
