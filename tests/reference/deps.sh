#!/bin/sh
# Installs Apache Kafka 4.4.0 (the broker, org.apache.kafka:kafka_2.13) and all its
# runtime dependencies, plus the slf4j -> log4j2 binding it logs through, as plain jars
# in ${SAMSA_CACHE:-$HOME/.cache/samsa}/kafka-4.4.0/libs, fetched from Maven Central
# with Maven (local repository ~/.m2 as usual). Nothing lands in the repository.
#
# Idempotent: when the jars are there (and pom.xml did not change since) this is a file
# check. Exits non-zero with a clear message when Maven or Maven Central is missing.
# Quiet on success when already installed; `kafka.sh fetch` prints the libs dir.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
POM="$HERE/pom.xml"
KAFKA_VERSION=4.4.0
CACHE=${SAMSA_CACHE:-$HOME/.cache/samsa}
DEST="$CACHE/kafka-$KAFKA_VERSION"
LIBS="$DEST/libs"
STAMP="$DEST/.installed"

die() {
    echo "tests/reference/deps.sh: $*" >&2
    exit 1
}

pom_sum=$(cksum <"$POM")
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$pom_sum" ] && [ -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]; then
    exit 0
fi

command -v mvn >/dev/null 2>&1 ||
    die "Maven (mvn) is not installed; it is needed to fetch Kafka $KAFKA_VERSION (apt-get install maven)"

mkdir -p "$DEST"
# Two runs at once (e.g. parallel ctest) must not both write libs/: one waits.
exec 9>"$DEST/.lock"
if command -v flock >/dev/null 2>&1; then
    flock -w 600 9 || die "timed out waiting for another deps.sh run ($DEST/.lock)"
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$pom_sum" ] && [ -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]; then
    exit 0
fi

echo "fetching Apache Kafka $KAFKA_VERSION and its dependencies from Maven Central into $LIBS" >&2
tmp="$DEST/libs.tmp.$$"
mvnlog="$DEST/mvn.log"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
# -q keeps the output to errors; they also go to mvn.log for the message below.
if ! (cd "$DEST" && mvn -B -q -Dstyle.color=never -f "$POM" \
        org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
        -DoutputDirectory="$tmp") >"$mvnlog" 2>&1; then
    sed -e 's/\x1b\[[0-9;]*m//g' -e 's/ -> \[Help 1\]$//' "$mvnlog" |
        grep -vE '^\[ERROR\] *($|\[Help 1\]|To see the full|Re-run Maven|For more information)' |
        tail -n 15 >&2
    if grep -qiE 'Could not (transfer|resolve)|UnknownHost|Unknown host|Connect(ion)? (refused|timed out)|Network is unreachable|Failed to read artifact descriptor|Plugin .* could not be resolved' "$mvnlog"; then
        die "could not download Kafka $KAFKA_VERSION from Maven Central (https://repo.maven.apache.org/maven2 unreachable? proxy settings in ~/.m2/settings.xml?); full log: $mvnlog"
    fi
    die "mvn failed to fetch Kafka $KAFKA_VERSION; full log: $mvnlog"
fi
for j in kafka_2.13-$KAFKA_VERSION.jar kafka-server-$KAFKA_VERSION.jar kafka-clients-$KAFKA_VERSION.jar \
         log4j-core-*.jar log4j-slf4j-impl-*.jar slf4j-api-*.jar scala-library-*.jar; do
    ls "$tmp"/$j >/dev/null 2>&1 || die "Maven did not produce $j in $tmp (see $mvnlog)"
done
rm -rf "$LIBS"
mv "$tmp" "$LIBS"
printf '%s\n' "$pom_sum" >"$STAMP"
echo "installed $(ls "$LIBS" | wc -l) jars in $LIBS" >&2
