"""What clients see of the cluster: Metadata and DescribeCluster, racks, the controller id, cluster id.

The shared cluster sets `broker.rack=rack-a` on node 1, `rack-b` on node 2 and no rack on node 3.

Kafka 4.1.2 (verified): every node's Metadata lists the 3 brokers with their advertised 127.0.0.1:port and rack
(null for node 3); `controller_id` is *a random live broker* (KRaft: clients never talk to the controllers through
the broker listener), so different nodes may answer different ids, always one of the brokers. DescribeCluster gives
the same brokers and cluster id. `kafka-cluster.sh list-endpoints --bootstrap-server ... --include-fenced-brokers`
prints `ID HOST PORT RACK STATE ENDPOINT_TYPE` rows (rack `null` when unset, state `unfenced`, type `broker`);
with `--bootstrap-controller` it lists the 3 controllers (`ID HOST PORT RACK ENDPOINT_TYPE`, type `controller`).
"""

from chelpers import admin, describe_cluster, list_endpoints, parse_table, run_tool

EXPECTED_RACKS = {1: "rack-a", 2: "rack-b", 3: None}


def expected_endpoints(cluster):
    return {i: ("127.0.0.1", cluster.nodes[i].client_port) for i in cluster.ids}


def test_describe_cluster_confluent(cluster):
    d = describe_cluster(cluster.bootstrap)
    got = {n.id: (n.host, n.port) for n in d.nodes}
    assert got == expected_endpoints(cluster), d.nodes
    assert {n.id: n.rack for n in d.nodes} == EXPECTED_RACKS, [(n.id, n.rack) for n in d.nodes]
    assert d.controller is not None and d.controller.id in got, d.controller
    assert (d.controller.host, d.controller.port) == got[d.controller.id]
    assert d.cluster_id == cluster.cluster_id and d.cluster_id


def test_metadata_confluent_list_topics(cluster):
    md = admin(cluster.bootstrap).list_topics(timeout=10)
    got = {b.id: (b.host, b.port) for b in md.brokers.values()}
    assert got == expected_endpoints(cluster), md.brokers
    assert md.controller_id in got, md.controller_id
    assert md.cluster_id == cluster.cluster_id


def test_metadata_from_each_node(cluster):
    """Bootstrap against one node at a time (clients and a raw Metadata request answered by exactly that node):
    every node knows all 3 brokers with their racks."""
    for i in cluster.ids:
        md = cluster.node_metadata(i)
        assert md["brokers"] == {b: ("127.0.0.1", cluster.nodes[b].client_port, EXPECTED_RACKS[b])
                                 for b in cluster.ids}, (i, md)
        assert md["controller_id"] in cluster.ids, (i, md)
        assert md["cluster_id"] == cluster.cluster_id, (i, md)
        d = describe_cluster(cluster.bootstrap_of(i))
        assert {n.id: (n.host, n.port, n.rack) for n in d.nodes} == md["brokers"], (i, d.nodes)


def test_kafka_cluster_tool(cluster):
    rows, raw = list_endpoints(cluster.bootstrap, include_fenced=True)
    assert raw.splitlines()[0].split() == ["ID", "HOST", "PORT", "RACK", "STATE", "ENDPOINT_TYPE"], raw
    assert {int(r["ID"]): (r["HOST"], int(r["PORT"]), r["RACK"], r["STATE"], r["ENDPOINT_TYPE"]) for r in rows} == {
        i: ("127.0.0.1", cluster.nodes[i].client_port, EXPECTED_RACKS[i] or "null", "unfenced", "broker")
        for i in cluster.ids}, raw

    p = run_tool("kafka-cluster.sh", "list-endpoints", "--bootstrap-controller", cluster.controller_bootstrap)
    rows = parse_table(p.stdout)
    assert p.stdout.splitlines()[0].split() == ["ID", "HOST", "PORT", "RACK", "ENDPOINT_TYPE"], p.stdout
    assert {int(r["ID"]): (r["HOST"], int(r["PORT"]), r["ENDPOINT_TYPE"]) for r in rows} == {
        i: ("127.0.0.1", cluster.nodes[i].controller_port, "controller") for i in cluster.ids}, p.stdout

    p = run_tool("kafka-cluster.sh", "cluster-id", "--bootstrap-server", cluster.bootstrap)
    assert p.stdout.strip() == f"Cluster ID: {cluster.cluster_id}", p.stdout
