#!/usr/bin/env bash
# Fetch the Kubernetes API's OpenAPI v3 schemas for one release into
# <repo>/.cache/k8s-openapi/<version>/, for scripts/k8s-validate.ts. They come from the
# k8s.io/kubernetes module on the Go module proxy (api/openapi-spec/v3), checksummed by Go.
#
# Idempotent: when that version is already there, exits at once.
# Usage: bash scripts/fetch-k8s-openapi.sh   Env: K8S_VERSION (default below), GO (default: go)
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
GO="${GO:-go}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$REPO_ROOT/.cache/k8s-openapi/$K8S_VERSION"
log() { echo "fetch-k8s-openapi: $*" >&2; }

if [[ -f "$DEST/.complete" ]]; then
  log "Kubernetes $K8S_VERSION schemas already in $DEST; nothing to do"
  exit 0
fi
command -v "$GO" >/dev/null 2>&1 || { log "error: '$GO' not found (Go is needed to fetch the k8s.io/kubernetes module)"; exit 1; }

mkdir -p "$(dirname "$DEST")"
exec 9>"$(dirname "$DEST")/.lock"
flock 9
[[ -f "$DEST/.complete" ]] && exit 0

tmp="$(mktemp -d)"
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
log "go mod download k8s.io/kubernetes@$K8S_VERSION"
dir="$(cd "$tmp" && GOMODCACHE="$tmp/mod" GOFLAGS=-mod=mod "$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$dir/api/openapi-spec/v3" ]] || { log "error: no api/openapi-spec/v3 in the module"; exit 1; }
rm -rf "$DEST"
mkdir -p "$DEST"
cp "$dir"/api/openapi-spec/v3/*.json "$DEST/"
chmod -R u+w "$DEST"
touch "$DEST/.complete"
log "$(ls "$DEST" | wc -l) schema files in $DEST"
