#!/usr/bin/env bash
# queue.sh — corvid queue's speed: enqueue+dequeue throughput, memory per
# queued item and idle CPU.
#
# For each sync policy in SYNCS (default never, always, 10ms) starts
# `corvid queue` on a fresh data directory and, for each item size in SIZES
# (default 100 and 4096 bytes) and each client count in CLIENTS (default 1
# and 16), runs bench/queueload for DURATION (default 3s): every client sets
# PIPELINE items (default 1: request and reply, as a Kestrel client does)
# then gets as many, on one queue. Prints enqueues, dequeues and pairs per
# second, and for each policy and size the ratio 16 clients / 1 client.
#
# Then, with sync never, enqueues FILL_ITEMS (default 100000) items of 100
# bytes and prints the server's RSS growth per queued item, and its CPU
# time over IDLE_SECONDS (default 5) of idleness with those queues open.
# Targets (issue "Speed"): >= 100k pairs/s with never; with always, 16
# clients >= 5x one client; an idle queue costs no CPU.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SYNCS=${SYNCS:-never always 10ms}
SIZES=${SIZES:-100 4096}
CLIENTS=${CLIENTS:-1 16}
DURATION=${DURATION:-3s}
PIPELINE=${PIPELINE:-1}
FILL_ITEMS=${FILL_ITEMS:-100000}
IDLE_SECONDS=${IDLE_SECONDS:-5}
for v in PIPELINE FILL_ITEMS IDLE_SECONDS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer, got '${!v}'"
done
command -v ss >/dev/null || bench_die "ss (iproute2) is needed to find free ports"

bench_install_trap
bench_log "building corvid and bench/queueload ..."
(cd "$REPO_ROOT" && go build -o "$BENCH_TMP/corvid" ./cmd/corvid && go build -o "$BENCH_TMP/queueload" ./bench/queueload) ||
	bench_die "cannot build"

# start_queue LABEL SYNC starts corvid queue on a free port with a fresh
# data directory; sets STARTED_PID and STARTED_PORT.
start_queue() {
	local label=$1 sync=$2 attempt port pid i
	for ((attempt = 0; attempt < 5; attempt++)); do
		port=$(bench_free_port) || bench_die "no free loopback port"
		rm -rf "$BENCH_TMP/data-$label"
		"$BENCH_TMP/corvid" queue -p "$port" -l 127.0.0.1 --data-dir "$BENCH_TMP/data-$label" \
			--sync "$sync" >>"$BENCH_TMP/$label.log" 2>&1 &
		pid=$!
		BENCH_PIDS+=("$pid")
		for ((i = 0; i < 100; i++)); do
			bench_alive "$pid" || break
			if bench_ready "$port"; then
				STARTED_PID=$pid
				STARTED_PORT=$port
				return 0
			fi
			sleep 0.1
		done
		bench_stop_server "$pid"
	done
	tail -n 20 "$BENCH_TMP/$label.log" >&2
	bench_die "cannot start corvid queue --sync $sync"
}

# field KEY=... of a queueload line
field() { sed -n "s|.*$1=\([0-9.]*\).*|\1|p" <<<"$2"; }

printf '%-7s %6s %8s %12s %12s %10s\n' sync size clients enqueues/s dequeues/s pairs/s
declare -A pairs
for sync in $SYNCS; do
	start_queue "q-$sync" "$sync"
	pid=$STARTED_PID
	for size in $SIZES; do
		for c in $CLIENTS; do
			out=$("$BENCH_TMP/queueload" -addr "127.0.0.1:$STARTED_PORT" -queue "b$size" -mode pairs \
				-clients "$c" -size "$size" -pipeline "$PIPELINE" -duration "$DURATION") ||
				bench_die "queueload failed ($sync, $size B, $c clients)"
			pairs[$sync,$size,$c]=$(field pairs/s "$out")
			printf '%-7s %6s %8s %12s %12s %10s\n' "$sync" "$size" "$c" \
				"$(field enqueues/s "$out")" "$(field dequeues/s "$out")" "${pairs[$sync,$size,$c]}"
		done
	done
	bench_stop_server "$pid"
done
first=${CLIENTS%% *} last=${CLIENTS##* }
if [[ $first != "$last" ]]; then
	for sync in $SYNCS; do
		for size in $SIZES; do
			awk -v a="${pairs[$sync,$size,$last]}" -v b="${pairs[$sync,$size,$first]}" -v s="$sync" -v z="$size" \
				-v l="$last" -v f="$first" 'BEGIN { if (b > 0) printf "%s %s B: %s clients / %s = %.1fx\n", s, z, l, f, a / b }'
		done
	done
fi


start_queue q-mem never
pid=$STARTED_PID
before=$(bench_rss_kb "$pid")
"$BENCH_TMP/queueload" -addr "127.0.0.1:$STARTED_PORT" -queue mem -mode fill -n "$FILL_ITEMS" -size 100 \
	-pipeline 100 >/dev/null || bench_die "fill failed"
after=$(bench_rss_kb "$pid")
awk -v a="$after" -v b="$before" -v n="$FILL_ITEMS" \
	'BEGIN { printf "memory: %d items of 100 B: RSS %d -> %d KiB, %.0f bytes per queued item\n", n, b, a, (a - b) * 1024 / n }'
t0=$(bench_cpu_ticks "$pid")
sleep "$IDLE_SECONDS"
t1=$(bench_cpu_ticks "$pid")
awk -v d=$((t1 - t0)) -v hz="$BENCH_CLK_TCK" -v s="$IDLE_SECONDS" \
	'BEGIN { printf "idle: %.2f s of CPU over %d s with a queue of items open\n", d / hz, s }'
bench_stop_server "$pid"
