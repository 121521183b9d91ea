#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-dump-log.sh (class kafka.tools.DumpLogSegments).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" kafka.tools.DumpLogSegments "$@"
