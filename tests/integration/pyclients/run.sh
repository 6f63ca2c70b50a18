#!/bin/sh
# Runs this folder's tests with the virtualenv's interpreter (deps.sh installs it when
# missing). Extra arguments go to pytest, e.g. ./run.sh -k kafka_python
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
if ! "$HERE/deps.sh"; then
  echo "pyclients: FAILED: the Python clients could not be installed (see above)" >&2
  exit 1
fi
PY=${SAMSA_CACHE:-$HOME/.cache/samsa}/venv-clients/bin/python
exec "$PY" -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning -rfExX "$HERE" "$@"
