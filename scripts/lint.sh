#!/usr/bin/env bash
# clang-format check and clang-tidy over the project's C++; pyflakes over kubesim and e2e.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
rc=0
files=$(git ls-files '*.cpp' '*.h')
if [ -n "$files" ]; then
  echo "lint: clang-format"
  echo "$files" | xargs clang-format --dry-run 2>&1 | grep -m 40 'warning' && rc=1 || true
  echo "lint: clang-tidy"
  echo "$files" | grep '\.cpp$' | xargs -r clang-tidy -p "$build" --quiet 2>/dev/null \
    | grep -E 'warning:|error:' && rc=1 || true
fi
echo "lint: pyflakes"
/usr/bin/python3 -m pyflakes e2e || rc=1
exit $rc
