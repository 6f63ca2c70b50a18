#!/usr/bin/env bash
# The README's five-minute tour with kcat against a real samsa-server:
#   kcat -L lists the broker; kcat -P -K: produces keyed records; kcat -C -e reads them back
#   in order; the records survive a clean restart (SIGTERM) and a crash (kill -9), because
#   kcat -P exits 0 only after every record is acknowledged; kcat -P with
#   enable.idempotence=true works.
# Needs SAMSA_SERVER (path of samsa-server) and kcat. Talks only to 127.0.0.1.
set -euo pipefail

SERVER=${SAMSA_SERVER:?set SAMSA_SERVER to the samsa-server binary}
HERE=$(cd "$(dirname "$0")" && pwd)
CONFIG=${SAMSA_CONFIG:-$HERE/../../../config/server.properties}
command -v kcat >/dev/null || { echo "FAIL: kcat not installed"; exit 1; }

WORK=$(mktemp -d -t samsa-kcat.XXXXXX)
DATA=$WORK/data
mkdir -p "$DATA"
PID=""

cleanup() {
    local rc=$?
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -9 "$PID" 2>/dev/null || true
        { wait "$PID"; } 2>/dev/null || true
    fi
    if [ $rc -ne 0 ]; then
        echo "---- broker stderr (last 40 lines) ----"
        tail -n 40 "$WORK"/server*.err 2>/dev/null || true
        echo "---- kcat -C stderr (last 10 lines) ----"
        tail -n 10 "$WORK/kcat.err" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }

# start_server PORT: starts the broker (PORT 0 = any free port) and sets PID and PORT.
N=0
start_server() {
    N=$((N + 1))
    local out=$WORK/server$N.out err=$WORK/server$N.err
    "$SERVER" -c "$CONFIG" --override "log.dirs=$DATA" \
        --override "listeners=PLAINTEXT://127.0.0.1:$1" \
        --override "advertised.listeners=PLAINTEXT://127.0.0.1:$1" >"$out" 2>"$err" &
    PID=$!
    local i
    for i in $(seq 1 200); do
        PORT=$(sed -n 's/^samsa-server listening on port \([0-9][0-9]*\).*/\1/p' "$out" | head -n 1)
        [ -n "$PORT" ] && return 0
        kill -0 "$PID" 2>/dev/null || fail "server $N exited at start-up: $(cat "$err")"
        sleep 0.05
    done
    fail "server $N did not print its port within 10 s"
}

stop_server() { # stop_server SIGNAL
    kill "-$1" "$PID"
    local i
    for i in $(seq 1 200); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$PID" 2>/dev/null && fail "server did not exit within 10 s of SIG$1"
    { wait "$PID"; } 2>/dev/null || true
    PID=""
}

# Bounded kcat: no kcat call may hang the test.
kc() { timeout 60 kcat "$@"; }

# The tour's consume command, verbatim; its "% Reached end of topic" notes go to a log.
consume() { kc -C -b "127.0.0.1:$PORT" -t events -e -f '%k:%s\n' 2>>"$WORK/kcat.err"; }

expect_records() { # expect_records WHEN EXPECTED
    local got
    got=$(consume) || fail "$1: kcat -C exited with $?"
    if [ "$got" != "$2" ]; then
        echo "---- expected ----"; echo "$2"; echo "---- got ----"; echo "$got"
        fail "$1: records differ"
    fi
    echo "ok: $1: $(printf '%s\n' "$got" | wc -l) records in order"
}

start_server 0
echo "broker on 127.0.0.1:$PORT"

# 1. kcat -L lists the broker.
meta=$(kc -b "127.0.0.1:$PORT" -L) || fail "kcat -L exited non-zero"
echo "$meta" | grep -q "broker 1 at 127.0.0.1:$PORT" \
    || fail "kcat -L does not list broker 1 at 127.0.0.1:$PORT; got: $meta"
echo "ok: kcat -L lists the broker"

# 2. Produce keyed records (topic auto-created), 3. read them back in order.
printf 'k1:v1\nk2:v2\nk3:v3\n' | kc -P -b "127.0.0.1:$PORT" -t events -K: \
    || fail "kcat -P exited non-zero"
expected=$'k1:v1\nk2:v2\nk3:v3'
expect_records "after produce" "$expected"

meta=$(kc -b "127.0.0.1:$PORT" -L -t events) || fail "kcat -L -t events exited non-zero"
echo "$meta" | grep -q 'topic "events" with 1 partitions' \
    || fail "kcat -L -t events does not show the topic; got: $meta"

# A second batch, larger, to see order beyond one batch.
more=$(for i in $(seq 4 1000); do echo "k$i:v$i"; done)
printf '%s\n' "$more" | kc -P -b "127.0.0.1:$PORT" -t events -K: || fail "kcat -P (2) failed"
expected=$(printf '%s\n%s' "$expected" "$more")
expect_records "after second produce" "$expected"

# 4. Clean restart on the same port and data dir keeps everything.
old_port=$PORT
stop_server TERM
start_server "$old_port"
[ "$PORT" = "$old_port" ] || fail "restarted server listens on $PORT, not $old_port"
expect_records "after SIGTERM restart" "$expected"

# 5. Produce more, kill -9 right after kcat -P has exited 0, restart: all acknowledged
#    records are there.
last=$(for i in $(seq 1001 2000); do echo "k$i:v$i"; done)
printf '%s\n' "$last" | kc -P -b "127.0.0.1:$PORT" -t events -K: || fail "kcat -P (3) failed"
stop_server KILL
start_server "$old_port"
expected=$(printf '%s\n%s' "$expected" "$last")
expect_records "after kill -9 restart" "$expected"

# Still writable after the crash.
printf 'after:crash\n' | kc -P -b "127.0.0.1:$PORT" -t events -K: || fail "kcat -P (4) failed"
expected=$(printf '%s\nafter:crash' "$expected")
expect_records "produce after crash recovery" "$expected"

# 6. The tour's idempotent producer (enable.idempotence, InitProducerId).
printf 'carol:one\ncarol:two\n' | kc -P -b "127.0.0.1:$PORT" -t events -K: \
    -X enable.idempotence=true || fail "kcat -P -X enable.idempotence=true failed"
expected=$(printf '%s\ncarol:one\ncarol:two' "$expected")
expect_records "idempotent produce" "$expected"

stop_server TERM
echo "PASS: kcat tour"
