#!/bin/bash
# Runs Apache Kafka 4.4.0 (KRaft, combined broker+controller nodes) from the jars that
# deps.sh installs, as a reference broker for tests: loopback only, free ports.
#
#   kafka.sh fetch                      install Kafka (and make its CDS archive, see
#                                       cds_opts) if needed, print the libs dir
#   kafka.sh start DIR [--nodes 1|3] [--set key=value]... [--timeout SECONDS]
#                      [--cluster-id ID] [--foreground]
#       writes DIR/nodeN/server.properties, formats each node's storage, starts each
#       node (java -cp 'libs/*' kafka.Kafka ...; log in DIR/nodeN/server.log), waits
#       until every node answers ApiVersions + Metadata listing all nodes, writes
#       DIR/bootstrap and DIR/pids and prints the bootstrap (host:port,...) on stdout.
#       --set applies to every node's server.properties (replaces a generated key).
#       --foreground: stay the parent of the JVMs until they exit (SIGTERM/SIGINT to
#       this script stops them); each JVM gets SIGKILL if this script dies
#       (PR_SET_PDEATHSIG). kafka_ref.py uses this. Without it the JVMs run detached.
#   kafka.sh stop DIR [--timeout SECONDS]
#       SIGTERM to every node of DIR, SIGKILL to those still alive after the timeout
#       (default 20 s). Idempotent.
#
# Environment: JAVA_HOME (default: java on PATH; Kafka 4.4 needs Java 17 or newer),
# KAFKA_HEAP_OPTS (default -Xmx512m for 1 node, -Xmx384m per node otherwise),
# KAFKA_JVM_OPTS (replaces the default JVM options), KAFKA_CDS=0 (no class data sharing
# archive, see cds_opts), SAMSA_CACHE (see deps.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3
HELPER="$HERE/kafka_ref.py"
KAFKA_VERSION=4.4.0
LIBS="${SAMSA_CACHE:-$HOME/.cache/samsa}/kafka-$KAFKA_VERSION/libs"

die() {
    echo "kafka.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -e/p' "$0" | sed -e '/^set -e/d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

# Sets JAVA (the java binary) and JAVA_ID (a checksum naming the JDK build).
find_java() {
    if [ -n "${JAVA_HOME:-}" ]; then JAVA="$JAVA_HOME/bin/java"; else JAVA=$(command -v java || true); fi
    [ -n "$JAVA" ] && [ -x "$JAVA" ] || die "no java found (set JAVA_HOME); Kafka $KAFKA_VERSION needs Java 17+"
    local props v
    props=$("$JAVA" -XshowSettings:properties -version 2>&1)
    v=$(sed -n 's/^ *java.specification.version = //p' <<<"$props")
    case "$v" in
        "") die "$JAVA does not run: $props" ;;
        1.*|9|1[0-6]) die "$JAVA is Java $v; Kafka $KAFKA_VERSION needs Java 17+ (set JAVA_HOME)" ;;
    esac
    JAVA_ID=$(sed -n -e 's/^ *java.home = //p' -e 's/^ *java.vm.version = //p' <<<"$props" | cksum | cut -d' ' -f1)
}

# Class data sharing: a dynamic CDS archive of the classes Kafka loads while starting
# saves about a third of each node's start-up CPU. It is made once per JDK and set of
# jars, by a training run (one node started with -XX:ArchiveClassesAtExit, then stopped),
# and kept next to libs/. KAFKA_CDS=0 turns this off. Prints the JVM option to use
# (nothing when there is no archive: the JVMs then simply start without it).
cds_opts() {
    [ "${KAFKA_CDS:-1}" != 0 ] || return 0
    local cds="${LIBS%/libs}/cds" jsa
    jsa="$cds/kafka-$JAVA_ID-$(ls "$LIBS" | cksum | cut -d' ' -f1).jsa"
    if [ ! -s "$jsa" ]; then
        mkdir -p "$cds"
        exec 8>"$cds/.lock"
        flock -w 300 8 || true
        [ -s "$jsa" ] || cds_train "$jsa" ||
            echo "kafka.sh: could not make the class data sharing archive; starting without it" >&2
        exec 8>&-
    fi
    [ ! -s "$jsa" ] || echo "-XX:SharedArchiveFile=$jsa"
}

