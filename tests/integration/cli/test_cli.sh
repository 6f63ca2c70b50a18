#!/usr/bin/env bash
# The samsa CLI against a real samsa-server on a free loopback port. Walks every command
# and checks what it prints and its exit status:
#   topics: create (with a config) -> list shows it, describe shows partitions,
#           watermarks and the override; alter sets/removes overrides; add-partitions
#           grows; delete removes; unknown topics and bad input exit non-zero.
#   groups: 100 keyed records produced; a group consumes 60 and commits -> describe
#           shows lag 40; seek refuses while a member is active, then moves the stopped
#           group to earliest (lag 100), offset:N, timestamps and latest (lag 0);
#           delete removes the group.
#   records: produce -K / consume -K round-trip; consume -e stops at the end.
#   cluster status: node 1 at the broker's address, quorum leader 1 with one voter at
#           lag 0, high watermark and partitions led grow with a topic create, no
#           partitions without a leader, no replicated partition; --json says the
#           same, with each replica's size and lag from DescribeLogDirs.
# Needs SAMSA_SERVER and SAMSA_CLI. Talks only to 127.0.0.1.
set -euo pipefail

source "$(dirname "$0")/lib.sh"
start_broker cli --override "group.initial.rebalance.delay.ms=0"

# ok CMD...: runs samsa, output (stdout+stderr) in $WORK/out, fails on non-zero exit.
ok() {
    "$CLI" -b "$BOOT" "$@" >"$WORK/out" 2>&1 || fail "samsa $* exited $?"
}
# bad CMD...: runs samsa, expects a non-zero exit and an error line "samsa: ...".
bad() {
    if "$CLI" -b "$BOOT" "$@" >"$WORK/out" 2>&1; then
        fail "samsa $* succeeded but should have failed"
    fi
    grep -q '^samsa: ' "$WORK/out" || fail "samsa $* failed without an error message"
}
has() { grep -Eq "$1" "$WORK/out" || fail "expected /$1/ in output of the last command"; }
lacks() { ! grep -Eq "$1" "$WORK/out" || fail "did not expect /$1/ in output"; }
# total_lag GROUP: the LAG column of describe's TOTAL row.
total_lag() {
    "$CLI" -b "$BOOT" group describe "$1" >"$WORK/out" 2>&1 || fail "group describe $1 failed"
    awk '$1 == "TOTAL" { print $5 }' "$WORK/out"
}
expect_lag() {
    local got
    got=$(total_lag "$1")
    [ "$got" = "$2" ] || fail "group $1: total lag '$got', expected $2"
}

echo "== usage and bad input"
"$CLI" --help >"$WORK/out" || fail "--help exited non-zero"
has 'group seek GROUP'
if "$CLI" nonsense >"$WORK/out" 2>&1; then fail "unknown command accepted"; fi
if "$CLI" topic create >"$WORK/out" 2>&1; then fail "topic create without a name accepted"; fi
if "$CLI" -b "$BOOT" topic create x -p zero >"$WORK/out" 2>&1; then fail "-p zero accepted"; fi
if "$CLI" -b 127.0.0.1:1 topic list >"$WORK/out" 2>&1; then fail "unreachable broker: exit 0"; fi

echo "== cluster status"
# quorum_hw: the metadata quorum's high watermark from the last output.
quorum_hw() { awk '/^High watermark:/ { print $3 }' "$WORK/out"; }
node_led() { awk -v a="127.0.0.1:$PORT" '$1 == 1 && $2 == a { print $5 }' "$WORK/out"; }
ok cluster status
has '^Cluster: +[A-Za-z0-9_-]+$'
has '^Controller: +1$'
has "^NODE +ADDRESS +RACK +FENCED +PARTITIONS-LED$"
has "^1 +127\.0\.0\.1:$PORT +- +no +[0-9]+$"
has '^Leader: +1$'
has '^Epoch: +[0-9]+$'
has "^1 +127\.0\.0\.1:$PORT +[0-9]+ +0 +[0-9]+ ms ago +[0-9]+ ms ago$"
[ "$(grep -Ec '^[0-9]+ +127\.0\.0\.1:' "$WORK/out")" = 2 ] ||
    fail "expected one node row and one voter row"
