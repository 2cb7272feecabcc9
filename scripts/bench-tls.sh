#!/usr/bin/env bash
# bench-tls.sh measures what TLS costs the broker, against plaintext, on one
# `spool serve` with a PLAINTEXT and an SSL listener (ECDSA P-256, TLS 1.3),
# in interleaved rounds so both see the same machine:
#
#   produce: `spool bench --mode produce --no-tail` of RECORDS x 1 KiB to a
#            new topic through each listener;
#   consume: `spool bench --mode consume` of the same topic through each.
#
# Next to records/s it reports the broker process's own CPU time per record
# (user + system, from /proc/PID/stat, over that run): the client runs on
# the same cores and decrypts there too, so wall-clock throughput mixes the
# client's cost with the broker's; CPU per record is the broker's alone.
#
# Usage: scripts/bench-tls.sh
# Environment: RECORDS (default 300000), ROUNDS (default 3), PORT_BASE
# (default 19292: PLAINTEXT on it, SSL on PORT_BASE+1), BENCH_DATA (default
# a new directory under /var/tmp).
set -euo pipefail

cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-300000}
ROUNDS=${ROUNDS:-3}
PORT_BASE=${PORT_BASE:-19292}
BENCH_DATA=${BENCH_DATA:-$(mktemp -d /var/tmp/spool-tlsbench.XXXXXX)}
BIN=$(mktemp -d)
pid=
cleanup() {
	if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$BIN" "$BENCH_DATA"
}
trap cleanup EXIT

go build -o "$BIN/spool" ./cmd/spool
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$BIN/key.pem" -out "$BIN/cert.pem" 2>/dev/null

PLAIN="127.0.0.1:$PORT_BASE"
TLS="127.0.0.1:$((PORT_BASE + 1))"
echo "# $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(go version | cut -d' ' -f3), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN/spool" serve --data "$BENCH_DATA" --http "" --lookback=false --log-level warn \
	--listener "PLAIN=PLAINTEXT://$PLAIN" --listener "TLS=SSL://$TLS" \
	--tls-cert "$BIN/cert.pem" --tls-key "$BIN/key.pem" >"$BIN/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	"$BIN/spool" topic list -b "$PLAIN" >/dev/null 2>&1 && break
	sleep 0.1
done

ticks=$(getconf CLK_TCK)
# cpu prints the broker's user+system CPU time so far, in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

# run LISTENER MODE TOPIC: one bench run, printed as a table row.
run() {
	local name=$1 mode=$2 topic=$3 addr=$PLAIN tlsflags=()
	if [[ $name == SSL ]]; then addr=$TLS tlsflags=(--tls-ca "$BIN/cert.pem"); fi
	local before after out rate
	before=$(cpu)
	if [[ $mode == produce ]]; then
		out=$("$BIN/spool" bench -b "$addr" "${tlsflags[@]}" --mode produce --no-tail --topic "$topic" \
			-n "$RECORDS" --size 1024 --keys 1000 --partitions 8 --linger 5ms -q --json)
	else
		out=$("$BIN/spool" bench -b "$addr" "${tlsflags[@]}" --mode consume --topic "$topic" -q --json)
	fi
	after=$(cpu)
	rate=$(python3 -c 'import json,sys; r=json.load(sys.stdin); p=r.get(sys.argv[1]) or {}; print(round(p.get("records_per_sec", 0)))' "$mode" <<<"$out")
	# CPU microseconds per record: ticks / CLK_TCK seconds over RECORDS.
	awk -v n="$name" -v m="$mode" -v r="$rate" -v d=$((after - before)) -v t="$ticks" -v recs="$RECORDS" \
		'BEGIN { printf "| %s | %s | %d | %.2f |\n", m, n, r, d / t * 1e6 / recs }'
}

echo "| phase | listener | records/s | broker CPU us/record |"
echo "| --- | --- | --- | --- |"
for round in $(seq "$ROUNDS"); do
	for name in PLAINTEXT SSL; do
		run "$name" produce "tlsbench-$name-$round"
	done
	for name in PLAINTEXT SSL; do
		# Each listener reads the topic the other wrote, so the page cache
		# is equally warm for both.
		other=SSL
		[[ $name == SSL ]] && other=PLAINTEXT
		run "$name" consume "tlsbench-$other-$round"
	done
done
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
