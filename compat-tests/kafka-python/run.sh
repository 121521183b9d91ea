#!/usr/bin/env bash
# kafka-python's OWN integration tests (test/integration of the PyPI sdist) against gregor
# (or any broker via COMPAT_BOOTSTRAP).
#
#   compat-tests/kafka-python/run.sh [--allowed]   # the tests in tests.allow (default); exit 1 on any failure
#   compat-tests/kafka-python/run.sh --all         # every integration test (SASL/SSL ones count as not applicable)
#   compat-tests/kafka-python/run.sh ID ...        # just these, e.g. test_consumer_integration.py::test_group
#
# Prints one "PASS|FAIL|SKIP|N/A ID" line per test and a final summary line
# "kafka-python: N passed, M failed, K skipped, J not applicable". One broker for the whole run.
# Logs: $KAFKA_PYTHON_LOG_DIR (default compat-tests/.cache/kafka-python/logs): pytest.log, junit.xml, gregor.log.
#
# Env: GREGOR_BIN (else $CARGO_TARGET_DIR/{release,debug}/gregor, else target/{release,debug}/gregor);
#      COMPAT_BOOTSTRAP=host:port runs against an already running broker (e.g. the reference Kafka);
#      KAFKA_PYTHON_TEST_TIMEOUT (pytest-timeout per test, default 120 s); GREGOR_RUST_LOG.
#
# Setup (cached in compat-tests/.cache/kafka-python): `pip download --no-binary :all: --no-deps
# kafka-python==VERSION` (the version pinned in compat-tests/requirements.txt), unpacked; the sdist
# lacks test/__init__.py and test/service.py, which its test/integration imports: we add an empty
# __init__.py and glue/service.py, plus glue/conftest.py (a client-race workaround, see FINDINGS.md).
# Runs with the compat venv (compat-tests/.venv, setup.sh), from the
# sdist root, so the tests exercise the sdist's own `kafka` package.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV=$ROOT/compat-tests/.venv
VERSION=$(sed -n 's/^kafka-python==\([^ ]*\).*/\1/p' "$ROOT/compat-tests/requirements.txt")
CACHE=$ROOT/compat-tests/.cache/kafka-python
SDIST=$CACHE/kafka_python-$VERSION
LOG_DIR=${KAFKA_PYTHON_LOG_DIR:-$CACHE/logs}
TIMEOUT=${KAFKA_PYTHON_TEST_TIMEOUT:-120}

MODE=allowed
TESTS=()
for a in "$@"; do
  case "$a" in
    --all) MODE=all ;;
    --allowed) MODE=allowed ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "unknown option $a" >&2; exit 2 ;;
    *) MODE=list; TESTS+=("${a#test/integration/}") ;;
  esac
done

# ---------------------------------------------------------------- setup (cached)
[ -x "$VENV/bin/python" ] || "$ROOT/compat-tests/setup.sh" || { echo "kafka-python: setup.sh failed" >&2; exit 2; }
mkdir -p "$CACHE" "$LOG_DIR"
if [ ! -f "$SDIST/.ready" ]; then
  t0=$(date +%s)
  "$VENV/bin/pip" download -q --no-binary :all: --no-deps "kafka-python==$VERSION" -d "$CACHE" \
    || { echo "kafka-python: pip download failed" >&2; exit 2; }
  rm -rf "$SDIST" && tar -xzf "$CACHE/kafka_python-$VERSION.tar.gz" -C "$CACHE" || exit 2
  touch "$SDIST/test/__init__.py"
  touch "$SDIST/.ready"
  echo "kafka-python: sdist $VERSION set up in $(( $(date +%s) - t0 )) s"
fi

# Glue (refreshed on every run): test/service.py (missing from the sdist; external broker only) and
# test/conftest.py (works around a client race; KAFKA_PYTHON_METADATA_MAX_AGE_MS=0 disables it).
cp "$HERE/glue/service.py" "$SDIST/test/service.py"
cp "$HERE/glue/conftest.py" "$SDIST/test/conftest.py"

# Not applicable (see FINDINGS.md): "ID  reason" lines.
declare -A NA
while IFS= read -r line; do
  case "$line" in ''|'#'*) continue ;; esac
  name=${line%%[[:space:]]*}; reason=${line#"$name"}; reason=${reason#"${reason%%[![:space:]]*}"}
  NA[$name]=${reason:-not applicable}
done < "$HERE/tests.na"

PYTEST=("$VENV/bin/python" -m pytest -p no:cacheprovider)
export KAFKA_VERSION=4.1.0 KAFKA_ROOT=$CACHE
case "$MODE" in
  all)
    mapfile -t TESTS < <(cd "$SDIST" && KAFKA_URI=kafka://127.0.0.1:1 "${PYTEST[@]}" --collect-only -q test/integration 2>/dev/null \
                          | sed -n 's#^test/integration/\(.*::.*\)$#\1#p') ;;
  allowed) mapfile -t TESTS < <(grep -v '^\s*#' "$HERE/tests.allow" | sed 's/#.*//' | awk 'NF {print $1}') ;;
