#!/bin/sh
# Fetches the Go modules of the Go integration tests (franz-go, kadm, IBM/sarama and
# their dependencies, pinned by go.mod and go.sum) into Go's module cache (GOMODCACHE,
# ~/go/pkg/mod by default) and compiles the test binary once into Go's build cache
# (~/.cache/go-build), so that `go test` here needs no network. Nothing lands in the
# repository.
#
# Idempotent: when the stamp matches go.mod, go.sum and the Go version and every module
# is in the cache (checked with the proxy switched off), this costs a `go list`.
# Exits non-zero with a clear message when Go or the Go module proxy is missing.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${SAMSA_CACHE:-$HOME/.cache/samsa}
STAMP="$CACHE/go-integration.stamp"

die() {
    echo "tests/integration/go/deps.sh: FAIL: $*" >&2
    exit 1
}

command -v go >/dev/null 2>&1 ||
    die "Go is not installed; the tests need go >= 1.26 (go.mod's 'go' line)"
cd "$HERE"

goversion=$(go env GOVERSION) || die "'go env' failed"
want=$(cat go.mod go.sum | cksum)
want="$want $goversion"

# Every package the tests import resolves from the module cache alone.
offline_ok() {
    GOPROXY=off GOFLAGS=-mod=readonly go list -deps -test ./... >/dev/null 2>&1
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && offline_ok; then
    exit 0
fi

echo "tests/integration/go/deps.sh: fetching Go modules ($(go env GOPROXY)) into $(go env GOMODCACHE)" >&2
if ! GOFLAGS=-mod=readonly go mod download; then
    die "go mod download failed (is the Go module proxy $(go env GOPROXY) reachable?)"
fi
offline_ok || {
    GOPROXY=off GOFLAGS=-mod=readonly go list -deps -test ./... >/dev/null || true
    die "modules were downloaded but the test packages still do not resolve offline (see above)"
}
# Compile the test binary (and every dependency) into the build cache; runs no test.
GOPROXY=off GOFLAGS=-mod=readonly go test -count=1 -run '^$' ./... >/dev/null ||
    die "compiling the Go integration tests failed (see above)"
mkdir -p "$CACHE"
echo "$want" >"$STAMP"
echo "tests/integration/go/deps.sh: done" >&2
