#!/usr/bin/env bash
# bench-compare.sh runs the benchmark comparison of docs/benchmarks.md:
# `spool bench` against Spool (--fsync always) and against franz-go's kfake
# with and without SyncWrites, on this machine, in this run.
#
#   scenario 1 (throughput): RECORDS x 1 KiB random values, 1,000 keys,
#     8 partitions, acks=all, linger 5 ms; produce throughput (no concurrent
#     reader), then consume throughput (a fresh consumer reads it all back)
#   scenario 2 (latency): 5,000 records/s offered for LATENCY_DURATION,
#     same records, linger 0; end-to-end p50/p99/p99.9/max
#
# Usage: scripts/bench-compare.sh [RESULT_DIR]
# Environment: RECORDS (default 1000000), LATENCY_DURATION (default 30s),
# BENCH_DATA (broker data, default a new directory under /var/tmp; it must
# be on a real disk, not tmpfs, or fsync costs nothing), PORT_BASE (default
# 19092; uses PORT_BASE..PORT_BASE+2 and PORT_BASE+100).
set -euo pipefail

cd "$(dirname "$0")/.."
RESULTS=${1:-bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
RECORDS=${RECORDS:-1000000}
LATENCY_DURATION=${LATENCY_DURATION:-30s}
PORT_BASE=${PORT_BASE:-19092}
BENCH_DATA=${BENCH_DATA:-$(mktemp -d /var/tmp/spool-bench.XXXXXX)}
mkdir -p "$RESULTS" "$BENCH_DATA"
BIN=$(mktemp -d)
broker_pid=

cleanup() {
	if [[ -n $broker_pid ]]; then kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; fi
	rm -rf "$BIN" "$BENCH_DATA"
}
trap cleanup EXIT

echo "building spool and kfakebroker"
go build -o "$BIN/spool" ./cmd/spool
go build -o "$BIN/kfakebroker" ./internal/tools/kfakebroker

{
	echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (working tree has uncommitted changes)')"
	echo "go:      $(go version)"
	echo "spool:   $("$BIN/spool" version)"
	echo "cpu:     $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
	echo "memory:  $(free -g | awk '/Mem:/ {print $2}') GiB"
	echo "disk:    $(df -T "$BENCH_DATA" | awk 'NR==2 {print $2, $1}')"
	echo "records: $RECORDS; latency run: $LATENCY_DURATION at 5000/s"
	echo "load before: $(uptime)"
} | tee "$RESULTS/machine.txt"

# wait_ready polls the broker with the CLI until it answers.
wait_ready() {
	for _ in $(seq 1 100); do
		if "$BIN/spool" topic list --brokers "$1" --timeout 1s >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "broker at $1 did not come up" >&2
	return 1
}

stop_broker() {
	kill "$broker_pid"
	wait "$broker_pid" || true
	broker_pid=
}

run_target() {
	local name=$1 addr=$2
	shift 2
	rm -rf "${BENCH_DATA:?}/$name"
	mkdir -p "$BENCH_DATA/$name"
	"$@" >"$RESULTS/$name-broker.log" 2>&1 &
	broker_pid=$!
	wait_ready "$addr"
	echo "== $name: throughput"
	"$BIN/spool" bench --brokers "$addr" -n "$RECORDS" -s 1024 -k 1000 -p 8 --acks all --linger 5ms \
		--no-tail --json --progress-interval 5s >"$RESULTS/$name-throughput.json"
	echo "== $name: latency at 5000/s"
	"$BIN/spool" bench --brokers "$addr" --rate 5000 -d "$LATENCY_DURATION" -s 1024 -k 1000 -p 8 --acks all \
		--linger 0 --json --progress-interval 5s >"$RESULTS/$name-latency.json"
	stop_broker
}

run_target spool "127.0.0.1:$PORT_BASE" \
	"$BIN/spool" serve --data "$BENCH_DATA/spool" --listen "127.0.0.1:$PORT_BASE" \
	--http "127.0.0.1:$((PORT_BASE + 100))" --fsync always --log-level warn
run_target kfake-sync "127.0.0.1:$((PORT_BASE + 1))" \
	"$BIN/kfakebroker" --listen "127.0.0.1:$((PORT_BASE + 1))" --data "$BENCH_DATA/kfake-sync" --sync-writes
run_target kfake "127.0.0.1:$((PORT_BASE + 2))" \
	"$BIN/kfakebroker" --listen "127.0.0.1:$((PORT_BASE + 2))" --data "$BENCH_DATA/kfake"

echo "load after: $(uptime)" | tee -a "$RESULTS/machine.txt"

/usr/bin/python3 - "$RESULTS" <<'PY' | tee "$RESULTS/summary.md"
import json, sys, os
d = sys.argv[1]
def load(n, k):
    with open(os.path.join(d, f"{n}-{k}.json")) as f:
        return json.load(f)
names = ["spool", "kfake-sync", "kfake"]
t = {n: load(n, "throughput") for n in names}
l = {n: load(n, "latency") for n in names}
print("| broker | produce rec/s | produce MB/s | consume rec/s | consume MB/s | e2e p50 ms (5k/s) | e2e p99 ms | e2e p99.9 ms | e2e max ms |")
print("|---|---|---|---|---|---|---|---|---|")
for n in names:
    p, c, e = t[n]["produce"], t[n]["consume"], l[n]["end_to_end_latency"]
    print(f"| {n} | {p['records_per_sec']:.0f} | {p['mb_per_sec']:.1f} | {c['records_per_sec']:.0f} | {c['mb_per_sec']:.1f} | {e['p50_ms']:.3f} | {e['p99_ms']:.3f} | {e['p999_ms']:.3f} | {e['max_ms']:.3f} |")
sp, ks, kf = (t[n]["produce"]["records_per_sec"] for n in names)
sc, kc = t["spool"]["consume"]["records_per_sec"], t["kfake"]["consume"]["records_per_sec"]
kcs = t["kfake-sync"]["consume"]["records_per_sec"]
p99 = l["spool"]["end_to_end_latency"]["p99_ms"]
def mark(ok): return "met" if ok else "MISSED"
print()
print(f"- produce >= kfake SyncWrites: {sp:.0f} vs {ks:.0f} rec/s ({sp/ks:.2f}x): {mark(sp >= ks)}")
print(f"- produce >= 0.8x kfake: {sp:.0f} vs {kf:.0f} rec/s ({sp/kf:.2f}x): {mark(sp >= 0.8*kf)}")
print(f"- consume >= kfake: {sc:.0f} vs {kc:.0f} rec/s ({sc/kc:.2f}x; kfake SyncWrites run: {kcs:.0f}): {mark(sc >= kc)}")
print(f"- end-to-end p99 <= 2 ms at 5,000 rec/s: {p99:.3f} ms: {mark(p99 <= 2)}")
PY
echo "results in $RESULTS"
