#!/usr/bin/env bash
# Runs every default test of the project: formatting and vet checks, the unit
# and process-level tests of the main module (compatibility tests included,
# against reference etcd binaries that are built and cached on first use),
# and the benchmark harness's plumbing test.
#
# Longer suites live behind build tags or environment variables and have
# their own commands (see README.md). CAIRN_K8S=1 adds Kubernetes' storage
# tests (tests/k8s, its own module: about 8 minutes with a warm build cache,
# 20 on a fresh one; see docs/kubernetes.md).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== reference binaries"
scripts/build-refs.sh 3.6.16 >/dev/null

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test"
go test -count=1 -timeout 20m ./...

echo "== cairnctl on cairn vs etcdctl on etcd 3.6.16 (differential, whole stack)"
CAIRNCTL_COMPAT_SERVER=mixed go test -count=1 -run TestCompatWithEtcdctl ./internal/ctl

if [ -f bench/go.mod ]; then
  echo "== bench (plumbing)"
  (cd bench && go vet ./... && go test -count=1 -timeout 10m ./...)
fi

if [ -n "${CAIRN_K8S:-}" ] && [ -f tests/k8s/go.mod ]; then
  echo "== Kubernetes storage tests on cairn and etcd 3.6.16 (CAIRN_K8S)"
  (cd tests/k8s && go vet ./... && go test -count=1 -timeout 60m ./...)
fi
