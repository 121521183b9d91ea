#!/usr/bin/env bash
# franz-go's OWN pkg/kgo integration tests against gregor (or any broker via COMPAT_BOOTSTRAP).
#
#   compat-tests/franz-go/run.sh [--allowed]      # the tests in tests.allow (default); exit 1 on any failure
#   compat-tests/franz-go/run.sh --all            # every integration test (those that need KGO_SEEDS)
#   compat-tests/franz-go/run.sh TestA TestB ...  # just these
#
# Prints one "PASS|FAIL|SKIP|N/A TestName (secs)" line per test and a final summary line
# "franz-go: N passed, M failed, K skipped, J not applicable". Per-test output: $FRANZ_GO_LOG_DIR
# (default compat-tests/.cache/franz-go/logs/<test>.log), the broker log next to it (gregor.log).
#
# Env: GREGOR_BIN (else $CARGO_TARGET_DIR/{release,debug}/gregor, else target/{release,debug}/gregor);
#      COMPAT_BOOTSTRAP=host:port runs against an already running broker instead (e.g. the reference
#      Kafka from compat-tests/bin/kafka-reference-broker.sh); FRANZ_GO_TEST_TIMEOUT (default 180 s
#      per test); GREGOR_RUST_LOG (RUST_LOG for gregor); FRANZ_GO_VERSION (pinned below);
#      FRANZ_GO_INITIAL_REBALANCE_DELAY_MS (gregor's group.initial.rebalance.delay.ms, default 0 as in
#      Kafka's shipped server.properties; see FINDINGS.md).
#
# Setup (cached in compat-tests/.cache/franz-go): `go mod download` of the pinned franz-go into a
# private GOMODCACHE, a writable copy of the module source, `go test -c ./pkg/kgo` -> kgo.test.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VERSION=${FRANZ_GO_VERSION:-v1.22.2}
CACHE=$ROOT/compat-tests/.cache/franz-go
SRC=$CACHE/src-$VERSION
TESTBIN=$CACHE/kgo-$VERSION.test
LIST=$CACHE/integration-$VERSION.txt
LOG_DIR=${FRANZ_GO_LOG_DIR:-$CACHE/logs}
TIMEOUT=${FRANZ_GO_TEST_TIMEOUT:-180}

MODE=allowed
TESTS=()
for a in "$@"; do
  case "$a" in
    --all) MODE=all ;;
    --allowed) MODE=allowed ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "unknown option $a" >&2; exit 2 ;;
    *) MODE=list; TESTS+=("$a") ;;
  esac
done

# ---------------------------------------------------------------- setup (cached)
export GOMODCACHE=$CACHE/gomod GOCACHE=$CACHE/gocache GOPATH=$CACHE/gopath GOFLAGS=-modcacherw
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
mkdir -p "$CACHE" "$LOG_DIR"
if [ ! -x "$TESTBIN" ] || [ ! -s "$LIST" ]; then
  command -v go >/dev/null || { echo "franz-go: go is not installed" >&2; exit 2; }
  echo "franz-go: building pkg/kgo tests of github.com/twmb/franz-go@$VERSION (cached in $CACHE)"
  t0=$(date +%s)
  DIR=$(cd "$CACHE" && go mod download -json "github.com/twmb/franz-go@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$DIR" ] && [ -d "$DIR" ] || { echo "franz-go: go mod download failed" >&2; exit 2; }
  rm -rf "$SRC" && cp -r "$DIR" "$SRC" && chmod -R u+w "$SRC"
  (cd "$SRC" && nice -n 10 go test -c ./pkg/kgo -o "$TESTBIN") || { echo "franz-go: build failed" >&2; exit 2; }
  # The integration tests are the Test functions that reach getSeedBrokers (KGO_SEEDS).
  (cd "$HERE/listtests" && go run main.go "$SRC/pkg/kgo") > "$LIST.tmp" && mv "$LIST.tmp" "$LIST"
  echo "franz-go: setup took $(( $(date +%s) - t0 )) s"
fi

# Tests that cannot apply to a single plaintext node (see FINDINGS.md): name -> reason.
declare -A NA
while IFS= read -r line; do
  case "$line" in ''|'#'*) continue ;; esac
  name=${line%%[[:space:]]*}; reason=${line#"$name"}; reason=${reason#"${reason%%[![:space:]]*}"}
  NA[$name]=${reason:-not applicable}
done < "$HERE/tests.na"

case "$MODE" in
  all) mapfile -t TESTS < <(cat "$LIST"; printf '%s\n' "${!NA[@]}" | sort) ;;
  allowed) mapfile -t TESTS < <(grep -v '^\s*#' "$HERE/tests.allow" | sed 's/#.*//' | awk 'NF {print $1}') ;;
esac
# de-duplicate, keep order
declare -A SEEN; UNIQ=()
for t in "${TESTS[@]}"; do [ -n "${SEEN[$t]:-}" ] || { SEEN[$t]=1; UNIQ+=("$t"); }; done
TESTS=("${UNIQ[@]}")