has '^Observers: none$'
has '^Partitions without a leader: none$'
has '^Replica lag: no partition has more than one replica$'
hw1=$(quorum_hw)
led1=$(node_led)
[ -n "$hw1" ] && [ -n "$led1" ] || fail "no high watermark or partitions-led in the output"
ok topic create cs-probe -p 2
ok cluster status
hw2=$(quorum_hw)
led2=$(node_led)
[ "$hw2" -gt "$hw1" ] || fail "quorum high watermark $hw1 -> $hw2 after a topic create"
[ "$led2" = $((led1 + 2)) ] || fail "partitions led $led1 -> $led2 after creating 2 partitions"
has "^1 +127\.0\.0\.1:$PORT +$hw2 +0 "   # the one voter is at the high watermark
ok cluster status --json
python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
port = int(sys.argv[2])
assert [(n["id"], n["host"], n["port"]) for n in s["nodes"]] == [(1, "127.0.0.1", port)], s
q = s["quorum"]
assert q["available"] and q["leader_id"] == 1, q
assert [(v["id"], v["lag"]) for v in q["voters"]] == [(1, 0)] and q["observers"] == [], q
assert s["partitions_without_leader"] == [], s
assert s["under_replicated_partitions"] == [], s
lag = s["replica_lag"]
assert [(b["id"], b["answered"], b["reason"]) for b in lag["brokers"]] == [(1, True, None)], lag
probe = [p for p in lag["partitions"] if p["topic"] == "cs-probe"]
assert sorted(p["partition"] for p in probe) == [0, 1], lag
for p in probe:
    [r] = p["replicas"]
    assert (r["id"], r["in_isr"], r["lag_bytes"], r["unknown"]) == (1, True, 0, None), p
    assert r["size_bytes"] >= 0 and r["offset_lag"] == 0, p
' "$WORK/out" "$PORT" || fail "cluster status --json: unexpected content"
ok topic delete cs-probe
if "$CLI" -b "$BOOT" cluster nonsense >"$WORK/out" 2>&1; then fail "cluster nonsense accepted"; fi
if "$CLI" -b "$BOOT" cluster status extra >"$WORK/out" 2>&1; then fail "cluster status extra accepted"; fi
if "$CLI" -b 127.0.0.1:1 cluster status >"$WORK/out" 2>&1; then fail "unreachable broker: exit 0"; fi
has '^samsa: '

echo "== topics"
ok topic create orders -p 3 -c retention.ms=3600000
has 'Created topic orders'
ok topic create other
ok topic list
has '^orders +3 +1$'
has '^other '
lacks '__consumer_offsets'
bad topic create orders
has 'already exists'
ok topic describe orders
has '^Topic: orders +Partitions: 3'
has '^2 +1 +1 +1 +0 +0 +-$'   # no open transaction
has '^retention.ms +3600000 +DYNAMIC_TOPIC_CONFIG'
bad topic describe no-such-topic
has "topic 'no-such-topic' does not exist"

ok topic alter orders -c cleanup.policy=compact -c retention.ms=7200000
ok topic describe orders
has '^cleanup.policy +compact'
has '^retention.ms +7200000'
ok topic alter orders -d cleanup.policy
ok topic describe orders
lacks '^cleanup.policy'
has '^retention.ms +7200000'   # untouched by removing another override
bad topic alter orders -d cleanup.policy
bad topic alter orders -c no.such.config=1
bad topic alter no-such-topic -c retention.ms=1

ok topic add-partitions other -p 4
ok topic describe other
has 'Partitions: 4'
bad topic add-partitions other -p 2
ok topic delete other
ok topic list
lacks '^other '
bad topic delete other

echo "== produce and consume"
seq 1 100 | awk '{ print "key" $1 ":value" $1 }' | "$CLI" -b "$BOOT" produce orders -K : \
    >"$WORK/out" 2>&1 || fail "produce failed"
has 'produced 100 record'
bad produce no-such-topic </dev/null
ok topic describe orders
has 'Records retained: 100'
"$CLI" -b "$BOOT" consume orders -o beginning -e -K : >"$WORK/all" 2>"$WORK/out" ||
    fail "consume -e failed"
[ "$(wc -l <"$WORK/all")" = 100 ] || fail "consume -e printed $(wc -l <"$WORK/all") lines"
grep -qx 'key42:value42' "$WORK/all" || fail "keyed record key42 missing from consume output"
[ "$(sort -u "$WORK/all" | wc -l)" = 100 ] || fail "consume -e printed duplicates"
"$CLI" -b "$BOOT" consume orders -o end -e >"$WORK/none" 2>"$WORK/out" || fail "consume -o end -e failed"
[ ! -s "$WORK/none" ] || fail "consume -o end -e printed records"
bad consume no-such-topic -e

echo "== groups: lag"
ok group list
lacks '^reader '
# One partition: which 60 records a group reads first is then fixed, so lag is exactly 40.
ok topic create events -p 1
seq 1 100 | "$CLI" -b "$BOOT" produce events >"$WORK/out" 2>&1 || fail "produce events failed"
"$CLI" -b "$BOOT" consume events -g tally -o beginning -n 60 >"$WORK/got" 2>"$WORK/out" ||
    fail "group consume of events failed"
