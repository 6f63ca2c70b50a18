#!/usr/bin/env bash
# bench/run.sh BUILD_DIR — Samsa's benchmark (what `make bench` runs), issue #4's cases.
#
# The load is `samsa bench` (tools/bench.c: one closing line of key=value pairs per run;
# a run that loses, duplicates, reorders or corrupts a record, or is not acknowledged,
# exits non-zero and stops this script as a finding). Every broker is a fresh
# samsa-server on a temporary data dir, listening on 127.0.0.1, default
# config/server.properties. The load tool and the broker share this machine's cores.
#
# Sections, in order (names for BENCH_ONLY):
#   memory       cost of touching fresh guest memory (bench/warm_memory.c), see below
#   standard     REPS times: fio references (synced sequential writes; fdatasync
#                latency), then on a fresh broker 1 KiB acks=all on 1 and 8 partitions,
#                100 B acks=all, 1 KiB acks=1 and the same workload against librdkafka's
#                mock cluster (`samsa bench --mock 1`: the client-side ceiling; also acks=all on
#                8 partitions, the ceiling beside the 8-partition row), 1 KiB acks=all
#                from an idempotent producer, the fixed
#                50,000 records/s cases with acks=1, again with the durable-append floor
#                (bench/durable_floor.c) and fio's fdatasync latency beside it, and
#                acks=all, then two restarts reading the 1 KiB topic back from the
#                page cache on the copy and on the sendfile fetch path (order alternating)
#   idle         a broker holding 10 topics x 100 partitions: VmRSS, and start-up time
#                (exec -> "listening on port") after a clean shutdown, REPS restarts
#   scaling      one run per point: throughput against partitions (1..1,000, with VmRSS),
#                producers (1, 4, 16) and record size (100 B..1 MiB)
#   connections  10 topics x 1,000 partitions (fewer if the open-file limit is short)
#                and 5,000 held client connections (bench/conn_hold.c) while a 1 KiB
#                acks=all run produces to another topic; VmRSS before, with, after
#   peers        Samsa on the peer harness's workloads (acks=all and acks=1) beside
#                Redis Streams and NATS JetStream (../shared/bench/peers/run.sh)
#   kafka        Apache Kafka 4.4 (tests/reference/kafka.sh fetches and runs it: one KRaft
#                node, -Xmx1G) on the standard section's workloads with the same
#                arguments: 1 KiB acks=all on 1 and 8 partitions, 100 B acks=all, 1 KiB
#                acks=1, the fixed-rate cases (acks=1, acks=all), 16 producers (once, as
#                the scaling section), the 1 KiB topic read back; broker CPU per GB is the
#                JVM's. REPS times, each time two fresh Kafkas on fresh data dirs: its
#                defaults (acks=all answered before any fsync) and flush.messages=1 (an
#                fsync per append before the answer, Samsa's guarantee); each gets one
#                unmeasured warm-up run (N_WARM x 1 KiB) first. In the first repetition a
#                short acks=all run under strace counts each one's segment writes and
#                fsyncs. Tabled beside Samsa's rows of the same run (standard, scaling),
#                with Samsa / Kafka per workload.
#   raft         bench_raft, 3 simulated nodes in one process
#   cluster      three Samsa nodes on loopback (bench/cluster.py): controller failover
#                (kill -9 of the active controller -> next successful CreateTopics) and
#                metadata propagation p50/p99, Kafka 4.4's beside them; 1 KiB acks=all
#                on 12 partitions against three nodes and against one; replication
#                factor 3 (min.insync.replicas 2, idempotent acks=all): throughput with
#                followers syncing and not, against one node and Kafka's three; end-to-end
#                latency at 20,000 records/s; kill -9 and SIGTERM of a partition leader
#                -> first acks=all produce acknowledged by the new leader
#   groups       rebalances, offset commits, compaction (bench/group_bench.c)
#   delays       delayed delivery (issue #16), REPS times on a fresh broker: 1 KiB and
#                100 B acks=all produce of plain records and of records delayed an hour,
#                and 1 KiB delayed 0 ms (delivered and checked end to end); lateness (due
#                time -> a consumer has it) at 10,000 and 100,000 records/s, each due 1 s
#                after its send; then once N_PENDING records due over 30 days: VmRSS, and
#                start-up time after a clean shutdown
#   txn          transactions (issue #17), REPS times, Samsa then Apache Kafka 4.4 (its
#                defaults, one warm-up run first) on a fresh broker each: 1 KiB acks=all
#                from an idempotent producer, from a transactional producer committing
#                every 1,024 records (1 MiB) and every 100 records; commit latency
#                (commit_transaction) p50/p99; the 1 MiB-transaction topic read back
#                read_committed and read_uncommitted; the Kafka Java client's
#                transactions (bench/java/TxnBench.java, transaction version 2), 1 MiB
#                and 100 records each, and its plain producer with the same records,
#                when kafka-clients 4.4.0 is in the Maven repository; and, with no broker,
#                librdkafka's own ceiling: idempotent and 1 MiB transactions against its
#                in-process mock cluster (`samsa bench --mock 1`)
#   limits       resource bounds (bench/limits.py): broker VmRSS and descriptors with
#                1,000 slow readers; one CreateTopics of 10,000 partitions with the
#                Metadata latency meanwhile; 100,000 idle partitions (VmRSS, descriptors,
#                mappings, start-up time)
# Then prints the tables and writes them as a dated section of docs/benchmarks.md
# (replacing that date's section if there is one).
#
# Memory: on this VM a process's first write to a fresh anonymous page costs ~2 s of
# system CPU per GB (again in every new process), and page-cache pages that stay free
# for ~30 s are handed back to the host (virtio-balloon free page reporting), after
# which growing the page cache costs ~3 s/GB. A warm-up therefore does not last; the
# memory section only measures the cost, so that it is on record beside the figures.
#
# Environment: REPS (3), N_1K (1 KiB records per standard run, 1000000), N_100 (100-byte
# records, 5000000), N_RATE (records of a fixed-rate run at 50,000/s, 1000000), SCALE_MB
# (MB per scaling run, 400), CONNS (5000), N_WARM (Kafka's warm-up records, 300000),
# PEERS ("redis redis-always nats"), PEER_WORKLOADS ("1000000:100 200000:1024"),
# BENCH_TMP (parent of the temporary dir),
# BENCH_DOC (docs/benchmarks.md); for groups GB_REBALANCE_REPS (3), GB_COMMIT_SECONDS
# (5), GB_COMPACT_SECONDS (30), GB_KEYS (1000000). QUICK=1: fewer records, REPS=1, no
# peers unless PEERS is set. BENCH_ONLY="section ...": only those sections. QUICK and
# BENCH_ONLY print the tables without touching docs/benchmarks.md.
set -euo pipefail

