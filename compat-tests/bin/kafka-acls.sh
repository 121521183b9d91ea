#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-acls.sh (class org.apache.kafka.tools.AclCommand).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.AclCommand "$@"
