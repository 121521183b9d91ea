"""Transactions (KIP-98): librdkafka's transactional producer, read_committed consumers, fencing,
timeouts and `kafka-transactions.sh list/describe`."""

import time

import pytest
from confluent_kafka import KafkaException, Producer, TopicPartition

from conftest import GregorBroker
from helpers import confluent_consumer, consume_confluent, create_topic, rdkafka_conf, run_tool, unique, wait_for


def txn_producer(bootstrap, tid, **extra):
    conf = rdkafka_conf(bootstrap, **{"transactional.id": tid, "transaction.timeout.ms": 60000})
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(30)
    return p


def read_all(bootstrap, topic, isolation, expect_at_least=0, timeout=15):
    """Every message of partition 0 visible with `isolation`, read until idle."""
    c = confluent_consumer(bootstrap, **{"isolation.level": isolation})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        out = []
        deadline = time.monotonic() + timeout
        idle_since = time.monotonic()
        while time.monotonic() < deadline:
            msgs = c.consume(num_messages=100, timeout=0.3)
            for m in msgs:
                if m.error():
                    raise AssertionError(f"consumer error: {m.error()}")
                out.append(m)
            if msgs:
                idle_since = time.monotonic()
            elif len(out) >= expect_at_least and time.monotonic() - idle_since > 1.5:
                break
        return out
    finally:
        c.close()


def test_commit_and_abort_read_committed(broker):
    topic = create_topic(broker.bootstrap, unique("txn"), partitions=1)
    p = txn_producer(broker.bootstrap, unique("tid"))
    p.begin_transaction()
    for i in range(5):
        p.produce(topic, value=f"c{i}".encode(), partition=0)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, value=f"a{i}".encode(), partition=0)
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    p.produce(topic, value=b"c-last", partition=0)
    p.commit_transaction(30)

    committed = read_all(broker.bootstrap, topic, "read_committed", expect_at_least=6)
    assert [m.value() for m in committed] == [f"c{i}".encode() for i in range(5)] + [b"c-last"]
    uncommitted = read_all(broker.bootstrap, topic, "read_uncommitted", expect_at_least=9)
    assert sorted(m.value() for m in uncommitted) == sorted(
        [f"c{i}".encode() for i in range(5)] + [f"a{i}".encode() for i in range(3)] + [b"c-last"])
    # 9 data records + 3 markers: the last message is at offset 10.
    assert uncommitted[-1].offset() == 10


def test_open_transaction_is_invisible_to_read_committed(broker):
    topic = create_topic(broker.bootstrap, unique("txn-open"), partitions=1)
    p = txn_producer(broker.bootstrap, unique("tid"))
    p.begin_transaction()
    p.produce(topic, value=b"pending", partition=0)
    p.flush(30)
    assert read_all(broker.bootstrap, topic, "read_committed", timeout=4) == []
    assert [m.value() for m in read_all(broker.bootstrap, topic, "read_uncommitted", expect_at_least=1)] == [
        b"pending"]
    c = confluent_consumer(broker.bootstrap, **{"isolation.level": "read_committed"})
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        assert (lo, hi) == (0, 0)  # read_committed: the LSO
    finally:
        c.close()
    p.commit_transaction(30)
    msgs = consume_confluent(broker.bootstrap, topic, 0, 1, **{"isolation.level": "read_committed"})
    assert msgs[0].value() == b"pending"


def test_new_instance_fences_the_old_one(broker):
    topic = create_topic(broker.bootstrap, unique("txn-fence"), partitions=1)
    tid = unique("tid")
    old = txn_producer(broker.bootstrap, tid)
    old.begin_transaction()
    old.produce(topic, value=b"zombie", partition=0)
    old.flush(30)
    # A second producer with the same transactional id aborts the open transaction.
    new = txn_producer(broker.bootstrap, tid)
    new.begin_transaction()
    new.produce(topic, value=b"fresh", partition=0)
    new.commit_transaction(30)
    with pytest.raises(KafkaException) as e:
        old.commit_transaction(10)
    err = e.value.args[0]
    assert err.fatal() or "fenced" in str(err).lower(), err
    msgs = read_all(broker.bootstrap, topic, "read_committed", expect_at_least=1)
    assert [m.value() for m in msgs] == [b"fresh"]


