#!/usr/bin/env bash
# Security compatibility suite: SASL (PLAIN, SCRAM-SHA-256/512), TLS (mTLS) and SASL_SSL listeners of ONE
# single-node broker, tested with unmodified clients (confluent-kafka/librdkafka, kafka-python, Kafka's Java CLI)
# and hand-written frames. The reference is Apache Kafka 4.1.2.
#   compat-tests/security/run.sh [--junit FILE] [PYTEST ARGS...]
#
# Env: SECURITY_IMPL=gregor|kafka (default gregor); GREGOR_BIN (else $CARGO_TARGET_DIR/{release,debug}/gregor,
#      else target/{release,debug}/gregor); SECURITY_START_TIMEOUT (s; default 30 gregor, 120 kafka);
#      SECURITY_STOP_TIMEOUT (s, SIGTERM -> SIGKILL, default 30); KAFKA_HEAP_OPTS (default -Xmx512m -Xms512m);
#      SECURITY_CACHE_DIR (default compat-tests/.cache/security: run logs).
# Needs compat-tests/setup.sh (venv, Kafka jars) and the openssl CLI (test certificates).
# Prints pytest's report (per-test durations) and finally one line
#   gregor-security: N passed, M failed, K skipped
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
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
if [ ! -x "$PY" ]; then
  echo "security/run.sh: $PY missing (run compat-tests/setup.sh)" >&2
  exit 2
fi
if ! command -v openssl >/dev/null; then
  echo "security/run.sh: the openssl CLI is needed for the test certificates (apt-get install -y openssl)" >&2
  exit 2
fi
IMPL=${SECURITY_IMPL:-gregor}
case "$IMPL" in gregor|kafka) ;; *) echo "security/run.sh: SECURITY_IMPL=$IMPL (gregor|kafka)" >&2; exit 2 ;; esac
export SECURITY_IMPL=$IMPL
CACHE=${SECURITY_CACHE_DIR:-$COMPAT/.cache/security}
mkdir -p "$CACHE"
LOG=$CACHE/run-$IMPL.log
OPTS=(-q -p no:cacheprovider --durations=0 --durations-min=0.5)
[ -n "$JUNIT" ] && OPTS+=("--junitxml=$JUNIT")
echo "gregor-security: SECURITY_IMPL=$IMPL, log $LOG"
t0=$(date +%s)
# pytest runs in the background so that a SIGTERM/SIGINT to this script reaches it (its fixture stops the node).
nice -n 5 "$PY" -m pytest "$HERE" "${OPTS[@]}" "${ARGS[@]}" > >(tee "$LOG") 2>&1 &
PID=$!
trap 'kill -TERM "$PID" 2>/dev/null' TERM INT
while true; do
  wait "$PID" && rc=0 || rc=$?
  kill -0 "$PID" 2>/dev/null || break
done
sleep 0.2  # let tee flush
secs=$(( $(date +%s) - t0 ))
last=$(grep -E "^=* ?[0-9]+ (passed|failed|errors?|skipped|deselected)(, [0-9]+ [a-z]+)* in [0-9.]+s" "$LOG" | tail -1)
num() { echo "$last" | grep -oE "[0-9]+ $1" | grep -oE "[0-9]+" || echo 0; }
passed=$(num passed); failed=$(num failed); errors=$(( $(num error) )); skipped=$(num skipped)
if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ] && [ "$rc" -ne 5 ] && [ $(( failed + errors )) -eq 0 ]; then
  echo "security/run.sh: pytest exited $rc" >&2
  errors=1
fi
echo "gregor-security: wall time ${secs}s (SECURITY_IMPL=$IMPL)"
echo "gregor-security: $passed passed, $(( failed + errors )) failed, $skipped skipped"
if [ "$rc" -eq 5 ]; then
  echo "security/run.sh: no tests ran" >&2
  exit 5
fi
exit "$rc"
