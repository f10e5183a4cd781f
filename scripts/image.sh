#!/usr/bin/env bash
# Builds the tasklease image from the repository's Dockerfile and checks what the chart relies on:
# both binaries, run as UID 65532, every shared library resolved.
#
#   scripts/image.sh [TAG]            # default tasklease:<chart appVersion>; `make image`
#
# With a working Docker engine it runs `docker build`. Without one (this project's development
# machines, many CI runners) it builds the same Dockerfile with buildah from Debian's archive,
# daemonless, with chroot isolation. buildah pulls the two base images (debian:bookworm and
# debian:bookworm-slim) when a registry is reachable; when none is, it makes them from Debian's
# archive with debootstrap (minbase, plus the path excludes of the official slim image), so the
# build needs nothing but a Debian mirror. The result is also saved as a docker-archive tarball
# (build/image/) that `docker load` and `kind load image-archive` accept.
set -euo pipefail
cd "$(dirname "$0")/.."

app_version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' helm/tasklease/Chart.yaml)
tag=${1:-tasklease:${app_version}}
out_dir=${IMAGE_OUT_DIR:-build/image}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf 'image: %s\n' "$*"; }

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  log "docker build -t $tag ."
  docker build -t "$tag" .
  runner=(docker run --rm)
else
  need=()
  command -v buildah >/dev/null 2>&1 || need+=(buildah)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  if ((${#need[@]})); then
    log "no Docker engine; installing ${need[*]} from Debian's archive"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
  fi

  # debian:bookworm and debian:bookworm-slim: pulled when a registry answers, else debootstrapped.
  make_base() {
    local ref=$1 slim=$2 root ctr mnt
    if buildah inspect --type image "$ref" >/dev/null 2>&1; then return; fi
    if timeout 120 buildah pull -q "$ref" >/dev/null 2>&1; then log "pulled $ref"; return; fi
    log "no registry reachable for $ref: debootstrapping it from $mirror"
    root=$(mktemp -d /tmp/tasklease-rootfs.XXXXXX)
    if [ "$slim" = slim ]; then
      # The official slim image's dpkg filter: no documentation, manuals or translations.
      mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
      printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
        'path-exclude /usr/share/groff/*' 'path-exclude /usr/share/info/*' \
        'path-exclude /usr/share/linda/*' 'path-exclude /usr/share/lintian/overrides/*' \
        'path-exclude /usr/share/locale/*' 'path-exclude /usr/share/man/*' \
        >"$root/etc/dpkg/dpkg.cfg.d/docker"
    fi
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
      || { tail -20 "$root.log"; rm -rf "$root"; exit 1; }
    if [ "$slim" = slim ]; then
      # debootstrap unpacks its first packages before dpkg reads the filter: remove what it let in.
      find "$root/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
      rm -rf "$root"/usr/share/{groff,info,linda,locale,man}/* "$root/usr/share/lintian/overrides"
    fi
    # The official images' apt configuration: no package caches or translations left in layers.
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
    rm -f "$root/etc/apt/sources.list"
    cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
    ctr=$(buildah from scratch)
    mnt=$(buildah mount "$ctr")
    cp -a "$root/." "$mnt/"
    buildah umount "$ctr" >/dev/null
    buildah config --cmd bash \
      --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
    buildah commit -q "$ctr" "$ref" >/dev/null
    buildah rm "$ctr" >/dev/null
    rm -rf "$root" "$root.log"
  }
  make_base docker.io/library/debian:bookworm full
  make_base docker.io/library/debian:bookworm-slim slim

  log "buildah bud -t $tag . (chroot isolation)"
  buildah bud --isolation chroot --pull-never --layers -t "$tag" .
  runner=(buildah-run)
fi

# What the chart relies on, checked inside the image itself.
config_user() {
  if [ "${runner[0]}" = buildah-run ]; then buildah inspect --type image --format '{{.OCIv1.Config.User}}' "$tag"
  else docker image inspect --format '{{.Config.User}}' "$tag"; fi
}
in_image() {  # runs a command in a throwaway container of the image, as the image's user
  if [ "${runner[0]}" = buildah-run ]; then
    local ctr rc=0
    ctr=$(buildah from --pull-never "$tag")
    buildah run --isolation chroot --user "$(config_user)" "$ctr" -- "$@" || rc=$?
    buildah rm "$ctr" >/dev/null
    return $rc
  fi
  docker run --rm "$tag" "$@"
}

user=$(config_user)
[ "$user" = "65532:65532" ] || { log "image user is '$user', expected 65532:65532"; exit 1; }
in_image sh -c 'test "$(id -u)" = 65532' || { log "the image does not run as UID 65532"; exit 1; }
for bin in tasklease-webhook tasklease-operator; do
  if in_image ldd "/usr/local/bin/$bin" | grep -q 'not found'; then
    in_image ldd "/usr/local/bin/$bin" | grep 'not found'
    log "$bin: unresolved shared libraries"; exit 1
  fi
  in_image "/usr/local/bin/$bin" --help >/dev/null \
    || { log "$bin --help failed inside the image"; exit 1; }
  log "$bin: runs as 65532, every library resolved"
done

mkdir -p "$out_dir"
archive="$out_dir/${tag//[:\/]/_}.tar"
if [ "${runner[0]}" = buildah-run ]; then
  rm -f "$archive"
  buildah push -q "$tag" "docker-archive:$archive:$tag" >/dev/null
  size=$(buildah images --format '{{.Size}}' "$tag" | head -1)
else
  docker save -o "$archive" "$tag"
  size=$(docker image inspect --format '{{.Size}}' "$tag")
fi
log "built $tag ($size); saved as $archive ($(du -h "$archive" | cut -f1))"
log "load it with: docker load -i $archive   or   kind load image-archive $archive"