def test_transaction_timeout_aborts(own_broker):
    b = own_broker({"transaction.abort.timed.out.transaction.cleanup.interval.ms": "500"})
    topic = create_topic(b.bootstrap, unique("txn-timeout"), partitions=1)
    p = txn_producer(b.bootstrap, unique("tid"), **{"transaction.timeout.ms": 2000, "socket.timeout.ms": 2000})
    p.begin_transaction()
    p.produce(topic, value=b"late", partition=0)
    p.flush(30)
    # The coordinator aborts it: a marker follows the record and read_committed sees nothing.
    wait_for(lambda: len(read_all(b.bootstrap, topic, "read_uncommitted", timeout=2)) == 1
             and _end_offset(b.bootstrap, topic) == 2, timeout=20, what="abort marker")
    assert read_all(b.bootstrap, topic, "read_committed", timeout=3) == []
    with pytest.raises(KafkaException):
        p.commit_transaction(10)


def _end_offset(bootstrap, topic):
    c = confluent_consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        c.close()


def test_kafka_transactions_cli_list_and_describe(broker):
    topic = create_topic(broker.bootstrap, unique("txn-cli"), partitions=2)
    tid = unique("tid-cli")
    p = txn_producer(broker.bootstrap, tid)
    p.begin_transaction()
    p.produce(topic, value=b"x", partition=1)
    p.flush(30)
    out = run_tool("kafka-transactions.sh", "--bootstrap-server", broker.bootstrap, "describe",
                   "--transactional-id", tid).stdout
    header, row = [line.split() for line in out.strip().splitlines()[-2:]]
    info = dict(zip(header, row))
    assert info["TransactionalId"] == tid
    assert info["TransactionState"] == "Ongoing"
    assert info["TransactionTimeoutMs"] == "60000"
    assert info["TopicPartitions"] == f"{topic}-1"
    listed = run_tool("kafka-transactions.sh", "--bootstrap-server", broker.bootstrap, "list").stdout
    rows = {line.split()[0]: line.split() for line in listed.strip().splitlines()[1:]}
    assert rows[tid][3] == "Ongoing"
    p.commit_transaction(30)
    out = run_tool("kafka-transactions.sh", "--bootstrap-server", broker.bootstrap, "describe",
                   "--transactional-id", tid).stdout
    assert "CompleteCommit" in out
    missing = run_tool("kafka-transactions.sh", "--bootstrap-server", broker.bootstrap, "describe",
                       "--transactional-id", unique("nope"), check=False)
    assert missing.returncode != 0
    assert "could not be found" in missing.stderr + missing.stdout


def _describe_producers(bootstrap, topic, partition):
    out = run_tool("kafka-transactions.sh", "--bootstrap-server", bootstrap, "describe-producers",
                   "--topic", topic, "--partition", str(partition)).stdout
    lines = out.strip().splitlines()
    header = lines[0].split()
    return [dict(zip(header, line.split())) for line in lines[1:]]