BUILD=${1:?usage: bench/run.sh BUILD_DIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SERVER=$BUILD/samsa-server
SAMSA=$BUILD/tools/samsa
GBENCH=$BUILD/bench/samsa-group-bench
WARM=$BUILD/bench/samsa-warm-memory
HOLD=$BUILD/bench/samsa-conn-hold
FLOOR=$BUILD/bench/samsa-durable-floor
PEERS_RUN=$ROOT/../shared/bench/peers/run.sh
QUICK=${QUICK:-}
if [ -n "$QUICK" ]; then
    REPS=${REPS:-1}
    N_1K=${N_1K:-200000}
    N_100=${N_100:-1000000}
    N_RATE=${N_RATE:-1000000}
    SCALE_MB=${SCALE_MB:-100}
    PEERS=${PEERS:-}
    PEER_WORKLOADS=${PEER_WORKLOADS:-"200000:100 50000:1024"}
    GB_REBALANCE_REPS=${GB_REBALANCE_REPS:-1}
    GB_COMPACT_SECONDS=${GB_COMPACT_SECONDS:-10}
    GB_KEYS=${GB_KEYS:-100000}
    N_WARM=${N_WARM:-100000}
    N_PENDING=${N_PENDING:-500000}
fi
REPS=${REPS:-3}
N_1K=${N_1K:-1000000}
N_100=${N_100:-5000000}
# 20 s at 50,000/s: beside it the durable-append floor runs 3-7 s in, then the fio
# latency job (10 s) runs from 8 s and ends well inside it.
N_RATE=${N_RATE:-1000000}
RATE=50000
SCALE_MB=${SCALE_MB:-400}
CONNS=${CONNS:-5000}
N_WARM=${N_WARM:-300000}
# Delayed delivery: records held pending (due over 30 days) for the memory and restart rows.
N_PENDING=${N_PENDING:-2000000}
PEERS=${PEERS-"redis redis-always nats"}
PEER_WORKLOADS=${PEER_WORKLOADS:-"1000000:100 200000:1024"}
BENCH_DOC=${BENCH_DOC:-$ROOT/docs/benchmarks.md}
BENCH_ONLY=${BENCH_ONLY:-}
FINDINGS=/tmp/bench-findings.txt
LOAD_TIMEOUT_S=300
FIO_LAT_S=10
FLOOR_S=4

for f in "$SERVER" "$SAMSA" "$GBENCH" "$WARM" "$HOLD" "$FLOOR"; do
    [ -x "$f" ] || { echo "bench: $f not built (run: make build)" >&2; exit 1; }
done
command -v fio >/dev/null || { echo "bench: fio is missing (run: make bench-deps)" >&2; exit 1; }

WORK=$(mktemp -d "${BENCH_TMP:-/tmp}/samsa-bench.XXXXXX")
DATA=$WORK/data
RESULTS=$WORK/results.txt
BROKER_PID=
PORT=
START_MS=
REP=0
FIO_PID=
HOLD_PID=
PEERS_PID=
KAFKA_DIR=
STRACE_PID=
: >"$RESULTS"
: >"$WORK/anomalies"

# 10,000 partitions and 5,000 connections need more descriptors than a usual hard limit
# (the broker keeps each partition's active segment files open; it raises its own soft
# limit to the hard one). Raising the hard limit needs privilege; without it the
# connections case creates fewer partitions and says so.
FD_NOTE=
if ! (ulimit -Hn 1048576) 2>/dev/null; then
    FD_NOTE="the hard open-file limit could not be raised above $(ulimit -Hn) (ulimit -Hn 1048576: not permitted here)"
else
    ulimit -Hn 1048576
fi
ulimit -n "$(ulimit -Hn)"

want() { [ -z "$BENCH_ONLY" ] || [[ " $BENCH_ONLY " == *" $1 "* ]]; }
anomaly() { echo "$*" >>"$WORK/anomalies"; echo "bench: note: $*" >&2; }

stop_pid() { # PID: SIGTERM, wait up to 10 s, then SIGKILL
    kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

stop_broker() {
    [ -n "$BROKER_PID" ] || return 0
    if kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$BROKER_PID" 2>/dev/null; then
            anomaly "broker $BROKER_PID did not stop within 10 s of SIGTERM; killed"
            kill -KILL "$BROKER_PID" 2>/dev/null || true
        fi
    fi
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=
}

cleanup() {
    [ -z "$FIO_PID" ] || stop_pid "$FIO_PID"
    [ -z "$STRACE_PID" ] || stop_pid "$STRACE_PID"
    # Kafka's JVM runs detached (setsid): stopped through kafka.sh, by its pid file.
    if [ -n "$KAFKA_DIR" ]; then
        "$ROOT/tests/reference/kafka.sh" stop "$KAFKA_DIR" --timeout 10 || true
        BROKER_PID=
    fi
    [ -z "$HOLD_PID" ] || stop_pid "$HOLD_PID"
    if [ -n "$PEERS_PID" ]; then
        # The peer harness stops its server on exit; its children (server, client) are
        # stopped here too in case it cannot get that far.
        local kids
        kids=$(pgrep -P "$PEERS_PID" || true)
        stop_pid "$PEERS_PID"
        for k in $kids; do stop_pid "$k"; done
    fi
    stop_broker
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# finding WHAT COMMAND OUTPUT_FILE: records a broker misbehaviour and stops the run. While
# Kafka is the broker (KAFKA_DIR set) it is recorded, noted as an anomaly and the run goes
# on: finding returns 1.
finding() {
    {
        echo "== samsa bench finding$([ -z "$KAFKA_DIR" ] || echo " (against Kafka)"), $(date -u '+%F %T UTC')"
        echo "what: $1"
        echo "command: $2"
        echo "-- output:"
        cat "$3" 2>/dev/null || true
        echo "-- broker alive: $([ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null && echo yes || echo no)"
        if [ -n "$KAFKA_DIR" ]; then
            echo "-- the broker is Kafka ($KAFKA_DIR); server.log (last 40 lines):"
            tail -n 40 "$KAFKA_DIR"/node1/server.log 2>/dev/null || true
        else
            echo "-- broker stderr (last 40 lines):"
            tail -n 40 "$WORK/broker.err" 2>/dev/null || true
        fi
    } >>"$FINDINGS"
    if [ -n "$KAFKA_DIR" ]; then
        anomaly "against Kafka, r$REP: $1 (details in $FINDINGS; the run goes on)"
        return 1
    fi
    echo "bench: FAILED: $1 — details in $FINDINGS" >&2
    tail -n 20 "$FINDINGS" >&2
    exit 1
}

# start_broker [--override k=v]...: a broker on a free port and the current data dir.
# Sets BROKER_PID, PORT and START_MS, the time from exec to the "listening on port" line
# on its stdout (polled every 10 ms, so up to ~10 ms late).
start_broker() {
    local out=$WORK/broker.out t0
    : >"$out"
    echo "=== start $* $(date -u +%T)" >>"$WORK/broker.err"
    t0=$EPOCHREALTIME
    "$SERVER" -c "$ROOT/config/server.properties" \
        --override log.dirs="$DATA" \
        --override listeners=PLAINTEXT://127.0.0.1:0 \
        --override advertised.listeners=PLAINTEXT://127.0.0.1:0 "$@" >"$out" 2>>"$WORK/broker.err" &
    BROKER_PID=$!
    for _ in $(seq 3000); do
        PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$out")
        if [ -n "$PORT" ]; then
            START_MS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", (b - a) * 1000}')
            return 0
        fi
        kill -0 "$BROKER_PID" 2>/dev/null || break
        sleep 0.01
    done
    finding "broker did not start within 30 s" "$SERVER -c config/server.properties $*" "$out"
}

cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
open_fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
# rec TAG key=value...: one result line for this repetition.
rec() { echo "tag=$1 rep=$REP ${*:2}" >>"$RESULTS"; }

# sb TAG ARGS...: one `samsa bench` run, recorded as "tag=TAG rep=REP server_cpu_s=S"
# plus its closing line's pairs; S is the broker's CPU time over the whole run (produce
# and read back), as the peer harness measures its servers. Against a broker, the tool
# also gets --broker-pid (broker_cpu_s_per_GB). A failed run, a hang or a dead broker is
# a finding (against Kafka: an anomaly, and no figures for the run).
sb() {
    local tag=$1; shift
    local cmd=("$SAMSA" bench "$@") out=$WORK/sb.out rc=0 c0=- cpu=-
    if [ -n "$KAFKA_DIR" ] && ! kill -0 "$BROKER_PID" 2>/dev/null; then
        anomaly "$tag r$REP not run: Kafka is not running"
        return 0
    fi
    if [ -n "$BROKER_PID" ]; then
        cmd+=(-b "127.0.0.1:$PORT")
        [[ " $* " == *" --mock "* ]] || cmd+=(--broker-pid "$BROKER_PID")
        c0=$(cpu_s "$BROKER_PID")
    fi
    timeout "$LOAD_TIMEOUT_S" "${cmd[@]}" >"$out" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ] || { [ -n "$BROKER_PID" ] && ! kill -0 "$BROKER_PID" 2>/dev/null; }; then
        finding "${KAFKA_DIR:+$tag: }samsa bench exited $rc (124 = timed out after ${LOAD_TIMEOUT_S}s)" "${cmd[*]}" "$out" || {
            rec "$tag" failed="$rc"
            return 0
        }
    fi
    [ -z "$BROKER_PID" ] || cpu=$(awk -v a="$c0" -v b="$(cpu_s "$BROKER_PID")" 'BEGIN {printf "%.2f", b - a}')
    grep '^samsa bench:' "$out" | sed "s/^samsa bench: /tag=$tag rep=$REP server_cpu_s=$cpu /" >>"$RESULTS"
    echo "  $tag r$REP: $(grep '^samsa bench:' "$out" | tr ' ' '\n' |
        grep -E '^(produce_MB_s|produce_records_s|produce_p99_ms|consume_MB_s|e2e_p99_ms|broker_cpu_s_per_GB)=' | tr '\n' ' ')"
}

# ---------- reading the results ----------

median() { # numbers on stdin -> the middle one (mean of the two middle ones); "-" if none
    sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) print "-"
        else if (NR % 2) print v[(NR + 1) / 2]
        else { m = sprintf("%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2); sub(/\.?0+$/, "", m); print m } }'
}
# val TAG KEY: median over the runs tagged TAG of KEY ("-" if none).
val() {
    awk -v t="tag=$1" -v k="$2" '$1 == t {
        for (i = 2; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == k && substr($i, n + 1) != "-") print substr($i, n + 1) } }' \
        "$RESULTS" | median
}
# best TAG KEY: the highest value (for ceilings: noise from other load only lowers them).
best() {
    awk -v t="tag=$1" -v k="$2" '$1 == t {
        for (i = 2; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == k && substr($i, n + 1) != "-") print substr($i, n + 1) } }' \
        "$RESULTS" | sort -g | tail -n 1 | grep . || echo -
}
# each TAG KEY: every run's value, in order, comma-separated.
each() {
    awk -v t="tag=$1" -v k="$2" '$1 == t {
        for (i = 2; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == k) print substr($i, n + 1) } }' \
        "$RESULTS" | paste -sd, | sed 's/,/, /g'
}
runs() { awk -v t="tag=$1" '$1 == t' "$RESULTS" | wc -l; }
calc() { # calc EXPR VARS...: awk arithmetic on figures, "-" if any is "-"
    local expr=$1; shift
    local v
    for v in "$@"; do [ "$v" != - ] || { echo -; return; }; done
    awk -v a="${1:-0}" -v b="${2:-0}" -v c="${3:-0}" "BEGIN {print ($expr)}"
}
krec() { calc 'a >= 10000 ? sprintf("%.0f k", a / 1000) : sprintf("%.0f", a)' "$1"; }
kbmb() { calc 'sprintf("%.1f", a * 1024 / 1000000)' "$1"; } # VmRSS kB -> MB
ratio() { calc 'sprintf("%.2f", a / b)' "$1" "$2"; }
# verdict VALUE >=|<= LIMIT
verdict() {
    [ "$1" != - ] && [ "$3" != - ] || { echo "no figure"; return; }
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        ok = op == ">=" ? v + 0 >= l + 0 : v + 0 <= l + 0; print ok ? "met" : "**not met**" }'
}

# admin ARGS...: a `samsa` admin command against the current broker; failure is a finding.
admin() {
    local out=$WORK/admin.out
    "$SAMSA" "$@" -b "127.0.0.1:$PORT" >"$out" 2>&1 ||
        finding "samsa $* failed" "$SAMSA $* -b 127.0.0.1:$PORT" "$out"
}

# ---------- memory: the cost of fresh guest memory ----------

memory_section() {
    echo "bench: memory: 2 GiB of fresh memory, touched by two processes one after the other"
    local tag line
    for tag in mem.first mem.again; do
        line=$("$WARM" --max-gib 2)
        echo "  $line"
        rec "$tag" "$(sed -n 's/.*touched \([0-9]*\) GiB in \([0-9.]*\) s wall, \([0-9.]*\) s sys = \([0-9.]*\) s\/GB.*/gib=\1 wall_s=\2 sys_s=\3 sys_s_per_GB=\4/p' <<<"$line")"
    done
}

# ---------- fio: the disk's references ----------

# fio_json MODE FILE: from fio's JSON, "MB_s=X" (MODE bw) or the fdatasync latency
# percentiles "p50_ms=A p99_ms=B p999_ms=C" (MODE lat).
fio_json() {
    /usr/bin/python3 - "$@" <<'PY'
import json, sys
mode, path = sys.argv[1:3]
job = json.load(open(path))["jobs"][0]
if mode == "bw":
    print("MB_s=%.1f" % (job["write"]["bw_bytes"] / 1e6))
else:
    p = job["sync"]["lat_ns"]["percentile"]
    print("p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f" % tuple(p[k] / 1e6 for k in ("50.000000", "99.000000", "99.900000")))
PY
}

# Sequential 1 MiB writes, each followed by fdatasync, 1 GiB: what the disk gives acks=all.
fio_seq() {
    mkdir -p "$WORK/fio"
    fio --name=seqsync --rw=write --bs=1M --size=1G --fdatasync=1 --directory="$WORK/fio" \
        --output-format=json --output="$WORK/fio-seq.json" >/dev/null
    rec fio.seq "$(fio_json bw "$WORK/fio-seq.json")"
    echo "  fio seqsync r$REP: $(fio_json bw "$WORK/fio-seq.json")"
    rm -rf "$WORK/fio"
}

# 4 KiB writes, each followed by fdatasync, for FIO_LAT_S: the latency of one small
# synced write, the physical floor under an acks=all produce.
FIO_LAT=(fio --name=lat --rw=write --bs=4k --size=256M --runtime="$FIO_LAT_S" --time_based
         --fdatasync=1 --fallocate=none --directory="$WORK/fio" --output-format=json)

