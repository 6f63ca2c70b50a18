#!/usr/bin/env bash
# Fetches everything the Java integration tests need into ~/.m2 (kafka-clients, kafka-streams, JUnit,
# slf4j, and the Maven plugins with the surefire JUnit provider), so that run.sh can test
# offline (`mvn -o`). Idempotent: once done for this pom.xml, a run costs a file check.
# Exits non-zero with a message when Maven or Java is missing or Maven Central unreachable.
# MAVEN_REPO: a local repository other than ~/.m2/repository (Maven's maven.repo.local).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
M2="${MAVEN_REPO:-$HOME/.m2/repository}"
KAFKA_VERSION=4.4.0

fail() { echo "tests/integration/java/deps.sh: FAIL: $*" >&2; exit 1; }

command -v mvn >/dev/null || fail "mvn is not installed (apt-get install maven)"
command -v java >/dev/null || fail "java is not installed (apt-get install openjdk-17-jdk-headless)"

# The stamp names the pom it was made for: a changed pom.xml fetches again.
pom_sum=$(sha256sum "$HERE/pom.xml" | cut -c1-16)
stamp="$M2/.samsa-java-deps-$pom_sum"
clients_jar="$M2/org/apache/kafka/kafka-clients/$KAFKA_VERSION/kafka-clients-$KAFKA_VERSION.jar"
if [ -f "$stamp" ] && [ -f "$clients_jar" ]; then
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/samsa-java-deps.XXXXXX")
trap 'rm -rf "$work"' EXIT
mvn_args=(-B -q --no-transfer-progress -Dstyle.color=never -f "$HERE/pom.xml" "-Dsamsa.java.build=$work/target")
[ -z "${MAVEN_REPO:-}" ] || mvn_args+=("-Dmaven.repo.local=$MAVEN_REPO")

echo "tests/integration/java/deps.sh: fetching kafka-clients $KAFKA_VERSION, JUnit and Maven plugins into $M2" >&2
timeout 600 mvn "${mvn_args[@]}" dependency:go-offline \
    || fail "could not fetch from Maven Central (unreachable? Maven's errors are above)"
# go-offline does not know the JUnit provider that surefire resolves when it runs tests:
# run one probe test of our own (not the real ones, which need a server), online, then
# offline to prove that an offline run has everything.
mkdir -p "$work/src/probe"
cat > "$work/src/probe/DepsProbeTest.java" <<'JAVA'
package probe;

class DepsProbeTest {
    @org.junit.jupiter.api.Test
    void kafkaClientsOnClasspath() {
        org.junit.jupiter.api.Assertions.assertNotNull(
                new org.apache.kafka.common.TopicPartition("t", 0).topic());
    }
}
JAVA
probe=(-Dsamsa.test.sources="$work/src")
timeout 600 mvn "${mvn_args[@]}" "${probe[@]}" test \
    || fail "resolving the compiler and surefire's JUnit provider failed (see above)"
rm -rf "$work/target"
timeout 300 mvn "${mvn_args[@]}" "${probe[@]}" -o test \
    || fail "an offline run still misses artifacts after fetching (see above)"
rm -f "$M2"/.samsa-java-deps-*
touch "$stamp"
echo "tests/integration/java/deps.sh: done" >&2
