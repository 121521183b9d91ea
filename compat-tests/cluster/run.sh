#!/usr/bin/env bash
# The cluster compatibility suite: a 3-node cluster (combined broker+controller nodes) of gregor or Apache Kafka,
# started by the fixtures, tested with unmodified clients and Kafka's CLI.
#
#   compat-tests/cluster/run.sh [--junit FILE] [PYTEST ARGS...]
#   CLUSTER_IMPL=kafka compat-tests/cluster/run.sh        # against Apache Kafka 4.1.2 (the reference)
#
# Env: CLUSTER_IMPL=gregor|kafka (default gregor); GREGOR_BIN (else $CARGO_TARGET_DIR/{release,debug}/gregor, else
#      target/{release,debug}/gregor); CLUSTER_START_TIMEOUT (s; default 30 gregor, 120 kafka);
#      CLUSTER_STOP_TIMEOUT (s, SIGTERM -> SIGKILL, default 30); KAFKA_HEAP_OPTS (default -Xmx512m -Xms512m);
#      CLUSTER_CACHE_DIR (default compat-tests/.cache/cluster: franzgo binary, Go caches, timings).
# Prints pytest's report (per-test durations, CLUSTER-TIMING lines) and finally one line
#   gregor-cluster: N passed, M failed, K skipped, 0 not applicable
# Exits non-zero on any failure or error, and when no test ran.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COMPAT=$(dirname "$HERE")
PY=$COMPAT/.venv/bin/python
JUNIT=
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --junit) JUNIT=$2; shift 2 ;;
    --junit=*) JUNIT=${1#--junit=}; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
if [ ! -x "$PY" ]; then
  echo "cluster/run.sh: $PY missing (run compat-tests/setup.sh)" >&2
  exit 2
fi
IMPL=${CLUSTER_IMPL:-gregor}
case "$IMPL" in gregor|kafka) ;; *) echo "cluster/run.sh: CLUSTER_IMPL=$IMPL (gregor|kafka)" >&2; exit 2 ;; esac
export CLUSTER_IMPL=$IMPL
CACHE=${CLUSTER_CACHE_DIR:-$COMPAT/.cache/cluster}
mkdir -p "$CACHE"
export CLUSTER_TIMINGS_FILE=${CLUSTER_TIMINGS_FILE:-$CACHE/timings-$IMPL.txt}
: > "$CLUSTER_TIMINGS_FILE"
LOG=$CACHE/run-$IMPL.log
OPTS=(-q -p no:cacheprovider --durations=0 --durations-min=0.5)
[ -n "$JUNIT" ] && OPTS+=("--junitxml=$JUNIT")
echo "gregor-cluster: CLUSTER_IMPL=$IMPL, log $LOG"
t0=$(date +%s)
# pytest runs in the background so that a SIGTERM/SIGINT to this script reaches it (its fixtures stop the cluster).
nice -n 5 "$PY" -m pytest "$HERE" "${OPTS[@]}" "${ARGS[@]}" > >(tee "$LOG") 2>&1 &
PID=$!
trap 'kill -TERM "$PID" 2>/dev/null' TERM INT
while true; do
  wait "$PID" && rc=0 || rc=$?
  kill -0 "$PID" 2>/dev/null || break
done
sleep 0.2  # let tee flush
secs=$(( $(date +%s) - t0 ))
# pytest's summary line ("=== 1 failed, 15 passed in 53.2s ===" or, with -q, without the rules).
last=$(grep -E "^=* ?[0-9]+ (passed|failed|errors?|skipped|deselected)(, [0-9]+ [a-z]+)* in [0-9.]+s" "$LOG" | tail -1)
num() { echo "$last" | grep -oE "[0-9]+ $1" | grep -oE "[0-9]+" || echo 0; }
passed=$(num passed); failed=$(num failed); errors=$(( $(num error) )); skipped=$(num skipped)
# Interrupted (2), internal/usage error (3, 4) or killed: count the run itself as a failure.
if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ] && [ "$rc" -ne 5 ] && [ $(( failed + errors )) -eq 0 ]; then
  echo "cluster/run.sh: pytest exited $rc" >&2
  errors=1
fi
echo "gregor-cluster: wall time ${secs}s (CLUSTER_IMPL=$IMPL)"
echo "gregor-cluster: $passed passed, $(( failed + errors )) failed, $skipped skipped, 0 not applicable"
if [ "$rc" -eq 5 ]; then
  echo "cluster/run.sh: no tests ran" >&2
  exit 5
fi
exit "$rc"
