# Sourced by the install-* scripts that build a pinned Go tool into .cache/bin:
# `go_tool NAME VERSION BINARY` exits the script when that version is built already, fails when
# Go is missing, and otherwise leaves `$root`, `$bin` and `$stamp` (touch it once built) set.
go_tool() {
  local name=$1 version=$2 binary=$3
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  bin="$root/.cache/bin"
  stamp="$bin/.$binary-$version"
  if [[ -x "$bin/$binary" && -f "$stamp" ]]; then
    exit 0
  fi
  if ! command -v go >/dev/null; then
    echo "install-$binary: Go is needed to build $name (apt-get install golang-go)" >&2
    exit 1
  fi
  mkdir -p "$bin"
}
