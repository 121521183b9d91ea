#!/usr/bin/env bash
# librdkafka's own test suite (tests/test-runner, broker tests only: -L) against ONE gregor.
#
#   compat-tests/librdkafka/run.sh [--all|--allowed] [--protocol classic|consumer|both]
#                                  [--timeout SECS] [--quick] [--scenario noautocreate]
#                                  [--bootstrap HOST:PORT] [TESTS...]
#
#   --allowed   (default) the tests listed in tests.allow, each with the protocol(s) listed there;
#               exits non-zero if any of them fails or is skipped.
#   --all       every broker test of the suite (tests listed in tests.na are counted as
#               "not applicable" and not run); exits 0 (it is a report).
#   TESTS...    test numbers (0001) or names (0045_subscribe_update); run even if listed in tests.na;
#               exits non-zero if any fails.
#   --protocol  TEST_CONSUMER_GROUP_PROTOCOL: classic, consumer or both (default: both for --all and
#               explicit TESTS; tests.allow decides for --allowed unless given).
#   --quick     pass -Q to the runner.  NOT the default: quick mode silently skips every sub-test
#               declared with SUB_TEST() (only SUB_TEST_QUICK() ones run), so e.g. 0018 "passes" in 0.3 s
#               without doing anything.
#   --scenario  noautocreate: gregor with auto.create.topics.enable=false and the runner's -s noautocreate
#               (tests/scenarios/noautocreate.json): runs 0107, 0111 and two 0045 sub-tests that the default
#               scenario skips.  E.g. run.sh --scenario noautocreate 0045 0107 0111
#   --bootstrap run against an already running broker instead of starting gregor
#               (e.g. the reference Kafka: compat-tests/bin/kafka-reference-broker.sh start DIR PORT).
#
# Environment: GREGOR_BIN (else $CARGO_TARGET_DIR/{release,debug}/gregor, else target/{release,debug}/gregor),
# LIBRDKAFKA_TEST_TIMEOUT (per test process, default 600 s), LIBRDKAFKA_RESULTS (log dir),
# TEST_DEBUG / TEST_LEVEL (passed to the test runner), GREGOR_RUST_LOG (RUST_LOG for gregor),
# LIBRDKAFKA_TIMEOUT_MULTIPLIER (the suite's test.timeout.multiplier for every test; default: 1.0,
# except the per-test values in TIMEOUT_MULTIPLIER below).
#
# One test-runner process per test number (after one failure the runner would abort the rest).
# Each prints one line: PASS|FAIL|SKIP|N/A <test> <protocol> <seconds>; at the end:
#   librdkafka: N passed, M failed, K skipped, J not applicable
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMPAT="$(cd "$HERE/.." && pwd)"
REPO="$(cd "$COMPAT/.." && pwd)"

MODE=allowed
PROTO=""
BOOTSTRAP=""
QUICK=""
SCENARIO=default
PER_TEST_TIMEOUT="${LIBRDKAFKA_TEST_TIMEOUT:-600}"
EXPLICIT=()
while (($#)); do
    case "$1" in
        --all) MODE=all ;;
        --allowed) MODE=allowed ;;
        --protocol) PROTO="$2"; shift ;;
        --protocol=*) PROTO="${1#*=}" ;;
        --timeout) PER_TEST_TIMEOUT="$2"; shift ;;
        --bootstrap) BOOTSTRAP="$2"; shift ;;
        --quick) QUICK=-Q ;;
        --scenario) SCENARIO="$2"; shift ;;
        -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) EXPLICIT+=("$1") ;;
    esac
    shift
