#!/usr/bin/env bash
# Builds the real Kubernetes control plane of the end-to-end suite from the Go module proxy
# (docs/kubesim.md, "The real control plane"; docs/decisions.md says why):
#   .tools/k8s-<release>/bin/  kube-apiserver kube-controller-manager kube-scheduler kubectl etcd
#   .tools/kwok-<version>/bin/kwok and .tools/kwok-<version>/stages.yaml
# The versions are those pinned by e2e/controlplane/go.mod and e2e/controlplane/kwok/go.mod.
# Each directory carries a stamp named by the hash of what its binaries are built from (the
# go.mod and go.sum, our sources, this script): when it is there nothing is done, so a second
# run takes well under a second. Binaries are built as Kubernetes releases are (CGO off,
# -trimpath, symbols and DWARF stripped, the release's tags) with the release's version stamped
# in, into a temporary directory that is moved into place whole.
#
# The Go build takes the machine's build lock (TASKLEASE_BUILD_LOCK, default
# /tmp/tasklease-build.lock), unless a process this script runs under holds it already.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MOD=e2e/controlplane
TOOLS=$ROOT/.tools
LOCK=${TASKLEASE_BUILD_LOCK:-/tmp/tasklease-build.lock}
export CGO_ENABLED=0 GOFLAGS=-mod=readonly GOTOOLCHAIN=local
PATH=/usr/local/go/bin:$PATH

# The version a go.mod requires of a module, read from the file (no network, no Go needed).
required() { awk -v m="$2" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1"; }

# The hash (12 hex digits) of the files named, and of this script.
inputs_hash() { cat "$@" "$ROOT/scripts/build-controlplane.sh" | sha256sum | cut -c1-12; }

K8S=$(required $MOD/go.mod k8s.io/kubernetes)
KWOK=$(required $MOD/kwok/go.mod sigs.k8s.io/kwok)
[ -n "$K8S" ] && [ -n "$KWOK" ] || { echo "build-controlplane: no k8s.io/kubernetes or sigs.k8s.io/kwok version in $MOD" >&2; exit 2; }
K8S_DIR=$TOOLS/k8s-$K8S
KWOK_DIR=$TOOLS/kwok-$KWOK
K8S_STAMP=$K8S_DIR/.built-$(inputs_hash $MOD/go.mod $MOD/go.sum $MOD/etcd/main.go)
KWOK_STAMP=$KWOK_DIR/.built-$(inputs_hash $MOD/kwok/go.mod $MOD/kwok/go.sum)

if [ -f "$K8S_STAMP" ] && [ -f "$KWOK_STAMP" ]; then
  echo "deps: control plane $K8S and kwok $KWOK built"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "build-controlplane: Go is needed to build the control plane (Go 1.26 at /usr/local/go)" >&2
  exit 2
fi

# True when the build lock is held by this process or one it runs under (e.g. the developer ran
# `flock /tmp/tasklease-build.lock make build`): taking it again would wait forever.
lock_held_above() {
  [ -e "$LOCK" ] || return 1
  local ino holders pid
  ino=$(stat -c '%i' "$LOCK")
  holders=$(awk -v ino="$ino" '$2 == "FLOCK" { n = split($6, f, ":"); if (f[n] == ino) print $5 }' /proc/locks 2>/dev/null || true)
  [ -n "$holders" ] || return 1
  pid=$$
  while [ "$pid" -gt 1 ]; do
    grep -qx "$pid" <<<"$holders" && return 0
    pid=$(awk '{ print $4 }' "/proc/$pid/stat" 2>/dev/null || echo 1)
  done
  return 1
}
if ! lock_held_above; then
  exec 9>"$LOCK"
  echo "deps: waiting for the build lock $LOCK" >&2
  flock 9
  # Another checkout sharing .tools may have built the same versions meanwhile.
  if [ -f "$K8S_STAMP" ] && [ -f "$KWOK_STAMP" ]; then
    echo "deps: control plane $K8S and kwok $KWOK built"
    exit 0
  fi
fi

mkdir -p "$TOOLS"
started=$(date +%s)

# Builds the packages of the module in dir $1 into $2/bin with linker flags $3.
gobuild() {
  local dir=$1 out=$2 ldflags=$3; shift 3
  (cd "$dir" && go build -trimpath -buildvcs=false -tags selinux,notest,grpcnotrace \
     -ldflags "-s -w $ldflags" -o "$out/bin/" "$@")
}

if [ ! -f "$K8S_STAMP" ]; then
  echo "deps: building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $K8S and etcd from the Go module proxy (the first build takes a while)"
  # /version reports the release: the fields Kubernetes' own build sets (hack/lib/version.sh);
  # the build date is the release's time on the proxy, so the build is reproducible. The proxy
  # serves no Git history, so gitCommit is left empty.
  date=$(cd $MOD && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
  minor=${K8S#v*.}; minor=${minor%%.*}; major=${K8S#v}; major=${major%%.*}
  ld=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$K8S -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date -X $pkg.gitCommit="
  done
  tmp=$(mktemp -d "$TOOLS/.k8s-$K8S.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  gobuild $MOD "$tmp" "$ld" k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl ./etcd
  rm -rf "$K8S_DIR"
  mv "$tmp" "$K8S_DIR"
  chmod 755 "$K8S_DIR"
  trap - EXIT
  touch "$K8S_STAMP"
fi

if [ ! -f "$KWOK_STAMP" ]; then
  echo "deps: building kwok $KWOK from the Go module proxy"
  tmp=$(mktemp -d "$TOOLS/.kwok-$KWOK.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  gobuild $MOD/kwok "$tmp" "-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK#v}" sigs.k8s.io/kwok/cmd/kwok
  # KWOK's own stages, as kwokctl configures them by default: a node becomes Ready and keeps
  # its Lease; a pod becomes Running and Ready, a Job's pod then Succeeds, a deleted pod goes.
  src=$(cd $MOD/kwok && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo "---"; cat "$src/$f"
  done > "$tmp/stages.yaml"
  rm -rf "$KWOK_DIR"
  mv "$tmp" "$KWOK_DIR"
  chmod 755 "$KWOK_DIR"
  trap - EXIT
  touch "$KWOK_STAMP"
fi

echo "deps: control plane $K8S and kwok $KWOK built in $(( $(date +%s) - started )) s"
ls -l "$K8S_DIR/bin" "$KWOK_DIR/bin" | awk 'NF > 5 { printf "deps:   %-24s %4d MB\n", $NF, $5 / 1048576 }'
