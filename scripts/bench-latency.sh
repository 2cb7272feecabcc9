#!/usr/bin/env bash
# bench-latency.sh runs the durable-latency comparison of docs/benchmarks.md
# (issue 15) on this machine, in one run:
#
#   spool-before  `spool serve --fsync always` built from BEFORE (default: the
#                 commit before storage's commit log was added)
#   spool-after   the same, built from the working tree
#   redis         Redis Streams, redis-server --appendfsync always (Debian
#                 redis-server), through internal/tools/redisbench
#   kfake-sync    franz-go's kfake with SyncWrites (internal/tools/kfakebroker)
#
# Latency: 5,000 records/s of 1 KiB values, 1,000 keys, linger 0, acks=all,
# for LATENCY_DURATION, with 1 and 8 partitions (Redis: streams), end to end
# (send to receipt by a tailing consumer). The Spool runs also report the
# broker's fsyncs (spool bench --broker-metrics).
# Throughput: 1M x 1 KiB, 8 partitions, linger 5 ms, acks=all, no tailing
# consumer, for spool-before and spool-after.
#
# ROUNDS rounds (default 3) run all of the above one after the other, so every
# system sees the same minutes of the machine; the summary gives each round
# and the median over the rounds, and checks the targets on the medians. One
# short run's p99 is set by whether the (shared, virtual) disk stalls during
# it, so a single round can say nothing either way.
#
# The Spool brokers run with SPOOL_FLAGS (default "--lookback=false"): the
# lookback archive is a Kafka client of the broker that keeps a second copy
# of every record in its own store with its own fsyncs, work Redis does not
# do; SPOOL_FLAGS="" measures the broker with the archive on.
#
# Usage: scripts/bench-latency.sh [RESULT_DIR]
# Environment: BEFORE (git ref), ROUNDS (default 3), SPOOL_FLAGS (see above),
# AFTER_FLAGS (extra `spool serve` flags for spool-after only, e.g.
# "--commit-log-max-batch 1048576"), AFTER_ENV (environment for the
# spool-after broker only, e.g. "GOGC=400"), LATENCY_DURATION (default 30s),
# RECORDS (default 1000000), BENCH_DATA (default a new directory under
# /var/tmp: a real disk, not tmpfs).
set -euo pipefail

cd "$(dirname "$0")/.."
RESULTS=${1:-bench-results/latency-$(date -u +%Y%m%dT%H%M%SZ)}
LATENCY_DURATION=${LATENCY_DURATION:-30s}
RECORDS=${RECORDS:-1000000}
BEFORE=${BEFORE:-$(git log -n1 --diff-filter=A --format=%H -- storage/commitlog.go)^}
ROUNDS=${ROUNDS:-3}
SPOOL_FLAGS=${SPOOL_FLAGS---lookback=false}
AFTER_FLAGS=${AFTER_FLAGS:-}
AFTER_ENV=${AFTER_ENV:-}
BENCH_DATA=${BENCH_DATA:-$(mktemp -d /var/tmp/spool-latency.XXXXXX)}
command -v redis-server >/dev/null || { echo "redis-server not found (apt-get install redis-server)" >&2; exit 1; }
mkdir -p "$RESULTS" "$BENCH_DATA"
BIN=$(mktemp -d)
pid=

