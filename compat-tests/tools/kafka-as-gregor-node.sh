#!/usr/bin/env bash
# Validation aid for compat-tests/cluster: speaks gregor's cluster-node contract but runs Apache Kafka, so the
# harness's gregor mode (no format step, start/kill -9/SIGTERM/restart, exit status) can be exercised before
# gregor's cluster exists:
#   CLUSTER_IMPL=gregor GREGOR_BIN=$PWD/compat-tests/tools/kafka-as-gregor-node.sh CLUSTER_START_TIMEOUT=120 \
#     compat-tests/cluster/run.sh
# Contract: `gregor NODE.properties [--override key=value]...`; the node formats itself on first start; exit status 0
# after a SIGTERM-initiated controlled shutdown.
# Emulation: the properties (overrides appended, later keys win) minus gregor-only `metrics.listener` go to
# NODE-DIR/kafka-as-gregor.properties; the log dir is formatted once with a cluster id derived from
# controller.quorum.voters (the same for every node of a cluster); Kafka runs as a child process; SIGTERM/SIGINT
# are forwarded to it and its 143 (the JVM's status for a SIGTERM shutdown) is reported as 0.
set -euo pipefail
BIN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../bin" && pwd)
[ $# -ge 1 ] && [ -f "$1" ] || { echo "usage: $0 NODE.properties [--override key=value]..." >&2; exit 2; }
PROPS=$1; shift
OUT=$(cd "$(dirname "$PROPS")" && pwd)/kafka-as-gregor.properties
grep -v '^metrics\.listener=' "$PROPS" > "$OUT"
while [ $# -gt 0 ]; do
  case "$1" in
    --override) [ $# -ge 2 ] || { echo "kafka-as-gregor-node: --override needs key=value" >&2; exit 2; }
                case "$2" in metrics.listener=*) ;; *) printf '%s\n' "$2" >> "$OUT" ;; esac
                shift 2 ;;
    *) echo "kafka-as-gregor-node: unknown argument $1" >&2; exit 2 ;;
  esac
done
prop() { sed -n "s/^$1=//p" "$OUT" | tail -1; }
LOGDIR=$(prop 'log\.dirs')
VOTERS=$(prop 'controller\.quorum\.voters')
[ -n "$LOGDIR" ] && [ -n "$VOTERS" ] || { echo "kafka-as-gregor-node: need log.dirs and controller.quorum.voters" >&2; exit 2; }
if [ ! -f "$LOGDIR/meta.properties" ]; then
  CID=$(printf '%s' "$VOTERS" | sha256sum | cut -c1-32 | xxd -r -p | base64 | tr '+/' '-_' | tr -d '=')
  case "$CID" in -*) CID="A${CID#?}" ;; esac
  "$BIN_DIR/kafka-storage.sh" format -t "$CID" -c "$OUT" >&2
fi
"$BIN_DIR/kafka-server-start.sh" "$OUT" &
CHILD=$!
trap 'kill -TERM "$CHILD" 2>/dev/null || true' TERM INT
rc=0
while true; do
  wait "$CHILD" && rc=0 || rc=$?
  kill -0 "$CHILD" 2>/dev/null || break   # wait returned because of a trapped signal: keep waiting
done
[ "$rc" -eq 143 ] && rc=0
exit "$rc"
