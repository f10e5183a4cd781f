#!/usr/bin/env bash
# Runs every benchmark under bench/ and prints their figures. Benchmarks never fail on time.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
export PATH="$PWD/.tools/bin:$PATH"
echo "== kubesim =="
/usr/bin/python3 bench/kubesim_bench.py
for b in "$build"/bin/*_bench; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b") =="
  "$b"
done
