#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-reassign-partitions.sh (class org.apache.kafka.tools.reassign.ReassignPartitionsCommand).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.reassign.ReassignPartitionsCommand "$@"
