#!/usr/bin/env bash
# memory.sh — how many items does each server hold in the same memory?
#
# For each value size in SIZES (default 100 and 1024 bytes) and each target
# (memcached, corvid) starts a fresh server with -m MEMORY_MB, sets random
# keys with values of exactly that size until the server has evicted for a
# while (FILL_FACTOR times what fits, by value bytes), then prints items
# held, evictions and max RSS side by side, and the ratio of items held
# corvid/memcached. Fails unless every server's max RSS stays within
# RSS_FACTOR x MEMORY_MB + RSS_SLACK_MB (default 1.15 x 64 MiB + 16 MiB).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZES=${SIZES:-100 1024}
MEMORY_MB=${MEMORY_MB:-64}
SERVER_THREADS=${SERVER_THREADS:-2}
FILL_FACTOR=${FILL_FACTOR:-3}
CONNS=${CONNS:-8}
PIPELINE=${PIPELINE:-16}
RSS_FACTOR=${RSS_FACTOR:-1.15}
RSS_SLACK_MB=${RSS_SLACK_MB:-16}

for v in MEMORY_MB SERVER_THREADS FILL_FACTOR CONNS PIPELINE; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer, got '${!v}'"
done
for s in $SIZES; do
	[[ $s =~ ^[1-9][0-9]*$ ]] || bench_die "SIZES must hold positive integers, got '$s'"
done
command -v ss >/dev/null || bench_die "ss (iproute2) is needed to find free ports"
command -v memcached >/dev/null || bench_die "memcached is needed (apt-get install memcached)"

bench_install_trap
bench_resolve_commands
bench_log "building bench/fill ..."
(cd "$REPO_ROOT" && go build -o "$BENCH_TMP/fill" ./bench/fill) ||
	bench_die "cannot build bench/fill"

declare -A res
failed=0
for size in $SIZES; do
	# Sets of FILL_FACTOR times the memory in value bytes.
	sets=$((FILL_FACTOR * MEMORY_MB * 1024 * 1024 / size))
	for t in memcached corvid; do
		bench_target_argv "$t"
		bench_start_server "$t" "${TARGET_ARGV[@]}"
		pid=$STARTED_PID port=$STARTED_PORT
		bench_log "$t: ${size}-byte values, $sets sets ..."
		out=$BENCH_TMP/fill-$t-$size.out
		rc=0
		"$BENCH_TMP/fill" -addr "127.0.0.1:$port" -pid "$pid" -seed 1 \
			-duration 10m -sets "$sets" -conns "$CONNS" -pipeline "$PIPELINE" \
			-min "$size" -max "$size" -m "$MEMORY_MB" \
			-factor "$RSS_FACTOR" -slack "$RSS_SLACK_MB" >"$out" || rc=$?
		bench_stop_server "$pid"
		((rc == 0)) || failed=1
		for name in curr_items evictions rss_max_mib result; do
			res[$t.$size.$name]=$(awk -v n="$name" '$1 == n { print $2 }' "$out")
		done
		[[ ${res[$t.$size.evictions]:-0} -gt 0 ]] ||
			bench_log "$t: no evictions at ${size} bytes; raise FILL_FACTOR"
	done
done

echo "items held with -m $MEMORY_MB (-t $SERVER_THREADS), values of one size, $FILL_FACTOR x memory in sets;"
echo "RSS limit: $RSS_FACTOR x $MEMORY_MB MiB + $RSS_SLACK_MB MiB"
echo
printf '%-8s %-10s %12s %12s %10s %8s\n' size server items evictions "rss MiB" rss
for size in $SIZES; do
	for t in memcached corvid; do
		printf '%-8s %-10s %12s %12s %10s %8s\n' "$size" "$t" "${res[$t.$size.curr_items]:--}" \
			"${res[$t.$size.evictions]:--}" "${res[$t.$size.rss_max_mib]:--}" "${res[$t.$size.result]:--}"
	done
	m=${res[memcached.$size.curr_items]:-0} c=${res[corvid.$size.curr_items]:-0}
	if ((m > 0)); then
		printf '%-8s %-10s %12s\n' "$size" "ratio" "$(awk -v c="$c" -v m="$m" 'BEGIN { printf "%.3f", c / m }')"
	fi
done
exit "$failed"