cds_train() {
    local jsa=$1 me=$BASHPID tdir tmp pid
    tdir=$(mktemp -d "${jsa%/*}/train.XXXXXX")
    tmp="$jsa.tmp.$me"
    echo "kafka.sh: one-time training run for the class data sharing archive $jsa" >&2
    # As the child of this shell, dying with it (the JVM dies with its kafka.sh).
    KAFKA_CDS=0 KAFKA_CDS_DUMP="$tmp" "$PY" "$HELPER" exec-pdeathsig --parent $me -- \
        "$HERE/kafka.sh" start "$tdir/k" --foreground >/dev/null 2>"$tdir/start.log" &
    pid=$!
    while [ ! -s "$tdir/k/bootstrap" ] && kill -0 $pid 2>/dev/null; do sleep 0.5; done
    "$HERE/kafka.sh" stop "$tdir/k" --timeout 60 || true
    wait $pid || true
    # -Xshare:on makes the JVM fail unless it can map the archive (whole and matching).
    local ok=1
    if [ -s "$tmp" ] && (cd "$tdir" && "$JAVA" -Xshare:on -XX:SharedArchiveFile="$tmp" \
            -cp "$LIBS/*" -version >/dev/null 2>&1); then
        mv "$tmp" "$jsa" && ok=0
    fi
    [ $ok -eq 0 ] || tail -n 20 "$tdir/start.log" "$tdir/k/node1/stdout.log" >&2 2>/dev/null || true
    rm -rf "$tdir" "$tmp"
    return $ok
}

# Prints the last lines of every node's logs (stderr).
log_tails() {
    local dir=$1 f
    for f in "$dir"/node*/stdout.log "$dir"/node*/server.log; do
        [ -s "$f" ] || continue
        if [ "${f##*/}" = server.log ] && grep -qE '^\[[^]]*\] (ERROR|FATAL) ' "$f"; then
            echo "---- first errors in $f" >&2
            grep -m 3 -A 2 -E '^\[[^]]*\] (ERROR|FATAL) ' "$f" >&2
        fi
        echo "---- tail of $f" >&2
        tail -n "${KAFKA_LOG_TAIL:-30}" "$f" >&2
    done
}