esac
[ ${#TESTS[@]} -gt 0 ] || { echo "kafka-python: no tests selected" >&2; exit 2; }
RUN=()
na=0
for t in "${TESTS[@]}"; do
  if [ -n "${NA[$t]:-}" ]; then echo "N/A  $t (${NA[$t]})"; na=$((na + 1)); else RUN+=("$t"); fi
done

# ---------------------------------------------------------------- broker
# The broker settings of the suite's own fixture (kafka-python servers/resources/*/kafka.properties,
# rendered with broker_id 0 and partitions 4): tests rely on them (node id 0 in a CreatePartitions
# assignment, 1 s session timeouts, partition 1 of an auto-created topic). Use the same settings on a
# reference Kafka (see FINDINGS.md). The template's ACL authorizer (StandardAuthorizer with
# allow.everyone.if.no.acl.found=true: everything allowed until a test adds ACLs) is
# what test_create_describe_delete_acls needs.
SUITE_OVERRIDES=(--override node.id=0 --override num.partitions=4 --override offsets.topic.num.partitions=2
                 --override group.min.session.timeout.ms=1000 --override group.initial.rebalance.delay.ms=0
                 --override authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
                 --override allow.everyone.if.no.acl.found=true)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
BROKER_PID=
BROKER_TMP=
stop_gregor() {
  [ -n "$BROKER_PID" ] || return 0
  kill -TERM "$BROKER_PID" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$BROKER_PID" 2>/dev/null; wait "$BROKER_PID" 2>/dev/null
  BROKER_PID=; rm -rf "$BROKER_TMP"
}
trap stop_gregor EXIT INT TERM

if [ -n "${COMPAT_BOOTSTRAP:-}" ]; then
  BOOT=$COMPAT_BOOTSTRAP
  echo "kafka-python $VERSION: against $BOOT"
else
  GREGOR=${GREGOR_BIN:-}
  if [ -z "$GREGOR" ]; then
    for c in ${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/release/gregor $CARGO_TARGET_DIR/debug/gregor} \
             "$ROOT/target/release/gregor" "$ROOT/target/debug/gregor"; do
      [ -x "$c" ] && { GREGOR=$c; break; }
    done
  fi
  [ -n "$GREGOR" ] && [ -x "$GREGOR" ] || { echo "kafka-python: no gregor binary (set GREGOR_BIN or build it)" >&2; exit 2; }
  BROKER_TMP=$(mktemp -d /tmp/kafka-python-gregor.XXXXXX)
  PORT=$(free_port)
  RUST_LOG=${GREGOR_RUST_LOG:-${RUST_LOG:-info}} "$GREGOR" \
    --override listeners=PLAINTEXT://127.0.0.1:$PORT --override advertised.listeners=PLAINTEXT://127.0.0.1:$PORT \
    --override log.dirs=$BROKER_TMP/data --override metrics.listener= \
    "${SUITE_OVERRIDES[@]}" > "$LOG_DIR/gregor.log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 100); do port_open "$PORT" && break; sleep 0.1; done
  port_open "$PORT" || { echo "kafka-python: gregor did not start (see $LOG_DIR/gregor.log)" >&2; exit 2; }
  BOOT=127.0.0.1:$PORT
  echo "kafka-python $VERSION: against gregor $GREGOR on $BOOT (log $LOG_DIR/gregor.log)"
fi

# ---------------------------------------------------------------- run
pass=0 fail=0 skip=0
if [ ${#RUN[@]} -gt 0 ]; then
  IDS=(); for t in "${RUN[@]}"; do IDS+=("test/integration/$t"); done
  rm -f "$LOG_DIR/junit.xml"
  (cd "$SDIST" && KAFKA_URI=kafka://$BOOT "${PYTEST[@]}" -v -rA --timeout="$TIMEOUT" --timeout-method=signal \
      --junitxml="$LOG_DIR/junit.xml" -o junit_family=xunit1 "${IDS[@]}") > "$LOG_DIR/pytest.log" 2>&1
  OUT=$("$VENV/bin/python" - "$LOG_DIR/junit.xml" "${RUN[@]}" <<'EOF'
import sys, xml.etree.ElementTree as ET
path, wanted = sys.argv[1], sys.argv[2:]
res = {}
try:
    root = ET.parse(path).getroot()
    for tc in root.iter('testcase'):
        f = (tc.get('file') or '').replace('test/integration/', '')
        cls = tc.get('classname', '').split('.')[-1]
        tid = f"{f or cls + '.py'}::{tc.get('name')}"
        kids = {c.tag: c for c in tc}
        if 'failure' in kids or 'error' in kids:
            el = kids.get('failure', kids.get('error'))
            res[tid] = ('FAIL', (el.get('message') or '').splitlines()[0][:160] if el.get('message') else '')
        elif 'skipped' in kids:
            res[tid] = ('SKIP', (kids['skipped'].get('message') or '')[:160])
        else:
            res[tid] = ('PASS', f"{float(tc.get('time', 0)):.1f}s")
except Exception as e:
    print(f"(no junit results: {e})")
p = f = s = 0
for t in wanted:
    # a parametrized id given without [..] matches all its cases
    hits = {k: v for k, v in res.items() if k == t or k.startswith(t + '[')}
    if not hits:
        hits = {t: ('FAIL', 'no result (not collected, or the run crashed); see pytest.log')}
    for k, (st, why) in sorted(hits.items()):
        print(f"{st:4} {k}" + (f" ({why})" if why else ''))
        p += st == 'PASS'; f += st == 'FAIL'; s += st == 'SKIP'
print(p, f, s)
EOF
  )
  printf '%s\n' "$OUT" | sed '$d'
  read -r pass fail skip <<< "$(printf '%s\n' "$OUT" | tail -1)"
fi
echo "kafka-python: $pass passed, $fail failed, $skip skipped, $na not applicable"
if [ "$MODE" = allowed ] && { [ "$fail" -ne 0 ] || [ "$pass" -eq 0 ]; }; then exit 1; fi
[ "$fail" -eq 0 ]
