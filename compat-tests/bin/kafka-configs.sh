#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-configs.sh (class kafka.admin.ConfigCommand).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" kafka.admin.ConfigCommand "$@"
