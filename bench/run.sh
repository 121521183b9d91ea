#!/usr/bin/env bash
# `make bench`: Gregor vs a real Apache Kafka 4.1 broker, same clients, same machine, one run.
#   bench/run.sh [bench.py options]     e.g. --scale 0.05 (smoke run), --bootstrap HOST:PORT, --targets gregor,
#                                       --workloads replicated (only workload 6: 3-node clusters),
#                                       --workloads tls (only workload 7: fetch over PLAINTEXT vs SSL)
# Env: GREGOR_BIN (default: target/release/gregor of this repo, built here with cargo --release),
#      BENCH_SKIP_BUILD=1 (use GREGOR_BIN / target/release/gregor as is).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
cd "$REPO"
log() { echo "[bench-setup] $*" >&2; }

# Apache Kafka 4.1.2 jars (broker + perf tools) and the Python venv (confluent-kafka AdminClient).
compat-tests/setup.sh
# librdkafka's rdkafka_performance, built from the rdkafka-sys crate source (cached in bench/.cache).
RDK=$("$HERE/build-rdkafka.sh")

if [ -z "${GREGOR_BIN:-}" ]; then
  GREGOR_BIN=$REPO/target/release/gregor
  if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    log "building gregor (release)"
    CARGO_TARGET_DIR=$REPO/target cargo build --release -q -p gregor-broker --bin gregor
  fi
fi
export GREGOR_BIN
exec "$REPO/compat-tests/.venv/bin/python" "$HERE/bench.py" --gregor-bin "$GREGOR_BIN" --rdkafka-perf "$RDK" "$@"
