#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-producer-perf-test.sh (class org.apache.kafka.tools.ProducerPerformance).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.ProducerPerformance "$@"
