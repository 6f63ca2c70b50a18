#!/usr/bin/env bash
# bench/run.sh BUILD_DIR — Samsa's baseline benchmark (what `make bench` runs).
#
# Starts a fresh single-node broker on a temporary data dir and, REPS times (default 3):
#   - produces 1 KiB and 100-byte records with acks=1 and acks=all (samsa-load), each
#     read back and verified right away on the copy fetch path (pread+write);
#   - restarts the broker on the same data dir with samsa.fetch.sendfile=false and then
#     =true (order alternating per repetition) and reads every topic again, so both
#     fetch paths are measured on the same data in the same conditions.
# References, same machine, same session:
#   - fio, sequential 1 MiB writes each followed by fdatasync: the disk's physical limit
#     for acks=all (Samsa fdatasyncs every acks=all batch before acknowledging it);
#   - kbench (../shared/bench/kbench, built under /tmp) against librdkafka's in-process
#     mock cluster with acks=1: the client-side ceiling. Skipped with a note if missing.
# Then, groups and compaction (samsa-group-bench, see groups_section below): rebalance
# time of a 10-member group on 100 partitions, offset-commit throughput, produce rate of
# a compacted topic being cleaned (and of the same topic with cleanup.policy=delete).
# Prints a markdown table of medians and writes it as a dated section of
# docs/benchmarks.md (replacing that date's section if it exists).
#
# Environment: REPS, N_1K (1 KiB records per run), N_100 (100-byte records per run),
# BENCH_TMP (parent of the temporary dir), KBENCH_SRC, BENCH_DOC (output markdown file);
# for the groups part GB_REBALANCE_REPS (join+leave events per run, default 3),
# GB_COMMIT_SECONDS (5), GB_COMPACT_SECONDS (30), GB_KEYS (1000000); BENCH_ONLY=groups
# runs only the groups part and prints its table without touching docs/benchmarks.md.
set -euo pipefail

