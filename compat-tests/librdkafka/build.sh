#!/usr/bin/env bash
# Build librdkafka's own test suite (tests/test-runner) once and cache it.
#
# Source: the librdkafka tree vendored in the Rust crate rdkafka-sys (pinned below), fetched
# with `cargo fetch` through a throwaway cargo project, copied into the cache.
# Output: $LIBRDKAFKA_CACHE/librdkafka-$LIBRDKAFKA_VERSION-$BUILD_FLAVOR/tests/test-runner
# (the directory is printed on stdout; progress goes to stderr).
# A cache hit (the stamp file exists) skips everything.  Set LIBRDKAFKA_REBUILD=1 to force.
set -euo pipefail

RDKAFKA_SYS_VERSION="4.10.0+2.12.1"     # newest rdkafka-sys; vendors librdkafka 2.12.1
LIBRDKAFKA_VERSION="2.12.1"
# Bump when the build recipe changes (new dependency, configure flag): a new cache directory is built.
BUILD_FLAVOR="b2"   # b2: with rapidjson-dev (tests 0053, 0110 verify stats JSON with it)

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${LIBRDKAFKA_CACHE:-$HERE/../.cache/librdkafka}"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"
SRC="$CACHE/librdkafka-$LIBRDKAFKA_VERSION-$BUILD_FLAVOR"
# One build at a time (parallel run.sh invocations wait here for the first one's build).
exec 9>"$CACHE/.build.lock"
flock 9
STAMP="$SRC/.build-ok"

if [[ -f "$STAMP" && -x "$SRC/tests/test-runner" && "${LIBRDKAFKA_REBUILD:-0}" != 1 ]]; then
    echo "librdkafka $LIBRDKAFKA_VERSION test suite: cached ($SRC)" >&2
    echo "$SRC"
    exit 0
fi

start=$(date +%s)

# Build dependencies (Debian). zstd is optional for librdkafka, but test 0017 covers it.
missing=()
for pkg in build-essential python3 zlib1g-dev libzstd-dev libssl-dev rapidjson-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >&2 || { apt-get update -q >&2 && apt-get install -y -q "${missing[@]}" >&2; }
fi

# 1. Source from the rdkafka-sys crate.
FETCH="$CACHE/fetch"
mkdir -p "$FETCH/src"
cat > "$FETCH/Cargo.toml" <<TOML
[package]
name = "librdkafka-source-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
rdkafka-sys = { version = "=$RDKAFKA_SYS_VERSION", default-features = false }

[workspace]
TOML
echo 'fn main() {}' > "$FETCH/src/main.rs"
(cd "$FETCH" && cargo fetch -q)
manifest=$(cd "$FETCH" && cargo metadata --format-version 1 --locked 2>/dev/null \
    | python3 -c 'import json,sys; m=json.load(sys.stdin); print([p["manifest_path"] for p in m["packages"] if p["name"]=="rdkafka-sys"][0])')
crate_dir="$(dirname "$manifest")"
[[ -f "$crate_dir/librdkafka/tests/test.c" ]] || { echo "no librdkafka/tests in $crate_dir" >&2; exit 1; }
rm -rf "$SRC"
cp -a "$crate_dir/librdkafka" "$SRC"
chmod +x "$SRC/configure" "$SRC/tests/run-test.sh" "$SRC"/lds-gen.py 2>/dev/null || true

# 2. Build the libraries and the test runner (nice: the machine is shared).
cd "$SRC"
JOBS="${LIBRDKAFKA_JOBS:-$(nproc)}"
nice -n 10 ./configure --no-download --disable-gssapi --disable-curl --disable-lz4-ext >"$SRC.configure.log" 2>&1 \
    || { tail -40 "$SRC.configure.log" >&2; exit 1; }
nice -n 10 make -j"$JOBS" libs >"$SRC.make-libs.log" 2>&1 || { tail -40 "$SRC.make-libs.log" >&2; exit 1; }
nice -n 10 make -j"$JOBS" -C tests test-runner >"$SRC.make-tests.log" 2>&1 || { tail -40 "$SRC.make-tests.log" >&2; exit 1; }
touch "$STAMP"
echo "librdkafka $LIBRDKAFKA_VERSION test suite built in $(( $(date +%s) - start )) s ($SRC)" >&2
echo "$SRC"
