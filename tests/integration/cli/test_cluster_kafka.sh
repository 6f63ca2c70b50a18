#!/usr/bin/env bash
# `samsa cluster status` against Apache Kafka 4.4 (tests/reference/kafka.sh), three
# combined broker+controller nodes on loopback: the tool reads DescribeCluster and the
# DescribeQuorum a broker forwards to the active controller, so it must show three
# nodes, a quorum leader with three voters, and no partitions without a leader. Then one
# broker that does not lead the quorum is stopped (SIGSTOP): the command still answers,
# in bounded time, with that broker's replicas of a replication-3 topic unknown, and
# once it resumes and catches up with none lagging. Then it is killed: its partitions
# (replication 1) show up as without a leader, it is marked fenced in the node list and
# its replicas as unknown because fenced.
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
"$CLI" -b "$BOOT" topic create copied -p 3 -r 3 >"$DIR/out" 2>&1 || fail "topic create -r 3 failed"
# Wait for the new replicas in the answers of all three (every answer caught up).
for _ in $(seq 1 60); do
    status "$BOOT"
    grep -Eq '^Replica lag: none \(all 9 replicas of 3 replicated partitions caught up\)$' \
        "$DIR/out" && break
    sleep 0.5
done
has '^Replica lag: none \(all 9 replicas of 3 replicated partitions caught up\)$'

VICTIM=$((LEADER % 3 + 1))
PID=$(awk -v n="$VICTIM" '$1 == n { print $2 }' "$DIR/k/pids")
[ -n "$PID" ] || fail "no pid for node $VICTIM in $DIR/k/pids"
ALIVE=""
for i in 1 2 3; do
    [ "$i" = "$VICTIM" ] || ALIVE=${ALIVE:+$ALIVE,}${ADDR[$((i - 1))]}
done

echo "== a broker that does not lead the quorum is stopped, then resumed"
kill -STOP "$PID"
# Bounded: DescribeLogDirs gives a silent broker 3 s, so this returns well within 60 s.
rc=0
timeout 60 "$CLI" -b "$ALIVE" cluster status >"$DIR/out" 2>&1 || rc=$?
kill -CONT "$PID"
[ $rc = 0 ] || fail "cluster status with node $VICTIM stopped exited $rc"
for p in 0 1 2; do
    has "^copied +$p +$VICTIM +[1-3] +(yes|no) +- +unknown \((unreachable|fenced)\)$"
done
for _ in $(seq 1 60); do
    status "$BOOT"
    grep -Eq '^Replica lag: none ' "$DIR/out" && break
    sleep 0.5
done
has '^Replica lag: none \(all 9 replicas of 3 replicated partitions caught up\)$'

echo "== a broker that does not lead the quorum is killed"
kill -9 "$PID"
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
for p in 0 1 2; do
    has "^copied +$p +$VICTIM +[1-3] +(yes|no) +- +unknown \(fenced\)$"
done

echo "PASS"