done
if ((${#EXPLICIT[@]})); then MODE=explicit; fi
case "$PROTO" in ""|classic|consumer|both) ;; *) echo "--protocol classic|consumer|both" >&2; exit 2 ;; esac

# 1. The test suite (cached build) and the Kafka CLI (KAFKA_PATH) the tests call.
SRC="$("$HERE/build.sh" | tail -1)" && [[ -x "$SRC/tests/test-runner" ]] \
    || { echo "librdkafka: build failed" >&2; exit 1; }
TESTS_DIR="$SRC/tests"
if ! ls "$COMPAT/.cache/kafka-libs/"kafka-tools-*.jar >/dev/null 2>&1; then
    "$COMPAT/setup.sh" >&2 || { echo "librdkafka: compat-tests/setup.sh failed" >&2; exit 1; }
fi
export KAFKA_PATH="$COMPAT"

# 2. The list of broker tests: test number -> names, from the runner's own table (tests/test.c):
#    skip TEST_F_LOCAL (mock cluster, no broker) and TEST_F_MANUAL tests.
mapfile -t SUITE < <(python3 - "$TESTS_DIR/test.c" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
body = src[src.index("struct test tests[] = {"):]
body = body[:body.index("{NULL}}")]
out = {}
for m in re.finditer(r"_TEST\(\s*(\w+)\s*,\s*([^,)]*)", body):
    name, flags = m.group(1), m.group(2)
    if "TEST_F_LOCAL" in flags or "TEST_F_MANUAL" in flags:
        continue
    out.setdefault(name[:4], []).append(name)
for num in sorted(out):
    print(num, " ".join(out[num]))
PY
)
declare -A NAMES
for line in "${SUITE[@]}"; do NAMES[${line%% *}]="${line#* }"; done

declare -A NA_REASON
while read -r num reason; do
    [[ -z "$num" || "$num" == \#* ]] && continue
    NA_REASON[$num]="$reason"
done < <(cat "$HERE/tests.na" 2>/dev/null)

protos_for() {  # $1 = protocol spec (classic|consumer|both)
    case "$1" in both) echo "classic consumer" ;; *) echo "$1" ;; esac
}

# 3. The run plan: "NUM PROTOCOL" lines.
PLAN=()
case "$MODE" in
    allowed)
        while read -r num p _; do
            [[ -z "$num" || "$num" == \#* ]] && continue
            for q in $(protos_for "${PROTO:-${p:-both}}"); do PLAN+=("$num $q"); done
        done < "$HERE/tests.allow"
        ;;
    all)
        for line in "${SUITE[@]}"; do
            for q in $(protos_for "${PROTO:-both}"); do PLAN+=("${line%% *} $q"); done
        done
        ;;
    explicit)
        for t in "${EXPLICIT[@]}"; do
            for q in $(protos_for "${PROTO:-both}"); do PLAN+=("$t $q"); done
        done
        ;;
esac

