#!/bin/sh
# Installs the current Python Kafka clients from PyPI into a virtualenv outside the
# repo: ${SAMSA_CACHE:-$HOME/.cache/samsa}/venv-clients, made from Debian's interpreter.
# Idempotent: when the venv already holds exactly the pinned list (stamp file) and
# imports, it returns at once. Fails loudly when PyPI cannot be reached.
set -eu

PINS="pytest==9.0.2 confluent-kafka==2.16.1 kafka-python==3.0.12"
PY=/usr/bin/python3
CACHE=${SAMSA_CACHE:-$HOME/.cache/samsa}
VENV=$CACHE/venv-clients
STAMP=$VENV/samsa-pins.txt
WANT="$PINS python=$($PY -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"

ready() {
  [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] &&
    "$VENV/bin/python" -c 'import confluent_kafka, kafka, pytest' 2>/dev/null
}

ready && exit 0

mkdir -p "$CACHE"
# One installer at a time (make -j, or two checkouts sharing the cache).
exec 9>"$CACHE/venv-clients.lock"
flock -w 600 9 || { echo "pyclients/deps.sh: could not lock $CACHE/venv-clients.lock" >&2; exit 1; }
ready && exit 0

# Debian splits venv's ensurepip into python3-venv.
if ! $PY -c 'import venv, ensurepip' 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "pyclients/deps.sh: installing python3-venv" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq python3-venv || true
  fi
  if ! $PY -c 'import venv, ensurepip' 2>/dev/null; then
    echo "pyclients/deps.sh: FAILED: $PY lacks venv/ensurepip (apt-get install python3-venv)" >&2
    exit 1
  fi
fi

echo "pyclients/deps.sh: creating $VENV with $PINS" >&2
rm -rf "$VENV"
$PY -m venv "$VENV"
if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
     --no-input --retries 2 --timeout 30 $PINS; then
  rm -rf "$VENV"
  echo "pyclients/deps.sh: FAILED to install $PINS from PyPI into $VENV" >&2
  echo "  (is PyPI reachable? pip's own error is above)" >&2
  exit 1
fi
"$VENV/bin/python" -c 'import confluent_kafka, kafka, pytest' || {
  echo "pyclients/deps.sh: installed packages do not import" >&2; exit 1; }
printf '%s\n' "$WANT" > "$STAMP"
echo "pyclients/deps.sh: ready: $("$VENV/bin/python" -c 'import confluent_kafka as c, kafka, pytest; print("confluent-kafka", c.__version__, "librdkafka", c.libversion()[0], "kafka-python", kafka.__version__, "pytest", pytest.__version__)')" >&2
