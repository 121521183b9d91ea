#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-server-start.sh:
#   kafka-server-start.sh [-daemon] server.properties [--override key=value]...
# Server JVM defaults (like Kafka's): 1 GB heap, G1, full JIT, INFO logging to stderr.
if [ $# -lt 1 ]; then
  echo "USAGE: $0 [-daemon] server.properties [--override property=value]*" >&2
  exit 1
fi
BIN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}
export KAFKA_JVM_PERFORMANCE_OPTS=${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}
export KAFKA_LOG4J_OPTS=${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=$BIN_DIR/log4j2-server.properties}
exec "$BIN_DIR/kafka-run-class.sh" kafka.Kafka "$@"
