#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-verifiable-consumer.sh (class org.apache.kafka.tools.VerifiableConsumer).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.VerifiableConsumer "$@"
