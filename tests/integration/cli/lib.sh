# shellcheck shell=bash
# Sourced by the CLI integration tests (test_cli.sh, test_bench.sh): a samsa-server on a
# free loopback port with a temporary data dir, and cleanup however the test ends. On exit
# the broker and every pid in KILL_ON_EXIT (a test's own background clients) are killed
# and $WORK removed; on failure the last command's output ($WORK/out) and the broker's
# stderr tail are shown first.
# Needs SAMSA_SERVER and SAMSA_CLI; sets HERE, SERVER, CLI, CONFIG, WORK, PID, PORT and BOOT.

SERVER=${SAMSA_SERVER:?set SAMSA_SERVER to the samsa-server binary}
CLI=${SAMSA_CLI:?set SAMSA_CLI to the samsa binary}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONFIG=${SAMSA_CONFIG:-$HERE/../../../config/server.properties}

WORK=""
PID=""
KILL_ON_EXIT=""

cleanup() {
    local rc=$?
    for p in $KILL_ON_EXIT $PID; do
        if kill -0 "$p" 2>/dev/null; then
            kill -9 "$p" 2>/dev/null || true
            { wait "$p"; } 2>/dev/null || true
        fi
    done
    if [ $rc -ne 0 ]; then
        echo "---- last command output ----"
        cat "$WORK/out" 2>/dev/null || true
        echo "---- broker stderr (last 30 lines) ----"
        tail -n 30 "$WORK/server.err" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit $rc
}

fail() { echo "FAIL: $*" >&2; exit 1; }

# start_broker NAME [--override key=value ...]: makes $WORK (samsa-NAME.XXXXXX), starts the
# broker with its data there and the extra overrides, and waits until it prints its port.
start_broker() {
    local name=$1
    shift
    WORK=$(mktemp -d -t "samsa-$name.XXXXXX")
    trap cleanup EXIT
    trap 'exit 1' INT TERM
    # Made here, not by the background job's redirections: the loop below may read them
    # before that job has run (seen under load).
    : >"$WORK/server.out"
    : >"$WORK/server.err"
    "$SERVER" -c "$CONFIG" --override "log.dirs=$WORK/data" \
        --override "listeners=PLAINTEXT://127.0.0.1:0" \
        --override "advertised.listeners=PLAINTEXT://127.0.0.1:0" "$@" \
        >"$WORK/server.out" 2>"$WORK/server.err" &
    PID=$!
    PORT=""
    for _ in $(seq 1 200); do
        PORT=$(sed -n 's/^samsa-server listening on port \([0-9][0-9]*\).*/\1/p' "$WORK/server.out" | head -n 1)
        [ -n "$PORT" ] && break
        kill -0 "$PID" 2>/dev/null || fail "server exited at start-up: $(cat "$WORK/server.err")"
        sleep 0.05
    done
    [ -n "$PORT" ] || fail "server did not print its port within 10 s"
    BOOT=127.0.0.1:$PORT
}