# 4. The broker.
RESULTS="${LIBRDKAFKA_RESULTS:-$COMPAT/.cache/librdkafka/results/$(date +%Y%m%d-%H%M%S)-$MODE}"
mkdir -p "$RESULTS"
GREGOR_PID=""
TMP="$(mktemp -d /tmp/gregor-librdkafka.XXXXXX)"
cleanup() {
    if [[ -n "$GREGOR_PID" ]] && kill -0 "$GREGOR_PID" 2>/dev/null; then
        kill -TERM "$GREGOR_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$GREGOR_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$GREGOR_PID" 2>/dev/null
    fi
    [[ -f "$TMP/gregor.log" ]] && cp "$TMP/gregor.log" "$RESULTS/gregor.log"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z "$BOOTSTRAP" ]]; then
    BIN="${GREGOR_BIN:-}"
    if [[ -z "$BIN" ]]; then
        for c in ${CARGO_TARGET_DIR:+"$CARGO_TARGET_DIR/release/gregor" "$CARGO_TARGET_DIR/debug/gregor"} \
                 "$REPO/target/release/gregor" "$REPO/target/debug/gregor"; do
            [[ -x "$c" ]] && { BIN="$c"; break; }
        done
    fi
    [[ -x "$BIN" ]] || { echo "librdkafka: no gregor binary (set GREGOR_BIN or build it)" >&2; exit 1; }
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    # num.partitions=4: librdkafka's test clusters (tests/scenarios/default.json, trivup) use 4.
    # group.initial.rebalance.delay.ms is left at Kafka's default (3000), as trivup does.
    # An ACL authorizer, as trivup gives every broker (trivup 0.12: AclAuthorizer, ZooKeeper only, and
    # allow.everyone.if.no.acl.found=true in its template; a KRaft Kafka's is the StandardAuthorizer):
    # 0081, 0109, 0115 and 0119 add ACLs (kafka-acls.sh, CreateAcls); no ACL = everything allowed.
    # env -u KAFKA_PATH: gregor reads KAFKA_* variables as broker configs (it would warn about "path").
    env -u KAFKA_PATH RUST_LOG="${GREGOR_RUST_LOG:-${RUST_LOG:-info}}" "$BIN" \
        --override "listeners=PLAINTEXT://127.0.0.1:$PORT" \
        --override "advertised.listeners=PLAINTEXT://127.0.0.1:$PORT" \
        --override "log.dirs=$TMP/data" \
        --override "metrics.listener=" \
        --override "num.partitions=4" \
        --override "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" \
        --override "allow.everyone.if.no.acl.found=true" \
        --override "auto.create.topics.enable=$([[ $SCENARIO == noautocreate ]] && echo false || echo true)" \
        >"$TMP/gregor.log" 2>&1 &
    GREGOR_PID=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        kill -0 "$GREGOR_PID" 2>/dev/null || { cat "$TMP/gregor.log" >&2; echo "librdkafka: gregor exited" >&2; exit 1; }
        sleep 0.1
    done
    BOOTSTRAP="127.0.0.1:$PORT"
    echo "librdkafka: gregor $BIN on $BOOTSTRAP (log: $RESULTS/gregor.log)"
else
    echo "librdkafka: external broker $BOOTSTRAP"
fi
printf 'bootstrap.servers=%s\n' "$BOOTSTRAP" > "$RESULTS/test.conf"

# Timeout multiplier (the runner's test.timeout.multiplier, written into that test's own copy of
# test.conf). The suite's deadlines are calibrated for its usual runs: the test-runner's default
# concurrency (-p5) gives x2.7, CI=true x3; this runner uses -p1 (x1.0). Some tests cannot finish
# within their own deadline at x1.0 on ANY broker (Kafka 4.1.2 included), because of fixed costs:
# 0119 waits ~16 s and starts kafka-acls.sh (a JVM, ~1 s) four times inside a 20 s budget; the
# first half of 0081 needs ~200 s (group joins with the 3 s initial rebalance delay, sleeps)
# inside one 180 s budget.
# Note: a deadline set through test_conf_init() is scaled by the square of the multiplier (test.c
# applies it when reading test.conf and again in test_timeout_set()); tmout_multip() waits once.
# LIBRDKAFKA_TIMEOUT_MULTIPLIER=M applies M to every test instead.
declare -A TIMEOUT_MULTIPLIER=([0081]=1.5 [0119]=1.5)
conf_for() {  # $1 = test number -> path of the test.conf to use
    local m="${LIBRDKAFKA_TIMEOUT_MULTIPLIER:-${TIMEOUT_MULTIPLIER[$1]:-}}"
    if [[ -z "$m" ]]; then echo "$RESULTS/test.conf"; return; fi
    { cat "$RESULTS/test.conf"; printf 'test.timeout.multiplier=%s\n' "$m"; } > "$RESULTS/test-$1.conf"
    echo "$RESULTS/test-$1.conf"
}
echo "librdkafka: $(basename "$SRC") test suite, results in $RESULTS"

