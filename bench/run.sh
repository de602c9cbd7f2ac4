#!/bin/sh
# bench/run.sh BUILD: the standard benchmark suite (`make bench`).
#
# Starts the comparison peers (the Node.js ws relay, the uWebSockets.js
# relay plain and over TLS) and asp-relay (plain, and TLS for the wss
# rows), runs asp-bench through every mode with the targets alternating
# run by run (so a burst of load elsewhere on the machine hits all of them
# alike), then bench/report.mjs turns the JSON lines into
# build/bench/summary.json and build/bench/report.md with PNG plots.
# Everything listens on 127.0.0.1 only, every process started here is
# stopped on exit, and every asp-bench run is bounded in time.
#
# Knobs (environment): REPS (default 5) runs per pair, SECONDS_TP (1) and
# SECONDS_LAT (3) measured seconds per run, STEPS (scale steps), SIZES,
# LOADS (sweep), PROCS (generator processes for the sweep and scale),
# QUICK=1 for a fast smoke pass (REPS=1, short runs, small steps),
# CLUSTER=0 to leave the cluster part (bench/cluster.mjs) out, CLUSTER=only
# to run it alone.
set -eu

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=build/bench
BENCH="$BUILD/asp-bench"
RELAY="$BUILD/asp-relay"

# 10,000 sessions are 20,000 sockets on each side: take what the hard
# limit allows (raising it needs CAP_SYS_RESOURCE).  The relay (or peer)
# holds two sockets per session plus a few of its own, so the largest
# scale step is what fits in its limit, in hundreds.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
TOP=$(( (NOFILE - 200) / 200 * 100 ))
[ "$TOP" -gt 10000 ] && TOP=10000
if [ "$TOP" -gt 5000 ]; then SCALE_STEPS=10,100,1000,5000,$TOP; else SCALE_STEPS=10,100,$TOP; fi

if [ "${QUICK:-0}" = 1 ]; then
	REPS=${REPS:-1}; SECONDS_TP=${SECONDS_TP:-0.5}; SECONDS_LAT=${SECONDS_LAT:-1}
	STEPS=${STEPS:-10,100}; SIZES=${SIZES:-16K 256K}; LOADS=${LOADS:-100 200}
else
	REPS=${REPS:-5}; SECONDS_TP=${SECONDS_TP:-1}; SECONDS_LAT=${SECONDS_LAT:-3}
	STEPS=${STEPS:-$SCALE_STEPS}; SIZES=${SIZES:-1K 16K 256K 1M}
	LOADS=${LOADS:-100 200 400 600 800}
fi
PROCS=${PROCS:-4}

PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

say() { printf '== %s\n' "$*"; }

