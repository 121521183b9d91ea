#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-broker-api-versions.sh (class org.apache.kafka.tools.BrokerApiVersionsCommand).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
