#!/usr/bin/env bash
# Builds the reference etcd binaries that compatibility tests and benchmarks run
# against, from their published Go modules, into a cache that survives between
# runs. Usage: scripts/build-refs.sh [version ...]   (default: 3.6.16 3.7.3)
#
# Layout: $CAIRN_REFS/etcd-v<ver>/{etcd,etcdctl,etcdutl}
#         $CAIRN_REFS/etcd-tools-v3.6.8/{benchmark,etcd-dump-logs}
# The root module go.etcd.io/etcd/v3 (benchmark, etcd-dump-logs) is served by
# the module proxy only up to v3.6.8; those tools speak to any server version.
set -euo pipefail

REFS="${CAIRN_REFS:-$HOME/.cache/cairn-refs}"
versions=("$@")
[ ${#versions[@]} -eq 0 ] && versions=(3.6.16 3.7.3)
TOOLS_VERSION=3.6.8

build_in_module() { # dir, then "module@version" requirements, then package paths after --
  local dir=$1; shift
  local reqs=() pkgs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do reqs+=("$1"); shift; done
  shift
  pkgs=("$@")
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  (
    cd "$tmp"
    go mod init cairn.local/refbuild >/dev/null 2>&1
    for r in "${reqs[@]}"; do go mod edit -require="$r"; done
    printf 'package refbuild\n' > doc.go
    for p in "${pkgs[@]}"; do
      name=${p%%=*}; path=${p#*=}
      GOFLAGS=-mod=mod go build -trimpath -o "$dir/$name.new" "$path"
      mv "$dir/$name.new" "$dir/$name"
    done
  )
}

for v in "${versions[@]}"; do
  out="$REFS/etcd-v$v"
  if [ -x "$out/etcd" ] && [ -x "$out/etcdctl" ] && [ -x "$out/etcdutl" ]; then
    continue
  fi
  mkdir -p "$out"
  echo "building etcd v$v reference binaries into $out" >&2
  build_in_module "$out" \
    "go.etcd.io/etcd/server/v3@v$v" "go.etcd.io/etcd/etcdctl/v3@v$v" "go.etcd.io/etcd/etcdutl/v3@v$v" -- \
    "etcd=go.etcd.io/etcd/server/v3" "etcdctl=go.etcd.io/etcd/etcdctl/v3" "etcdutl=go.etcd.io/etcd/etcdutl/v3"
done

tools="$REFS/etcd-tools-v$TOOLS_VERSION"
if ! { [ -x "$tools/benchmark" ] && [ -x "$tools/etcd-dump-logs" ]; }; then
  mkdir -p "$tools"
  echo "building etcd v$TOOLS_VERSION tools (benchmark, etcd-dump-logs) into $tools" >&2
  build_in_module "$tools" "go.etcd.io/etcd/v3@v$TOOLS_VERSION" -- \
    "benchmark=go.etcd.io/etcd/v3/tools/benchmark" "etcd-dump-logs=go.etcd.io/etcd/v3/tools/etcd-dump-logs"
fi
echo "$REFS"