[ -x "$BENCH" ] && [ -x "$RELAY" ] || { echo "run.sh: build $BENCH and $RELAY first (make all)" >&2; exit 1; }
mkdir -p "$OUT"
rm -f "$OUT"/*.jsonl "$OUT"/*.png "$OUT"/*.dat "$OUT"/*.log "$OUT"/*.out \
	"$OUT"/profile-*.txt "$OUT"/perf-*.data
rm -rf "$OUT"/var-*

# The peers' dependencies (ws, uWebSockets.js), pinned by the lock file.
if ! npm ci --prefix bench/peers --no-audit --no-fund --silent >"$OUT/npm.log" 2>&1; then
	[ -d bench/peers/node_modules/ws ] && [ -d bench/peers/node_modules/@trufflesuite/uws-js-unofficial ] ||
		{ cat "$OUT/npm.log" >&2; exit 1; }
	echo "run.sh: npm ci failed; using the installed bench/peers/node_modules" >&2
fi

# A throwaway self-signed certificate for the wss:// relay.
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -days 1 \
	-keyout "$OUT/key.pem" -out "$OUT/cert.pem" >/dev/null 2>&1

# start NAME CMD...: runs CMD in the background with stdout and stderr in
# $OUT/NAME.out/.log, waits for its "listening on ...:PORT" line and sets
# PID and PORT.
start() {
	name=$1; shift
	"$@" >"$OUT/$name.out" 2>"$OUT/$name.log" &
	PID=$!
	PIDS="$PIDS $PID"
	i=0
	while ! grep -q 'listening on' "$OUT/$name.out" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$PID" 2>/dev/null; then
			echo "run.sh: $name did not start" >&2
			cat "$OUT/$name.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	PORT=$(sed -n 's/.*listening on wss*:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$OUT/$name.out" | head -1)
}

stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# The generator signs every connection in as the one user "bench" from one
# address, often with one token: the per-user, per-token and per-address
# limits (docs/protocol.md, "Limits before and around a session") are for a fleet of people, so they
# are off here.
start_relay() { # NAME [extra relay options]
	name=$1; shift
	start "$name" "$RELAY" --listen 127.0.0.1:0 --data "$OUT/var-$name" \
		--max-user-conns 0 --max-token-desktops 0 \
		--max-prehello-per-addr 0 "$@"
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
echo "{\"nproc\":$(nproc),\"nofile\":$NOFILE,\"scale_top\":${STEPS##*,},\"load_start\":\"$(loadavg)\",\"started\":\"$(date -u +%FT%TZ)\"}" >"$OUT/env.json"

B() { # label args...: one measurement, bounded by $BT seconds (120)
	label=$1; shift
	timeout "${BT:-120}" "$BENCH" --label "$label" --out "$OUT/results.jsonl" "$@" \
		2>>"$OUT/asp-bench.log" | grep -v '^mode ' || true
}

# The cluster (bench/cluster.mjs): its own redis-server and nodes, on
# fresh processes, after everything else (or alone).
cluster_part() {
	say "cluster: failover, join through a redirect, Redis commands, two nodes vs one"
	timeout 1500 node bench/cluster.mjs --build "$BUILD" --out "$OUT" \
		$([ "${QUICK:-0}" = 1 ] && echo --quick) 2>>"$OUT/cluster.log" ||
		echo "run.sh: bench/cluster.mjs failed (see $OUT/cluster.log)" >&2
}
finish() {
	sed -i "s/}\$/,\"load_end\":\"$(loadavg)\",\"ended\":\"$(date -u +%FT%TZ)\"}/" "$OUT/env.json"
	say "report"
	node bench/report.mjs "$OUT"
}
if [ "${CLUSTER:-1}" = only ]; then
	cluster_part
	finish
	exit 0
fi

start_relay relay; R_PID=$PID; R_PORT=$PORT
start_relay relay-tls --tls-cert "$OUT/cert.pem" --tls-key "$OUT/key.pem"; T_PID=$PID; T_PORT=$PORT
start node node bench/peers/node-ws-relay.mjs; N_PID=$PID; N_PORT=$PORT
start uws node bench/peers/uws-relay.mjs; U_PID=$PID; U_PORT=$PORT
start uws-tls node bench/peers/uws-relay.mjs --tls-cert "$OUT/cert.pem" --tls-key "$OUT/key.pem"; V_PID=$PID; V_PORT=$PORT

RL() { l=$1; shift; B "$l" --target relay --port "$R_PORT" --pid "$R_PID" --data "$OUT/var-relay" "$@"; }
TL() { l=$1; shift; B "$l" --target relay --tls --port "$T_PORT" --pid "$T_PID" --data "$OUT/var-relay-tls" "$@"; }
NL() { l=$1; shift; B "$l" --target node --port "$N_PORT" --pid "$N_PID" "$@"; }
UL() { l=$1; shift; B "$l" --target uws --port "$U_PORT" --pid "$U_PID" "$@"; }
VL() { l=$1; shift; B "$l" --target uws --tls --port "$V_PORT" --pid "$V_PID" "$@"; }
PL() { l=$1; shift; B "$l" --target pipe "$@"; }
DL() { l=$1; shift; B "$l" --target direct "$@"; }

TP="--mode throughput --seconds $SECONDS_TP --warmup 0.5"
say "throughput: 1 session, sizes $SIZES, relay/uws/node/pipe/direct alternating (and over TLS relay/uws at 256 KiB), $REPS runs each"
for size in $SIZES; do
	r=0
	while [ $r -lt "$REPS" ]; do
		RL tp $TP --size "$size"
		UL tp $TP --size "$size"
		NL tp $TP --size "$size"
		PL tp $TP --size "$size"
		DL tp $TP --size "$size"
		if [ "$size" = 256K ]; then
			TL tp-tls $TP --size "$size"
			VL tp-tls $TP --size "$size"
		fi
		r=$((r + 1))
	done
done

say "copies per byte: 256 KiB, owner + guest, $REPS runs"
r=0
while [ $r -lt "$REPS" ]; do
	RL copies $TP --size 256K --viewers 2
	r=$((r + 1))
done

LAT="--mode latency --seconds $SECONDS_LAT --warmup 1 --fps 30 --size 40K"
say "latency: 100 sessions x 30 fps x 40 KiB, relay/uws/direct alternating, $REPS runs each"
r=0
while [ $r -lt "$REPS" ]; do
	RL lat $LAT --sessions 100
	UL lat $LAT --sessions 100
	DL lat $LAT --sessions 100
	r=$((r + 1))
done
say "latency: the same load through node and pipe, and over TLS relay/uws SSLApp, $REPS runs each"
r=0
while [ $r -lt "$REPS" ]; do
	NL lat $LAT --sessions 100
	PL lat $LAT --sessions 100
	TL lat-tls $LAT --sessions 100
	VL lat-tls $LAT --sessions 100
	r=$((r + 1))
done
say "load sweep: $LOADS sessions x 30 fps x 40 KiB, relay/uws/direct, generator in $PROCS processes"
for n in $LOADS; do
	RL lat-load $LAT --sessions "$n" --procs "$PROCS"
	UL lat-load $LAT --sessions "$n" --procs "$PROCS"
	DL lat-load $LAT --sessions "$n" --procs "$PROCS"
done

# Where the relay's time goes: perf samples the relay through one run of
# each kind, for the report's profile section (a missed target must say
# what the time goes to).  Where perf cannot sample here, the report says
# so instead.
profile() { # NAME asp-bench args...
	name=$1; shift
	txt="$OUT/profile-$name.txt"
	if ! command -v perf >/dev/null 2>&1; then
		echo "perf is not installed" >"$txt"
		return 0
	fi
	perf record -F 499 -g -p "$R_PID" -o "$OUT/perf-$name.data" -- sleep 3 \
		>/dev/null 2>"$OUT/perf-$name.log" &
	perf_pid=$!
	timeout 60 "$BENCH" --target relay --port "$R_PORT" --pid "$R_PID" \
		--data "$OUT/var-relay" --label "profile-$name" \
		--out "$OUT/profile.jsonl" "$@" >/dev/null 2>>"$OUT/asp-bench.log" || true
	wait "$perf_pid" 2>/dev/null || true
	perf report -i "$OUT/perf-$name.data" --no-children --sort dso,sym \
		--stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -n 15 >"$txt" || true
	[ -s "$txt" ] || { echo "perf could not sample the relay here:"; tail -n 3 "$OUT/perf-$name.log"; } >"$txt"
}
say "profiles: perf on the relay during 1 KiB and 256 KiB throughput and the 100-session latency load"
profile throughput-1k --mode throughput --seconds 3 --warmup 0 --size 1K
profile throughput-256k --mode throughput --seconds 3 --warmup 0 --size 256K
profile latency-100 --mode latency --seconds 3 --warmup 0 --fps 30 --size 40K --sessions 100

say "join: join request to first keyframe, with and without a cached keyframe"
r=0
while [ $r -lt 3 ]; do
	RL join --mode join --sessions 20 --fps 30 --size 4K --warmup 1
	r=$((r + 1))
done

# Memory needs a relay that has served nothing yet.
stop "$R_PID"
say "slow viewer: 10 sessions x 30 fps x 40 KiB, one guest stops reading"
start_relay relay-slow; S_PID=$PID; S_PORT=$PORT
B slow --target relay --port "$S_PORT" --pid "$S_PID" --data "$OUT/var-relay-slow" --mode slow-viewer \
	--sessions 10 --fps 30 --size 40K --seconds 20 --warmup 1
stop "$S_PID"

# The uws peers held every session of the runs above: a fresh one for
# scale, as the relay gets.
stop "$U_PID"
stop "$V_PID"
SCALE="--mode scale --steps $STEPS --fps 5 --size 4K --seconds 3 --warmup 1 --input-hz 1 --procs $PROCS --fail-p99-ms 50"
say "scale: steps $STEPS sessions, half idle, half at 5 fps x 4 KiB (a step fails above p99 50 ms), relay then uws, generator in $PROCS processes"
start_relay relay-scale; C_PID=$PID; C_PORT=$PORT
BT=600 B scale --target relay --port "$C_PORT" --pid "$C_PID" --data "$OUT/var-relay-scale" $SCALE
stop "$C_PID"
start uws-scale node bench/peers/uws-relay.mjs; W_PID=$PID; W_PORT=$PORT
BT=600 B scale --target uws --port "$W_PORT" --pid "$W_PID" $SCALE
stop "$W_PID"

[ "${CLUSTER:-1}" = 0 ] || cluster_part
finish
