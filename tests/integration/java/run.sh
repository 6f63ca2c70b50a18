#!/usr/bin/env bash
# ctest entry point for the Kafka Java client tests: makes sure ~/.m2 has what they need
# (deps.sh, a file check when done), then runs them offline with Maven.
# Environment: SAMSA_SERVER (required), SAMSA_CLI (the samsa binary, for ClusterTest;
# default tools/samsa beside SAMSA_SERVER), SAMSA_JAVA_BUILD (Maven's output folder; default
# a temp folder removed at exit), MAVEN_REPO (as in deps.sh), SAMSA_KEEP_LOGS (a folder where
# each server's log is kept when it stops). Extra arguments go to Maven (e.g. -Dtest=AdminTest).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"

[ -n "${SAMSA_SERVER:-}" ] || { echo "FAIL: SAMSA_SERVER is not set" >&2; exit 1; }
[ -x "$SAMSA_SERVER" ] || { echo "FAIL: SAMSA_SERVER=$SAMSA_SERVER is not an executable" >&2; exit 1; }
"$HERE/deps.sh" || { echo "FAIL: the Java test dependencies could not be installed" >&2; exit 1; }

if [ -n "${SAMSA_JAVA_BUILD:-}" ]; then
    build="$SAMSA_JAVA_BUILD"
else
    build=$(mktemp -d "${TMPDIR:-/tmp}/samsa-java-build.XXXXXX")
    trap 'rm -rf "$build"' EXIT
fi
repo=()
[ -z "${MAVEN_REPO:-}" ] || repo=("-Dmaven.repo.local=$MAVEN_REPO")
mvn -B -o --no-transfer-progress -Dstyle.color=never -f "$HERE/pom.xml" "${repo[@]}" \
    "-Dsamsa.java.build=$build" "-Dsamsa.server=$SAMSA_SERVER" test "$@"