[ "$(head -n 1 "$WORK/got")" = 1 ] && [ "$(tail -n 1 "$WORK/got")" = 60 ] ||
    fail "consume -n 60 printed $(head -n 1 "$WORK/got")..$(tail -n 1 "$WORK/got")"
expect_lag tally 40
has '^State: +Empty'
has '^events +0 +60 +100 +40 +- +-$'
has '^TOTAL +- +60 +100 +40'
# Three partitions: 60 committed in all; partitions the group has not reached show "-"
# and the rest of the 40 is in their log end.
"$CLI" -b "$BOOT" consume orders -g reader -o beginning -n 60 >"$WORK/got" 2>"$WORK/out" ||
    fail "group consume failed"
[ "$(wc -l <"$WORK/got")" = 60 ] || fail "consume -n 60 printed $(wc -l <"$WORK/got") lines"
ok group list
has '^reader +Empty +consumer$'
has '^tally +Empty +consumer$'
ok group describe reader
[ "$(grep -Ec '^orders +[0-2] ' "$WORK/out")" = 3 ] || fail "describe does not list all 3 partitions"
has '^TOTAL +- +60 +100 '
rest=$(awk '$1 == "orders" { s += ($5 == "-" ? $4 : $5) } END { print s }' "$WORK/out")
[ "$rest" = 40 ] || fail "group reader: lag plus unread partitions is $rest, expected 40"
bad group describe no-such-group
has "group 'no-such-group' does not exist"

echo "== groups: seek refuses an active group"
"$CLI" -b "$BOOT" consume orders -g reader >/dev/null 2>"$WORK/consumer.err" &
CONSUMER=$!
KILL_ON_EXIT=$CONSUMER
for _ in $(seq 1 100); do
    "$CLI" -b "$BOOT" group describe reader >"$WORK/out" 2>&1 || true
    grep -Eq '^State: +Stable' "$WORK/out" && grep -Eq '^orders +0 .*samsa-cli-' "$WORK/out" && break
    sleep 0.1
done
has '^State: +Stable'
has '^Members: +1'
has 'CLIENT-ID +HOST +ASSIGNMENT'
has 'orders:0,1,2'
has '^orders +[0-9] +[0-9]+ +[0-9]+ +[0-9]+ +samsa-cli-'   # owning member per partition
bad group seek reader --topic orders --to earliest
has 'active member'
bad group delete reader
has 'active members'
# Let the live consumer read (and commit) the other 40 before stopping it.
for _ in $(seq 1 100); do
    "$CLI" -b "$BOOT" group describe reader >"$WORK/out" 2>&1 || true
    grep -Eq '^TOTAL +- +100 +100 +0' "$WORK/out" && break
    sleep 0.1
done
kill -TERM "$CONSUMER"
wait "$CONSUMER" || fail "consumer exited non-zero on SIGTERM: $(cat "$WORK/consumer.err")"
KILL_ON_EXIT=""
expect_lag reader 0 # the live consumer read (and committed) the other 40

echo "== groups: seek a stopped group"
ok group seek reader --topic orders --to earliest
has 'Moved group reader'
expect_lag reader 100
ok group seek reader --topic orders --to latest
expect_lag reader 0
ok group seek reader --topic orders --to timestamp:0
expect_lag reader 100
ok group seek reader --topic orders --to timestamp:99999999999999
expect_lag reader 0
# offset:10 clamps per partition to its log end; expected lag from describe's LOG-END.
ok group seek reader --topic orders --to offset:10
"$CLI" -b "$BOOT" group describe reader >"$WORK/out" 2>&1
want=$(awk '$1 == "orders" { e = $4; c = (e < 10 ? e : 10); s += e - c } END { print s }' "$WORK/out")
expect_lag reader "$want"
ok group seek reader --topic orders --to earliest --dry-run
has 'Would move'
expect_lag reader "$want"   # dry run changed nothing
bad group seek reader --topic orders --to yesterday
bad group seek reader --topic no-such-topic --to earliest
# Continuing from the sought offsets: the group reads exactly its lag.
ok group seek reader --topic orders --to offset:0
"$CLI" -b "$BOOT" consume orders -g reader -e >"$WORK/got" 2>"$WORK/out" || fail "consume after seek failed"
[ "$(wc -l <"$WORK/got")" = 100 ] || fail "after seek to 0 the group read $(wc -l <"$WORK/got") records"
expect_lag reader 0

echo "== groups: delete"
ok group delete reader
has 'Deleted group reader'
ok group list
lacks '^reader '
has '^tally '
bad group delete reader
has 'does not exist'
bad group describe reader

echo "== topic delete with data"
ok topic delete orders
bad topic describe orders

echo "PASS"
