#!/usr/bin/env bash
# Build a pinned k6 from its Go module into <repo>/.cache/bin/k6.
#
# Idempotent: if .cache/bin/k6 already reports the pinned version, nothing is
# built. Progress goes to stderr; the binary's path is printed on stdout.
#
# Requires Go >= 1.25 (k6 v1.8.x's go.mod says `go 1.25.0`) and access to a Go
# module proxy. Everything (GOPATH, module cache, build cache) lives under
# <repo>/.cache/go so nothing depends on the user's home directory.
#
# In this k6 version WebSockets are built in: import { WebSocket } from 'k6/websockets'
# ('k6/experimental/websockets' still resolves but logs a deprecation warning).
set -euo pipefail

K6_VERSION="${K6_VERSION:-v1.8.1}"
K6_MODULE="go.k6.io/k6"

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "${SCRIPT_DIR}/.." && pwd -P)"
CACHE_DIR="${REPO_ROOT}/.cache"
BIN_DIR="${CACHE_DIR}/bin"
K6_BIN="${BIN_DIR}/k6"

log() { printf '[install-k6] %s\n' "$*" >&2; }

# `k6 version` prints e.g. "k6 v1.8.1 (commit/devel, go1.26.8, linux/amd64)".
installed_version() {
  [[ -x "${K6_BIN}" ]] || return 0
  "${K6_BIN}" version 2>/dev/null | awk 'NR==1 && $1=="k6" {print $2}' || true
}

current="$(installed_version)"
if [[ "${current}" == "${K6_VERSION}" ]]; then
  log "k6 ${K6_VERSION} already installed at ${K6_BIN}; nothing to do"
  printf '%s\n' "${K6_BIN}"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  log "error: 'go' not found on PATH (need Go >= 1.25 to build k6 ${K6_VERSION})"
  exit 1
fi

if [[ -n "${current}" ]]; then
  log "found k6 ${current} at ${K6_BIN}, want ${K6_VERSION}; rebuilding"
elif [[ -e "${K6_BIN}" ]]; then
  log "existing ${K6_BIN} is unusable; rebuilding"
fi

mkdir -p "${BIN_DIR}" "${CACHE_DIR}/go"

export GOPATH="${CACHE_DIR}/go"
export GOMODCACHE="${CACHE_DIR}/go/pkg/mod"
export GOCACHE="${CACHE_DIR}/go/cache"
export GOBIN="${BIN_DIR}"
# -modcacherw: keep the module cache deletable with a plain `rm -rf .cache`.
export GOFLAGS="-mod=mod -modcacherw"
# Build with the local Go; never try to download another toolchain.
export GOTOOLCHAIN=local
# Static binary, no C toolchain needed.
export CGO_ENABLED=0
# `go install pkg@version` ignores any go.work / go.mod in the current dir,
# but be explicit so a parent go.work can't interfere.
export GOWORK=off

log "building ${K6_MODULE}@${K6_VERSION} with $(go version | awk '{print $3}') (this takes a few minutes on a cold cache)..."
start=$SECONDS
# Build into a temp GOBIN and move into place atomically, so an interrupted
# build never leaves a half-written .cache/bin/k6 behind.
tmp_bin="$(mktemp -d "${BIN_DIR}/.k6-build.XXXXXX")"
trap 'rm -rf "${tmp_bin}"' EXIT
(cd "${CACHE_DIR}" && GOBIN="${tmp_bin}" go install -trimpath "${K6_MODULE}@${K6_VERSION}")
mv -f "${tmp_bin}/k6" "${K6_BIN}"
log "built in $((SECONDS - start))s"

got="$(installed_version)"
if [[ "${got}" != "${K6_VERSION}" ]]; then
  log "error: ${K6_BIN} reports version '${got}', expected ${K6_VERSION}"
  exit 1
fi

log "installed k6 ${K6_VERSION} at ${K6_BIN}"
printf '%s\n' "${K6_BIN}"