def test_kafka_transactions_cli_describe_producers(broker):
    topic = create_topic(broker.bootstrap, unique("txn-producers"), partitions=2)
    p = txn_producer(broker.bootstrap, unique("tid-prod"))
    before = int(time.time() * 1000)
    # An idempotent (non-transactional) producer on the same partition is listed too.
    idem = Producer(rdkafka_conf(broker.bootstrap, **{"enable.idempotence": True}))
    for i in range(2):
        idem.produce(topic, value=f"i{i}".encode(), partition=0)
    idem.flush(30)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, value=f"t{i}".encode(), partition=0)
    p.flush(30)
    rows = _describe_producers(broker.bootstrap, topic, 0)
    assert len(rows) == 2, rows
    open_txn = [r for r in rows if r["CurrentTransactionStartOffset"] != "None"]
    assert len(open_txn) == 1, rows
    txn = open_txn[0]
    # The idempotent producer's two records come first: the transaction starts at offset 2.
    assert txn["CurrentTransactionStartOffset"] == "2"
    assert txn["LastSequence"] == "2"
    assert txn["ProducerEpoch"] == "0"
    assert int(txn["LastTimestamp"]) >= before - 5000
    other = [r for r in rows if r is not txn][0]
    assert other["LastSequence"] == "1"
    assert other["ProducerId"] != txn["ProducerId"]
    # Partition 1 has no producer.
    assert _describe_producers(broker.bootstrap, topic, 1) == []
    p.commit_transaction(30)
    after = {r["ProducerId"]: r for r in _describe_producers(broker.bootstrap, topic, 0)}
    committed = after[txn["ProducerId"]]
    assert committed["CurrentTransactionStartOffset"] == "None"
    assert committed["LastSequence"] == "2"
    assert committed["LatestCoordinatorEpoch"] != "-1"


def test_transaction_version_feature(broker):
    """ApiVersions v3+ features as the Kafka CLI sees them: `transaction.version` is supported up
    to 2 and finalized (Gregor: at 1, clients keep using AddPartitionsToTxn; Kafka 4.1: 2);
    `metadata.version` up to 4.1-IV1."""
    out = run_tool("kafka-run-class.sh", "org.apache.kafka.tools.FeatureCommand",
                   "--bootstrap-server", broker.bootstrap, "describe").stdout
    features = {}
    for line in out.strip().splitlines():
        fields = dict(f.split(": ", 1) for f in line.split("\t"))
        features[fields["Feature"]] = fields
    tv = features["transaction.version"]
    assert (tv["SupportedMinVersion"], tv["SupportedMaxVersion"]) == ("0", "2")
    assert tv["FinalizedVersionLevel"] in ("1", "2")
    if isinstance(broker, GregorBroker):
        assert tv["FinalizedVersionLevel"] == "1"
    assert int(tv["Epoch"]) >= 0
    mv = features["metadata.version"]
    assert (mv["SupportedMaxVersion"], mv["FinalizedVersionLevel"]) == ("4.1-IV1", "4.1-IV1")


def test_transactions_survive_restart(own_broker):
    b = own_broker()
    topic = create_topic(b.bootstrap, unique("txn-restart"), partitions=1)
    tid = unique("tid")
    p = txn_producer(b.bootstrap, tid)
    group = unique("g")
    c = confluent_consumer(b.bootstrap, **{"group.id": group})
    meta = c.consumer_group_metadata()
    p.begin_transaction()
    p.produce(topic, value=b"before", partition=0)
    p.send_offsets_to_transaction([TopicPartition(topic, 0, 7)], meta, 30)
    p.commit_transaction(30)
    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition(topic, 0, 9)], meta, 30)
    p.abort_transaction(30)
    c.close()
    del p
    b.restart()
    # Replayed from __consumer_offsets: the committed transaction's offset, not the aborted one.
    assert _committed(b.bootstrap, group, topic) == 7
    out = run_tool("kafka-transactions.sh", "--bootstrap-server", b.bootstrap, "describe",
                   "--transactional-id", tid).stdout
    assert "CompleteAbort" in out
    # The epoch continues after the restart: a new instance works, its commit is visible.
    p = txn_producer(b.bootstrap, tid)
    p.begin_transaction()
    p.produce(topic, value=b"after", partition=0)
    p.commit_transaction(30)
    msgs = read_all(b.bootstrap, topic, "read_committed", expect_at_least=2)
    assert [m.value() for m in msgs] == [b"before", b"after"]


def _committed(bootstrap, group, topic):
    c = confluent_consumer(bootstrap, **{"group.id": group})
    try:
        return c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
    finally:
        c.close()


