#!/usr/bin/env bash
# automove.sh — does the server keep its hit ratio when item sizes shift?
#
# For each target (memcached, corvid) and slab_automove 1 and 0, starts a
# fresh server with -m MEMORY_MB (8) and -o slab_automove=N,
# slab_automove_window=WINDOW (3 s, memcached's smallest, so that the run
# is short), and runs bench/automove: ~100-byte items first, then ~1 KB
# items on fewer keys, get-or-set on random keys. Prints the hit ratio over
# the last LATE seconds and the pages moved. See bench/README.md.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MEMORY_MB=${MEMORY_MB:-8}
SERVER_THREADS=${SERVER_THREADS:-2}
WINDOW=${WINDOW:-3}
FIRST=${FIRST:-6}
SECOND=${SECOND:-24}
LATE=${LATE:-6}
SMALL_SIZE=${SMALL_SIZE:-100}
LARGE_SIZE=${LARGE_SIZE:-1000}
SMALL_KEYS=${SMALL_KEYS:-72000}
LARGE_KEYS=${LARGE_KEYS:-3000}
for v in MEMORY_MB SERVER_THREADS WINDOW FIRST SECOND LATE SMALL_SIZE LARGE_SIZE SMALL_KEYS LARGE_KEYS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer, got '${!v}'"
done
command -v ss >/dev/null || bench_die "ss (iproute2) is needed to find free ports"

bench_install_trap
NEED_CORVID=0 bench_resolve_commands
bench_available_targets
((${#targets[@]})) || bench_die "nothing to measure"

bench_log "building bench/automove ..."
(cd "$REPO_ROOT" && go build -o "$BENCH_TMP/automove" ./bench/automove) ||
	bench_die "cannot build bench/automove"

declare -A result
for t in "${targets[@]}"; do
	bench_target_argv "$t"
	for mode in 1 0; do
		bench_start_server "$t" "${TARGET_ARGV[@]}" -o "slab_automove=$mode,slab_automove_window=$WINDOW"
		pid=$STARTED_PID port=$STARTED_PORT
		bench_log "$t slab_automove=$mode (pid $pid, port $port): ${FIRST}s small items, ${SECOND}s large ..."
		out=$BENCH_TMP/automove-$t-$mode.out
		"$BENCH_TMP/automove" -addr "127.0.0.1:$port" -first "${FIRST}s" -second "${SECOND}s" \
			-late "${LATE}s" -small-size "$SMALL_SIZE" -large-size "$LARGE_SIZE" \
			-small-keys "$SMALL_KEYS" -large-keys "$LARGE_KEYS" >"$out" || bench_die "$t: bench/automove failed"
		bench_stop_server "$pid"
		result[$t.$mode.hit]=$(awk '$1 == "late_hit_ratio" { print $2 }' "$out")
		result[$t.$mode.moved]=$(awk '$1 == "slabs_moved" { print $2 }' "$out")
		result[$t.$mode.items]=$(awk '$1 == "large_items_stored" { print $2 }' "$out")
	done
done

echo "item sizes shift from $SMALL_SIZE B to $LARGE_SIZE B in -m $MEMORY_MB; hit ratio of the last ${LATE}s of ${SECOND}s,"
echo "and how many of the $LARGE_KEYS second-phase keys are stored at the end"
echo "(get-or-set on random keys; slab_automove_window=$WINDOW)"
printf '%-12s %30s %30s\n' "" "slab_automove=1" "slab_automove=0"
for t in "${targets[@]}"; do
	printf '%-12s %8s (%3s moved, %5s items) %8s (%3s moved, %5s items)\n' "$t" \
		"${result[$t.1.hit]}" "${result[$t.1.moved]}" "${result[$t.1.items]}" \
		"${result[$t.0.hit]}" "${result[$t.0.moved]}" "${result[$t.0.items]}"
done
