#!/usr/bin/env bash
# `make docker-test`: the Gregor container image under docker compose, with real clients.
#
# No image can be pulled in CI, so this builds the runtime image from a host-built static
# binary (docker/Dockerfile.local, FROM scratch) and a client image from Debian's kcat plus
# the shared libraries ldd lists (FROM scratch too). Then:
#   - docker/docker-compose.yml up: kcat on the host (localhost:PORT) and kcat in a container
#     on the compose network (gregor:29092) each produce, and each reads back what the other
#     wrote; the image's HEALTHCHECK (gregor healthcheck) reports healthy; the broker runs as
#     uid 1000; `down` + `up` keeps the data (named volume);
#   - docker/docker-compose.kafka-swap.yml (an apache/kafka compose file, image swapped) up:
#     both clients produce and consume; its CONTROLLER listener serves the controller APIs
#     (the compose file's process.roles/controller.quorum.voters make it a KRaft node).
# Installs docker.io/docker-compose (apt) and starts dockerd if needed; removes everything it
# created (containers, volumes, networks, images, the dockerd it started) on exit. Skips, with
# a clear message, only if dockerd cannot run. Prints `docker-test: N passed, M failed`.
#
# Env: CARGO (default cargo), CARGO_TARGET_DIR, DOCKER_TEST_KEEP=1 (keep the work dir).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CARGO=${CARGO:-cargo}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
ID=$$
IMAGE=gregor-docker-test:$ID
KCAT_IMAGE=gregor-docker-test-kcat:$ID
P1=gregordt${ID}a
P2=gregordt${ID}b
WORK=$(mktemp -d /tmp/gregor-docker-test.XXXXXX)
PASS=0
FAIL=0
STARTED_DOCKERD=
COMPOSE=()

log() { echo "docker-test: $*"; }
ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
not_ok() {
  FAIL=$((FAIL + 1))
  echo "FAIL - $1"
  [ -n "${2:-}" ] && printf '%s\n' "$2" | tail -20 | sed 's/^/       /'
  return 0
}
check() { # check NAME COMMAND... : pass if the command succeeds
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "$out"; fi
}

