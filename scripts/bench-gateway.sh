#!/usr/bin/env bash
# bench-gateway.sh runs the gateway benchmarks of docs/benchmarks.md against
# one `spool serve` (--fsync always, data on a real disk), in one run:
#
#   1. native baseline: `spool bench --mode produce --no-tail`, 100-byte
#      values, 8 partitions, acks=all, linger 0 (franz-go batching);
#   2. HTTP produce: POST /api/topics/{topic}/records over CONNS keep-alive
#      connections, one record per request, then 100 per request;
#   3. async round trip at RATE requests/s offered: POST /api/commands ->
#      agent.Reply -> GET /api/requests/{id} with Prefer: wait returns, with
#      a fresh key per command, then without keys.
#
# Each gatewaybench run also prints the CPU time per request of the server
# (spool serve, broker and gateway) and of the load generator, the figure
# that does not depend on what else the machine runs.
#
# Usage: scripts/bench-gateway.sh
# Environment: DURATION (default 20s), CONNS (default 128), RATE (default
# 1000), BENCH_DATA (default a new directory under /var/tmp), PORT_BASE
# (default 19192; the HTTP listener is PORT_BASE+1000).
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-20s}
CONNS=${CONNS:-128}
RATE=${RATE:-1000}
PORT_BASE=${PORT_BASE:-19192}
HTTP_PORT=$((PORT_BASE + 1000))
BENCH_DATA=${BENCH_DATA:-$(mktemp -d /var/tmp/spool-gwbench.XXXXXX)}
BIN=$(mktemp -d)
pid=
cleanup() {
	if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$BIN" "$BENCH_DATA"
}
trap cleanup EXIT

go build -o "$BIN/spool" ./cmd/spool
go build -o "$BIN/gatewaybench" ./internal/tools/gatewaybench

echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(go version | cut -d' ' -f3), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN/spool" serve --data "$BENCH_DATA" --listen "127.0.0.1:$PORT_BASE" --http "127.0.0.1:$HTTP_PORT" \
	--log-level warn --lookback=false >"$BIN/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	curl -sf "http://127.0.0.1:$HTTP_PORT/api/openapi.json" >/dev/null && break
	sleep 0.1
done
B="127.0.0.1:$PORT_BASE"
GW="http://127.0.0.1:$HTTP_PORT"
"$BIN/spool" topic create gwbench -p 8 -b "$B" >/dev/null
"$BIN/spool" topic create gwcmd -p 8 -b "$B" >/dev/null

echo "## native: spool bench"
"$BIN/spool" bench -b "$B" --topic gwbench --mode produce --no-tail -n 1000000 --size 100 --linger 0 -q
echo "## http produce, 1 record per request"
"$BIN/gatewaybench" -mode produce -gateway "$GW" -topic gwbench -batch 1 -conns "$CONNS" -duration "$DURATION" -server-pid "$pid"
echo "## http produce, 100 records per request"
"$BIN/gatewaybench" -mode produce -gateway "$GW" -topic gwbench -batch 100 -conns 32 -duration "$DURATION" -server-pid "$pid"
echo "## async round trip, a key per command"
"$BIN/gatewaybench" -mode roundtrip -gateway "$GW" -brokers "$B" -topic gwcmd -rate "$RATE" -conns 256 -duration "$DURATION" -server-pid "$pid"
echo "## async round trip, no keys"
"$BIN/gatewaybench" -mode roundtrip -gateway "$GW" -brokers "$B" -topic gwcmd -rate "$RATE" -conns 256 -duration "$DURATION" -server-pid "$pid" -keyless