fio_lat_record() { # TAG JSON_FILE
    rec "$1" "$(fio_json lat "$2")"
    echo "  fio fdatasync latency ($1) r$REP: $(fio_json lat "$2")"
    rm -rf "$WORK/fio"
}

# ---------- the standard cases ----------

standard_section() {
    local rep sf order
    for rep in $(seq "$REPS"); do
        REP=$rep
        echo "bench: standard cases, repetition $rep of $REPS"
        fio_seq
        mkdir -p "$WORK/fio"
        "${FIO_LAT[@]}" --output="$WORK/fio-lat.json" >/dev/null
        fio_lat_record fio.lat.idle "$WORK/fio-lat.json"

        rm -rf "$DATA"
        start_broker
        # std-1k is kept for the read-back after the restarts below.
        sb std.1k.all.p1 -t std-1k -n "$N_1K" -s 1024 -a all
        sb std.1k.all.p8 -n "$N_1K" -s 1024 -a all -p 8
        sb std.100.all -n "$N_100" -s 100 -a all
        sb std.1k.a1 -n "$N_1K" -s 1024 -a 1
        sb mock.1k.a1 --mock 1 -n "$N_1K" -s 1024 -a 1
        # The client's own ceiling on 8 partitions (it builds 8 batches per request on
        # these same cores), shown beside the 8-partition row.
        sb mock.1k.all.p8 --mock 1 -n "$N_1K" -s 1024 -a all -p 8
        # The same 1-partition case from an idempotent producer (no target: what it costs).
        sb std.1k.all.idem -n "$N_1K" -s 1024 -a all -X enable.idempotence=true

        sb rate.a1 -n "$N_RATE" -s 100 -a 1 -l 0 --rate "$RATE" --concurrent
        # The hypervisor's I/O path shares these cores: a synced write completes later
        # while the guest's CPUs are busy. So the floor under the acks=all fixed-rate
        # case is measured while the acks=1 fixed-rate load (the same load without its
        # fdatasyncs) runs again: first the same records appended and group-committed by
        # bench/durable_floor.c (no network, no protocol), then fio's fdatasync latency.
        # (Run beside the acks=1 case above they would add their own load to its figures.)
        mkdir -p "$WORK/fio" "$WORK/floor"
        (sleep 3
         "$FLOOR" --dir "$WORK/floor" --rate "$RATE" --bytes 100 --seconds "$FLOOR_S" \
             >"$WORK/floor.out" 2>&1 || exit 1
         sleep 1
         exec "${FIO_LAT[@]}" --output="$WORK/fio-lat-load.json" >/dev/null) &
        FIO_PID=$!
        sb rate.a1.load -n "$N_RATE" -s 100 -a 1 -l 0 --rate "$RATE" --concurrent
        kill -0 "$FIO_PID" 2>/dev/null &&
            anomaly "r$REP: the floor or fio's latency job outlived the acks=1 fixed-rate load (part of it ran idle)"
        wait "$FIO_PID" || finding "durable floor or fio latency job failed" \
            "$FLOOR --dir $WORK/floor --rate $RATE --bytes 100 --seconds $FLOOR_S; ${FIO_LAT[*]}" \
            "$WORK/floor.out"
        FIO_PID=
        rec floor.load "$(sed -n 's/^durable-floor: //p' "$WORK/floor.out")"
        echo "  durable floor beside the acks=1 load r$REP: $(cat "$WORK/floor.out")"
        fio_lat_record fio.lat.load "$WORK/fio-lat-load.json"
        sb rate.aall -n "$N_RATE" -s 100 -a all -l 0 --rate "$RATE" --concurrent
        stop_broker

        # Read std-1k back from the page cache on each fetch path, after a restart (so no
        # fetch buffer or connection of the produce is reused), order alternating.
        if [ $((rep % 2)) -eq 1 ]; then order="false true"; else order="true false"; fi
        for sf in $order; do
            start_broker --override samsa.fetch.sendfile="$sf"
            sb "consume.sendfile-$sf" --verify -t std-1k -n "$N_1K" -s 1024
            stop_broker
        done
    done
    rm -rf "$DATA"
}

# ---------- idle broker with 1,000 partitions ----------

idle_section() {
    echo "bench: idle broker holding 10 topics x 100 partitions; $REPS restarts"
    local rep t
    REP=0
    rm -rf "$DATA"
    start_broker
    for t in $(seq 0 9); do admin topic create "idle-$t" -p 100; done
    sleep 3 # let creation's buffers settle before reading VmRSS
    rec idle.created rss_kb="$(rss_kb "$BROKER_PID")"
    for rep in $(seq "$REPS"); do
        REP=$rep
        stop_broker
        start_broker
        local ms=$START_MS
        sleep 3
        admin topic list
        [ "$(grep -c '^idle-' "$WORK/admin.out")" = 10 ] ||
            finding "after a clean restart the broker lists $(grep -c '^idle-' "$WORK/admin.out") of the 10 idle-N topics" "$SAMSA topic list" "$WORK/admin.out"
        rec idle.restart start_ms="$ms" rss_kb="$(rss_kb "$BROKER_PID")"
        echo "  restart r$rep: start-up $ms ms, VmRSS $(rss_kb "$BROKER_PID") kB"
    done
    stop_broker
    rm -rf "$DATA"
}

# ---------- scaling curves (one run per point) ----------

scaling_section() {
    echo "bench: scaling curves, one run per point, $SCALE_MB MB each"
    local p np s n1k=$((SCALE_MB * 1000000 / 1024))
    REP=1
    for p in 1 10 100 1000; do
        rm -rf "$DATA"
        start_broker
        [ "$p" != 1 ] || rec mem.part.0 rss_kb="$(rss_kb "$BROKER_PID")"
        admin topic create "scale-p$p" -p "$p"
        sleep 2
        rec "mem.part.$p" rss_kb="$(rss_kb "$BROKER_PID")"
        sb "scale.part.$p" -t "scale-p$p" -n "$n1k" -s 1024 -a all
        rec "mem.part.after.$p" rss_kb="$(rss_kb "$BROKER_PID")"
        # The same spread record by record (as keyed records are): every partition gets
        # some of every batch's worth, so each request carries small batches.
        [ "$p" = 1 ] || sb "scale.spread.$p" -n "$n1k" -s 1024 -a all -p "$p" --spread-records
        stop_broker
    done
    # A 1 MiB record does not fit Kafka's default message.max.bytes (1 MiB + 12 bytes
    # per batch, less than one record's framing); this broker takes batches up to 2 MiB.
    rm -rf "$DATA"
    start_broker --override message.max.bytes=2097152
    for np in 1 4 16; do
        sb "scale.prod.$np" -n "$n1k" -s 1024 -a all -p 8 -P "$np"
    done
    for s in 100 1024 10240 102400 1048576; do
        sb "scale.size.$s" -n $((SCALE_MB * 1000000 / s)) -s "$s" -a all
    done
    stop_broker
    rm -rf "$DATA"
}

# ---------- many partitions and many connections ----------

CONN_NOTE=
connections_section() {
    echo "bench: $CONNS connections against a broker with up to 10 x 1,000 partitions"
    local fds0 per_topic limit topics t hold_rc=0
    REP=1
    rm -rf "$DATA"
    start_broker
    fds0=$(open_fds "$BROKER_PID")
    admin topic create conn-0 -p 1000
    per_topic=$(( $(open_fds "$BROKER_PID") - fds0 ))
    limit=$(awk '/^Max open files/ {print $4}' "/proc/$BROKER_PID/limits")
    # Create as many 1,000-partition topics as the broker's descriptor limit allows with
    # the connections and a margin of 256 on top (10 when it is not the bound).
    topics=10
    if [ "$limit" != unlimited ] && [ "$per_topic" -gt 0 ]; then
        t=$(( (limit - fds0 - CONNS - 256) / per_topic ))
        [ "$t" -ge 10 ] || topics=$(( t < 1 ? 1 : t ))
    fi
    [ "$topics" = 10 ] || CONN_NOTE="$((topics * 1000)) partitions instead of 10,000: the broker's open-file limit is $limit and 1,000 partitions hold $per_topic descriptors"
    for t in $(seq 1 $((topics - 1))); do admin topic create "conn-$t" -p 1000; done
    sleep 3
    rec conn.before partitions=$((topics * 1000)) rss_kb="$(rss_kb "$BROKER_PID")" \
        fds="$(open_fds "$BROKER_PID")" fds_per_1000="$per_topic" fd_limit="$limit"
    rec "mem.part.$((topics * 1000))" rss_kb="$(rss_kb "$BROKER_PID")"

    "$HOLD" -b "127.0.0.1:$PORT" -n "$CONNS" >"$WORK/hold.out" 2>&1 &
    HOLD_PID=$!
    for _ in $(seq 600); do
        grep -q 'connections open' "$WORK/hold.out" && break
        kill -0 "$HOLD_PID" 2>/dev/null || finding "samsa-conn-hold could not open $CONNS connections" "$HOLD -b 127.0.0.1:$PORT -n $CONNS" "$WORK/hold.out"
        sleep 0.1
    done
    grep -q 'connections open' "$WORK/hold.out" || finding "samsa-conn-hold did not open $CONNS connections in 60 s" "$HOLD -n $CONNS" "$WORK/hold.out"
    echo "  $(head -n 1 "$WORK/hold.out")"
    sleep 2
    rec conn.with rss_kb="$(rss_kb "$BROKER_PID")" fds="$(open_fds "$BROKER_PID")" \
        open_s="$(sed -n 's/.*(\([0-9.]*\) s to open.*/\1/p' "$WORK/hold.out")"
    sb conn.produce -n "$N_1K" -s 1024 -a all
    rec conn.after rss_kb="$(rss_kb "$BROKER_PID")"
    kill -TERM "$HOLD_PID"
    wait "$HOLD_PID" || hold_rc=$?
    HOLD_PID=
    echo "  $(tail -n 1 "$WORK/hold.out")"
    [ "$hold_rc" = 0 ] || finding "the broker closed held client connections" "$HOLD -b 127.0.0.1:$PORT -n $CONNS" "$WORK/hold.out"
    rec conn.held "still_open=$(sed -n 's/.*: \([0-9]*\) of [0-9]* still open.*/\1/p' "$WORK/hold.out")"
    stop_broker
    rm -rf "$DATA"
}

# ---------- peers: Samsa and the peer harness on the same workloads ----------