cleanup() {
  set +e
  if [ ${#COMPOSE[@]} -gt 0 ] && docker info >/dev/null 2>&1; then
    for p in "$P1" "$P2"; do
      [ -f "$WORK/compose-$p.yml" ] &&
        "${COMPOSE[@]}" -p "$p" -f "$WORK/compose-$p.yml" down -v --remove-orphans >/dev/null 2>&1
    done
    docker rmi -f "$IMAGE" "$KCAT_IMAGE" >/dev/null 2>&1
  fi
  if [ -n "$STARTED_DOCKERD" ]; then
    kill "$STARTED_DOCKERD" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 0.2; done
  fi
  if [ "${DOCKER_TEST_KEEP:-0}" = 1 ]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

skip() {
  log "skipped: $*"
  echo "docker-test: 0 passed, 0 failed (skipped)"
  exit 0
}

# ---------------------------------------------------------------- docker and compose
ensure_docker() {
  if docker info >/dev/null 2>&1; then return 0; fi
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      log "installing docker.io and docker-compose (apt)"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io docker-compose >"$WORK/apt.log" 2>&1 ||
        { apt-get update -q >>"$WORK/apt.log" 2>&1 &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io docker-compose >>"$WORK/apt.log" 2>&1; } ||
        skip "cannot install docker.io with apt ($(tail -1 "$WORK/apt.log"))"
    else
      skip "no docker daemon and cannot install one (need root and apt-get)"
    fi
  fi
  [ "$(id -u)" = 0 ] || skip "docker daemon not reachable and not root to start dockerd"
  local driver
  for driver in "" vfs; do
    log "starting dockerd${driver:+ --storage-driver=$driver}"
    dockerd ${driver:+--storage-driver=$driver} >"$WORK/dockerd.log" 2>&1 &
    STARTED_DOCKERD=$!
    for _ in $(seq 1 60); do
      docker info >/dev/null 2>&1 && return 0
      kill -0 "$STARTED_DOCKERD" 2>/dev/null || break
      sleep 0.5
    done
    kill "$STARTED_DOCKERD" 2>/dev/null
    wait "$STARTED_DOCKERD" 2>/dev/null
    STARTED_DOCKERD=
  done
  skip "dockerd cannot run here: $(grep -iE 'error|fatal' "$WORK/dockerd.log" | tail -1)"
}

ensure_compose() {
  if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >"$WORK/apt-compose.log" 2>&1; then
    COMPOSE=(docker-compose)
  else
    skip "neither 'docker compose' nor docker-compose is available"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

ensure_docker
ensure_compose
command -v kcat >/dev/null 2>&1 || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q kcat >/dev/null 2>&1 || skip "kcat is not installed"
}
log "docker $(docker version --format '{{.Server.Version}}' 2>/dev/null), ${COMPOSE[*]}"
START=$(date +%s)

# ---------------------------------------------------------------- images
HOST_TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
log "building the static release binary (RUSTFLAGS=-C target-feature=+crt-static, --target $HOST_TRIPLE)"
if ! RUSTFLAGS='-C target-feature=+crt-static' CARGO_PROFILE_RELEASE_DEBUG=0 \
  CARGO_PROFILE_RELEASE_STRIP=symbols \
  "$CARGO" build --release --locked -p gregor-broker --bin gregor --target "$HOST_TRIPLE" \
  >"$WORK/cargo.log" 2>&1; then
  tail -20 "$WORK/cargo.log"
  not_ok "static release build"
  echo "docker-test: $PASS passed, $FAIL failed"
  exit 1
fi
BIN=$TARGET_DIR/$HOST_TRIPLE/release/gregor
BUILT=$(date +%s)

mkdir -p "$WORK/gregor-ctx" "$WORK/kcat-ctx/rootfs"
docker/make-rootfs.sh "$BIN" "$WORK/gregor-ctx/rootfs"
check "runtime image builds FROM scratch (docker/Dockerfile.local)" \
  docker build -q -f docker/Dockerfile.local -t "$IMAGE" "$WORK/gregor-ctx"
SIZE=$(docker image inspect -f '{{.Size}}' "$IMAGE" 2>/dev/null || echo 0)
SIZE_MB=$((SIZE / 1000000))
if [ "$SIZE" -gt 0 ] && [ "$SIZE" -lt 20000000 ]; then ok "image size ${SIZE_MB} MB < 20 MB"; else not_ok "image size ${SIZE_MB} MB < 20 MB"; fi
if file -L "$BIN" 2>/dev/null | grep -q 'dynamically linked'; then
  log "note: the binary is dynamically linked; its ldd libraries were copied into the image"
fi

for f in $(command -v kcat) $(ldd "$(command -v kcat)" | grep -o '/[^ ]*'); do
  mkdir -p "$WORK/kcat-ctx/rootfs$(dirname "$f")"
  cp -L "$f" "$WORK/kcat-ctx/rootfs$f"
done
mkdir -p "$WORK/kcat-ctx/rootfs/etc"
echo 'hosts: files dns' >"$WORK/kcat-ctx/rootfs/etc/nsswitch.conf"
mkdir -p "$WORK/kcat-ctx/rootfs/tmp" && chmod 1777 "$WORK/kcat-ctx/rootfs/tmp"
printf 'FROM scratch\nCOPY rootfs/ /\nENTRYPOINT ["%s"]\n' "$(command -v kcat)" >"$WORK/kcat-ctx/Dockerfile"
check "kcat client image builds FROM scratch" docker build -q -t "$KCAT_IMAGE" "$WORK/kcat-ctx"

# ---------------------------------------------------------------- helpers
# host_kcat PORT ARGS... / net_kcat NETWORK BOOTSTRAP ARGS...
host_kcat() { local port=$1; shift; timeout 60 kcat -b "localhost:$port" "$@"; }
net_kcat() { local net=$1 b=$2; shift 2; timeout 60 docker run --rm -i --network "$net" "$KCAT_IMAGE" -b "$b" "$@"; }

wait_serving() { # wait_serving PORT: until the broker answers Metadata from the host
  for _ in $(seq 1 60); do
    host_kcat "$1" -L -m 2 >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

wait_health() { # wait_health CONTAINER: until docker says healthy (HEALTHCHECK interval 10s)
  local s
  for _ in $(seq 1 90); do
    s=$(docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null)
    [ "$s" = healthy ] && return 0
    [ "$s" = unhealthy ] && break
    sleep 1
  done
  docker inspect -f '{{json .State.Health}}' "$1" 2>&1
  return 1
}

same_lines() { # same_lines EXPECTED ACTUAL: equal as sorted line sets
  [ "$(printf '%s\n' "$1" | sort)" = "$(printf '%s\n' "$2" | sort)" ] ||
    { printf 'expected:\n%s\ngot:\n%s\n' "$1" "$2"; return 1; }
}

produce_host() { printf '%s\n' "$3" | host_kcat "$1" -P -t "$2"; }
produce_net() { printf '%s\n' "$4" | net_kcat "$1" "$2" -P -t "$3"; }
consume_host() { host_kcat "$1" -C -t "$2" -o beginning -e -q; }
consume_net() { net_kcat "$1" "$2" -C -t "$3" -o beginning -e -q; }

round_trip() { # round_trip LABEL PORT NETWORK BOOTSTRAP: each client reads what the other wrote
  local label=$1 port=$2 net=$3 b=$4 from_host from_net out
  from_host=$(printf "host-$label-%s\n" 1 2 3)
  from_net=$(printf "net-$label-%s\n" 1 2 3)
  check "$label: kcat on the host produces to localhost:$port" produce_host "$port" "from-host" "$from_host"
  check "$label: kcat in a container produces to $b" produce_net "$net" "$b" "from-net" "$from_net"
  out=$(consume_net "$net" "$b" "from-host" 2>&1)
  check "$label: the container reads what the host wrote" same_lines "$from_host" "$out"
  out=$(consume_host "$port" "from-net" 2>&1)
  check "$label: the host reads what the container wrote" same_lines "$from_net" "$out"
}

unhealthy() { # unhealthy CONTAINER ARGS...: `gregor healthcheck ARGS` exits 1 and says unhealthy
  local c=$1 out code
  shift
  out=$(docker exec "$c" /usr/local/bin/gregor healthcheck "$@" 2>&1)
  code=$?
  [ "$code" = 1 ] && [[ "$out" == unhealthy:* ]] || { echo "exit $code: $out"; return 1; }
}

compose() { local p=$1; shift; "${COMPOSE[@]}" -p "$p" -f "$WORK/compose-$p.yml" "$@"; }

# ---------------------------------------------------------------- docker-compose.yml
show_logs() { compose "$1" logs --tail 30 2>&1 | sed 's/^/       /'; }

test_dev_compose() {
  local out c uid
  # The dev compose file, unchanged but for the build context's path (the copy lives in the
  # work dir; --no-build never builds anyway).
  sed "s#context: \\.\\.#context: $ROOT#" docker/docker-compose.yml >"$WORK/compose-$P1.yml"
  if ! out=$(compose "$P1" up -d --no-build 2>&1); then
    not_ok "docker-compose.yml: up" "$out"
    return
  fi
  ok "docker-compose.yml: up"
  c=$(compose "$P1" ps -q gregor)
  if ! wait_serving "$PORT1"; then
    not_ok "docker-compose.yml: broker serves on localhost:$PORT1"
    return
  fi
  ok "docker-compose.yml: broker serves on localhost:$PORT1"
  round_trip "compose" "$PORT1" "$NET1" "gregor:29092"
  check "the image's HEALTHCHECK (gregor healthcheck) reports healthy" wait_health "$c"
  check "gregor healthcheck via docker exec (no shell): exit 0" \
    docker exec "$c" /usr/local/bin/gregor healthcheck
  check "gregor healthcheck against a closed port: exit 1" \
    unhealthy "$c" --bootstrap 127.0.0.1:1 --timeout-ms 500
  uid=$(docker top "$c" -o pid,uid 2>/dev/null | awk 'NR == 2 { print $2 }')
  check "the broker runs as uid 1000 (not root)" test "$uid" = 1000
  check "docker-compose.yml: down" compose "$P1" down
  check "docker-compose.yml: up again" compose "$P1" up -d --no-build
  if ! wait_serving "$PORT1"; then
    not_ok "docker-compose.yml: serves again after down/up"
    return
  fi
  out=$(consume_host "$PORT1" "from-host" 2>&1)
  check "data survives down/up (named volume): records from the host" \
    same_lines "$(printf 'host-compose-%s\n' 1 2 3)" "$out"
  out=$(consume_net "$NET1" "gregor:29092" "from-net" 2>&1)
  check "data survives down/up (named volume): records from the container" \
    same_lines "$(printf 'net-compose-%s\n' 1 2 3)" "$out"
}

# ---------------------------------------------------------------- kafka-swap
test_kafka_swap() {
  local out
  # Only the host port changes (9092 may be taken on a shared machine): the published port and
  # the host listener's advertised port.
  sed -e "s#- '9092:9092'#- '$PORT2:9092'#" \
    -e "s#PLAINTEXT_HOST://localhost:9092#PLAINTEXT_HOST://localhost:$PORT2#" \
    docker/docker-compose.kafka-swap.yml >"$WORK/compose-$P2.yml"
  if ! grep -q "'$PORT2:9092'" "$WORK/compose-$P2.yml" || ! grep -q "localhost:$PORT2" "$WORK/compose-$P2.yml"; then
    not_ok "kafka-swap: remap the host port for the test (the sed no longer matches the file)"
    return
  fi
  if ! out=$(compose "$P2" up -d --no-build 2>&1); then
    not_ok "docker-compose.kafka-swap.yml: up" "$out"
    return
  fi
  ok "docker-compose.kafka-swap.yml: up"
  if ! wait_serving "$PORT2"; then
    not_ok "kafka-swap: broker serves on localhost:$PORT2"
    return
  fi
  ok "kafka-swap: broker serves on localhost:$PORT2"
  round_trip "kafka-swap" "$PORT2" "$NET2" "broker:19092"
  check "kafka-swap: KAFKA_NUM_PARTITIONS=3 applies to auto-created topics" \
    bash -c "timeout 30 kcat -b localhost:$PORT2 -L -t from-host | grep -q '3 partitions'"
  check "kafka-swap: the CONTROLLER listener (29093) answers as a KRaft controller" \
    docker exec broker /usr/local/bin/gregor healthcheck --bootstrap broker:29093 --timeout-ms 2000
  check "kafka-swap: healthcheck defaults to the first client listener" \
    docker exec broker /usr/local/bin/gregor healthcheck
}

PORT1=$(free_port)
PORT2=$(free_port)
NET1=${P1}_default
NET2=${P2}_default
export GREGOR_IMAGE=$IMAGE GREGOR_HOST_PORT=$PORT1
FAIL_BEFORE=$FAIL
test_dev_compose
[ "$FAIL" -gt "$FAIL_BEFORE" ] && show_logs "$P1"
compose "$P1" down -v >/dev/null 2>&1
FAIL_BEFORE=$FAIL
test_kafka_swap
[ "$FAIL" -gt "$FAIL_BEFORE" ] && show_logs "$P2"
compose "$P2" down -v >/dev/null 2>&1

END=$(date +%s)
log "build $((BUILT - START)) s, tests $((END - BUILT)) s"
echo "docker-test: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
