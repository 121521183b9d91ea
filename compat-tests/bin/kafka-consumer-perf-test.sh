#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-consumer-perf-test.sh (class org.apache.kafka.tools.ConsumerPerformance).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.ConsumerPerformance "$@"