# 5. Run.
passed=0 failed=0 skipped=0 na=0
FAILED_LIST=()
for entry in "${PLAN[@]}"; do
    t="${entry% *}"; proto="${entry#* }"
    num="${t:0:4}"
    if [[ "$MODE" == all && -n "${NA_REASON[$num]:-}" ]]; then
        printf '%-4s %-40s %-8s %6s  %s\n' "N/A" "$t" "$proto" "-" "${NA_REASON[$num]}"
        na=$((na + 1)); continue
    fi
    log="$RESULTS/$proto/$t.log"
    mkdir -p "$RESULTS/$proto"
    echo "=== $(date -Is) $t $proto against $BOOTSTRAP" >> "$RESULTS/gregor-marks.log"
    start=$(date +%s.%N)
    (
        cd "$TESTS_DIR" && \
        env RDKAFKA_TEST_CONF="$(conf_for "$num")" TEST_KAFKA_VERSION=4.1.0 BROKERS="$BOOTSTRAP" \
            KAFKA_PATH="$KAFKA_PATH" TESTS="$t" TEST_CONSUMER_GROUP_PROTOCOL="$proto" TEST_MODE=bare \
            RDKAFKA_GITVER="librdkafka-$(basename "$SRC")" \
            LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}../src:../src-cpp" \
            timeout --kill-after=10 "$PER_TEST_TIMEOUT" ./test-runner -L $QUICK -s "$SCENARIO" -p1
        exit $?
    ) > "$log" 2>&1
    rc=$?
    secs=$(python3 -c "import time; print('%.1f' % (time.time() - $start))")
    # Summary table rows: "| 0001_multiobj | PASSED | 5.1s |" (colors stripped).
    states=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | awk -F'|' -v n="$t" '
        NF >= 4 { name=$2; st=$3; gsub(/ /,"",name); gsub(/ /,"",st);
                  if (name ~ /^[0-9][0-9][0-9][0-9]_/ && index(name, n) == 1 && st ~ /^(PASSED|FAILED|SKIPPED|RUNNING|NOT_STARTED)$/) print name "=" st }' | sort -u | tr '\n' ' ')
    if (((rc == 124 || rc == 137) && ${secs%.*} >= PER_TEST_TIMEOUT)); then
        result=FAIL; detail="killed: per-test timeout ${PER_TEST_TIMEOUT}s $states"
    elif [[ "$states" == *FAILED* || "$states" == *RUNNING* ]] || ((rc != 0)); then
        result=FAIL; detail="rc=$rc $states"
    elif [[ "$states" == *PASSED* ]]; then
        result=PASS; detail="$states"
    elif [[ -n "$states" ]]; then
        result=SKIP; detail="$states- $(sed 's/\x1b\[[0-9;]*m//g' "$log" | awk -F'|' '$3 ~ /SKIPPED/ && $5 ~ /[^ ]/ {gsub(/^ +| +$/,"",$5); print $5}' | sort -u | tr '\n' ';')"
    else
        result=FAIL; detail="rc=$rc, no test ran (unknown test?)"
    fi
    case $result in
        PASS) passed=$((passed + 1)) ;;
        FAIL) failed=$((failed + 1)); FAILED_LIST+=("$t/$proto") ;;
        SKIP) skipped=$((skipped + 1)); [[ "$MODE" == allowed ]] && FAILED_LIST+=("$t/$proto(skipped)") ;;
    esac
    printf '%-4s %-40s %-8s %6ss  %s\n' "$result" "$t" "$proto" "$secs" "$detail"
    if [[ $result == FAIL ]]; then
        sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E 'FAIL|Test failure|assert' | grep -v '^|' | head -5 | sed 's/^/       /'
    fi
done

echo "librdkafka: logs in $RESULTS"
((${#FAILED_LIST[@]})) && echo "librdkafka: not passed: ${FAILED_LIST[*]}"
echo "librdkafka: $passed passed, $failed failed, $skipped skipped, $na not applicable"
if [[ "$MODE" == all ]]; then exit 0; fi
((${#PLAN[@]})) || { echo "librdkafka: nothing to run" >&2; exit 1; }
((${#FAILED_LIST[@]} == 0))