# Lists "node pid" of DIR's JVMs that are still alive and still ours.
live_pids() {
    local dir=$1 node pid state ppid
    [ -f "$dir/pids" ] || return 0
    while read -r node pid; do
        [ -n "$pid" ] || continue
        # The pid may have been reused: only count a kafka.Kafka of this DIR, or (while
        # starting, before it has become java) a child of this script.
        state= ppid=
        { read -r _ _ state ppid _ <"/proc/$pid/stat"; } 2>/dev/null || continue
        [ "$state" != Z ] || continue
        if [ "$ppid" = $$ ] ||
            { tr "\0" " " <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$dir/node$node/server.properties"; then
            echo "$node $pid"
        fi
    done <"$dir/pids"
}

stop_nodes() {
    local dir=$1 timeout=$2 node pid left deadline
    left=$(live_pids "$dir")
    [ -n "$left" ] || return 0
    while read -r node pid; do kill -TERM "$pid" 2>/dev/null || true; done <<<"$left"
    deadline=$((SECONDS + timeout))
    while [ -n "$left" ] && [ $SECONDS -lt $deadline ]; do
        sleep 0.2
        left=$(live_pids "$dir")
    done
    if [ -n "$left" ]; then
        echo "kafka.sh: node(s) $(cut -d' ' -f1 <<<"$left" | tr '\n' ' ')still running after ${timeout}s: SIGKILL" >&2
        while read -r node pid; do kill -KILL "$pid" 2>/dev/null || true; done <<<"$left"
        deadline=$((SECONDS + 10))
        while [ -n "$(live_pids "$dir")" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    fi
}

cmd_fetch() {
    "$HERE/deps.sh" || exit 1
    find_java
    cds_opts >/dev/null  # makes the class data sharing archive if there is none yet
    echo "$LIBS"
}

cmd_stop() {
    [ $# -ge 1 ] || usage
    local dir=$1 timeout=20
    shift
    while [ $# -gt 0 ]; do
        case "$1" in
            --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
            *) usage ;;
        esac
    done
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd)
    stop_nodes "$dir" "$timeout"
}

cmd_start() {
    [ $# -ge 1 ] || usage
    local dir=$1 nodes=1 timeout=90 foreground=0 cluster_id=""
    local -a sets=()
    shift
    while [ $# -gt 0 ]; do
        case "$1" in
            --nodes) nodes=${2:?--nodes needs a count}; shift 2 ;;
            --set) [[ "${2:-}" == *=* ]] || die "--set needs key=value"; sets+=("$2"); shift 2 ;;
            --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
            --cluster-id) cluster_id=${2:?--cluster-id needs an id}; shift 2 ;;
            --foreground) foreground=1; shift ;;
            *) usage ;;
        esac
    done
    [[ "$nodes" =~ ^[1-9]$ ]] || die "--nodes must be 1..9"

    "$HERE/deps.sh" || exit 1
    find_java
    local java=$JAVA
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ -z "$(live_pids "$dir")" ] || die "$dir already has running nodes (kafka.sh stop $dir)"
    [ ! -e "$dir/node1" ] || die "$dir was already used; give an empty or new directory"
    rm -f "$dir/bootstrap" "$dir/pids"

    local -a ports
    read -r -a ports <<<"$("$PY" "$HELPER" ports $((2 * nodes)))"
    [ ${#ports[@]} -eq $((2 * nodes)) ] || die "could not pick free ports"
    [ -n "$cluster_id" ] || cluster_id=$("$PY" "$HELPER" cluster-id)

    local voters="" i
    for ((i = 1; i <= nodes; i++)); do
        voters+="${voters:+,}$i@127.0.0.1:${ports[$((2 * i - 1))]}"
    done
    # Internal topics: replicated on every node (up to 3), min ISR 2 when possible.
    local rf=$((nodes < 3 ? nodes : 3)) misr=$((nodes < 3 ? 1 : 2))

    cat >"$dir/log4j2.properties" <<'EOF'
# Kafka's log4j2 configuration for the reference broker: everything to one file.
status = warn
name = samsa-kafka-reference
# Kafka logs from its own shutdown hook: keep log4j alive until the JVM is gone.
shutdownHook = disable
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF

    local nd props
    for ((i = 1; i <= nodes; i++)); do
        nd="$dir/node$i"
        props="$nd/server.properties"
        mkdir -p "$nd/data"
        {
            echo "# written by tests/reference/kafka.sh"
            echo "process.roles=broker,controller"
            echo "node.id=$i"
            echo "controller.quorum.voters=$voters"
            echo "listeners=PLAINTEXT://127.0.0.1:${ports[$((2 * i - 2))]},CONTROLLER://127.0.0.1:${ports[$((2 * i - 1))]}"
            echo "advertised.listeners=PLAINTEXT://127.0.0.1:${ports[$((2 * i - 2))]}"
            echo "controller.listener.names=CONTROLLER"
            echo "inter.broker.listener.name=PLAINTEXT"
            echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
            echo "log.dirs=$nd/data"
            echo "num.partitions=1"
            echo "offsets.topic.replication.factor=$rf"
            echo "transaction.state.log.replication.factor=$rf"
            echo "transaction.state.log.min.isr=$misr"
            echo "share.coordinator.state.topic.replication.factor=$rf"
            echo "share.coordinator.state.topic.min.isr=$misr"
            echo "group.initial.rebalance.delay.ms=0"
        } >"$props.tmp"
        local kv
        for kv in ${sets[@]+"${sets[@]}"}; do
            # A --set replaces the generated line with the same key.
            awk -v k="${kv%%=*}=" 'index($0, k) != 1' "$props.tmp" >"$props.tmp2"
            mv "$props.tmp2" "$props.tmp"
            echo "$kv" >>"$props.tmp"
        done
        mv "$props.tmp" "$props"
    done

    local heap=${KAFKA_HEAP_OPTS:-}
    if [ -z "$heap" ]; then
        if [ "$nodes" -eq 1 ]; then heap="-Xms64m -Xmx512m"; else heap="-Xms64m -Xmx384m"; fi
    fi
    local -a jvm
    read -r -a jvm <<<"${KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}"
    local -a heapa cds fcds
    read -r -a heapa <<<"$heap"
    if [ -n "${KAFKA_CDS_DUMP:-}" ]; then
        cds=("-XX:ArchiveClassesAtExit=$KAFKA_CDS_DUMP")  # the training run (cds_train)
        fcds=()
    else
        read -r -a cds <<<"$(cds_opts)"
        fcds=(${cds[@]+"${cds[@]}"})
    fi

    # Format every node's storage (in parallel: each is a JVM start).
    local -a fpids=()
    for ((i = 1; i <= nodes; i++)); do
        nd="$dir/node$i"
        "$java" -Xmx256m -XX:TieredStopAtLevel=1 ${fcds[@]+"${fcds[@]}"} -Dlog4j2.configurationFile="$dir/log4j2.properties" \
            -Dkafka.logs.dir="$nd" -cp "$LIBS/*" kafka.tools.StorageTool format \
            "--cluster-id=$cluster_id" -c "$nd/server.properties" >"$nd/format.log" 2>&1 </dev/null &
        fpids+=($!)
    done
    local failed=0
    for i in "${fpids[@]}"; do wait "$i" || failed=1; done
    if [ $failed -ne 0 ]; then
        for ((i = 1; i <= nodes; i++)); do
            echo "---- tail of $dir/node$i/format.log" >&2
            tail -n 30 "$dir/node$i/format.log" >&2
        done
        die "formatting the storage failed (logs above, in $dir/node*/format.log)"
    fi

    # Start the nodes. Until they are ready, any exit stops them; with --foreground
    # also afterwards (and they die with this script anyway: PR_SET_PDEATHSIG).
    trap 'stop_nodes "$dir" 20' EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT
    : >"$dir/pids"
    local -a launcher=(setsid)
    [ $foreground -eq 0 ] || launcher=("$PY" "$HELPER" exec-pdeathsig --parent $$ --)
    for ((i = 1; i <= nodes; i++)); do
        nd="$dir/node$i"
        (cd "$nd" && exec "${launcher[@]}" "$java" "${heapa[@]}" "${jvm[@]}" ${cds[@]+"${cds[@]}"} \
            -Dlog4j2.configurationFile="$dir/log4j2.properties" -Dkafka.logs.dir="$nd" \
            -cp "$LIBS/*" kafka.Kafka "$nd/server.properties") >"$nd/stdout.log" 2>&1 </dev/null &
        echo "$i $!" >>"$dir/pids"
    done

    local -a addrs=()
    for ((i = 1; i <= nodes; i++)); do addrs+=("127.0.0.1:${ports[$((2 * i - 2))]}"); done
    local bootstrap
    bootstrap=$(IFS=,; echo "${addrs[*]}")

    # Ready when every node answers ApiVersions and a Metadata listing all nodes.
    local deadline=$((SECONDS + timeout)) node pid
    while :; do
        while read -r node pid; do
            if ! kill -0 "$pid" 2>/dev/null; then
                log_tails "$dir"
                stop_nodes "$dir" 5
                die "kafka node $node (pid $pid) exited during startup (logs above, in $dir/node$node)"
            fi
        done <"$dir/pids"
        if "$PY" "$HELPER" probe --brokers "$nodes" --timeout 2 "${addrs[@]}" >/dev/null 2>"$dir/probe.err"; then
            break
        fi
        if [ $SECONDS -ge $deadline ]; then
            log_tails "$dir"
            echo "---- last probe error: $(cat "$dir/probe.err")" >&2
            stop_nodes "$dir" 5
            die "kafka did not become ready within ${timeout}s (logs above, in $dir/node*/server.log)"
        fi
        sleep 0.5
    done
    rm -f "$dir/probe.err"
    echo "$bootstrap" >"$dir/bootstrap"
    echo "$bootstrap"

    if [ $foreground -eq 1 ]; then
        # Stay the JVMs' parent until they exit; `wait` returns early on a trapped signal.
        while [ -n "$(live_pids "$dir")" ]; do wait || true; done
    else
        trap - EXIT TERM INT
    fi
}

main() {
    [ $# -ge 1 ] || usage
    local sub=$1
    shift
    case "$sub" in
        fetch) cmd_fetch "$@" ;;
        start) cmd_start "$@" ;;
        stop) cmd_stop "$@" ;;
        *) usage ;;
    esac
}

# One line, read before running: editing this file under a running (--foreground)
# copy cannot make bash read on into the new text.
main "$@"; exit $?
