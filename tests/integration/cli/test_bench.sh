#!/usr/bin/env bash
# `samsa bench` against a real samsa-server on a free loopback port, and against
# librdkafka's in-process mock cluster. Small workloads only (a few tens of thousands of
# records); nothing here asserts a time or a rate, only exit statuses, the closing
# line's format and its counts:
#   sequential, concurrent (end-to-end latency present), paced (--rate), delayed
#   delivery (--deliver-after: not visible before its time, each record once), several
#   producers and partitions, acks=0/1, compression, --broker-pid (CPU per GB present),
#   --produce-only, --mock; a named topic is kept and --verify accepts it with the same
#   -n and refuses it with more records or another record size; no broker -> non-zero.
# Needs SAMSA_SERVER and SAMSA_CLI. Talks only to 127.0.0.1.
set -euo pipefail

source "$(dirname "$0")/lib.sh"
start_broker bench

NUM='[0-9]+(\.[0-9]+)?'
# The closing line: every key, in order; numbers or "-" where a figure does not apply.
LINE="^samsa bench: topic=[^ ]+ target=(broker|mock:[0-9]+) mode=(sequential|concurrent|produce-only|verify) records=[0-9]+ record_bytes=[0-9]+ partitions=[0-9]+ producers=[0-9]+ acks=(0|1|all|-1) linger_ms=[0-9]+ batch_bytes=[0-9]+ compression=[a-z0-9]+ rate=([0-9]+|-) produce_records_s=($NUM|-) produce_MB_s=($NUM|-) produce_p50_ms=($NUM|-) produce_p99_ms=($NUM|-) produce_p999_ms=($NUM|-) consume_records_s=($NUM|-) consume_MB_s=($NUM|-) e2e_p50_ms=($NUM|-) e2e_p99_ms=($NUM|-) e2e_p999_ms=($NUM|-) deliver_after_ms=([0-9]+|-) late_p50_ms=($NUM|-) late_p99_ms=($NUM|-) late_max_ms=($NUM|-) txn_records=([0-9]+|-) commit_p50_ms=($NUM|-) commit_p99_ms=($NUM|-) broker_cpu_s_per_GB=($NUM|-) errors=[0-9]+$"

