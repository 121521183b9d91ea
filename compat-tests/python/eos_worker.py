"""Consume-transform-produce worker for test_eos.py (run as its own process so the test can
SIGKILL it): reads INPUT (read_committed, offsets from GROUP), writes `out-<value>` to partition 0
of OUTPUT and commits the consumed offsets in the same transaction (send_offsets_to_transaction).

    python eos_worker.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID PROGRESS_FILE

After each flush of a transaction's records it appends `open N` to PROGRESS_FILE and waits a
little before committing (so a kill lands inside an open transaction), then `commit N`. Exits 0
once the input has been idle for 3 s."""

import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def main():
    bootstrap, input_topic, output_topic, group, tid, progress = sys.argv[1:7]
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid,
                         "transaction.timeout.ms": 60000, "socket.timeout.ms": 10000})
    # Fences the previous incarnation and aborts its open transaction first.
    producer.init_transactions(30)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "socket.timeout.ms": 10000})
    partitions = []
    deadline = time.monotonic() + 30
    while not partitions and time.monotonic() < deadline:
        md = consumer.list_topics(input_topic, timeout=10)
        t = md.topics.get(input_topic)
        partitions = sorted(t.partitions) if t is not None and t.error is None else []
    if not partitions:
        sys.exit(f"eos_worker: no partitions for {input_topic}")
    # Offsets come from the group's committed offsets (librdkafka asks for stable ones).
    consumer.assign([TopicPartition(input_topic, p) for p in partitions])
    n = 0
    idle_since = time.monotonic()
    with open(progress, "a", buffering=1) as log:
        while time.monotonic() - idle_since < 3:
            msgs = [m for m in consumer.consume(num_messages=10, timeout=0.5) if not m.error()]
            if not msgs:
                continue
            idle_since = time.monotonic()
            n += 1
            producer.begin_transaction()
            for m in msgs:
                producer.produce(output_topic, key=m.key(), value=b"out-" + m.value(), partition=0)
            producer.flush(30)
            log.write(f"open {n}\n")
            time.sleep(0.1)
            offsets = [TopicPartition(m.topic(), m.partition(), m.offset() + 1) for m in msgs]
            last = {}
            for tp in offsets:
                last[(tp.topic, tp.partition)] = tp
            producer.send_offsets_to_transaction(list(last.values()),
                                                 consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
            log.write(f"commit {n}\n")
    consumer.close()


if __name__ == "__main__":
    main()
