#!/usr/bin/env bash
# ctest entry point for the kafkajs tests: installs kafkajs (pinned in package.json) when
# node_modules lacks it, as `make js-deps` does, then runs node's built-in test runner.
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null || { echo "FAIL: node is not installed"; exit 1; }
if [ ! -d node_modules/kafkajs ]; then
    timeout 300 npm install --no-audit --no-fund --silent
fi
exec node --test --test-reporter=spec kafkajs.test.js groups.test.js