cleanup() {
	if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$BIN" "$BENCH_DATA"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "building spool (working tree and $BEFORE), redisbench, kfakebroker"
go build -o "$BIN/spool-after" ./cmd/spool
mkdir -p "$BIN/before-src"
git archive "$BEFORE" | tar -x -C "$BIN/before-src"
(cd "$BIN/before-src" && go build -o "$BIN/spool-before" ./cmd/spool)
go build -o "$BIN/redisbench" ./internal/tools/redisbench
go build -o "$BIN/kfakebroker" ./internal/tools/kfakebroker

{
	echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "after:   $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (working tree has uncommitted changes)')"
	echo "before:  $(git rev-parse --short "$BEFORE")"
	echo "rounds:  $ROUNDS"
	echo "spool flags: ${SPOOL_FLAGS:-(defaults)}"
	echo "after flags: ${AFTER_FLAGS:-(defaults)}"
	echo "after env: ${AFTER_ENV:-(none)}"
	echo "go:      $(go version)"
	echo "redis:   $(redis-server --version)"
	echo "cpu:     $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
	echo "disk:    $(df -T "$BENCH_DATA" | awk 'NR==2 {print $2, $1}')"
	echo "latency: 5000/s for $LATENCY_DURATION; throughput: $RECORDS records"
	echo "load before: $(uptime)"
} | tee "$RESULTS/machine.txt"

wait_kafka() {
	for _ in $(seq 1 100); do
		if "$BIN/spool-after" topic list --brokers "$1" --timeout 1s >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "broker at $1 did not come up" >&2
	return 1
}

stop() {
	kill "$pid"
	wait "$pid" || true
	pid=
}

# spool NAME PARTITIONS ROUND: one latency run (and, with 8 partitions, a throughput run) against a fresh broker.
spool() {
	local name=$1 parts=$2 round=$3 port http extra=() env=()
	read -r -a extra <<<"$SPOOL_FLAGS"
	if [[ $name == spool-after ]]; then
		local after=()
		read -r -a after <<<"$AFTER_FLAGS"
		extra+=("${after[@]}")
		read -r -a env <<<"$AFTER_ENV"
	fi
	port=$(free_port)
	http=$(free_port)
	rm -rf "${BENCH_DATA:?}/$name"
	# The previous run's dirty pages are written back now, not during this run.
	sync
	env "${env[@]}" "$BIN/$name" serve --data "$BENCH_DATA/$name" --listen "127.0.0.1:$port" --http "127.0.0.1:$http" \
		--fsync always --log-level warn "${extra[@]}" >"$RESULTS/$name-p$parts-r$round-broker.log" 2>&1 &
	pid=$!
	wait_kafka "127.0.0.1:$port"
	echo "== round $round, $name: latency, $parts partitions"
	"$BIN/spool-after" bench --brokers "127.0.0.1:$port" --rate 5000 -d "$LATENCY_DURATION" -s 1024 -k 1000 \
		-p "$parts" --acks all --linger 0 --broker-metrics "http://127.0.0.1:$http/metrics" --json -q \
		>"$RESULTS/$name-latency-p$parts-r$round.json"
	if [[ $parts == 8 ]]; then
		echo "== round $round, $name: throughput"
		"$BIN/spool-after" bench --brokers "127.0.0.1:$port" -n "$RECORDS" -s 1024 -k 1000 -p 8 --acks all \
			--linger 5ms --no-tail --broker-metrics "http://127.0.0.1:$http/metrics" --json -q \
			>"$RESULTS/$name-throughput-r$round.json"
	fi
	stop
}

redis() {
	local parts=$1 round=$2 port dir
	port=$(free_port)
	dir="$BENCH_DATA/redis-$parts"
	mkdir -p "$dir"
	sync
	redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync always \
		--save "" --daemonize no >"$RESULTS/redis-p$parts-r$round-server.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do
		if redis-cli -p "$port" ping >/dev/null 2>&1; then break; fi
		sleep 0.1
	done
	echo "== round $round, redis: latency, $parts streams"
	"$BIN/redisbench" --addr "127.0.0.1:$port" --rate 5000 -d "$LATENCY_DURATION" -s 1024 -k 1000 -p "$parts" \
		--json >"$RESULTS/redis-latency-p$parts-r$round.json"
	stop
	rm -rf "$dir" # the next round's server starts without this one's AOF
}

kfake() {
	local parts=$1 round=$2 port
	port=$(free_port)
	rm -rf "${BENCH_DATA:?}/kfake"
	sync
	"$BIN/kfakebroker" --listen "127.0.0.1:$port" --data "$BENCH_DATA/kfake" --sync-writes \
		>"$RESULTS/kfake-sync-p$parts-r$round-broker.log" 2>&1 &
	pid=$!
	wait_kafka "127.0.0.1:$port"
	echo "== round $round, kfake-sync: latency, $parts partitions"
	"$BIN/spool-after" bench --brokers "127.0.0.1:$port" --rate 5000 -d "$LATENCY_DURATION" -s 1024 -k 1000 \
		-p "$parts" --acks all --linger 0 --json -q >"$RESULTS/kfake-sync-latency-p$parts-r$round.json"
	stop
}

for round in $(seq 1 "$ROUNDS"); do
	for parts in 8 1; do
		spool spool-before "$parts" "$round"
		spool spool-after "$parts" "$round"
		redis "$parts" "$round"
		kfake "$parts" "$round"
	done
done

echo "load after: $(uptime)" | tee -a "$RESULTS/machine.txt"

python3 - "$RESULTS" "$ROUNDS" <<'PY' | tee "$RESULTS/summary.md"
import json, os, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
def load(name):
    with open(os.path.join(d, name + ".json")) as f:
        return json.load(f)
names = ["spool-before", "spool-after", "redis", "kfake-sync"]
print("| round | broker | partitions | e2e p50 / p99 / p99.9 / max (ms) | ack p50 / p99 (ms) | fsyncs/s | fsyncs per request | fsyncs per record |")
print("|---|---|---|---|---|---|---|---|")
lat = {}
for parts in (1, 8):
    for n in names:
        for r in range(1, rounds + 1):
            res = load(f"{n}-latency-p{parts}-r{r}")
            lat.setdefault((n, parts), []).append(res)
            e, a, b = res["end_to_end_latency"], res["produce_latency"], res.get("broker")
            fs = f"{b['fsyncs_per_sec']:.0f} | {b['fsyncs_per_request']:.2f} | {b['fsyncs_per_record']:.2f}" if b else "- | - | -"
            print(f"| {r} | {n} | {parts} | {e['p50_ms']:.2f} / {e['p99_ms']:.2f} / {e['p999_ms']:.2f} / {e['max_ms']:.2f} | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} | {fs} |")
def med(n, parts, q):
    return statistics.median(r["end_to_end_latency"][q] for r in lat[(n, parts)])
print()
print(f"Median over {rounds} rounds, end to end (ms):")
print()
print("| broker | partitions | p50 | p99 | p99.9 |")
print("|---|---|---|---|---|")
for parts in (1, 8):
    for n in names:
        print(f"| {n} | {parts} | {med(n, parts, 'p50_ms'):.2f} | {med(n, parts, 'p99_ms'):.2f} | {med(n, parts, 'p999_ms'):.2f} |")
print()
def mark(ok): return "met" if ok else "MISSED"
for parts in (1, 8):
    s50, s99, r50, r99 = med("spool-after", parts, "p50_ms"), med("spool-after", parts, "p99_ms"), med("redis", parts, "p50_ms"), med("redis", parts, "p99_ms")
    wins = sum(a["end_to_end_latency"]["p99_ms"] <= b["end_to_end_latency"]["p99_ms"] for a, b in zip(lat[("spool-after", parts)], lat[("redis", parts)]))
    print(f"- {parts} partitions (medians): Spool p99 {s99:.2f} ms <= Redis p99 {r99:.2f} ms: {mark(s99 <= r99)} "
          f"(Spool at or below Redis in {wins} of {rounds} rounds); Spool p50 {s50:.2f} ms <= 2 x Redis p50 {r50:.2f} ms: {mark(s50 <= 2 * r50)}")
tb = [load(f"spool-before-throughput-r{r}")["produce"]["records_per_sec"] for r in range(1, rounds + 1)]
ta = [load(f"spool-after-throughput-r{r}")["produce"]["records_per_sec"] for r in range(1, rounds + 1)]
mb, ma = statistics.median(tb), statistics.median(ta)
print(f"- produce throughput (1M x 1 KiB, linger 5 ms), rounds {', '.join(f'{x:.0f}' for x in ta)} after and {', '.join(f'{x:.0f}' for x in tb)} before: "
      f"median after {ma:.0f} rec/s vs before {mb:.0f} rec/s ({ma / mb:.2f}x): {mark(ma >= mb)}")
PY
echo "results in $RESULTS"
