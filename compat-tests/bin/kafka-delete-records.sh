#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-delete-records.sh (class org.apache.kafka.tools.DeleteRecordsCommand).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.DeleteRecordsCommand "$@"