# bench ARGS...: runs samsa bench, must exit 0 and print exactly one well-formed
# closing line on stdout with errors=0 (stdout in $WORK/out, stderr in $WORK/err).
bench() {
    "$CLI" -b "$BOOT" bench "$@" >"$WORK/out" 2>"$WORK/err" ||
        { cat "$WORK/err" >>"$WORK/out"; fail "samsa bench $* exited non-zero"; }
    [ "$(wc -l <"$WORK/out")" = 1 ] || fail "samsa bench $*: expected one line on stdout"
    grep -Eq "$LINE" "$WORK/out" || fail "samsa bench $*: malformed closing line"
    [ "$(field errors)" = 0 ] || fail "samsa bench $*: errors"
}
# bench_fails ARGS...: must exit non-zero with a "samsa: " line on stderr.
bench_fails() {
    if "$CLI" -b "$BOOT" bench "$@" >"$WORK/out" 2>"$WORK/err"; then
        fail "samsa bench $* succeeded but should have failed"
    fi
    grep -q '^samsa: ' "$WORK/err" || { cat "$WORK/err" >>"$WORK/out"; fail "samsa bench $* failed without an error message"; }
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$WORK/out"; }
is_num() { [[ "$(field "$1")" =~ ^$NUM$ ]] || fail "$1 is '$(field "$1")', expected a number"; }
is_dash() { [ "$(field "$1")" = "-" ] || fail "$1 is '$(field "$1")', expected -"; }

echo "== usage and bad input"
"$CLI" bench --help >"$WORK/out" || fail "bench --help exited non-zero"
grep -q 'usage: samsa bench' "$WORK/out" || fail "bench --help shows no usage"
bench_fails -n 10 -s 8            # smaller than the 16-byte header
bench_fails -n 10 -a 2
bench_fails -n 10 --concurrent --produce-only
bench_fails -n 10 --verify        # needs -t
if "$CLI" -b 127.0.0.1:1 bench -n 100 >"$WORK/out" 2>"$WORK/err"; then
    fail "bench against a port where nothing listens exited 0"
fi

echo "== sequential, acks=all, broker CPU"
bench -n 20000 -s 100 --broker-pid "$PID"
grep -q ' mode=sequential ' "$WORK/out" || fail "mode"
grep -q ' records=20000 record_bytes=100 ' "$WORK/out" || fail "records/size echoed"
for f in produce_records_s produce_MB_s produce_p50_ms produce_p99_ms produce_p999_ms \
         consume_records_s consume_MB_s broker_cpu_s_per_GB; do is_num "$f"; done
for f in e2e_p50_ms e2e_p99_ms e2e_p999_ms; do is_dash "$f"; done

echo "== concurrent, several producers and partitions"
bench -n 20000 -s 256 -p 4 -P 3 --concurrent
grep -q ' mode=concurrent ' "$WORK/out" || fail "mode"
grep -q ' partitions=4 producers=3 ' "$WORK/out" || fail "partitions/producers echoed"
for f in e2e_p50_ms e2e_p99_ms e2e_p999_ms; do is_num "$f"; done
is_dash broker_cpu_s_per_GB

echo "== paced, linger 0"
bench -n 5000 -s 100 --rate 20000 -l 0 --concurrent
grep -q ' rate=20000 ' "$WORK/out" || fail "rate echoed"

echo "== delayed delivery: every record held 300 ms, how late it became visible"
bench -n 3000 -s 100 --rate 3000 -l 0 --concurrent --deliver-after 300
grep -q ' deliver_after_ms=300 ' "$WORK/out" || fail "deliver-after echoed"
for f in late_p50_ms late_p99_ms late_max_ms; do is_num "$f"; done
awk -v e="$(field e2e_p50_ms)" 'BEGIN { exit !(e >= 300) }' || fail "delivered before its time"
bench -n 20000 -s 100 --deliver-after 0   # checked like any run: each record once, in order
is_dash late_p50_ms

echo "== transactional producers: a commit every 500 records, read back read_committed"
bench -n 5000 -s 100 -p 2 -P 2 --txn-records 500 -X isolation.level=read_committed
grep -q ' txn_records=500 ' "$WORK/out" || fail "txn-records echoed"
for f in commit_p50_ms commit_p99_ms; do is_num "$f"; done
bench_fails -n 100 -s 100 --txn-records 10 -a 1    # transactions need acks=all

echo "== acks=0 and acks=1 with compression"
bench -n 20000 -s 100 -a 0 -z lz4 --compressible
bench -n 20000 -s 512 -a 1 -z zstd -p 2

echo "== produce only"
bench -n 20000 -s 100 --produce-only
grep -q ' mode=produce-only ' "$WORK/out" || fail "mode"
is_num produce_records_s
is_dash consume_records_s

echo "== named topic kept, then --verify"
bench -n 20000 -s 100 -p 3 -t kept
bench -n 20000 -s 100 -t kept --verify
grep -q ' mode=verify ' "$WORK/out" || fail "mode"
is_dash produce_records_s
is_num consume_records_s
bench_fails -n 30000 -s 100 -t kept --verify    # 10000 records missing
grep -q 'errors=10000$' "$WORK/out" || fail "expected errors=10000 for 10000 missing records"
grep -q '10000 missing' "$WORK/err" || fail "expected the missing count on stderr"
bench_fails -n 20000 -s 200 -t kept --verify    # every record has the wrong size
bench_fails -n 20000 -s 100 -t no-such-topic --verify
# A second run into the kept topic appends and checks only its own records.
bench -n 10000 -s 100 -t kept
# ...after which the topic holds the first run's records and the second's: not exactly
# one run's worth any more, so --verify reports duplicates.
bench_fails -n 20000 -s 100 -t kept --verify

echo "== mock cluster"
"$CLI" bench --mock 1 -n 20000 -s 100 >"$WORK/out" 2>"$WORK/err" || fail "bench --mock 1 exited non-zero"
grep -Eq "$LINE" "$WORK/out" || fail "mock: malformed closing line"
grep -q ' target=mock:1 mode=sequential ' "$WORK/out" || fail "mock: target/mode"
[ "$(field errors)" = 0 ] || fail "mock: errors"
is_num consume_records_s
# More than the mock keeps per partition: produce only, with a note.
"$CLI" bench --mock 1 -n 20000 -s 1024 >"$WORK/out" 2>"$WORK/err" || fail "bench --mock 1 (large) exited non-zero"
grep -q ' mode=produce-only ' "$WORK/out" || fail "mock: large run should be produce-only"
grep -q 'note: the mock cluster keeps only' "$WORK/err" || fail "mock: note missing"
bench_fails --mock 1 -n 10 --broker-pid "$PID"

kill -0 "$PID" 2>/dev/null || fail "broker died during the test"
echo "PASS"
