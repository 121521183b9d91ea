#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-consumer-groups.sh (class org.apache.kafka.tools.consumer.group.ConsumerGroupCommand).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.consumer.group.ConsumerGroupCommand "$@"