peers_section() {
    local rep wl n s acks peer need rc
    echo "bench: Samsa on the peer workloads ($PEER_WORKLOADS), acks=all and acks=1"
    rm -rf "$DATA"
    start_broker
    for rep in $(seq "$REPS"); do
        REP=$rep
        for wl in $PEER_WORKLOADS; do
            n=${wl%%:*} s=${wl##*:}
            for acks in all 1; do sb "pw.$n.$s.$acks" -n "$n" -s "$s" -a "$acks"; done
        done
    done
    stop_broker
    rm -rf "$DATA"
    mkdir -p "$WORK/peers"
    : >"$WORK/peers/notes"
    for peer in $PEERS; do
        case $peer in redis*) need=redis-server ;; nats) need=nats-server ;; *) need=$peer ;; esac
        if ! command -v "$need" >/dev/null; then
            echo "$peer not measured: $need is not installed (make bench-deps)" >>"$WORK/peers/notes"
            continue
        fi
        echo "bench: peer $peer (../shared/bench/peers/run.sh, $REPS runs)"
        # Everything the harness reads from the environment is set here: make exports its
        # command-line BUILD=, which would otherwise be the harness's build dir.
        PEERS=$peer REPS=$REPS WORKLOADS=$PEER_WORKLOADS OUT=$WORK/peers/$peer.txt \
            DATA=$WORK/peers-data BUILD=/tmp/samsa-peers-build \
            "$PEERS_RUN" >"$WORK/peers/$peer.log" 2>&1 &
        PEERS_PID=$!
        rc=0
        wait "$PEERS_PID" || rc=$?
        PEERS_PID=
        rm -rf "$WORK/peers-data"
        if [ "$rc" != 0 ]; then
            echo "$peer failed (peer harness exit $rc: $(grep -v '^ *$' "$WORK/peers/$peer.log" | tail -n 1))" >>"$WORK/peers/notes"
            tail -n 5 "$WORK/peers/$peer.log" >&2
        fi
        [ -f "$WORK/peers/$peer.txt" ] || continue
        sed -n 's/^peer=\([^ ]*\) rep=\([0-9]*\) [^ ]*: n=\([0-9]*\) size=\([0-9]*\)/tag=peer.\1.\3.\4 rep=\2 n=\3 size=\4/p' \
            "$WORK/peers/$peer.txt" >>"$RESULTS"
        grep '^peer=' "$WORK/peers/$peer.txt" | sed 's/^/  /' || true
    done
}

# ---------- kafka: Apache Kafka 4.4 on the standard workloads ----------
# tests/reference/kafka.sh runs Kafka: one KRaft node (broker and controller in one JVM)
# on loopback. Heap and JVM options are the ones Kafka's own start scripts use
# (kafka-server-start.sh, kafka-run-class.sh); everything else is Kafka's default.
KAFKA_SH=$ROOT/tests/reference/kafka.sh
KAFKA_HEAP="-Xms1G -Xmx1G"
KAFKA_JVM="-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true"
KAFKA_FSYNC_CHECK_N=20000
KAFKA_MD=$WORK/kafka.md
KAFKA_NOTE=
KAFKA_JAVA=
KAFKA_MIN=

# kafka_start MODE: a fresh Kafka on a fresh data dir; sets BROKER_PID (the JVM) and PORT
# so that sb() measures it as it measures Samsa. MODE fsync adds
# log.flush.interval.messages=1 (every topic's flush.messages=1: an fsync per append).
# A failed start is noted and tried once more (on another fresh dir).
kafka_start() {
    local mode=$1 out=$WORK/kafka-start.out try
    local -a sets=()
    [ "$mode" = default ] || sets=(--set log.flush.interval.messages=1)
    for try in 1 2; do
        KAFKA_DIR=$WORK/kafka-$mode-r$REP-$try
        echo "=== kafka start $mode $(date -u +%T)" >>"$WORK/broker.err"
        KAFKA_HEAP_OPTS=$KAFKA_HEAP KAFKA_JVM_OPTS=$KAFKA_JVM \
            "$KAFKA_SH" start "$KAFKA_DIR" "${sets[@]}" >"$out" 2>&1 && break
        finding "tests/reference/kafka.sh start failed (attempt $try of 2)" "$KAFKA_SH start $KAFKA_DIR ${sets[*]}" "$out" || true
        kafka_stop
        [ "$try" = 1 ] || return 1
    done
    BROKER_PID=$(awk 'NR == 1 {print $2}' "$KAFKA_DIR/pids")
    PORT=$(sed 's/.*://' "$KAFKA_DIR/bootstrap")
    if [ -z "$KAFKA_JAVA" ]; then
        local java
        java=$(readlink "/proc/$BROKER_PID/exe" || echo java)
        KAFKA_JAVA="Java $("$java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.runtime.version = //p') ($java)"
    fi
}

kafka_stop() {
    [ -n "$KAFKA_DIR" ] || return 0
    "$KAFKA_SH" stop "$KAFKA_DIR" --timeout 20 >>"$WORK/broker.err" 2>&1 ||
        anomaly "kafka.sh stop $KAFKA_DIR failed"
    BROKER_PID=
    rm -rf "$KAFKA_DIR"
    KAFKA_DIR=
}

