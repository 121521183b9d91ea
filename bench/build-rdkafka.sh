#!/usr/bin/env bash
# Builds librdkafka's rdkafka_performance (C client benchmark tool) from the librdkafka source that
# ships inside the `rdkafka-sys` crate (crates.io), cached in bench/.cache/. Prints the binary path.
#   RDKAFKA_SYS_VERSION  crate version to fetch (default pinned below)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=$HERE/.cache
RDKAFKA_SYS_VERSION=${RDKAFKA_SYS_VERSION:-4.10.0+2.12.1}   # = librdkafka 2.12.1
OUT=$CACHE/rdkafka_performance-$RDKAFKA_SYS_VERSION
log() { echo "[bench-setup] $*" >&2; }
if [ -x "$OUT" ]; then echo "$OUT"; exit 0; fi
mkdir -p "$CACHE/rdk-fetch/src"
cd "$CACHE/rdk-fetch"
cat > Cargo.toml <<TOML
[package]
name = "rdk-fetch"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
rdkafka-sys = "=$RDKAFKA_SYS_VERSION"
[workspace]
TOML
echo 'fn main() {}' > src/main.rs
log "fetching rdkafka-sys $RDKAFKA_SYS_VERSION (librdkafka source) with cargo"
cargo fetch -q
SRC=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"rdkafka-sys-$RDKAFKA_SYS_VERSION"/librdkafka | head -1)
[ -d "$SRC" ] || { echo "librdkafka source not found after cargo fetch" >&2; exit 1; }
BUILD=$CACHE/librdkafka-$RDKAFKA_SYS_VERSION
rm -rf "$BUILD"
cp -r "$SRC" "$BUILD"
cd "$BUILD"
log "building librdkafka + examples/rdkafka_performance in $BUILD (a few minutes on 2 cores)"
# Built-in LZ4 and snappy; no SSL/SASL/zstd/zlib/curl needed for the benchmark workloads.
# (Logs go outside the source tree: mklove would load a file named configure.* there as a module.)
./configure --no-download --disable-gssapi --disable-ssl --disable-curl --disable-zstd \
  --disable-lz4-ext --disable-zlib > "$CACHE/rdkafka-configure.log" 2>&1 || { tail -20 "$CACHE/rdkafka-configure.log" >&2; exit 1; }
make -j"$(nproc)" -C src > "$CACHE/rdkafka-make.log" 2>&1 || { tail -30 "$CACHE/rdkafka-make.log" >&2; exit 1; }
make -C examples rdkafka_performance >> "$CACHE/rdkafka-make.log" 2>&1 || { tail -30 "$CACHE/rdkafka-make.log" >&2; exit 1; }
cp examples/rdkafka_performance "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "$OUT"
