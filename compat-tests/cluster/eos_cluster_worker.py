"""Consume-transform-produce worker for test_eos_cluster.py, run as its own process: the transactional
consume-transform-produce loop of compat-tests/python/eos_worker.py (KIP-98/KIP-447 with confluent-kafka:
read_committed input, the transformed records and the consumed offsets committed in one transaction with
send_offsets_to_transaction) plus what a worker needs to live through broker failures, as the librdkafka
transactional API prescribes (a retriable error: call again; an abortable one: abort_transaction and rewind the
consumer to the last committed positions; a fatal one: exit 3).

    python eos_cluster_worker.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID PROGRESS_FILE STOP_FILE

Every partition of INPUT is assigned (offsets from GROUP's committed ones). Input record (p, offset, value) becomes
the output record key `p:offset`, value `out-<value>`, written to partition p of OUTPUT (so the committed output
partition p is the input partition p transformed, in order).

PROGRESS_FILE gets one line per event, each starting with a monotonic timestamp (time.monotonic(), the same clock
as the test's on this machine): `T start`, `T commit N RECORDS`, `T retry N CALL ERROR`, `T abort N ERROR`,
`T fatal ERROR`, `T done`. STOP_FILE (written by the test once the input is complete) holds {partition: end
offset} as JSON; the worker exits 0 once its committed positions reached those ends.
"""

import json
import os
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

CALL_TIMEOUT = 60  # seconds per transactional call
RETRIES = 8  # attempts of one call on retriable errors


def main():
    bootstrap, input_topic, output_topic, group, tid, progress, stop_file = sys.argv[1:8]
    log = open(progress, "a", buffering=1)

    def note(text):
        log.write(f"{time.monotonic():.3f} {text}\n")

    def call(what, n, fn, *args):
        """fn(*args), called again on retriable errors (librdkafka: the call may be retried)."""
        for attempt in range(RETRIES):
            try:
                return fn(*args)
            except KafkaException as e:
                err = e.args[0]
                if not err.retriable() or err.fatal() or err.txn_requires_abort() or attempt == RETRIES - 1:
                    raise
                note(f"retry {n} {what} {err.name()}: {err.str()}")
                time.sleep(0.5)

    note("start")
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "transaction.timeout.ms": 60000,
                         "socket.timeout.ms": 10000, "log_level": 3})
    # Fences a previous incarnation and aborts its open transaction first.
    call("init_transactions", 0, producer.init_transactions, CALL_TIMEOUT)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_committed",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest", "socket.timeout.ms": 10000,
                         "log_level": 3})
    partitions = []
    deadline = time.monotonic() + 60
    while not partitions and time.monotonic() < deadline:
        md = consumer.list_topics(input_topic, timeout=10)
        t = md.topics.get(input_topic)
        partitions = sorted(t.partitions) if t is not None and t.error is None else []
    if not partitions:
        sys.exit(f"eos_cluster_worker: no partitions for {input_topic}")
    committed = None
    for _ in range(RETRIES):
        try:
            committed = consumer.committed([TopicPartition(input_topic, p) for p in partitions], timeout=30)
            break
        except KafkaException as e:
            note(f"retry 0 committed {e.args[0].name()}: {e.args[0].str()}")
            time.sleep(0.5)
    if committed is None:
        sys.exit("eos_cluster_worker: cannot read the committed offsets")
    # Positions as of the last committed transaction (rewind target after an abort).
    pos = {tp.partition: (tp.offset if tp.offset >= 0 else 0) for tp in committed}
    consumer.assign([TopicPartition(input_topic, p, pos[p] if pos[p] > 0 else OFFSET_BEGINNING) for p in partitions])
    cgm = consumer.consumer_group_metadata()
    n = 0
    while True:
        producer.poll(0)
        msgs = [m for m in consumer.consume(num_messages=200, timeout=0.5) if not m.error()]
        if not msgs:
            if os.path.exists(stop_file):
                with open(stop_file) as f:
                    ends = {int(p): o for p, o in json.load(f).items()}
                if all(pos[p] >= ends.get(p, 0) for p in partitions):
                    break
            continue
        n += 1
        # Records at or after the committed position only (a rewind may leave older ones in flight).
        msgs = [m for m in msgs if m.offset() >= pos[m.partition()]]
        if not msgs:
            continue
        try:
            producer.begin_transaction()
            for m in msgs:
                producer.produce(output_topic, key=f"{m.partition()}:{m.offset()}".encode(),
                                 value=b"out-" + m.value(), partition=m.partition())
            nxt = dict(pos)
            for m in msgs:
                nxt[m.partition()] = max(nxt[m.partition()], m.offset() + 1)
            offsets = [TopicPartition(input_topic, p, o) for p, o in sorted(nxt.items()) if o != pos[p]]
            call("send_offsets_to_transaction", n, producer.send_offsets_to_transaction, offsets, cgm, CALL_TIMEOUT)
            call("commit_transaction", n, producer.commit_transaction, CALL_TIMEOUT)
        except KafkaException as e:
            err = e.args[0]
            if err.fatal():
                note(f"fatal {err.name()}: {err.str()}")
                sys.exit(3)
            note(f"abort {n} {err.name()}: {err.str()} (retriable={err.retriable()}, "
                 f"txn_requires_abort={err.txn_requires_abort()})")
            try:
                call("abort_transaction", n, producer.abort_transaction, CALL_TIMEOUT)
            except KafkaException as e2:
                note(f"fatal abort_transaction failed: {e2.args[0].name()}: {e2.args[0].str()}")
                sys.exit(4)
            # Rewind every partition of the aborted transaction to the last committed position.
            for p in sorted({m.partition() for m in msgs}):
                consumer.seek(TopicPartition(input_topic, p, pos[p]))
            continue
        pos = nxt
        note(f"commit {n} {len(msgs)}")
    note("done")
    consumer.close()


if __name__ == "__main__":
    main()
