#!/usr/bin/env bash
# Runs every benchmark under bench/ and prints their figures. Benchmarks never fail on time.
# Those on the real control plane (pod CREATE, the operator's second half) run when `make deps`
# has built it and say so otherwise.
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
if [ -f bench/pod_create_bench.py ]; then
  echo "== pod CREATE through kube-apiserver, without and with tasklease =="
  /usr/bin/python3 bench/pod_create_bench.py --build "$build"
fi
if [ -f bench/operator_bench.py ]; then
  echo "== operator (kubesim, then kube-apiserver) =="
  /usr/bin/python3 bench/operator_bench.py --build "$build"
fi
for b in "$build"/bin/*_bench; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b") =="
  "$b"
done
