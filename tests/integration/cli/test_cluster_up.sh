#!/usr/bin/env bash
# `samsa cluster up` / `samsa cluster down`: a local three-node cluster on loopback.
#   up --nodes 3 prints bootstrap.servers; the nodes run detached (their own sessions)
#   after the command returns; `cluster status` lists three nodes and a quorum leader; a
#   6-partition topic gets leaders on all three nodes; kcat produces and consumes through
#   it; while a node that does not lead the quorum is stopped (SIGSTOP), `cluster status`
#   still answers and shows its replicas' lag unknown, and once it resumes and catches up
#   the replica lag table is gone; a second `up` on the running dir and one on taken
#   ports are refused; `down` stops
#   every node cleanly (each log ends with the clean shutdown line) and leaves no process;
#   `up` again on the same dir restarts it with the topic and its records; `down --purge`
#   removes the dir.
# Needs SAMSA_SERVER and SAMSA_CLI, and kcat. Talks only to 127.0.0.1.
set -euo pipefail

SERVER=${SAMSA_SERVER:?set SAMSA_SERVER to the samsa-server binary}
CLI=${SAMSA_CLI:?set SAMSA_CLI to the samsa binary}
export SAMSA_SERVER=$SERVER
WORK=$(mktemp -d -t samsa-cluster-up.XXXXXX)
DIR=$WORK/cluster

# Kills every node any pids file under $WORK names (only samsa-servers of $WORK), shows the
# last output and node logs on failure, removes $WORK.
cleanup() {
    local rc=$?
    for f in "$WORK"/*/pids; do
        [ -f "$f" ] || continue
        while read -r p; do
            if grep -qs "$WORK" "/proc/$p/cmdline"; then kill -9 "$p" 2>/dev/null || true; fi
        done <"$f"
    done
    if [ $rc -ne 0 ]; then
        echo "---- last command output ----"
        cat "$WORK/out" 2>/dev/null || true
        for log in "$WORK"/*/node*/server.log; do
            [ -f "$log" ] || continue
            echo "---- $log (last 20 lines) ----"
            tail -n 20 "$log"
        done
    fi
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
has() { grep -Eq "$1" "$WORK/out" || fail "expected /$1/ in output of the last command"; }
# running PID: the process exists and is not a zombie.
running() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $st != Z* ]]
}

echo "== usage"
"$CLI" cluster up -h >"$WORK/out" || fail "cluster up -h exited non-zero"
has 'base-port'
if "$CLI" cluster up --nodes 0 --dir "$DIR" >"$WORK/out" 2>&1; then fail "--nodes 0 accepted"; fi
if "$CLI" cluster up --nodes 10 --dir "$DIR" >"$WORK/out" 2>&1; then fail "--nodes 10 accepted"; fi
[ ! -e "$DIR" ] || fail "a refused command line created $DIR"

echo "== up --nodes 3"
# A random base port below the ephemeral range; another one if one of its ports is taken
# (by another test picking the same, perhaps between the check and the listen).
BASE=""
for _ in 1 2 3 4 5; do
    base=$((20000 + (RANDOM % 1000) * 10))
    rm -rf "$DIR"
    if timeout 60 "$CLI" cluster up --nodes 3 --dir "$DIR" --base-port "$base" >"$WORK/out" 2>&1; then
        BASE=$base
        break
    fi
    grep -Eq 'is not free|Address already in use' "$WORK/out" || fail "cluster up failed"
    "$CLI" cluster down --dir "$DIR" >/dev/null 2>&1 || true
done
[ -n "$BASE" ] || fail "no free base port in 5 tries"
P1=$BASE P2=$((BASE + 10)) P3=$((BASE + 20))
BOOT=127.0.0.1:$P1,127.0.0.1:$P2,127.0.0.1:$P3
has "^bootstrap\.servers=$BOOT\$"
has "samsa cluster down --dir $DIR"
for i in 1 2 3; do
    [ -f "$DIR/node$i/server.properties" ] || fail "no $DIR/node$i/server.properties"
    grep -q "^node.id=$i\$" "$DIR/node$i/server.properties" || fail "node$i: wrong node.id"
    grep -q "^controller.quorum.voters=1@127.0.0.1:$((P1 + 1)),2@127.0.0.1:$((P2 + 1)),3@127.0.0.1:$((P3 + 1))\$" \
        "$DIR/node$i/server.properties" || fail "node$i: wrong controller.quorum.voters"
done
mapfile -t PIDS <"$DIR/pids"
[ "${#PIDS[@]}" = 3 ] || fail "expected 3 pids in $DIR/pids, got ${#PIDS[*]}"
for p in "${PIDS[@]}"; do
    running "$p" || fail "node pid $p is not running after up returned"
    # Detached: each node leads its own session, so no terminal signal reaches it.
    [ "$(ps -o sid= -p "$p" | tr -d ' ')" = "$p" ] || fail "pid $p is not in its own session"
done

echo "== cluster status"
"$CLI" -b "$BOOT" cluster status >"$WORK/out" 2>&1 || fail "cluster status failed"
for i in 1 2 3; do
    port_var=P$i
    has "^$i +127\.0\.0\.1:${!port_var} +- +no +[0-9]+\$"
done
has '^Leader: +[123]$'
has '^Partitions without a leader: none$'
QUORUM_LEADER=$(awk '/^Leader:/ { print $2 }' "$WORK/out")

echo "== refusals while running"
if "$CLI" cluster up --dir "$DIR" >"$WORK/out" 2>&1; then fail "second up on a running dir"; fi
has 'already running'
if "$CLI" cluster up --dir "$WORK/other" --base-port "$BASE" >"$WORK/out" 2>&1; then
    fail "up on taken ports succeeded"