def test_send_offsets_to_transaction(broker):
    src = create_topic(broker.bootstrap, unique("txn-src"), partitions=1)
    dst = create_topic(broker.bootstrap, unique("txn-dst"), partitions=1)
    seed = Producer(rdkafka_conf(broker.bootstrap))
    for i in range(4):
        seed.produce(src, value=f"in{i}".encode(), partition=0)
    seed.flush(30)
    group = unique("etl")
    c = confluent_consumer(broker.bootstrap, **{"group.id": group, "isolation.level": "read_committed"})
    c.assign([TopicPartition(src, 0, 0)])
    msgs = []
    deadline = time.monotonic() + 20
    while len(msgs) < 4 and time.monotonic() < deadline:
        msgs += [m for m in c.consume(num_messages=4 - len(msgs), timeout=0.5) if not m.error()]
    assert len(msgs) == 4
    p = txn_producer(broker.bootstrap, unique("tid-etl"))
    # An aborted transaction leaves the group's offset untouched.
    p.begin_transaction()
    p.produce(dst, value=b"out-aborted", partition=0)
    p.send_offsets_to_transaction([TopicPartition(src, 0, 2)], c.consumer_group_metadata(), 30)
    p.abort_transaction(30)
    assert _committed(broker.bootstrap, group, src) < 0
    # A committed one moves it, together with the output.
    p.begin_transaction()
    for m in msgs:
        p.produce(dst, value=m.value().replace(b"in", b"out"), partition=0)
    p.send_offsets_to_transaction([TopicPartition(src, 0, 4)], c.consumer_group_metadata(), 30)
    p.commit_transaction(30)
    c.close()
    assert _committed(broker.bootstrap, group, src) == 4
    out = read_all(broker.bootstrap, dst, "read_committed", expect_at_least=4)
    assert [m.value() for m in out] == [f"out{i}".encode() for i in range(4)]


def test_java_transactional_producer(broker):
    """Kafka 4.1.2's Java producer (kafka-producer-perf-test.sh, a transaction every 100 ms) and
    a read_committed console consumer."""
    topic = create_topic(broker.bootstrap, unique("txn-java"), partitions=3)
    tid = unique("tid-java")
    run_tool("kafka-producer-perf-test.sh", "--topic", topic, "--num-records", "3000", "--record-size", "20",
             "--throughput", "-1", "--producer-props", f"bootstrap.servers={broker.bootstrap}",
             "--transactional-id", tid, "--transaction-duration-ms", "100", timeout=120)
    out = run_tool("kafka-console-consumer.sh", "--bootstrap-server", broker.bootstrap, "--topic", topic,
                   "--from-beginning", "--isolation-level", "read_committed", "--max-messages", "3000",
                   "--timeout-ms", "20000", timeout=90)
    assert len(out.stdout.splitlines()) == 3000
    described = run_tool("kafka-transactions.sh", "--bootstrap-server", broker.bootstrap, "describe",
                         "--transactional-id", tid).stdout
    assert "CompleteCommit" in described


def test_kafka_python_transactional_producer(broker):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KTopicPartition

    topic = create_topic(broker.bootstrap, unique("txn-kpy"), partitions=1)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=unique("tid-kpy"),
                      request_timeout_ms=15000, max_block_ms=15000)
    try:
        p.init_transactions()
        p.begin_transaction()
        p.send(topic, value=b"kept", partition=0)
        p.commit_transaction()
        p.begin_transaction()
        p.send(topic, value=b"dropped", partition=0)
        p.flush()
        p.abort_transaction()
    finally:
        p.close(timeout=10)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, isolation_level="read_committed",
                      enable_auto_commit=False, consumer_timeout_ms=3000)
    try:
        c.assign([KTopicPartition(topic, 0)])
        c.seek_to_beginning()
        assert [m.value for m in c] == [b"kept"]
    finally:
        c.close()
