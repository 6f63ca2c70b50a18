#!/usr/bin/env bash
# `samsa cluster status` against Apache Kafka 4.4 (tests/reference/kafka.sh), three
# combined broker+controller nodes on loopback: the tool reads DescribeCluster and the
# DescribeQuorum a broker forwards to the active controller, so it must show three
# nodes, a quorum leader with three voters, and no partitions without a leader; after
# one broker that does not lead the quorum is killed, its partitions (replication 1)
# show up as without a leader, and it is marked fenced in the node list.
# Needs SAMSA_CLI; fails, with the reason, when Kafka cannot be fetched or started.
set -euo pipefail

CLI=${SAMSA_CLI:?set SAMSA_CLI to the samsa binary}
HERE=$(cd "$(dirname "$0")" && pwd)
KAFKA="$HERE/../../reference/kafka.sh"
DIR=$(mktemp -d -t samsa-cluster-kafka.XXXXXX)

cleanup() {
    local rc=$?
    "$KAFKA" stop "$DIR/k" >/dev/null 2>&1 || true
    if [ $rc -ne 0 ]; then
        echo "---- last command output ----"
        cat "$DIR/out" 2>/dev/null || true
    fi
    rm -rf "$DIR"
    exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
has() { grep -Eq "$1" "$DIR/out" || fail "expected /$1/ in output of the last command"; }
status() { "$CLI" -b "$1" cluster status >"$DIR/out" 2>&1 || fail "cluster status -b $1 exited $?"; }

"$KAFKA" start "$DIR/k" --nodes 3 >/dev/null
BOOT=$(cat "$DIR/k/bootstrap")
IFS=, read -r -a ADDR <<<"$BOOT" # ADDR[i] is node i+1

echo "== three nodes, three voters"
status "$BOOT"
for i in 1 2 3; do
    has "^$i +${ADDR[$((i - 1))]//./\\.} +- +no +[0-9]+$"
done
has '^Leader: +[1-3]$'
[ "$(grep -Ec '^[1-3] +127\.0\.0\.1:[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ ms ago' "$DIR/out")" = 3 ] ||
    fail "expected three voter rows"
has '^Partitions without a leader: none$'
LEADER=$(awk '/^Leader:/ { print $2 }' "$DIR/out")

"$CLI" -b "$BOOT" topic create spread -p 6 -r 1 >"$DIR/out" 2>&1 || fail "topic create failed"

echo "== a broker that does not lead the quorum is killed"
VICTIM=$((LEADER % 3 + 1))
PID=$(awk -v n="$VICTIM" '$1 == n { print $2 }' "$DIR/k/pids")
[ -n "$PID" ] || fail "no pid for node $VICTIM in $DIR/k/pids"
kill -9 "$PID"
ALIVE=""
for i in 1 2 3; do
    [ "$i" = "$VICTIM" ] || ALIVE=${ALIVE:+$ALIVE,}${ADDR[$((i - 1))]}
done
# Fenced after broker.session.timeout.ms (9 s by default).
for _ in $(seq 1 60); do
    status "$ALIVE"
    grep -Eq '^Partitions without a leader: [1-9]' "$DIR/out" &&
        grep -Eq "^$VICTIM +${ADDR[$((VICTIM - 1))]//./\\.} +- +yes " "$DIR/out" && break
    sleep 1
done
has '^Partitions without a leader: [1-9]'
has '^spread +[0-5] +LEADER_NOT_AVAILABLE$'
[ "$(grep -Ec '^[1-3] +127\.0\.0\.1:[0-9]+ +- +no +[0-9]+$' "$DIR/out")" = 2 ] ||
    fail "expected two unfenced node rows once node $VICTIM is fenced"
has "^$VICTIM +${ADDR[$((VICTIM - 1))]//./\\.} +- +yes +0$"
has "^Leader: +$LEADER$"
has "^$VICTIM +127\\.0\\.0\\.1:[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ ms ago"   # still a voter

echo "PASS"