fi
has "port $BASE \(node 1's client port\) on 127\.0\.0\.1 is not free"
[ ! -e "$WORK/other" ] || fail "a refused up left $WORK/other behind"

echo "== a 6-partition topic over three nodes"
"$CLI" -b "$BOOT" topic create spread -p 6 >"$WORK/out" 2>&1 || fail "topic create failed"
"$CLI" -b "$BOOT" topic describe spread >"$WORK/out" 2>&1 || fail "topic describe failed"
leaders=$(awk '$1 ~ /^[0-5]$/ && NF >= 6 { print $2 }' "$WORK/out" | sort -u | paste -sd, -)
[ "$leaders" = "1,2,3" ] || fail "leaders of the 6 partitions: '$leaders', expected 1,2,3"

echo "== produce and consume with kcat"
seq 1 12 | awk '{ print "k" $1 ":v" $1 }' >"$WORK/sent"
timeout 30 kcat -b "$BOOT" -P -t spread -K: -X acks=all <"$WORK/sent" >"$WORK/out" 2>&1 ||
    fail "kcat produce failed"
read_back() {
    timeout 30 kcat -b "$BOOT" -C -t spread -e -q -f '%k:%s\n' >"$WORK/out" 2>&1 ||
        fail "kcat consume failed"
    sort "$WORK/out" | diff - <(sort "$WORK/sent") >/dev/null ||
        fail "read back $(wc -l <"$WORK/out") records, not the 12 sent"
}
read_back

echo "== replica lag: a stopped follower is unknown, then caught up"
"$CLI" -b "$BOOT" topic create copied -p 3 -r 3 >"$WORK/out" 2>&1 || fail "topic create -r 3 failed"
seq 1 30 | timeout 30 kcat -b "$BOOT" -P -t copied -X acks=all >"$WORK/out" 2>&1 ||
    fail "kcat produce to copied failed"
# Not the quorum leader: the quorum and DescribeQuorum carry on while it is stopped.
VICTIM=$((QUORUM_LEADER % 3 + 1))
VPID=${PIDS[$((VICTIM - 1))]}
ALIVE=""
for i in 1 2 3; do
    port_var=P$i
    [ "$i" = "$VICTIM" ] || ALIVE=${ALIVE:+$ALIVE,}127.0.0.1:${!port_var}
done
kill -STOP "$VPID"
# Bounded: DescribeLogDirs gives a silent broker 3 s, so this returns well within 60 s.
rc=0
timeout 60 "$CLI" -b "$ALIVE" cluster status >"$WORK/out" 2>&1 || rc=$?
kill -CONT "$VPID"
[ $rc = 0 ] || fail "cluster status with node $VICTIM stopped exited $rc"
for p in 0 1 2; do
    has "^copied +$p +$VICTIM +[123] +(yes|no) +- +unknown \((unreachable|fenced)\)$"
done
has "^Replica lag: [0-9]+ of [0-9]+ replicas behind"
# The other replicas of copied answered: none of their rows is unknown for want of theirs.
[ "$(grep -Ec "^copied +[0-2] +[123] .*unknown" "$WORK/out")" = 3 ] ||
    fail "expected only node $VICTIM's three replicas of copied unknown"
ok=""
for _ in $(seq 1 60); do
    "$CLI" -b "$BOOT" cluster status >"$WORK/out" 2>&1 || fail "cluster status after SIGCONT failed"
    if grep -Eq '^Replica lag: none \(all [0-9]+ replicas of [0-9]+ replicated partitions caught up\)$' \
        "$WORK/out"; then
        ok=1
        break
    fi
    sleep 0.5
done
[ -n "$ok" ] || fail "node $VICTIM's replicas did not catch up after SIGCONT"

echo "== down"
"$CLI" cluster down --dir "$DIR" >"$WORK/out" 2>&1 || fail "cluster down failed"
has '^Stopped 3 node\(s\)'
for p in "${PIDS[@]}"; do
    ! running "$p" || fail "node pid $p still running after down"
done
for i in 1 2 3; do
    # SIGTERM is a clean shutdown: segments closed and checkpoints written.
    tail -n 1 "$DIR/node$i/server.log" | grep -q 'shut down cleanly' ||
        fail "node $i did not shut down cleanly: $(tail -n 1 "$DIR/node$i/server.log")"
done
[ ! -e "$DIR/pids" ] || fail "down left $DIR/pids"
"$CLI" cluster down --dir "$DIR" >"$WORK/out" 2>&1 || fail "down with nothing running exited non-zero"
has '^Nothing was running'

echo "== up again: the same cluster, with its topic and records"
timeout 60 "$CLI" cluster up --dir "$DIR" >"$WORK/out" 2>&1 || fail "restarting up failed"
has '^Restarted the 3-node cluster'
has "^bootstrap\.servers=$BOOT\$"
mapfile -t PIDS <"$DIR/pids"
"$CLI" -b "$BOOT" topic describe spread >"$WORK/out" 2>&1 || fail "topic lost after restart"
has '^Topic: spread +Partitions: 6'
read_back

echo "== down --purge"
"$CLI" cluster down --dir "$DIR" --purge >"$WORK/out" 2>&1 || fail "down --purge failed"
has '^Stopped 3 node\(s\)'
for p in "${PIDS[@]}"; do
    ! running "$p" || fail "node pid $p still running after down --purge"
done
[ ! -e "$DIR" ] || fail "down --purge left $DIR"

echo "PASS"
