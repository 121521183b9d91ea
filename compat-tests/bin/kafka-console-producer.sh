#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-console-producer.sh (class org.apache.kafka.tools.ConsoleProducer).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.ConsoleProducer "$@"
