#!/usr/bin/env bash
# Runs the C++ suite (ctest) and the end-to-end suite (pytest), prints both summaries, and
# fails if either failed. Usage: run-tests.sh BUILD_DIR [CTEST_ARGS] [PYTEST_ARGS]
set -u
cd "$(dirname "$0")/.."
build=${1:-build}
ctest_args=${2:-}
pytest_args=${3:-}
export PATH="$PWD/.tools/bin:$PATH"
build_abs=$(cd "$build" && pwd)

# Used only by binaries built with SANITIZE=...: the C++ tests fail on any report, leaks
# included; the daemons the e2e suite starts fail on any error but are not leak-checked, because
# SIGKILL and SIGTERM end them by design.
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
rc=0
echo "== C++ tests (ctest) =="
# shellcheck disable=SC2086
(cd "$build" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  ctest --output-on-failure -j2 $ctest_args) || rc=1

echo "== end-to-end tests (pytest) =="
# shellcheck disable=SC2086
(cd e2e && ASAN_OPTIONS=detect_leaks=0 TASKLEASE_BUILD_DIR="$build_abs" \
  /usr/bin/python3 -m pytest $pytest_args)
prc=$?
# pytest exits 5 when it collected nothing: that is a failure of the suite, not a pass.
[ $prc -eq 0 ] || rc=1
exit $rc