# kafka_fsync_check MODE: a short acks=all run (KAFKA_FSYNC_CHECK_N x 1 KiB) with strace
# on every thread of the JVM. Records the writes to the topic's segment file, its fsyncs,
# how many writes an fsync of the segment by the same thread followed (Kafka appends,
# flushes and then answers in the request handler thread), and the fsyncs of its indexes.
kafka_fsync_check() {
    local mode=$1 topic=kafka-fsync-check trace=$WORK/kafka-strace.out
    if ! command -v strace >/dev/null; then
        anomaly "strace is not installed: Kafka's fsyncs ($mode) not checked"
        return 0
    fi
    strace -f -qq -y -p "$BROKER_PID" -o "$trace" \
        -e trace=write,pwrite64,writev,pwritev,fsync,fdatasync,sync_file_range 2>"$WORK/strace.err" &
    STRACE_PID=$!
    # Attached when no thread of the JVM is untraced (new threads are followed by -f).
    for _ in $(seq 100); do
        grep -qs '^TracerPid:[[:space:]]*0$' /proc/"$BROKER_PID"/task/*/status || break
        sleep 0.1
    done
    sb "kafka.$mode.fsynccheck" -t "$topic" -n "$KAFKA_FSYNC_CHECK_N" -s 1024 -a all --produce-only
    stop_pid "$STRACE_PID"
    STRACE_PID=
    rec "kafka.$mode.fsync" "$(awk -v seg="/$topic-0/" '
        index($0, seg) == 0 { next }
        /^[0-9]+ +(write|pwrite64|writev|pwritev)\([0-9]+<[^>]*\.log>/ { writes++; pending[$1]++ }
        /^[0-9]+ +(fsync|fdatasync)\([0-9]+<[^>]*\.log>/ { fsyncs++; synced += pending[$1]; pending[$1] = 0 }
        /^[0-9]+ +(fsync|fdatasync)\([0-9]+<[^>]*(\.index|\.timeindex)>/ { ifsyncs++ }
        END { printf "seg_writes=%d seg_fsyncs=%d synced_writes=%d index_fsyncs=%d\n", writes, fsyncs, synced, ifsyncs }' "$trace")"
    echo "  kafka $mode fsync check: $(tail -n 1 "$RESULTS" | cut -d' ' -f3-)"
    if [ "$mode" = fsync ] && { [ "$(val kafka.fsync.fsync seg_writes)" = 0 ] ||
        [ "$(val kafka.fsync.fsync synced_writes)" != "$(val kafka.fsync.fsync seg_writes)" ]; }; then
        anomaly "Kafka with flush.messages=1 did not fsync after every segment write (strace: $(tail -n 1 "$RESULTS" | cut -d' ' -f3-))"
    fi
    rm -f "$trace"
}

kafka_section() {
    local t0=$SECONDS rep mode modes
    local n1k=$((SCALE_MB * 1000000 / 1024))
    echo "bench: Apache Kafka 4.4 on the standard workloads, defaults and flush.messages=1"
    if ! "$KAFKA_SH" fetch >"$WORK/kafka-fetch.out" 2>&1; then
        KAFKA_NOTE="not measured: tests/reference/kafka.sh fetch failed ($(grep -v '^ *$' "$WORK/kafka-fetch.out" | tail -n 1))"
        anomaly "Kafka $KAFKA_NOTE"
        return 0
    fi
    for rep in $(seq "$REPS"); do
        REP=$rep
        # Alternate which of the two goes first.
        if [ $((rep % 2)) -eq 1 ]; then modes="default fsync"; else modes="fsync default"; fi
        for mode in $modes; do
            echo "bench: kafka ($mode), repetition $rep of $REPS"
            kafka_start "$mode" || continue
            [ "$rep" != 1 ] || kafka_fsync_check "$mode"
            # The JVM compiles its hot paths during its first runs: one run (not counted)
            # before the measured ones.
            sb "kafka.$mode.warmup" -n "$N_WARM" -s 1024 -a all
            sb "kafka.$mode.1k.all.p1" -t std-1k -n "$N_1K" -s 1024 -a all
            sb "kafka.$mode.1k.all.p8" -n "$N_1K" -s 1024 -a all -p 8
            sb "kafka.$mode.100.all" -n "$N_100" -s 100 -a all
            sb "kafka.$mode.1k.a1" -n "$N_1K" -s 1024 -a 1
            sb "kafka.$mode.rate.a1" -n "$N_RATE" -s 100 -a 1 -l 0 --rate "$RATE" --concurrent
            sb "kafka.$mode.rate.aall" -n "$N_RATE" -s 100 -a all -l 0 --rate "$RATE" --concurrent
            # 16 producers: one run, as the scaling section measures Samsa.
            [ "$rep" != 1 ] || sb "kafka.$mode.prod.16" -n "$n1k" -s 1024 -a all -p 8 -P 16
            # std-1k read back from the page cache (kafka.sh starts a node only on a new
            # data dir, so on the same broker, over a new connection).
            sb "kafka.$mode.consume" --verify -t std-1k -n "$N_1K" -s 1024
            kafka_stop
        done
    done
    KAFKA_MIN=$(( (SECONDS - t0 + 30) / 60 ))
}

# ---------- raft: commits/s on a simulated 3-node cluster (pure CPU, then fdatasync) ----------

RAFT_MD=$WORK/raft.md
raft_section() {
    local bin=$BUILD/tests/unit/raft/bench_raft args line
    {
        echo "| raft (bench_raft, 3 nodes in one process, 100-byte entries) | result |"
        echo "| --- | --- |"
        if [ -x "$bin" ]; then
            for args in "--batch 64" "--batch 1"; do
                line=$("$bin" --seconds 3 $args 2>&1 | tail -n 1)
                echo "| pure CPU, $args | ${line#*: } |"
                mkdir -p "$WORK/raft"
                line=$("$bin" --durable "$(mktemp -d "$WORK/raft/XXXX")" --seconds 3 $args 2>&1 | tail -n 1)
                echo "| durable (fdatasync, the 3 nodes' syncs in series), $args | ${line#*: } |"
            done
        else
            echo "| bench_raft | not built |"
        fi
    } >"$RAFT_MD"
}

# ---------- a three-node cluster (bench/cluster.py) ----------

CLUSTER_MD=$WORK/cluster.md
cluster_section() {
    echo "bench: a three-node cluster (controller failover, metadata propagation, 3 nodes vs 1, replication factor 3)"
    mkdir -p "$WORK/cluster"
    # A failure it could describe (a Samsa misbehaviour in the replication rows) is in
    # its table, which is kept; otherwise the table says it failed.
    /usr/bin/python3 "$ROOT/bench/cluster.py" "$BUILD" "$WORK/cluster" "$CLUSTER_MD" ||
        { anomaly "bench/cluster.py failed (see its table and the log)"
          [ -s "$CLUSTER_MD" ] || echo "(bench/cluster.py failed; see the log)" >"$CLUSTER_MD"; }
}

# ---------- resource bounds (bench/limits.py) ----------

LIMITS_MD=$WORK/limits.md
limits_section() {
    echo "bench: resource bounds (slow readers, partition creation, idle partitions)"
    if [ -n "$QUICK" ]; then
        SLOW_READERS=${SLOW_READERS:-200} IDLE_PARTITIONS=${IDLE_PARTITIONS:-10000} \
            /usr/bin/python3 "$ROOT/bench/limits.py" "$BUILD" "$WORK" "$LIMITS_MD"
    else
        /usr/bin/python3 "$ROOT/bench/limits.py" "$BUILD" "$WORK" "$LIMITS_MD"
    fi || { anomaly "bench/limits.py failed"; echo "(bench/limits.py failed; see the log)" >"$LIMITS_MD"; }
}

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
    start_broker "${GB_OVERRIDES[@]}"
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
        start_broker "${GB_OVERRIDES[@]}"
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

# ---------- delayed delivery (issue #16) ----------
# Writes $DELAYS_MD. Kafka has no delayed delivery: no column for it.

DELAYS_MD=$WORK/delays.md
delays_section() {
    echo "bench: delayed delivery, $REPS repetitions; then $N_PENDING records pending"
    local rep n_small=$((N_1K * 2))
    for rep in $(seq "$REPS"); do
        REP=$rep
        rm -rf "$DATA"
        start_broker
        sb delay.plain.1k -n "$N_1K" -s 1024 -a all
        sb delay.held.1k -n "$N_1K" -s 1024 -a all --produce-only --deliver-after 3600000
        sb delay.now.1k -n "$N_1K" -s 1024 -a all --deliver-after 0
        sb delay.plain.100 -n "$n_small" -s 100 -a all
        sb delay.held.100 -n "$n_small" -s 100 -a all --produce-only --deliver-after 3600000
        sb delay.late.10k -n 200000 -s 100 -a all -l 0 --rate 10000 --concurrent --deliver-after 1000
        sb delay.late.100k -n 1000000 -s 100 -a all -l 5 --rate 100000 --concurrent --deliver-after 1000
        stop_broker
    done
    REP=1
    rm -rf "$DATA"
    start_broker
    rec delay.mem.empty rss_kb="$(rss_kb "$BROKER_PID")"
    sb delay.pending -t delay-pending -n "$N_PENDING" -s 100 -a all --produce-only --deliver-after 60000 \
        --deliver-spread 2592000000
    sleep 2
    rec delay.mem.pending rss_kb="$(rss_kb "$BROKER_PID")"
    stop_broker
    start_broker
    rec delay.restart start_ms="$START_MS" rss_kb="$(rss_kb "$BROKER_PID")"
    stop_broker
    rm -rf "$DATA"
    local mem0 mem1 per
    mem0=$(val delay.mem.empty rss_kb)
    mem1=$(val delay.mem.pending rss_kb)
    per=$(calc 'sprintf("%.0f", (b - a) * 1024 / c)' "$mem0" "$mem1" "$N_PENDING")
    {
        echo "Delayed delivery (Samsa's own; medians of $REPS runs; lateness = the time a consumer has the record minus its due time, to within 1 ms):"
        echo
        echo "| delayed delivery | Samsa | goal |"
        echo "| --- | --- | --- |"
        echo "| produce 1 KiB acks=all, $(krec "$N_1K") records: plain / delayed an hour (samsa.deliver.after=3600000) | $(val delay.plain.1k produce_MB_s) / $(val delay.held.1k produce_MB_s) MB/s: delayed ÷ plain $(ratio "$(val delay.held.1k produce_MB_s)" "$(val delay.plain.1k produce_MB_s)") | ≥ 0.5: $(verdict "$(ratio "$(val delay.held.1k produce_MB_s)" "$(val delay.plain.1k produce_MB_s)")" ">=" 0.5) |"
        echo "| same, delayed 0 ms: each record stored, delivered at once, read back and checked (the broker writes it twice meanwhile) | $(val delay.now.1k produce_MB_s) MB/s produced, $(val delay.now.1k consume_MB_s) MB/s read back | — |"
        echo "| produce 100 B acks=all, $(krec "$n_small") records: plain / delayed an hour | $(krec "$(val delay.plain.100 produce_records_s)") / $(krec "$(val delay.held.100 produce_records_s)") records/s: delayed ÷ plain $(ratio "$(val delay.held.100 produce_records_s)" "$(val delay.plain.100 produce_records_s)") | — |"
        echo "| lateness at 10,000 due records/s (100 B, linger 0, 20 s) p50 / p99 / max | $(val delay.late.10k late_p50_ms) / $(val delay.late.10k late_p99_ms) / $(val delay.late.10k late_max_ms) ms | p99 ≤ 10 ms: $(verdict "$(val delay.late.10k late_p99_ms)" "<=" 10) |"
        echo "| lateness at 100,000 due records/s (100 B, linger 5 ms, 10 s) p50 / p99 / max | $(val delay.late.100k late_p50_ms) / $(val delay.late.100k late_p99_ms) / $(val delay.late.100k late_max_ms) ms (offered rate reached: $(krec "$(val delay.late.100k produce_records_s)")/s) | — |"
        echo "| broker VmRSS with $(krec "$N_PENDING") records pending (100 B, due over 30 days) | $(kbmb "$mem1") MB ($(kbmb "$mem0") MB empty): ~$per bytes per pending record | 10 M pending in ≤ 200 MB |"
        echo "| restart with them pending: exec → listening, after a clean shutdown | $(val delay.restart start_ms) ms | 10 M pending in ≤ 5 s |"
    } >"$DELAYS_MD"
}

# ---------- transactions (issue #17) ----------
# Writes $TXN_MD: Samsa's figures, and Kafka 4.4's on the same `samsa bench` runs.

TXN_MD=$WORK/txn.md
txn_runs() { # PREFIX: the runs on the broker (or Kafka) now listening
    local n_small=$((N_1K / 10))
    sb "$1.idem" -n "$N_1K" -s 1024 -a all -X enable.idempotence=true
    sb "$1.t1m" -t txn-read -n "$N_1K" -s 1024 -a all --txn-records 1024 --produce-only
    sb "$1.t100" -n "$n_small" -s 1024 -a all --txn-records 100
    sb "$1.read.rc" --verify -t txn-read -n "$N_1K" -s 1024 -X isolation.level=read_committed
    sb "$1.read.ru" --verify -t txn-read -n "$N_1K" -s 1024 -X isolation.level=read_uncommitted
    if [ -n "$JAVA_TXN_CP" ]; then
        jb "$1.jplain" 300 1024 plain
        jb "$1.j1m" 300 1024
        jb "$1.j100" 300 100
    fi
}
# The Java client's transactions (bench/java/TxnBench.java: transaction version 2 where
# the broker advertises it, as Kafka 4.4 and Samsa do), run as a single-file program on
# the jars tests/integration/java/deps.sh keeps in the Maven repository.
java_txn_cp() {
    local m2=${MAVEN_REPO:-$HOME/.m2/repository} c s
    c=$m2/org/apache/kafka/kafka-clients/4.4.0/kafka-clients-4.4.0.jar
    s=$(ls "$m2"/org/slf4j/slf4j-api/*/slf4j-api-*.jar 2>/dev/null | head -n 1)
    [ -f "$c" ] && [ -n "$s" ] && command -v java >/dev/null && echo "$c:$s"
}
JAVA_TXN_CP=$(java_txn_cp || true)
# jb TAG TXNS PER [plain]: TxnBench (1 KiB records) against the broker now listening.
jb() {
    local tag=$1 out=$WORK/jb.out rc=0
    timeout "$LOAD_TIMEOUT_S" java -cp "$JAVA_TXN_CP" "$ROOT/bench/java/TxnBench.java" \
        "127.0.0.1:$PORT" txn-java "$2" "$3" 1024 ${4:+"$4"} >"$out" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ] || ! grep -q '^txn_bench:' "$out"; then
        anomaly "$tag r$REP: TxnBench exited $rc: $(tail -n 3 "$out" | tr '\n' ' ')"
        return 0
    fi
    grep '^txn_bench:' "$out" | sed "s/^txn_bench: /tag=$tag rep=$REP /" >>"$RESULTS"
    echo "  $tag r$REP: $(grep '^txn_bench:' "$out" | sed 's/^txn_bench: //')"
}

