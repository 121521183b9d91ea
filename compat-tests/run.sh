#!/usr/bin/env bash
# Run the Gregor compatibility suite.
#   compat-tests/run.sh [--no-setup] [--junit FILE] [PYTEST ARGS...]
# Target: gregor (GREGOR_BIN, else target/release/gregor, else target/debug/gregor), started by the
# fixtures; or an already running broker with COMPAT_BOOTSTRAP=127.0.0.1:PORT (gregor-only tests skip).
# Exits non-zero on any failure/error and also when no test ran.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SETUP=1
JUNIT=
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-setup) SETUP=0; shift ;;
    --junit) JUNIT=$2; shift 2 ;;
    --junit=*) JUNIT=${1#--junit=}; shift ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
if [ "$SETUP" = 1 ]; then
  "$HERE/setup.sh"
fi
PY=$HERE/.venv/bin/python
if [ ! -x "$PY" ]; then
  echo "run.sh: $PY missing (run without --no-setup)" >&2
  exit 1
fi
PYTEST_OPTS=(-q -p no:cacheprovider --durations=10)
if [ -n "$JUNIT" ]; then PYTEST_OPTS+=("--junitxml=$JUNIT"); fi
set +e
"$PY" -m pytest "$HERE/python" "${PYTEST_OPTS[@]}" "${ARGS[@]}"
rc=$?
set -e
if [ $rc -eq 5 ]; then
  echo "run.sh: no tests ran" >&2
  exit 5
fi
exit $rc
