#!/usr/bin/env bash
# Minimal stand-in for Apache Kafka's bin/kafka-run-class.sh, backed by the jars that
# compat-tests/setup.sh copies from Maven Central into compat-tests/.cache/kafka-libs.
#   usage: kafka-run-class.sh CLASS [ARGS...]
# Honours the usual Kafka knobs: KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS, KAFKA_LOG4J_OPTS,
# KAFKA_OPTS, JAVA_HOME; plus KAFKA_LIBS_DIR (jar directory override).
set -euo pipefail
BIN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COMPAT_DIR=$(dirname "$BIN_DIR")
LIBS=${KAFKA_LIBS_DIR:-$COMPAT_DIR/.cache/kafka-libs}
if ! compgen -G "$LIBS/kafka-tools-*.jar" >/dev/null; then
  echo "kafka-run-class.sh: no Kafka jars in $LIBS (run compat-tests/setup.sh)" >&2
  exit 1
fi
if [ $# -lt 1 ]; then
  echo "usage: $0 CLASS [ARGS...]" >&2
  exit 2
fi
# -daemon / -name are accepted for compatibility with Kafka's script and ignored.
while [ $# -gt 0 ]; do
  case "$1" in
    -daemon) shift ;;
    -name) shift 2 ;;
    -loggc) shift ;;
    *) break ;;
  esac
done
JAVA=java
if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then JAVA="$JAVA_HOME/bin/java"; fi
# Lean JVM for short-lived tools (the broker launcher overrides these).
HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx256m}
PERF_OPTS=${KAFKA_JVM_PERFORMANCE_OPTS:--Xshare:auto -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true}
LOG4J_OPTS=${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=$BIN_DIR/log4j2-tools.properties}
# shellcheck disable=SC2086
exec "$JAVA" $HEAP_OPTS $PERF_OPTS $LOG4J_OPTS ${KAFKA_OPTS:-} -cp "$LIBS/*" "$@"
