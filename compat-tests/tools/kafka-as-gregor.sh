#!/usr/bin/env bash
# Validation aid: behaves like the gregor binary's command-line contract but runs the reference Apache
# Kafka, so the "gregor mode" fixtures (start, kill -9, restart, log tail) can be exercised before gregor
# exists:   GREGOR_BIN=compat-tests/tools/kafka-as-gregor.sh compat-tests/run.sh --no-setup
# Accepts: --override listeners=PLAINTEXT://127.0.0.1:PORT --override advertised.listeners=...
#          --override log.dirs=DIR --override metrics.listener=   (other overrides are passed to Kafka)
set -euo pipefail
BIN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../bin" && pwd)
LISTENERS= ADVERTISED= LOGDIR= EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --override)
      case "$2" in
        listeners=*) LISTENERS=${2#listeners=} ;;
        advertised.listeners=*) ADVERTISED=${2#advertised.listeners=} ;;
        log.dirs=*) LOGDIR=${2#log.dirs=} ;;
        metrics.listener=*) ;;
        *) EXTRA+=(--override "$2") ;;
      esac
      shift 2 ;;
    *) echo "kafka-as-gregor: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$LISTENERS" ] && [ -n "$LOGDIR" ] || { echo "kafka-as-gregor: need listeners and log.dirs" >&2; exit 2; }
PORT=${LISTENERS##*:}
CPORT=$((PORT + 1))
mkdir -p "$LOGDIR"
PROPS=$LOGDIR/../kafka-as-gregor.properties
cat > "$PROPS" <<P
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=$LISTENERS,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=${ADVERTISED:-$LISTENERS}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$LOGDIR
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
P
if [ ! -f "$LOGDIR/meta.properties" ]; then
  "$BIN_DIR/kafka-storage.sh" format -t "$("$BIN_DIR/kafka-storage.sh" random-uuid)" -c "$PROPS" >&2
fi
exec "$BIN_DIR/kafka-server-start.sh" "$PROPS" "${EXTRA[@]}"
