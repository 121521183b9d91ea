# Gregor — common tasks. `make run` starts a broker on localhost:9092; `make test` runs everything.
CARGO ?= cargo
GREGOR_DEBUG := target/debug/gregor

.PHONY: run build release test unit compat lint fmt clippy fuzz clean

## Start a single-node broker on localhost:9092 (data in ./gregor-data).
run:
	$(CARGO) run --release -p gregor-broker --bin gregor

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release -p gregor-broker --bin gregor

## Everything CI runs: lint, unit + integration tests, and the third-party client suite.
test: lint unit compat

## Rust unit and integration tests (the broker's integration tests start the real binary).
unit:
	$(CARGO) test --workspace --all-targets

## Unmodified third-party clients (confluent-kafka, kafka-python, kcat, Apache Kafka's CLI)
## against a real gregor process. Installs its own venv, kcat and Kafka jars on first use.
compat:
	$(CARGO) build -p gregor-broker --bin gregor
	GREGOR_BIN=$(abspath $(GREGOR_DEBUG)) compat-tests/run.sh

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
