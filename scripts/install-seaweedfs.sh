#!/usr/bin/env bash
# Builds SeaweedFS (Apache-2.0) from the Go module proxy into .cache/bin/weed: the S3-compatible
# store the storage contract suite and the attachment tests run against. Idempotent: does nothing
# when the pinned version is there. `go install pkg@version` refuses this module because its
# go.mod carries a `replace`, so a throwaway wrapper module requires it with the same replace.
set -euo pipefail
VERSION=v0.0.0-20261109003541-7506e5f91cd6
source "$(dirname "$0")/go-tool.sh"
go_tool SeaweedFS "$VERSION" weed
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat >"$work/go.mod" <<MOD
module hubbub.local/weed-build

go 1.24

require github.com/seaweedfs/seaweedfs $VERSION

replace github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0
MOD
cat >"$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/seaweedfs/seaweedfs/weed"
GO
cd "$work"
# No `go mod tidy`: it downloads every module of the whole graph (about 3.7 GB, most of an hour).
# `-mod=mod` resolves only what the weed package imports (about 2.2 GB; 12 minutes from an empty
# module cache on a loaded 2-core box) and records it in go.sum as it goes.
GOFLAGS="-mod=mod -buildvcs=false" go build -o "$bin/weed.tmp" github.com/seaweedfs/seaweedfs/weed
mv "$bin/weed.tmp" "$bin/weed"
touch "$stamp"
echo "SeaweedFS $VERSION in $bin"
