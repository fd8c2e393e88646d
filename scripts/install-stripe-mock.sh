#!/usr/bin/env bash
# Builds Stripe's own API mock server (stripe-mock, MIT) from the Go module proxy into
# .cache/bin, for the payments tests. Idempotent: does nothing when the pinned version is there.
set -euo pipefail
VERSION=v0.203.0
source "$(dirname "$0")/go-tool.sh"
go_tool stripe-mock "$VERSION" stripe-mock
GOBIN="$bin" go install "github.com/stripe/stripe-mock@$VERSION"
touch "$stamp"
echo "stripe-mock $VERSION in $bin"
