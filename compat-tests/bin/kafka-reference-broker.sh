#!/usr/bin/env bash
# Real single-node Apache Kafka (KRaft combined broker+controller) from the Maven jars, used as the
# reference broker for the compat tests and the benchmarks.
#
#   kafka-reference-broker.sh start DIR PORT   # format DIR (once), start, wait until ready
#   kafka-reference-broker.sh stop  DIR [PORT] # SIGTERM, SIGKILL after 30 s
#   kafka-reference-broker.sh status DIR [PORT]
#
# DIR gets: server.properties, data/ (log.dirs), server.log (stdout+stderr), kafka.pid, controller.port.
# Client listener PLAINTEXT://127.0.0.1:PORT; the controller listener takes the first free port above
# PORT (or $KAFKA_CONTROLLER_PORT). Restarting on an existing DIR keeps its data.
# Env: KAFKA_HEAP_OPTS (default -Xmx1g -Xms1g), KAFKA_START_TIMEOUT (seconds, default 90),
#      KAFKA_EXTRA_PROPS (extra "key=value" lines appended to server.properties on first start).
set -euo pipefail
BIN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() { echo "usage: $0 start|stop|status DIR PORT" >&2; exit 2; }
[ $# -ge 2 ] || usage
CMD=$1
DIR=$2
PORT=${3:-}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() {
  [ -f "$DIR/kafka.pid" ] && kill -0 "$(cat "$DIR/kafka.pid")" 2>/dev/null
}

case "$CMD" in
  start)
    [ -n "$PORT" ] || usage
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    if pid_alive; then
      echo "kafka-reference-broker: already running (pid $(cat "$DIR/kafka.pid"))"
      exit 0
    fi
    if port_open "$PORT"; then
      echo "kafka-reference-broker: port $PORT is already in use" >&2
      exit 1
    fi
    if [ ! -f "$DIR/server.properties" ]; then
      CPORT=${KAFKA_CONTROLLER_PORT:-}
      if [ -z "$CPORT" ]; then
        CPORT=$((PORT + 1))
        while port_open "$CPORT"; do CPORT=$((CPORT + 1)); done
      fi
      echo "$CPORT" > "$DIR/controller.port"
      cat > "$DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
PROPS
      if [ -n "${KAFKA_EXTRA_PROPS:-}" ]; then printf '%s\n' "$KAFKA_EXTRA_PROPS" >> "$DIR/server.properties"; fi
    fi
    if [ ! -f "$DIR/data/meta.properties" ]; then
      CLUSTER_ID=$("$BIN_DIR/kafka-storage.sh" random-uuid)
      "$BIN_DIR/kafka-storage.sh" format -t "$CLUSTER_ID" -c "$DIR/server.properties" > "$DIR/format.log" 2>&1 \
        || { cat "$DIR/format.log" >&2; exit 1; }
    fi
    export KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx1g -Xms1g}
    : > "$DIR/server.log"
    # setsid: the broker outlives this script and does not get the caller's terminal signals.
    setsid "$BIN_DIR/kafka-server-start.sh" "$DIR/server.properties" >> "$DIR/server.log" 2>&1 < /dev/null &
    echo $! > "$DIR/kafka.pid"
    TIMEOUT=${KAFKA_START_TIMEOUT:-90}
    deadline=$((SECONDS + TIMEOUT))
    while true; do
      if ! pid_alive; then
        echo "kafka-reference-broker: broker exited during startup; log tail:" >&2
        tail -n 40 "$DIR/server.log" >&2
        exit 1
      fi
      if port_open "$PORT" && grep -q "Kafka Server started" "$DIR/server.log"; then
        break
      fi
      if [ $SECONDS -ge $deadline ]; then
        echo "kafka-reference-broker: not ready after ${TIMEOUT}s; log tail:" >&2
        tail -n 40 "$DIR/server.log" >&2
        exit 1
      fi
      sleep 0.5
    done
    echo "kafka-reference-broker: Apache Kafka running on 127.0.0.1:$PORT (pid $(cat "$DIR/kafka.pid"), dir $DIR)"
    ;;
  stop)
    if ! pid_alive; then
      echo "kafka-reference-broker: not running"
      rm -f "$DIR/kafka.pid"
      exit 0
    fi
    PID=$(cat "$DIR/kafka.pid")
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 60); do
      kill -0 "$PID" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$PID" 2>/dev/null; then
      echo "kafka-reference-broker: still alive after 30 s, SIGKILL" >&2
      kill -KILL "$PID" 2>/dev/null || true
    fi
    rm -f "$DIR/kafka.pid"
    echo "kafka-reference-broker: stopped"
    ;;
  status)
    if pid_alive; then echo "running (pid $(cat "$DIR/kafka.pid"))"; else echo "not running"; exit 1; fi
    ;;
  *) usage ;;
esac
