#!/usr/bin/env bash
# Runs every benchmark under bench/ and prints their figures. Benchmarks never fail on time.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
export PATH="$PWD/.tools/bin:$PATH"
echo "== kubesim =="
/usr/bin/python3 bench/kubesim_bench.py
if [ -f bench/webhook_bench.py ]; then
  echo "== webhook =="
  /usr/bin/python3 bench/webhook_bench.py --build "$build"
fi
if [ -f bench/operator_bench.py ]; then
  echo "== operator =="
  /usr/bin/python3 bench/operator_bench.py --build "$build"
fi
for b in "$build"/bin/*_bench; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b") =="
  "$b"
done