txn_section() {
    echo "bench: transactions, $REPS repetitions, Samsa then Kafka 4.4"
    local rep kafka=yes
    if ! "$KAFKA_SH" fetch >"$WORK/kafka-fetch.out" 2>&1; then
        kafka=
        anomaly "Kafka not measured for transactions: tests/reference/kafka.sh fetch failed"
    fi
    [ -n "$JAVA_TXN_CP" ] ||
        anomaly "Java client transactions not measured: no kafka-clients 4.4.0 in the Maven repository (tests/integration/java/deps.sh) or no java"
    for rep in $(seq "$REPS"); do
        REP=$rep
        # The client's own ceiling: no broker process, no disk.
        sb txn.mock.idem --mock 1 -n "$N_1K" -s 1024 -a all -X enable.idempotence=true --produce-only
        sb txn.mock.t1m --mock 1 -n "$N_1K" -s 1024 -a all --txn-records 1024 --produce-only
        rm -rf "$DATA"
        start_broker
        txn_runs txn.samsa
        stop_broker
        rm -rf "$DATA"
        if [ -n "$kafka" ] && kafka_start default; then
            sb txn.kafka.warmup -n "$N_WARM" -s 1024 -a all
            txn_runs txn.kafka
            kafka_stop
        fi
    done
    local s_idem s_1m s_100 k_idem k_1m k_100 m_idem m_1m sjp sj1 sj100 kjp kj1 kj100
    s_idem=$(val txn.samsa.idem produce_MB_s) s_1m=$(val txn.samsa.t1m produce_MB_s)
    s_100=$(val txn.samsa.t100 produce_MB_s)
    k_idem=$(val txn.kafka.idem produce_MB_s) k_1m=$(val txn.kafka.t1m produce_MB_s)
    k_100=$(val txn.kafka.t100 produce_MB_s)
    m_idem=$(val txn.mock.idem produce_MB_s) m_1m=$(val txn.mock.t1m produce_MB_s)
    sjp=$(val txn.samsa.jplain produce_MB_s) sj1=$(val txn.samsa.j1m produce_MB_s)
    sj100=$(val txn.samsa.j100 txn_s)
    kjp=$(val txn.kafka.jplain produce_MB_s) kj1=$(val txn.kafka.j1m produce_MB_s)
    kj100=$(val txn.kafka.j100 txn_s)
    {
        echo "Transactions (medians of $REPS runs; Kafka 4.4 with its defaults on the same \`samsa bench\` runs, fresh broker each; commit latency is the client's commit call, which first flushes what the transaction still has in flight; each transactional figure is divided by the same client's non-transactional one):"
        echo
        echo "| transactions, 1 KiB acks=all | Samsa | Kafka 4.4 | Samsa ÷ Kafka |"
        echo "| --- | --- | --- | --- |"
        echo "| librdkafka idempotent producer, $(krec "$N_1K") records | $s_idem MB/s | $k_idem MB/s | $(ratio "$s_idem" "$k_idem") |"
        echo "| librdkafka transactional, 1 MiB (1,024 records) per transaction | $s_1m MB/s: ÷ idempotent $(ratio "$s_1m" "$s_idem") (goal ≥ 0.8: $(verdict "$(ratio "$s_1m" "$s_idem")" ">=" 0.8)) | $k_1m MB/s: ÷ idempotent $(ratio "$k_1m" "$k_idem") | $(ratio "$s_1m" "$k_1m") |"
        echo "| the client's own ceiling: the same two runs against librdkafka's in-process mock cluster (no broker process, no disk) | idempotent $m_idem MB/s, 1 MiB transactions $m_1m MB/s: ÷ $(ratio "$m_1m" "$m_idem"); Samsa's 1 MiB transactions ÷ this ceiling $(ratio "$s_1m" "$m_1m") | — | — |"
        echo "| commit latency, 1 MiB transactions, p50 / p99 | $(val txn.samsa.t1m commit_p50_ms) / $(val txn.samsa.t1m commit_p99_ms) ms | $(val txn.kafka.t1m commit_p50_ms) / $(val txn.kafka.t1m commit_p99_ms) ms | — |"
        echo "| librdkafka transactional, 100 records per transaction, $(krec $((N_1K / 10))) records | $s_100 MB/s: ÷ idempotent $(ratio "$s_100" "$s_idem") | $k_100 MB/s: ÷ idempotent $(ratio "$k_100" "$k_idem") | $(ratio "$s_100" "$k_100") |"
        echo "| commit latency, 100-record transactions, p50 / p99 | $(val txn.samsa.t100 commit_p50_ms) / $(val txn.samsa.t100 commit_p99_ms) ms | $(val txn.kafka.t100 commit_p50_ms) / $(val txn.kafka.t100 commit_p99_ms) ms | — |"
        echo "| the 1 MiB-transaction topic read back: read_committed / read_uncommitted | $(val txn.samsa.read.rc consume_MB_s) / $(val txn.samsa.read.ru consume_MB_s) MB/s | $(val txn.kafka.read.rc consume_MB_s) / $(val txn.kafka.read.ru consume_MB_s) MB/s | — |"
        echo "| Java client 4.4, plain (idempotent) producer, 300 MiB | $sjp MB/s | $kjp MB/s | $(ratio "$sjp" "$kjp") |"
        echo "| Java client 4.4 (transaction version 2), 1 MiB per transaction, 300 of them | $sj1 MB/s: ÷ plain $(ratio "$sj1" "$sjp") (goal ≥ 0.8: $(verdict "$(ratio "$sj1" "$sjp")" ">=" 0.8)) | $kj1 MB/s: ÷ plain $(ratio "$kj1" "$kjp") | $(ratio "$sj1" "$kj1") |"
        echo "| its commit latency, p50 / p99 | $(val txn.samsa.j1m commit_p50_ms) / $(val txn.samsa.j1m commit_p99_ms) ms | $(val txn.kafka.j1m commit_p50_ms) / $(val txn.kafka.j1m commit_p99_ms) ms | — |"
        echo "| Java client 4.4, 100 records per transaction | $sj100 transactions/s | $kj100 transactions/s | $(ratio "$sj100" "$kj100") |"
        echo "| its commit latency, p50 / p99 | $(val txn.samsa.j100 commit_p50_ms) / $(val txn.samsa.j100 commit_p99_ms) ms | $(val txn.kafka.j100 commit_p50_ms) / $(val txn.kafka.j100 commit_p99_ms) ms | — |"
    } >"$TXN_MD"
}

# ---------- the run ----------

T_START=$SECONDS
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: data in $WORK; $REPS repetitions; $N_1K x 1 KiB and $N_100 x 100 B per standard case"
for section in memory standard idle scaling connections peers kafka raft cluster groups delays txn limits; do
    if want "$section"; then "${section}_section"; fi
done
RUN_MIN=$(( (SECONDS - T_START + 30) / 60 ))
LOAD_AT_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------- the tables ----------

mbrec() { echo "$1 MB/s ($(krec "$2") records/s)"; } # MB/s, records/s -> cell
lat() { echo "p50 $(val "$1" "${2}_p50_ms") / p99 $(val "$1" "${2}_p99_ms") / p99.9 $(val "$1" "${2}_p999_ms") ms"; }
fiolat() { echo "$(val "$1" p50_ms) / $(val "$1" p99_ms) / $(val "$1" p999_ms) ms"; }

MAIN_MD=$WORK/main.md
main_table() {
    local fio p1 p1r p8 p8r r100 m100 t100 a1 a1r mock mockr cc ccr cs csr cpu cpu8
    # The references are ceilings: the best of the run's repetitions, all of them shown.
    fio=$(best fio.seq MB_s)
    p1=$(val std.1k.all.p1 produce_MB_s) p1r=$(val std.1k.all.p1 produce_records_s)
    p8=$(val std.1k.all.p8 produce_MB_s) p8r=$(val std.1k.all.p8 produce_records_s)
    r100=$(val std.100.all produce_records_s) m100=$(val std.100.all produce_MB_s)
    # 1,000,000 records/s, or the disk ratio if lower: 0.7 x fio's MB/s in 100-byte
    # records is 0.7 x MB/s x 10^4 records/s.
    t100=$(calc 'sprintf("%.0f", 0.7 * a * 1e4 < 1e6 ? 0.7 * a * 1e4 : 1e6)' "$fio")
    a1=$(val std.1k.a1 produce_MB_s) a1r=$(val std.1k.a1 produce_records_s)
    mock=$(best mock.1k.a1 produce_MB_s) mockr=$(best mock.1k.a1 produce_records_s)
    cc=$(val consume.sendfile-false consume_MB_s) ccr=$(val consume.sendfile-false consume_records_s)
    cs=$(val consume.sendfile-true consume_MB_s) csr=$(val consume.sendfile-true consume_records_s)
    cpu=$(val std.1k.all.p1 broker_cpu_s_per_GB) cpu8=$(val std.1k.all.p8 broker_cpu_s_per_GB)
    local q
    {
        echo "| case | result (median of $REPS) | target | reference, same run | ratio | verdict |"
        echo "| --- | --- | --- | --- | --- | --- |"
        q=$(ratio "$p1" "$fio")
        echo "| $N_1K × 1 KiB, acks=all (fdatasync before ack), 1 partition: produce | $(mbrec "$p1" "$p1r") | ≥ 0.7 × fio | fio, 1 MiB writes + fdatasync, best of $(runs fio.seq): $fio MB/s (runs: $(each fio.seq MB_s)) | $q | $(verdict "$q" '>=' 0.7) |"
        q=$(ratio "$p8" "$fio")
        local mock8 q8
        mock8=$(best mock.1k.all.p8 produce_MB_s)
        q8=$(ratio "$p8" "$mock8")
        echo "| same, 8 partitions | $(mbrec "$p8" "$p8r") | ≥ 0.7 × fio | fio, best: $fio MB/s; the client's own ceiling on 8 partitions (\`samsa bench --mock 1 -p 8\`, acks=all, best of $(runs mock.1k.all.p8)): $mock8 MB/s, Samsa ÷ it $q8 | $q | $(verdict "$q" '>=' 0.7) |"
        local pi pir
        pi=$(val std.1k.all.idem produce_MB_s) pir=$(val std.1k.all.idem produce_records_s)
        echo "| same, 1 partition, from an idempotent producer (enable.idempotence=true) | $(mbrec "$pi" "$pir") (broker CPU $(val std.1k.all.idem broker_cpu_s_per_GB) s/GB) | — (what idempotence costs; librdkafka keeps one request per partition in flight, see the reading notes) | the 1-partition row: $p1 MB/s | $(ratio "$pi" "$p1") | — |"
        q=$(ratio "$r100" "$t100")
        echo "| $N_100 × 100 B, acks=all, 1 partition: produce | $(krec "$r100") records/s ($m100 MB/s) | ≥ 1,000,000 records/s, or 0.7 × fio if lower | the lower of 1,000,000 and 0.7 × fio ÷ 100 B: $(krec "$t100") records/s | $q | $(verdict "$q" '>=' 1) |"
        q=$(ratio "$a1" "$mock")
        echo "| $N_1K × 1 KiB, acks=1, 1 partition: produce | $(mbrec "$a1" "$a1r") | ≥ 0.7 × mock cluster | \`samsa bench --mock 1\`, same workload, best of $(runs mock.1k.a1): $mock MB/s ($(krec "$mockr") records/s; runs: $(each mock.1k.a1 produce_MB_s) MB/s) | $q | $(verdict "$q" '>=' 0.7) |"
        q=$(ratio "$cc" 1000)
        echo "| consume 1 KiB from the page cache after a restart, copy path (samsa.fetch.sendfile=false) | $(mbrec "$cc" "$ccr") | ≥ 1 GB/s | 1,000 MB/s | $q | $(verdict "$q" '>=' 1) |"
        q=$(ratio "$cs" 1000)
        echo "| same, sendfile path (samsa.fetch.sendfile=true) | $(mbrec "$cs" "$csr") | ≥ 1 GB/s | 1,000 MB/s | $q | $(verdict "$q" '>=' 1) |"
        local a
        for a in 1 all; do
            q=$(ratio "$(val "rate.a$a" produce_p99_ms)" 5)
            local ref="—"
            [ "$a" = 1 ] || ref="durable-append floor beside the acks=1 fixed-rate load (bench/durable_floor.c: the same records appended and group-committed with fdatasync, no network), p50 / p99 / p99.9: $(fiolat floor.load), Samsa's produce p99 ÷ the floor's p99: $(ratio "$(val rate.aall produce_p99_ms)" "$(val floor.load p99_ms)"); fio 4 KiB write + fdatasync: idle $(fiolat fio.lat.idle), beside the load $(fiolat fio.lat.load)"
            echo "| fixed $RATE records/s, 100 B, linger 0, concurrent consume, acks=$a: produce latency | $(lat "rate.a$a" produce) (at $(krec "$(val "rate.a$a" produce_records_s)") records/s) | p99 ≤ 5 ms | $ref | $q | $(verdict "$q" '<=' 1) |"
            q=$(ratio "$(val "rate.a$a" e2e_p99_ms)" 10)
            ref="—"
            [ "$a" = 1 ] || ref="the durable-append floor above: p99 $(val floor.load p99_ms) ms; Samsa's end-to-end p99 ÷ it: $(ratio "$(val rate.aall e2e_p99_ms)" "$(val floor.load p99_ms)")"
            echo "| same, acks=$a: end-to-end latency (produce call → consumer) | $(lat "rate.a$a" e2e) | p99 ≤ 10 ms | $ref | $q | $(verdict "$q" '<=' 1) |"
        done
        q=$(ratio "$cpu" 1.5)
        echo "| broker CPU per GB produced, 1 KiB acks=all, 1 partition | $cpu s/GB (8 partitions: $cpu8) | ≤ 1.5 CPU-s/GB | — | $q | $(verdict "$q" '<=' 1) |"
        local rss start
        rss=$(kbmb "$(val idle.restart rss_kb)") start=$(val idle.restart start_ms)
        q=$(ratio "$rss" 50)
        echo "| idle broker holding 1,000 partitions (10 topics × 100), after a restart: VmRSS | $rss MB (right after creating them: $(kbmb "$(val idle.created rss_kb)") MB) | ≤ 50 MB | — | $q | $(verdict "$q" '<=' 1) |"
        q=$(ratio "$start" 1000)
        echo "| start-up of that broker after a clean shutdown: exec → \"listening on port\" on stdout | $start ms (polled every 10 ms; $(runs idle.restart) restarts) | ≤ 1 s | — | $q | $(verdict "$q" '<=' 1) |"
        local cp cprod held
        cp=$(val conn.before partitions) cprod=$(val conn.produce produce_MB_s) held=$(val conn.held still_open)
        q=$(ratio "$cprod" "$p1")
        echo "| $CONNS open client connections (each served an ApiVersions request), $cp partitions (10 topics × $(calc 'a / 10' "$cp")): keeps serving | $held of $CONNS stayed open (opened and served in $(val conn.with open_s) s) and the broker served a $N_1K × 1 KiB acks=all run beside them at $(mbrec "$cprod" "$(val conn.produce produce_records_s)"); the broker held $(val conn.before fds_per_1000) descriptors per 1,000 partitions and $(val conn.with fds) in all with the connections (limit $(val conn.before fd_limit)); VmRSS $(kbmb "$(val conn.before rss_kb)") MB with the partitions, $(kbmb "$(val conn.with rss_kb)") MB with the connections, $(kbmb "$(val conn.after rss_kb)") MB after the run${CONN_NOTE:+; $CONN_NOTE} | keeps serving | the 1-partition acks=all case above: $p1 MB/s | $q | $(verdict "$held" '>=' "$CONNS") |"
    } >"$MAIN_MD"
}

