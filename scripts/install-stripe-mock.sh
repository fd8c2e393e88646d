#!/usr/bin/env bash
# Builds Stripe's own API mock server (stripe-mock, MIT) from the Go module proxy into
# .cache/bin, for the payments tests. Idempotent: does nothing when the pinned version is there.
set -euo pipefail
VERSION=v0.203.0
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.cache/bin"
stamp="$bin/.stripe-mock-$VERSION"
if [[ -x "$bin/stripe-mock" && -f "$stamp" ]]; then
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "install-stripe-mock: Go is needed to build stripe-mock (apt-get install golang-go)" >&2
  exit 1
fi
mkdir -p "$bin"
GOBIN="$bin" go install "github.com/stripe/stripe-mock@$VERSION"
touch "$stamp"
echo "stripe-mock $VERSION in $bin"
