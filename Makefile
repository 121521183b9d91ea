# Gregor — common tasks. `make run` starts a broker on localhost:9092; `make test` runs everything.
CARGO ?= cargo
GREGOR_DEBUG := target/debug/gregor

.PHONY: run build release test unit compat compat-cluster compat-security compat-full lint fmt clippy fuzz clean docker-test

## Start a single-node broker on localhost:9092 (data in ./gregor-data).
run:
	$(CARGO) run --release -p gregor-broker --bin gregor

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release -p gregor-broker --bin gregor

## Everything CI runs: lint, unit + integration tests, the third-party client suites against one
## node, and the 3-node cluster suite.
test: lint unit compat compat-cluster compat-security

## Rust unit and integration tests (the broker's integration tests start the real binary).
unit:
	$(CARGO) test --workspace --all-targets

## Unmodified third-party clients against a real gregor process: our suite (confluent-kafka,
## kafka-python, kcat, Apache Kafka's CLI) and the allow-listed tests of librdkafka's, franz-go's
## and kafka-python's own suites; one summary line per suite. Installs what it needs on first use.
compat:
	$(CARGO) build -p gregor-broker --bin gregor
	GREGOR_BIN=$(abspath $(GREGOR_DEBUG)) compat-tests/run-all.sh

## 3-node gregor clusters (real processes on 127.0.0.1) driven by unmodified clients and Kafka's
## CLI: quorum, fencing, failover, replication (compat-tests/cluster/README.md). The same tests run
## against a real 3-node Apache Kafka 4.1 with `CLUSTER_IMPL=kafka compat-tests/cluster/run.sh`.
## REPL_KILL_CYCLES: leader kill -9 cycles of the replication test (3 here to keep CI short; the
## issue's full run is `make compat-cluster REPL_KILL_CYCLES=10`).
REPL_KILL_CYCLES ?= 3
compat-cluster:
	$(CARGO) build -p gregor-broker --bin gregor
	REPL_KILL_CYCLES=$(REPL_KILL_CYCLES) GREGOR_BIN=$(abspath $(GREGOR_DEBUG)) compat-tests/cluster/run.sh

## Security (compat-tests/security/): SASL_PLAINTEXT, SSL (mTLS) and SASL_SSL listeners with PLAIN
## and SCRAM, credentials made with kafka-configs.sh, bad input on raw sockets. The same tests run
## against a real Kafka 4.1 with `SECURITY_IMPL=kafka compat-tests/security/run.sh`.
compat-security:
	$(CARGO) build -p gregor-broker --bin gregor
	GREGOR_BIN=$(abspath $(GREGOR_DEBUG)) compat-tests/security/run.sh

## The full sweep of every suite (not only the allow-lists); slow.
compat-full:
	$(CARGO) build --release -p gregor-broker --bin gregor
	GREGOR_BIN=$(abspath target/release/gregor) compat-tests/run-all.sh --all

## The container image (docker/) under docker compose with real clients: kcat on the host and in
## a container on the compose network, healthcheck, data kept across down/up, and an apache/kafka
## compose file with the image swapped. Installs and starts docker if needed, cleans up after
## itself, skips only if dockerd cannot run. See docs/docker.md.
docker-test:
	CARGO=$(CARGO) docker/test.sh

lint: fmt clippy

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Fuzz request decoding (needs a nightly toolchain and cargo-fuzz).
fuzz:
	cd crates/protocol/fuzz && $(CARGO) +nightly fuzz run decode_request -- -max_total_time=60

clean:
	$(CARGO) clean
	rm -rf compat-tests/.venv compat-tests/.cache

## Benchmarks: gregor (release) vs a real Apache Kafka 4.1 broker, same clients (Kafka perf tools,
## librdkafka rdkafka_performance), one at a time on this machine -> bench/results/latest.{md,json}.
## BENCH_ARGS e.g. "--scale 0.05" (smoke run), "--bootstrap HOST:PORT", "--wait-load 0.7".
.PHONY: bench
bench:
	bench/run.sh $(BENCH_ARGS)
