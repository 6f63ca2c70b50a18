#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a bounded time.
#   tests/fuzz/run.sh SECONDS [SEED]
# make test runs a short pass with a fixed seed (a CI failure replays here with the same
# seed); make fuzz a long one with a random seed. A crash exits non-zero, leaves the
# reproducer (crash-*) in build-fuzz/artifacts and prints it in base64.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-30}
seed_arg=()
if [ -n "${2:-}" ]; then seed_arg=(-seed="$2"); fi
build=build-fuzz
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DSAMSA_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
targets=$(grep -oE '^(add_executable|fuzz_target)\(fuzz_[a-z_]+' tests/fuzz/CMakeLists.txt | sed -E 's/.*\(//')
cmake --build "$build" -j "$(nproc)" --target make_seeds $targets >/dev/null
mkdir -p "$build/artifacts"
for t in $targets; do
  corpus="$build/corpus/$t"
  mkdir -p "$corpus"
  if [ "$t" = fuzz_request ] && [ -z "$(ls -A "$corpus")" ]; then
    "$build/tests/fuzz/make_seeds" "$corpus" >/dev/null
  fi
  if [ "$t" = fuzz_decompress ] && [ -z "$(ls -A "$corpus")" ]; then
    "$build/tests/fuzz/make_seeds" --compress "$corpus" >/dev/null
  fi
  if [ "$t" = fuzz_metadata_raft ] && [ -z "$(ls -A "$corpus")" ]; then
    "$build/tests/fuzz/make_seeds" --raft "$corpus" >/dev/null
  fi
  echo "fuzzing $t for ${secs}s"
  "$build/tests/fuzz/$t" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=0 \
    "${seed_arg[@]}" -artifact_prefix="$build/artifacts/" "$corpus" 2>"$build/$t.log" \
    || { tail -40 "$build/$t.log"
         for a in "$build"/artifacts/*; do [ -f "$a" ] && { echo "$a (base64):"; base64 -w0 "$a"; echo; }; done
         echo "fuzz target $t failed"; exit 1; }
  grep -E "Done [0-9]+ runs" "$build/$t.log" || tail -2 "$build/$t.log"
done