# ---------------------------------------------------------------- broker
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

BROKER_PID=
BROKER_TMP=
start_gregor() {
  BROKER_TMP=$(mktemp -d /tmp/franz-go-gregor.XXXXXX)
  PORT=$(free_port)
  RUST_LOG=${GREGOR_RUST_LOG:-${RUST_LOG:-info}} "$GREGOR" \
    --override listeners=PLAINTEXT://127.0.0.1:$PORT --override advertised.listeners=PLAINTEXT://127.0.0.1:$PORT \
    --override log.dirs=$BROKER_TMP/data --override metrics.listener= \
    --override group.initial.rebalance.delay.ms=${FRANZ_GO_INITIAL_REBALANCE_DELAY_MS:-0} \
    >> "$LOG_DIR/gregor.log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 100); do port_open "$PORT" && break; sleep 0.1; done
  port_open "$PORT" || { echo "franz-go: gregor did not start (see $LOG_DIR/gregor.log)" >&2; exit 2; }
  SEEDS=127.0.0.1:$PORT
}
stop_gregor() {
  [ -n "$BROKER_PID" ] || return 0
  kill -TERM "$BROKER_PID" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$BROKER_PID" 2>/dev/null; wait "$BROKER_PID" 2>/dev/null
  BROKER_PID=
  rm -rf "$BROKER_TMP"
}
trap stop_gregor EXIT INT TERM

if [ -n "${COMPAT_BOOTSTRAP:-}" ]; then
  SEEDS=$COMPAT_BOOTSTRAP
  echo "franz-go $VERSION: against $SEEDS"
else
  GREGOR=${GREGOR_BIN:-}
  if [ -z "$GREGOR" ]; then
    for c in ${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/release/gregor $CARGO_TARGET_DIR/debug/gregor} \
             "$ROOT/target/release/gregor" "$ROOT/target/debug/gregor"; do
      [ -x "$c" ] && { GREGOR=$c; break; }
    done
  fi
  [ -n "$GREGOR" ] && [ -x "$GREGOR" ] || { echo "franz-go: no gregor binary (set GREGOR_BIN or build it)" >&2; exit 2; }
  : > "$LOG_DIR/gregor.log"
  start_gregor
  echo "franz-go $VERSION: against gregor $GREGOR on $SEEDS (log $LOG_DIR/gregor.log)"
fi

# ---------------------------------------------------------------- run
pass=0 fail=0 skip=0 na=0
FAILED=()
for t in "${TESTS[@]}"; do
  if [ -n "${NA[$t]:-}" ]; then
    echo "N/A  $t (${NA[$t]})"; na=$((na + 1)); continue
  fi
  if [ -z "${COMPAT_BOOTSTRAP:-}" ] && ! kill -0 "$BROKER_PID" 2>/dev/null; then
    echo "franz-go: gregor died; restarting it" | tee -a "$LOG_DIR/gregor.log"
    start_gregor
  fi
  [ -z "${COMPAT_BOOTSTRAP:-}" ] && echo "===== $t $(date -u +%H:%M:%S)" >> "$LOG_DIR/gregor.log"
  t0=$(date +%s.%N)
  (cd "$CACHE" && KGO_SEEDS=$SEEDS KGO_TEST_RF=1 KGO_TEST_RECORDS=${KGO_TEST_RECORDS:-5000} \
     timeout -k 10 $((TIMEOUT + 30)) "$TESTBIN" -test.v -test.run "^${t}\$" -test.timeout "${TIMEOUT}s" -test.count 1) \
     > "$LOG_DIR/$t.log" 2>&1
  rc=$?
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if grep -q "^--- FAIL: $t\b" "$LOG_DIR/$t.log" || { [ $rc -ne 0 ]; }; then
    echo "FAIL $t (${secs}s; rc $rc; log $LOG_DIR/$t.log)"; fail=$((fail + 1)); FAILED+=("$t")
  elif grep -q "^--- SKIP: $t\b" "$LOG_DIR/$t.log"; then
    echo "SKIP $t (${secs}s: $(grep -m1 -E '^ +[a-z0-9_]+_test\.go:[0-9]+: ' "$LOG_DIR/$t.log" | sed 's/^ *//'))"; skip=$((skip + 1))
  elif grep -q "^--- PASS: $t\b" "$LOG_DIR/$t.log"; then
    echo "PASS $t (${secs}s)"; pass=$((pass + 1))
  else
    echo "FAIL $t (${secs}s; no result line, test not found?; log $LOG_DIR/$t.log)"; fail=$((fail + 1)); FAILED+=("$t")
  fi
done

echo "franz-go: $pass passed, $fail failed, $skip skipped, $na not applicable"
if [ "$MODE" = allowed ] && { [ $fail -ne 0 ] || [ $pass -eq 0 ]; }; then exit 1; fi
[ $fail -eq 0 ]
