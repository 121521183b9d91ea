#!/usr/bin/env bash
# Idempotent, non-interactive setup for the compat suite on a fresh Debian machine:
#   - kcat (Debian package, librdkafka 2.0.2) via apt
#   - Python venv compat-tests/.venv with the pinned requirements.txt
#   - Apache Kafka jars (broker + CLI tools + Kafka Streams) from Maven Central into compat-tests/.cache/kafka-libs
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=$HERE/.cache
mkdir -p "$CACHE"
log() { echo "[compat-setup] $*" >&2; }

SUDO=
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo -n"; fi

# --- kcat --------------------------------------------------------------------------------------
if ! command -v kcat >/dev/null 2>&1; then
  log "installing kcat"
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y -q kcat >/dev/null 2>&1; then
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q kcat >/dev/null
  fi
fi
# Java + Maven are needed for the Kafka CLI tools and the reference broker.
if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
  log "installing java/maven"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q >/dev/null
  $SUDO apt-get install -y -q default-jre-headless maven >/dev/null
fi

# --- Python venv -------------------------------------------------------------------------------
VENV=$HERE/.venv
STAMP=$VENV/.requirements.sha256
REQ_SUM=$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$REQ_SUM" ]; then
  log "creating venv $VENV"
  PY=${PYTHON:-python3}
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt"
  echo "$REQ_SUM" > "$STAMP"
fi

# --- Kafka jars --------------------------------------------------------------------------------
LIBS=$CACHE/kafka-libs
POM_SUM=$(sha256sum "$HERE/java/pom.xml" | cut -d' ' -f1)
if [ "$(cat "$LIBS/.pom.sha256" 2>/dev/null)" != "$POM_SUM" ] || ! compgen -G "$LIBS/kafka-tools-*.jar" >/dev/null; then
  log "fetching Kafka jars from Maven Central"
  rm -rf "$LIBS"
  (cd "$HERE/java" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DoutputDirectory="$LIBS")
  echo "$POM_SUM" > "$LIBS/.pom.sha256"
fi
log "ready: kcat ($(kcat -V 2>&1 | grep -o 'librdkafka [0-9.]*' | head -1)), $("$VENV/bin/python" -c 'import confluent_kafka,kafka;print("confluent-kafka",confluent_kafka.__version__,"(librdkafka",confluent_kafka.libversion()[0]+"), kafka-python",kafka.__version__)'), kafka jars $(ls "$LIBS" | grep -c jar)"
