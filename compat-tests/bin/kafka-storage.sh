#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-storage.sh (class kafka.tools.StorageTool).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
