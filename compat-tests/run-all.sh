#!/usr/bin/env bash
# Every compatibility suite against a real gregor process, one summary line per suite:
#   - gregor-compat: our own pytest suite (compat-tests/python: confluent-kafka, kafka-python,
#     kcat, Apache Kafka's CLI, durability, consumer groups);
#   - the clients' own test suites: librdkafka, franz-go, kafka-python.
#
#   compat-tests/run-all.sh            # the clients' suites run their allow-lists (what CI runs)
#   compat-tests/run-all.sh --all      # full sweep of every suite (slow; see each FINDINGS.md)
#
# GREGOR_BIN selects the broker binary (each suite starts its own gregor processes).
# Exits non-zero if any suite failed; prints "NAME: N passed, M failed, K skipped, J not applicable".
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MODE=--allowed
[ "${1:-}" = "--all" ] && MODE=--all
LOGS=$HERE/.cache/run-all
mkdir -p "$LOGS"
summaries=()
rc=0

run_suite() {
  local name=$1; shift
  local log=$LOGS/$name.log
  echo "=== $name: $*"
  "$@" 2>&1 | tee "$log"
  local status=${PIPESTATUS[0]}
  local line
  line=$(grep -E "^$name: [0-9]+ passed" "$log" | tail -1)
  if [ -z "$line" ]; then
    line="$name: did not report a summary (exit $status; log: $log)"
  fi
  summaries+=("$line")
  [ "$status" -eq 0 ] || rc=1
}

# Our own suite: pytest's closing line, converted to the common format.
"$HERE/setup.sh"
own_log=$LOGS/gregor-compat.log
echo "=== gregor-compat: compat-tests/run.sh --no-setup"
"$HERE/run.sh" --no-setup 2>&1 | tee "$own_log"
own_status=${PIPESTATUS[0]}
last=$(grep -E "[0-9]+ (passed|failed)" "$own_log" | tail -1)
num() { echo "$last" | grep -oE "[0-9]+ $1" | grep -oE "[0-9]+" || echo 0; }
summaries+=("gregor-compat: $(num passed) passed, $(( $(num failed) + $(num error) )) failed, $(num skipped) skipped, 0 not applicable")
[ "$own_status" -eq 0 ] || rc=1

for suite in librdkafka franz-go kafka-python; do
  if [ -x "$HERE/$suite/run.sh" ]; then
    run_suite "$suite" "$HERE/$suite/run.sh" "$MODE"
  fi
done

echo
echo "=== compat summary ($MODE)"
printf '%s\n' "${summaries[@]}"
total_passed=0
total_failed=0
for line in "${summaries[@]}"; do
  p=$(echo "$line" | grep -oE "[0-9]+ passed" | grep -oE "[0-9]+" || echo 0)
  f=$(echo "$line" | grep -oE "[0-9]+ failed" | grep -oE "[0-9]+" || echo 0)
  total_passed=$((total_passed + p))
  total_failed=$((total_failed + f))
  case "$line" in *"did not report"*) total_failed=$((total_failed + 1)) ;; esac
done
echo "compat: $total_passed passed, $total_failed failed"
exit $rc