PEERS_MD=$WORK/peers.md
peer_label() {
    case $1 in
    redis) echo "Redis Streams, AOF fsync every second (acknowledges before fsync)" ;;
    redis-always) echo "Redis Streams, AOF fsync always (fsync before reply)" ;;
    nats) echo "NATS JetStream, file store (acknowledges before fsync)" ;;
    *) echo "$1" ;;
    esac
}
peers_table() {
    local wl n s acks peer t best_p best_c bp bc sp sc
    {
        echo "| workload (produce all, then consume all) | system | produce records/s | produce MB/s | consume records/s | consume MB/s | server CPU s | runs | errors |"
        echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        for wl in $PEER_WORKLOADS; do
            n=${wl%%:*} s=${wl##*:}
            for acks in all 1; do
                t=pw.$n.$s.$acks
                echo "| $n × $s B | **Samsa, acks=$acks**$([ "$acks" = all ] && echo " (fdatasync before ack)" || echo " (acknowledges before fsync)") | $(val "$t" produce_records_s) | $(val "$t" produce_MB_s) | $(val "$t" consume_records_s) | $(val "$t" consume_MB_s) | $(val "$t" server_cpu_s) | $(runs "$t") | $(val "$t" errors) |"
            done
            best_p=0 best_c=0 bp="" bc=""
            for peer in $PEERS; do
                t=peer.$peer.$n.$s
                if [ "$(runs "$t")" = 0 ]; then
                    echo "| $n × $s B | $(peer_label "$peer") | $(grep "^$peer " "$WORK/peers/notes" 2>/dev/null | head -n 1 || echo "not measured") | | | | | 0 | |"
                    continue
                fi
                echo "| $n × $s B | $(peer_label "$peer") | $(val "$t" produce_msgs_s) | $(val "$t" produce_MBps) | $(val "$t" consume_msgs_s) | $(val "$t" consume_MBps) | $(calc 'sprintf("%.2f", a)' "$(val "$t" server_cpu_s)") | $(runs "$t") | $(val "$t" errors) |"
                if awk -v a="$(val "$t" produce_msgs_s)" -v b="$best_p" 'BEGIN {exit !(a > b)}'; then best_p=$(val "$t" produce_msgs_s) bp=$peer; fi
                if awk -v a="$(val "$t" consume_msgs_s)" -v b="$best_c" 'BEGIN {exit !(a > b)}'; then best_c=$(val "$t" consume_msgs_s) bc=$peer; fi
            done
            sp=$(val "pw.$n.$s.all" produce_records_s) sc=$(val "pw.$n.$s.all" consume_records_s)
            if [ -n "$bp" ]; then
                echo "| $n × $s B | *Samsa acks=all ÷ best peer* | $(ratio "$sp" "$best_p") ($bp) | | $(ratio "$sc" "$best_c") ($bc) | | | | |"
            fi
        done
    } >"$PEERS_MD"
}

SCALING_MD=$WORK/scaling.md
scaling_tables() {
    local p np s t
    {
        echo "Throughput against partition count (1 KiB records, acks=all, one producer, $((SCALE_MB * 1000000 / 1024)) records, one run each):"
        echo
        echo "| partitions | produce (records to partitions one batch size at a time, as keyless records go) | consume | produce, records spread one by one (\`--spread-records\`, as keyed records go) | broker VmRSS idle with the topic | VmRSS after the run |"
        echo "| --- | --- | --- | --- | --- | --- |"
        for p in 1 10 100 1000; do
            t=scale.part.$p
            local spread="same as left"
            [ "$p" = 1 ] || spread=$(mbrec "$(val "scale.spread.$p" produce_MB_s)" "$(val "scale.spread.$p" produce_records_s)")
            echo "| $p | $(mbrec "$(val "$t" produce_MB_s)" "$(val "$t" produce_records_s)") | $(val "$t" consume_MB_s) MB/s | $spread | $(kbmb "$(val "mem.part.$p" rss_kb)") MB | $(kbmb "$(val "mem.part.after.$p" rss_kb)") MB |"
        done
        echo
        echo "Throughput against producer count (\`-P\`; 1 KiB records, acks=all, 8 partitions, $((SCALE_MB * 1000000 / 1024)) records in all, one run each):"
        echo
        echo "| producers | produce | produce p50 / p99 ms | consume | broker CPU s/GB |"
        echo "| --- | --- | --- | --- | --- |"
        for np in 1 4 16; do
            t=scale.prod.$np
            echo "| $np | $(mbrec "$(val "$t" produce_MB_s)" "$(val "$t" produce_records_s)") | $(val "$t" produce_p50_ms) / $(val "$t" produce_p99_ms) | $(val "$t" consume_MB_s) MB/s | $(val "$t" broker_cpu_s_per_GB) |"
        done
        echo
        echo "Throughput against record size (acks=all, 1 partition, $SCALE_MB MB per run, one run each; broker with message.max.bytes=2097152 so that a 1 MiB record fits):"
        echo
        echo "| record size | records | produce | consume | broker CPU s/GB |"
        echo "| --- | --- | --- | --- | --- |"
        for s in 100 1024 10240 102400 1048576; do
            t=scale.size.$s
            echo "| $s B | $(val "$t" records) | $(mbrec "$(val "$t" produce_MB_s)" "$(val "$t" produce_records_s)") | $(val "$t" consume_MB_s) MB/s | $(val "$t" broker_cpu_s_per_GB) |"
        done
        echo
        echo "Memory against partitions (broker VmRSS, idle, a fresh broker per row; 1,000 partitions = one topic of 1,000; the last row is the connections case before its connections):"
        echo
        echo "| partitions | VmRSS | over the empty broker | per partition |"
        echo "| --- | --- | --- | --- |"
        local base
        base=$(val mem.part.0 rss_kb)
        for p in 0 1 10 100 1000 "$(val conn.before partitions)"; do
            [ "$p" != - ] || continue
            t=$(val "mem.part.$p" rss_kb)
            # Per partition only where the partitions, not the allocator's noise, dominate.
            echo "| $p | $(kbmb "$t") MB | $(calc 'sprintf("%.1f MB", (a - b) * 1024 / 1e6)' "$t" "$base" | sed 's/^-0\.0 /0.0 /') | $(calc 'c >= 100 ? sprintf("%.1f kB", (a - b) * 1.024 / c) : "—"' "$t" "$base" "$p") |"
        done
    } >"$SCALING_MD"
}

# The Kafka rows beside Samsa's of the same run. Ratios are Samsa ÷ Kafka of the figure
# shown first in each cell (throughput: above 1 Samsa is faster; latency, CPU: below 1
# Samsa is lower).
kafka_table() {
    local m a t s k
    # kratio A B: A / B, two decimals, or two significant digits below 0.1 (latencies).
    kratio() { calc 'a / b >= 0.1 ? sprintf("%.2f", a / b) : sprintf("%.2g", a / b)' "$1" "$2"; }
    fsync_seen() { # MODE -> what strace saw in the short acks=all run
        local w f s i
        w=$(val "kafka.$1.fsync" seg_writes) f=$(val "kafka.$1.fsync" seg_fsyncs)
        s=$(val "kafka.$1.fsync" synced_writes) i=$(val "kafka.$1.fsync" index_fsyncs)
        if [ "$w" = - ]; then echo "not checked"; return; fi
        echo "$w writes to the segment file, $f fsyncs of it ($s of the writes followed by an fsync of the segment in the same thread before its next write), $i fsyncs of its two index files"
    }
    kfail() { # TAG -> a note on the runs of TAG that failed (they have no figures)
        local f
        f=$(awk -v t="tag=$1" '$1 == t && / failed=/' "$RESULTS" | wc -l)
        [ "$f" = 0 ] || echo "; $f of $(runs "$1") runs failed: exit $(each "$1" failed) (124: not done within ${LOAD_TIMEOUT_S} s)"
    }
    {
        echo "Apache Kafka 4.4.0 on the same \`samsa bench\` workloads, same run (tests/reference/kafka.sh: one KRaft node, broker and controller in one JVM, on loopback; ${KAFKA_JAVA:-Java ?}; $KAFKA_HEAP and kafka-run-class.sh's G1 options; otherwise Kafka's defaults, replication factor 1). Two configurations: **defaults**, where acks=all is answered once the batch is in the page cache (Kafka relies on replication, not fsync), and **flush.messages=1** (\`log.flush.interval.messages=1\`), an fsync per append before the answer, which is Samsa's acks=all guarantee (fdatasync before ack). Each repetition starts a fresh Kafka on a fresh data dir per configuration (order alternating); every case on a fresh topic; after each start one unmeasured warm-up run ($N_WARM × 1 KiB acks=all) lets the JVM compile its hot paths. Medians of $REPS as for Samsa; the 16-producer case is one run, as in Samsa's scaling section. Broker CPU is the JVM's whole CPU time while producing. The read-back is on the same broker over a new connection (kafka.sh does not restart on a used data dir; Kafka sends from the page cache with sendfile). Kafka reads and answers one request per connection at a time, while \`samsa bench\` (librdkafka) keeps up to 1,000,000 requests in flight (its default): in the fixed-rate cases (linger 0) Kafka's latencies are mostly tiny requests queued behind each other. strace on every JVM thread during a $KAFKA_FSYNC_CHECK_N × 1 KiB acks=all run: defaults: $(fsync_seen default); flush.messages=1: $(fsync_seen fsync).${KAFKA_MIN:+ The Kafka section took $KAFKA_MIN min.}${KAFKA_NOTE:+ Kafka $KAFKA_NOTE.}"
        echo
        echo "| workload | Samsa | Kafka 4.4, defaults (acks before any fsync) | Samsa ÷ Kafka defaults | Kafka 4.4, flush.messages=1 (fsync per append before ack) | Samsa ÷ Kafka flush.messages=1 | ratio reads |"
        echo "| --- | --- | --- | --- | --- | --- | --- |"
        # thr LABEL SAMSA_TAG KAFKA_TAG: a throughput row (MB/s and records/s, ratio on MB/s).
        thr() {
            local row="| $1 | $(mbrec "$(val "$2" produce_MB_s)" "$(val "$2" produce_records_s)") |"
            for m in default fsync; do
                t=kafka.$m.$3
                row+=" $(mbrec "$(val "$t" produce_MB_s)" "$(val "$t" produce_records_s)")$(kfail "$t") | $(kratio "$(val "$2" produce_MB_s)" "$(val "$t" produce_MB_s)") |"
            done
            echo "$row higher is better: > 1 = Samsa faster |"
        }
        thr "$N_1K × 1 KiB, acks=all, 1 partition: produce (Samsa: fdatasync before ack)" std.1k.all.p1 1k.all.p1
        thr "same, 8 partitions" std.1k.all.p8 1k.all.p8
        local row
        row="| $N_100 × 100 B, acks=all, 1 partition: produce | $(krec "$(val std.100.all produce_records_s)") records/s ($(val std.100.all produce_MB_s) MB/s) |"
        for m in default fsync; do
            t=kafka.$m.100.all
            row+=" $(krec "$(val "$t" produce_records_s)") records/s ($(val "$t" produce_MB_s) MB/s)$(kfail "$t") | $(kratio "$(val std.100.all produce_records_s)" "$(val "$t" produce_records_s)") |"
        done
        echo "$row higher is better: > 1 = Samsa faster |"
        thr "$N_1K × 1 KiB, acks=1, 1 partition: produce (Samsa acknowledges before fsync; Kafka with flush.messages=1 still fsyncs before answering)" std.1k.a1 1k.a1
        thr "$((SCALE_MB * 1000000 / 1024)) × 1 KiB, acks=all, 8 partitions, 16 producers (\`-P 16\`), one run: produce (Samsa: the scaling section's run)" scale.prod.16 prod.16
        local cc cs
        cc=$(val consume.sendfile-false consume_MB_s) cs=$(val consume.sendfile-true consume_MB_s)
        row="| consume the $N_1K × 1 KiB topic from the page cache (Samsa: after a restart; copy path, the default / sendfile path) | $(mbrec "$cc" "$(val consume.sendfile-false consume_records_s)") / $cs MB/s |"
        for m in default fsync; do
            t=kafka.$m.consume
            row+=" $(mbrec "$(val "$t" consume_MB_s)" "$(val "$t" consume_records_s)")$(kfail "$t") | $(kratio "$cc" "$(val "$t" consume_MB_s)") / $(kratio "$cs" "$(val "$t" consume_MB_s)") |"
        done
        echo "$row higher is better: > 1 = Samsa faster |"
        for a in 1 all; do
            for s in produce e2e; do
                if [ "$s" = produce ]; then
                    row="| fixed $RATE records/s, 100 B, linger 0, concurrent consume, acks=$a: produce latency"
                else
                    row="| same, acks=$a: end-to-end latency (produce call → consumer)"
                fi
                row+=" | $(lat "rate.a$a" "$s") (at $(krec "$(val "rate.a$a" produce_records_s)") records/s) |"
                for m in default fsync; do
                    t=kafka.$m.rate.a$a
                    row+=" $(lat "$t" "$s") (at $(krec "$(val "$t" produce_records_s)") records/s$(kfail "$t")) | p99: $(kratio "$(val "rate.a$a" "${s}_p99_ms")" "$(val "$t" "${s}_p99_ms")") |"
                done
                echo "$row lower is better: < 1 = Samsa lower |"
            done
        done
        row="| broker CPU per GB produced, 1 KiB acks=all, 1 partition (8 partitions in brackets) | $(val std.1k.all.p1 broker_cpu_s_per_GB) s/GB ($(val std.1k.all.p8 broker_cpu_s_per_GB)) |"
        for m in default fsync; do
            k=kafka.$m.1k.all
            row+=" $(val "$k.p1" broker_cpu_s_per_GB) s/GB ($(val "$k.p8" broker_cpu_s_per_GB)) | $(kratio "$(val std.1k.all.p1 broker_cpu_s_per_GB)" "$(val "$k.p1" broker_cpu_s_per_GB)") ($(kratio "$(val std.1k.all.p8 broker_cpu_s_per_GB)" "$(val "$k.p8" broker_cpu_s_per_GB)")) |"
        done
        echo "$row lower is better: < 1 = Samsa uses less CPU |"
    } >"$KAFKA_MD"
}

main_table
peers_table
scaling_tables
kafka_table
echo
cat "$MAIN_MD"
if want kafka; then echo; cat "$KAFKA_MD"; fi
echo
cat "$PEERS_MD"
echo
cat "$SCALING_MD"
if want raft; then echo; cat "$RAFT_MD"; fi
if want cluster; then echo; cat "$CLUSTER_MD"; fi
if want groups; then echo; cat "$GROUPS_MD"; fi
if want delays; then echo; cat "$DELAYS_MD"; fi
if want txn; then echo; cat "$TXN_MD"; fi
if want limits; then echo; cat "$LIMITS_MD"; fi
if [ -s "$WORK/anomalies" ]; then echo; echo "anomalies:"; cat "$WORK/anomalies"; fi
echo
echo "bench: the run took $RUN_MIN min"

if [ -n "$QUICK" ] || [ -n "$BENCH_ONLY" ]; then
    echo "bench: QUICK or BENCH_ONLY: $BENCH_DOC not written"
    exit 0
fi

# ---------- docs/benchmarks.md ----------

DATE=$(date -u +%F)
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
CORES=$(nproc)
MEM=$(awk '/^MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
KERNEL=$(uname -r)
DF_LINE=$(df -h "$WORK" | awk 'NR==2 {print $1 " (" $2 ", mounted on " $6 ")"}')
DEV=$(df "$WORK" | awk 'NR==2 {print $1}' | sed 's|^/dev/||')
LSBLK=$(lsblk -dno NAME,SIZE,ROTA,TYPE,MODEL "/dev/$DEV" 2>/dev/null | tr -s ' ' | sed 's/ *$//' || true)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo "plus uncommitted changes" || echo "no uncommitted changes")
SECTION=$WORK/section.md
{
    echo "<!-- bench-run $DATE begin (generated by bench/run.sh; replaced by a later run on the same date) -->"
    echo "## $DATE"
    echo
    echo "- Machine: $CPU, $CORES cores, $MEM RAM; kernel $KERNEL; data on $DF_LINE${LSBLK:+, lsblk: $LSBLK (ROTA 0 = non-rotational)}."
    echo "- **The load tool (\`samsa bench\`: producers and consumer) and the broker share these $CORES cores**, over loopback: every figure includes the load tool's own CPU. Load average (1/5/15 min) at start $LOAD_AT_START, at end $LOAD_AT_END; anything else running competes for the same cores."
    echo "- Fresh guest memory (samsa-warm-memory, 2 GiB): $(val mem.first sys_s_per_GB) s of system CPU per GB ($(calc 'sprintf("%.2f", a / b / 1.073741824)' "$(val mem.first wall_s)" "$(val mem.first gib)") s/GB wall) in a new process, and $(val mem.again sys_s_per_GB) s/GB again in the next process right after, so a warm-up does not carry over (see Method)."
    echo "- Samsa commit $COMMIT ($DIRTY); built in $(basename "$BUILD")/ (CMake RelWithDebInfo via make build); librdkafka $(pkg-config --modversion rdkafka 2>/dev/null || echo '?'); fio $(fio --version 2>/dev/null)."
    echo "- Medians of $REPS runs, each figure separately, except the two ceilings (fio's synced write rate, the mock cluster), which are the best of their $REPS runs; scaling curves: one run per point; MB = 10^6 bytes of record values; the whole run took $RUN_MIN min.${FD_NOTE:+ Open files: $FD_NOTE.}"
    echo
    cat "$MAIN_MD"
    echo
    cat "$KAFKA_MD"
    echo
    echo "Side by side with the peer harness (\`PEERS=\"$PEERS\" REPS=$REPS ../shared/bench/peers/run.sh\`, same machine, same run; Samsa's rows are \`samsa bench\` with the same record counts and sizes, one partition, linger 5 ms; medians of $REPS runs):"
    echo
    cat "$PEERS_MD"
    echo
    cat "$SCALING_MD"
    echo
    cat "$RAFT_MD"
    echo
    cat "$CLUSTER_MD"
    echo
    cat "$GROUPS_MD"
    echo
    cat "$DELAYS_MD"
    echo
    cat "$TXN_MD"
    echo
    cat "$LIMITS_MD"
    if [ -s "$WORK/anomalies" ]; then echo; echo "Anomalies during the run:"; sed 's/^/- /' "$WORK/anomalies"; fi
    echo "<!-- bench-run $DATE end -->"
} >"$SECTION"

/usr/bin/python3 - "$BENCH_DOC" "$SECTION" "$DATE" <<'PY'
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
PY
echo "bench: wrote the $DATE section of $BENCH_DOC"