BUILD=${1:?usage: bench/run.sh BUILD_DIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SERVER=$BUILD/samsa-server
LOAD=$BUILD/bench/samsa-load
GBENCH=$BUILD/bench/samsa-group-bench
REPS=${REPS:-3}
N_1K=${N_1K:-1000000}
N_100=${N_100:-5000000}
KBENCH_SRC=${KBENCH_SRC:-$ROOT/../shared/bench/kbench/kbench.c}
BENCH_DOC=${BENCH_DOC:-$ROOT/docs/benchmarks.md}
FINDINGS=/tmp/bench-findings.txt
LOAD_TIMEOUT_S=300

for f in "$SERVER" "$LOAD" "$GBENCH"; do
    [ -x "$f" ] || { echo "bench: $f not built (run: make build)" >&2; exit 1; }
done

WORK=$(mktemp -d "${BENCH_TMP:-/tmp}/samsa-bench.XXXXXX")
DATA=$WORK/data
RESULTS=$WORK/results.txt
BROKER_PID=
PORT=
: >"$RESULTS"

stop_broker() {
    [ -n "$BROKER_PID" ] || return 0
    if kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$BROKER_PID" 2>/dev/null; then
            echo "bench: broker $BROKER_PID ignored SIGTERM for 10 s; killing it" >&2
            echo "broker did not stop within 10 s of SIGTERM" >>"$WORK/anomalies"
            kill -KILL "$BROKER_PID" 2>/dev/null || true
        fi
    fi
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=
}

cleanup() {
    stop_broker
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_broker true|false [--override k=v]...: a broker on a free port, sendfile fetch
# path on or off, plus any further overrides.
start_broker() {
    local out=$WORK/broker.out
    : >"$out"
    echo "=== start sendfile=$1 ${*:2} $(date -u +%T)" >>"$WORK/broker.err"
    "$SERVER" -c "$ROOT/config/server.properties" \
        --override log.dirs="$DATA" \
        --override listeners=PLAINTEXT://127.0.0.1:0 \
        --override advertised.listeners=PLAINTEXT://127.0.0.1:0 \
        --override samsa.fetch.sendfile="$1" "${@:2}" >"$out" 2>>"$WORK/broker.err" &
    BROKER_PID=$!
    for _ in $(seq 100); do
        PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$out")
        [ -n "$PORT" ] && return 0
        kill -0 "$BROKER_PID" 2>/dev/null || break
        sleep 0.1
    done
    finding "broker did not start (sendfile=$1)" "$SERVER -c config/server.properties ..." "$out"
}

# finding WHAT COMMAND OUTPUT_FILE: records a broker misbehaviour and stops the run.
finding() {
    {
        echo "== samsa bench finding, $(date -u '+%F %T UTC')"
        echo "what: $1"
        echo "command: $2"
        echo "-- output:"
        cat "$3" 2>/dev/null || true
        echo "-- broker alive: $(kill -0 "${BROKER_PID:-0}" 2>/dev/null && echo yes || echo no)"
        echo "-- broker stderr (last 40 lines):"
        tail -n 40 "$WORK/broker.err" 2>/dev/null || true
    } >>"$FINDINGS"
    echo "bench: FAILED: $1 — details in $FINDINGS" >&2
    tail -n 20 "$FINDINGS" >&2
    exit 1
}

# load TAG ARGS...: one samsa-load run against the current broker; each closing line is
# recorded as "TAG line". A failed run (unacknowledged, missing or wrong records, a hang
# or a dead broker) is a finding.
load() {
    local tag=$1; shift
    local cmd=("$LOAD" -b "127.0.0.1:$PORT" -q "$@")
    local out=$WORK/load.out rc=0
    timeout "$LOAD_TIMEOUT_S" "${cmd[@]}" >"$out" 2>&1 || rc=$?
    cat "$out"
    if [ "$rc" -ne 0 ] || ! kill -0 "$BROKER_PID" 2>/dev/null; then
        finding "samsa-load exited $rc (124 = timed out after ${LOAD_TIMEOUT_S}s)" "${cmd[*]}" "$out"
    fi
    grep -E '^(produce|consume):' "$out" | sed "s/^/$tag /" >>"$RESULTS"
}

records_for() { [ "$1" = 1024 ] && echo "$N_1K" || echo "$N_100"; }

# Medians and number formats (the report below and groups_section use them).
median() { # numbers on stdin -> median (the middle one; mean of the two middle ones)
    sort -g | awk '{v[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print v[(NR+1)/2]; else printf "%.1f\n", (v[NR/2]+v[NR/2+1])/2}'
}
# field SIZE ACKS PHASE LABEL N: the Nth field of the matching result lines.
# Result line fields: 1 rN 2 sSIZE 3 aACKS 4 LABEL 5 phase: 6 N ... 13 rec/s 15 MB/s 18 p50 21 p99
field() {
    awk -v s="s$1" -v a="a$2" -v ph="$3:" -v lb="$4" -v f="$5" \
        '$2==s && $3==a && $5==ph && $4==lb {print $f}' "$RESULTS" | median
}
krec() { [ "$1" = - ] && echo - || awk -v r="$1" 'BEGIN {printf "%.0f k", r/1000}'; }
cell() { echo "$(field "$1" "$2" "$3" "$4" 15) ($(krec "$(field "$1" "$2" "$3" "$4" 13)"))"; }
arr_median() { if [ $# -eq 0 ]; then echo -; else printf '%s\n' "$@" | median; fi; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a=="-" || b=="-" || b+0==0) print "-"; else printf "%.2f", a/b}'; }

# ---------- groups and compaction (samsa-group-bench) ----------
# A broker with group.initial.rebalance.delay.ms=0 (no wait for a first group to fill up)
# and log.cleaner.backoff.ms=1000 (the cleaner looks for work every second), on a fresh
# data dir for each part. Writes $GROUPS_MD.
GB_RESULTS=$WORK/groups.txt
GROUPS_MD=$WORK/groups.md
GB_REBALANCE_REPS=${GB_REBALANCE_REPS:-3}
GB_COMMIT_SECONDS=${GB_COMMIT_SECONDS:-5}
GB_COMPACT_SECONDS=${GB_COMPACT_SECONDS:-30}
GB_KEYS=${GB_KEYS:-1000000}
GB_HEARTBEAT_MS=1000
GB_OVERRIDES=(--override group.initial.rebalance.delay.ms=0 --override log.cleaner.backoff.ms=1000)

# gbench TAG MODE ARGS...: one samsa-group-bench run; its result lines are recorded as
# "TAG line". A failed run (failed commit, partition owned twice, lost record, timeout, dead
# broker) is a finding.
gbench() {
    local tag=$1 mode=$2; shift 2
    local cmd=("$GBENCH" "$mode" -b "127.0.0.1:$PORT" -q "$@")
    local out=$WORK/gbench.out rc=0
    timeout "$LOAD_TIMEOUT_S" "${cmd[@]}" >"$out" 2>&1 || rc=$?
    cat "$out"
    if [ "$rc" -ne 0 ] || ! kill -0 "$BROKER_PID" 2>/dev/null; then
        finding "samsa-group-bench exited $rc (124 = timed out after ${LOAD_TIMEOUT_S}s)" "${cmd[*]}" "$out"
    fi
    grep -E '^(join|leave|commits|produce|verify):' "$out" | sed "s/^/$tag /" >>"$GB_RESULTS"
}

# gfield TAG_REGEX PHASE N: median of field N of the matching result lines.
gfield() {
    awk -v t="$1" -v ph="$2:" -v f="$3" '$1 ~ t && $2 == ph {print $f}' "$GB_RESULTS" | median
}

# cleaner_stats TOPIC FROM TO: from the broker's "cleaned TOPIC-N: X of Y records removed"
# lines, "passes removed partitions" inside [FROM, TO] and after TO (ISO timestamps).
cleaner_stats() {
    awk -v pre="cleaned $1-" -v from="$2" -v to="$3" '
        index($0, pre) && / records removed/ {
            line = substr($0, index($0, pre) + length(pre))
            split(line, a, /[: ]+/)      # a[1] partition, a[2] removed, a[4] read
            if ($1 < from) next
            if ($1 <= to) { dn++; dr += a[2]; dp[a[1]] = 1 } else { an++; ar += a[2] }
        }
        END {
            parts = ""; for (p in dp) parts = parts (parts == "" ? "" : ",") p
            printf "%d %d %s %d %d\n", dn, dr, (parts == "" ? "-" : parts), an, ar
        }' "$WORK/broker.err"
}

groups_section() {
    : >"$GB_RESULTS"
    echo "bench: groups and compaction (samsa-group-bench)"
    rm -rf "$DATA"
    start_broker false "${GB_OVERRIDES[@]}"
    # 1. rebalance: 10 members on 100 partitions; each event: one joins, then one leaves.
    for rep in $(seq "$REPS"); do
        gbench "rb$rep" rebalance -m 10 -p 100 -r "$GB_REBALANCE_REPS" \
            --heartbeat-ms "$GB_HEARTBEAT_MS" --session-ms 10000 -t "gb-rebalance-$rep"
    done
    # 2. offset commits: 32 consumers, each in its own group, 4 partitions per commit;
    #    one commit in flight per consumer, then 16.
    for rep in $(seq "$REPS"); do
        for w in 1 16; do
            gbench "w$w.r$rep" commits -c 32 -k 4 -p 16 -w "$w" -d "$GB_COMMIT_SECONDS" \
                -t gb-commits
        done
    done
    stop_broker
    rm -rf "$DATA"
    # 3. compaction under load, then the same topic config with cleanup.policy=delete.
    local policy topic
    for policy in compact delete; do
        topic=gb-$policy
        start_broker false "${GB_OVERRIDES[@]}"
        gbench "$policy" compact --policy "$policy" -t "$topic" --keys "$GB_KEYS" -p 4 \
            --segment-bytes 8388608 --dirty-ratio 0.1 -s 100 --producers 2 -a 1 \
            -d "$GB_COMPACT_SECONDS" $([ "$policy" = compact ] && echo --verify)
        echo "$policy bytes $(du -scb "$DATA/$topic"-* | tail -n 1 | cut -f1)" >>"$GB_RESULTS"
        stop_broker
        rm -rf "$DATA"
    done

    # ---- the table ----
    local jt jd js lt ld ls jn ln jok lok hb=$GB_HEARTBEAT_MS
    jt=$(gfield '^rb' join 3); jd=$(gfield '^rb' join 6); js=$(gfield '^rb' join 9)
    lt=$(gfield '^rb' leave 3); ld=$(gfield '^rb' leave 6); ls=$(gfield '^rb' leave 9)
    jn=$(awk '$2 == "join:"' "$GB_RESULTS" | wc -l); ln=$(awk '$2 == "leave:"' "$GB_RESULTS" | wc -l)
    # an event meets the target when its total <= heartbeat interval + its own sync time
    jok=$(awk -v hb="$hb" '$2 == "join:" && $3 <= hb + $9' "$GB_RESULTS" | wc -l)
    lok=$(awk -v hb="$hb" '$2 == "leave:" && $3 <= hb + $9' "$GB_RESULTS" | wc -l)
    local jmax lmax
    jmax=$(awk '$2 == "join:" {print $3}' "$GB_RESULTS" | sort -g | tail -n 1)
    lmax=$(awk '$2 == "leave:" {print $3}' "$GB_RESULTS" | sort -g | tail -n 1)
    commit_cell() { # window -> "R commits/s (Q requests/s, p50/p99 ms)" and target verdict
        local r q p50 p99
        r=$(gfield "^w$1\\." commits 8); q=$(gfield "^w$1\\." commits 10)
        p50=$(gfield "^w$1\\." commits 13); p99=$(gfield "^w$1\\." commits 16)
        echo "$(krec "$r") commits/s ($(krec "$q") requests/s; commit latency p50 $p50 / p99 $p99 ms) | ≥ 50 k commits/s: $(awk -v r="$r" 'BEGIN {print (r != "-" && r >= 50000) ? "met" : "not met"}')"
    }
    local cr cm dr dm cb db cv st
    cr=$(gfield '^compact$' produce 10); cm=$(gfield '^compact$' produce 12)
    dr=$(gfield '^delete$' produce 10); dm=$(gfield '^delete$' produce 12)
    cb=$(awk '$1 == "compact" && $2 == "bytes" {printf "%.0f", $3/1e6}' "$GB_RESULTS")
    db=$(awk '$1 == "delete" && $2 == "bytes" {printf "%.0f", $3/1e6}' "$GB_RESULTS")
    cv=$(awk '$1 == "compact" && $2 == "verify:" {print $3 " records read, " $9 " keys"}' "$GB_RESULTS")
    local from to
    from=$(sed -n 's/^compact produce:.* from=\([^ ]*\) to=\([^]]*\)].*/\1/p' "$GB_RESULTS")
    to=$(sed -n 's/^compact produce:.* from=\([^ ]*\) to=\([^]]*\)].*/\2/p' "$GB_RESULTS")
    read -r st_dn st_dr st_dp st_an st_ar <<<"$(cleaner_stats gb-compact "$from" "$to")"
    {
        echo "| groups and compaction (samsa-group-bench) | result | target |"
        echo "| --- | --- | --- |"
        echo "| rebalance, 10 → 11 members on 100 partitions (heartbeat.interval.ms $hb, session.timeout.ms 10000): 11th member's subscribe → every member's rebalance callback has its new assignment, all 100 owned once | median $jt ms (max $jmax) = noticed $jd + rejoin/sync $js; $jn events | ≤ $hb ms + sync: $jok of $jn events |"
        echo "| rebalance, 11 → 10 members: consumer_close of the longest-standing member → the other 10 own all 100 | median $lt ms (max $lmax) = noticed $ld + rejoin/sync $ls; $ln events | ≤ $hb ms + sync: $lok of $ln events |"
        echo "| offset commits, 32 consumers (one group each, assign()), 4 partitions per commit, 1 commit in flight per consumer, ${GB_COMMIT_SECONDS} s | $(commit_cell 1) |"
        echo "| offset commits, same with 16 commits in flight per consumer | $(commit_cell 16) |"
        echo "| compacted topic (cleanup.policy=compact, $GB_KEYS keys, 4 partitions, segment.bytes 8 MiB, min.cleanable.dirty.ratio 0.1), 2 producers acks=1, 100 B values, ${GB_COMPACT_SECONDS} s | $cm MB/s ($(krec "$cr") records/s) | — |"
        echo "| same topic with cleanup.policy=delete (control) | $dm MB/s ($(krec "$dr") records/s); compacted ÷ control $(ratio "$cr" "$dr") | — |"
        echo "| cleaner, compacted topic: passes while producing / after, until verified | during: $st_dn passes, $st_dr records removed, partitions cleaned: $st_dp; after: $st_an passes, $st_ar records removed. Log at the end $cb MB (control $db MB) | — |"
        echo "| compacted topic read back (newest record of every key present, rounds increasing) | $cv; errors 0 | — |"
    } >"$GROUPS_MD"
}

if [ "${BENCH_ONLY:-}" = groups ]; then
    groups_section
    echo
    cat "$GROUPS_MD"
    echo "bench: BENCH_ONLY=groups: docs/benchmarks.md not written"
    exit 0
fi

LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: data in $WORK; $REPS repetitions; $N_1K x 1 KiB and $N_100 x 100 B per case"
for rep in $(seq "$REPS"); do
    start_broker false
    for size in 1024 100; do
        for acks in 1 all; do
            load "r$rep s$size a$acks fresh" -t "bench-r$rep-s$size-a$acks" \
                -n "$(records_for $size)" -s "$size" -a "$acks" -p 1 --consume \
                --sendfile-label "copy, right after produce"
        done
    done
    stop_broker
    if [ $((rep % 2)) -eq 1 ]; then paths="false true"; else paths="true false"; fi
    for sendfile in $paths; do
        start_broker "$sendfile"
        label=$([ "$sendfile" = true ] && echo sendfile || echo copy)
        for size in 1024 100; do
            for acks in 1 all; do
                load "r$rep s$size a$acks $label" -t "bench-r$rep-s$size-a$acks" \
                    -n "$(records_for $size)" -s "$size" -p 1 --consume-only \
                    --sendfile-label "$label, after restart"
            done
        done
        stop_broker
    done
done
rm -rf "$DATA"

# fio: the disk's limit for synced sequential writes, in the same temporary dir.
echo "bench: fio seqsync (1 MiB writes + fdatasync, 512 MiB) x $REPS"
FIO_MBPS=()
if command -v fio >/dev/null; then
    for rep in $(seq "$REPS"); do
        mkdir -p "$WORK/fio"
        fio --name=seqsync --rw=write --bs=1M --size=512M --fdatasync=1 \
            --directory="$WORK/fio" --output-format=json >"$WORK/fio.json"
        mbps=$(/usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("%.1f" % (j["jobs"][0]["write"]["bw_bytes"]/1e6))' "$WORK/fio.json")
        echo "fio seqsync: $mbps MB/s"
        FIO_MBPS+=("$mbps")
        rm -rf "$WORK/fio"
    done
else
    echo "bench: fio not installed; no disk reference"
fi

# kbench against librdkafka's mock cluster: the client-side ceiling (no broker involved).
KB_NOTE=
KB_1K=() KB_100=() KB_100_RECS=() KB_1K_RECS=()
if [ -f "$KBENCH_SRC" ] && cc -O2 -o /tmp/kbench "$KBENCH_SRC" -lrdkafka -lpthread 2>"$WORK/kbench.cc"; then
    echo "bench: kbench mock cluster, acks=1 x $REPS"
    for rep in $(seq "$REPS"); do
        for size in 1024 100; do
            line=$(timeout "$LOAD_TIMEOUT_S" /tmp/kbench -n "$(records_for $size)" -s "$size" -p 1 \
                --acks 1 --linger 5 --batch 1000000 --no-consume -q | grep '^kbench:') || line=
            echo "$line"
            mb=$(sed -n 's/.* produce_MBps=\([0-9.]*\).*/\1/p' <<<"$line")
            recs=$(sed -n 's/.* produce_msgs_s=\([0-9.]*\).*/\1/p' <<<"$line")
            [ -n "$mb" ] || continue
            if [ "$size" = 1024 ]; then KB_1K+=("$mb"); KB_1K_RECS+=("$recs"); else KB_100+=("$mb"); KB_100_RECS+=("$recs"); fi
        done
    done
else
    KB_NOTE="kbench not available (source $KBENCH_SRC missing or did not build); no client ceiling"
    echo "bench: $KB_NOTE"
fi

# ---------- medians and the report ----------

FIO=$(arr_median "${FIO_MBPS[@]}")
KB1K=$(arr_median "${KB_1K[@]}")
KB100=$(arr_median "${KB_100[@]}")
KB1K_R=$(arr_median "${KB_1K_RECS[@]}")
KB100_R=$(arr_median "${KB_100_RECS[@]}")

TABLE=$WORK/table.md
{
    echo "| records | acks | produce MB/s (rec/s) | p50 / p99 produce latency ms | consume MB/s (rec/s): copy, right after produce | consume: copy, after restart | consume: sendfile, after restart |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    for size in 1024 100; do
        n=$(records_for $size)
        name=$([ $size = 1024 ] && echo "$n x 1 KiB" || echo "$n x 100 B")
        for acks in 1 all; do
            echo "| $name | $acks | $(cell $size $acks produce fresh) | $(field $size $acks produce fresh 18) / $(field $size $acks produce fresh 21) | $(cell $size $acks consume fresh) | $(cell $size $acks consume copy) | $(cell $size $acks consume sendfile) |"
        done
    done
} >"$TABLE"

REFS=$WORK/refs.md
{
    echo "| reference | MB/s (rec/s) |"
    echo "| --- | --- |"
    if [ "$FIO" != - ]; then
        echo "| fio: 1 MiB sequential writes, fdatasync after each (512 MiB) | $FIO |"
    else
        echo "| fio | not installed |"
    fi
    if [ -z "$KB_NOTE" ]; then
        echo "| kbench, librdkafka mock cluster, acks=1, $N_1K x 1 KiB | $KB1K ($(krec "$KB1K_R")) |"
        echo "| kbench, librdkafka mock cluster, acks=1, $N_100 x 100 B | $KB100 ($(krec "$KB100_R")) |"
    else
        echo "| kbench mock cluster | $KB_NOTE |"
    fi
} >"$REFS"

P1K_ALL=$(field 1024 all produce fresh 15)
P100_ALL=$(field 100 all produce fresh 15)
P1K_1=$(field 1024 1 produce fresh 15)
P100_1=$(field 100 1 produce fresh 15)
RATIOS=$WORK/ratios.md
{
    echo "- acks=all produce ÷ fio: 1 KiB $(ratio "$P1K_ALL" "$FIO"), 100 B $(ratio "$P100_ALL" "$FIO")"
    echo "- acks=1 produce ÷ mock-cluster ceiling (same record size): 1 KiB $(ratio "$P1K_1" "$KB1K"), 100 B $(ratio "$P100_1" "$KB100")"
} >"$RATIOS"

echo
cat "$TABLE"
echo
cat "$REFS"
echo
cat "$RATIOS"
if [ -s "$WORK/anomalies" ]; then echo; echo "anomalies:"; cat "$WORK/anomalies"; fi

# ---------- raft: commits/s on a simulated 3-node cluster (pure CPU, then fdatasync) ----------
RAFT=$WORK/raft.md
RAFT_BIN=$BUILD/tests/unit/raft/bench_raft
{
    echo "| raft (bench_raft, 3 nodes in one process, 100-byte entries) | result |"
    echo "| --- | --- |"
    if [ -x "$RAFT_BIN" ]; then
        for args in "--batch 64" "--batch 1"; do
            line=$("$RAFT_BIN" --seconds 3 $args 2>&1 | tail -n 1)
            echo "| pure CPU, $args | ${line#*: } |"
            mkdir -p "$WORK/raft"
            line=$("$RAFT_BIN" --durable "$(mktemp -d "$WORK/raft/XXXX")" --seconds 3 $args 2>&1 | tail -n 1)
            echo "| durable (fdatasync, the 3 nodes' syncs in series), $args | ${line#*: } |"
        done
    else
        echo "| bench_raft | not built |"
    fi
} >"$RAFT"
cat "$RAFT"

groups_section
echo
cat "$GROUPS_MD"

# ---------- docs/benchmarks.md ----------

DATE=$(date -u +%F)
LOAD_AT_END=$(cut -d' ' -f1-3 /proc/loadavg)
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
CORES=$(nproc)
MEM=$(awk '/^MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
KERNEL=$(uname -r)
DF_LINE=$(df -h "$WORK" | awk 'NR==2 {print $1 " (" $2 ", mounted on " $6 ")"}')
DEV=$(df "$WORK" | awk 'NR==2 {print $1}' | sed 's|^/dev/||')
LSBLK=$(lsblk -dno NAME,SIZE,ROTA,TYPE,MODEL "/dev/$DEV" 2>/dev/null | tr -s ' ' | sed 's/ *$//' || true)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
SECTION=$WORK/section.md
{
    echo "<!-- bench-run $DATE begin (generated by bench/run.sh; replaced by a later run on the same date) -->"
    echo "## $DATE"
    echo
    echo "- Machine: $CPU, $CORES cores, $MEM RAM; kernel $KERNEL; data on $DF_LINE${LSBLK:+, lsblk: $LSBLK (ROTA 0 = non-rotational)}."
    echo "- Samsa commit $COMMIT (plus uncommitted changes if any); broker built $(basename "$BUILD")/ (CMake RelWithDebInfo via make build); librdkafka $(pkg-config --modversion rdkafka 2>/dev/null || echo '?')."
    echo "- The load tool (producer and consumer) and the broker share these $CORES cores, over loopback. Load average (1/5/15 min) at start $LOAD_AT_START, at end $LOAD_AT_END: anything else running on the machine competes for the same cores."
    echo "- Medians of $REPS runs, each figure separately; MB = 10^6 bytes of record values."
    echo
    cat "$TABLE"
    echo
    cat "$REFS"
    echo
    cat "$RATIOS"
    echo
    cat "$RAFT"
    echo
    cat "$GROUPS_MD"
    if [ -s "$WORK/anomalies" ]; then echo; echo "Anomalies during the run:"; sed 's/^/- /' "$WORK/anomalies"; fi
    echo "<!-- bench-run $DATE end -->"
} >"$SECTION"

/usr/bin/python3 - "$BENCH_DOC" "$SECTION" "$DATE" <<'EOF'
import os, re, sys
doc, section_file, date = sys.argv[1:4]
section = open(section_file).read().rstrip("\n") + "\n"
text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
pat = re.compile(r"<!-- bench-run %s begin.*?<!-- bench-run %s end -->\n?" % (date, date), re.S)
if pat.search(text):
    text = pat.sub(lambda m: section, text, count=1)
else:
    text = text.rstrip("\n") + "\n\n" + section
open(doc, "w").write(text)
EOF
echo
echo "bench: wrote the $DATE section of $BENCH_DOC"
