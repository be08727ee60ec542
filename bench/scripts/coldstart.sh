#!/usr/bin/env bash
# coldstart.sh: the cost of a cluster's first seconds of load.
#
# Starts a fresh 3-member cluster of BINARY on 127.0.0.71-73, then runs etcd's
# `benchmark put` (100 clients / 10 connections over all three endpoints,
# 8 B keys in a 100k key space, 256 B values: the put-3m-100c load) RUNS
# times in a row against it, and prints for each run the throughput, the
# members' CPU per put and the members' minor page faults (both from
# /proc/<pid>/stat). cairnbench's quick mode measures the first run only;
# docs/performance.md ("Full-size runs of the write and cluster targets")
# explains why the first run differs.
#
# usage: bench/scripts/coldstart.sh BINARY [PUTS_PER_RUN [RUNS]]
#   e.g. go build -o /tmp/cairn ./cmd/cairn && bench/scripts/coldstart.sh /tmp/cairn
#        bench/scripts/coldstart.sh ~/.cache/cairn-refs/etcd-v3.6.16/etcd
# Needs the reference tools (scripts/build-refs.sh builds them); BENCHMARK and
# ETCDCTL override their paths.
set -euo pipefail

bin=${1:?usage: coldstart.sh BINARY [PUTS_PER_RUN [RUNS]]}
total=${2:-10000}
runs=${3:-5}
refs=${CAIRN_REFS:-$HOME/.cache/cairn-refs}
benchmark=${BENCHMARK:-$refs/etcd-tools-v3.6.8/benchmark}
etcdctl=${ETCDCTL:-$refs/etcd-v3.6.16/etcdctl}
hz=$(getconf CLK_TCK)

dir=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
	rm -rf "$dir"
}
trap cleanup EXIT

initial=""
for i in 1 2 3; do initial="$initial,m$i=http://127.0.0.7$i:2380"; done
initial=${initial#,}
endpoints=http://127.0.0.71:2379,http://127.0.0.72:2379,http://127.0.0.73:2379
for i in 1 2 3; do
	"$bin" --name "m$i" --data-dir "$dir/m$i" \
		--listen-client-urls "http://127.0.0.7$i:2379" --advertise-client-urls "http://127.0.0.7$i:2379" \
		--listen-peer-urls "http://127.0.0.7$i:2380" --initial-advertise-peer-urls "http://127.0.0.7$i:2380" \
		--initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token coldstart \
		>"$dir/m$i.log" 2>&1 &
	pids+=($!)
done
for _ in $(seq 1 300); do
	"$etcdctl" --endpoints "$endpoints" endpoint health >/dev/null 2>&1 && break
	sleep 0.2
done
"$etcdctl" --endpoints "$endpoints" endpoint health >/dev/null

# sum FIELD: the sum over the members of /proc/<pid>/stat field FIELD.
sum() {
	local s=0 p
	for p in "${pids[@]}"; do s=$((s + $(awk -v f="$1" '{print $f}' "/proc/$p/stat"))); done
	echo "$s"
}

printf '%-4s %10s %14s %12s\n' run puts/s cpu-us/put faults
for r in $(seq 1 "$runs"); do
	cpu0=$(( $(sum 14) + $(sum 15) )); flt0=$(sum 10)
	rps=$("$benchmark" --endpoints "$endpoints" --clients 100 --conns 10 --precise put \
		--key-size 8 --val-size 256 --key-space-size 100000 --total "$total" 2>&1 |
		awk '/Requests\/sec/ {printf "%.0f", $2}')
	cpu1=$(( $(sum 14) + $(sum 15) )); flt1=$(sum 10)
	printf '%-4s %10s %14s %12s\n' "$r" "$rps" $(( (cpu1 - cpu0) * 1000000 / hz / total )) $((flt1 - flt0))
done
