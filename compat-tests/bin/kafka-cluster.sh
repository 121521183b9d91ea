#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-cluster.sh (class org.apache.kafka.tools.ClusterTool).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.ClusterTool "$@"
