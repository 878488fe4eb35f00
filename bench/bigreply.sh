#!/usr/bin/env bash
# bigreply.sh — what do large values cost a server beyond their own size?
#
# For each target (memcached, corvid) starts a fresh server with
# -I 128m -m 1024, sets one VALUE_MB value (default 100 MB), then opens
# CLIENTS connections (default 12) that each "get" it and never read. It
# prints the server's RSS after the set (and the peak while the value was
# read in) and the peak RSS while the clients hold their replies unread,
# side by side. memcached writes the reply from the item, so the clients
# cost it little; a server that copies the value per connection grows by
# about CLIENTS x VALUE_MB.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VALUE_MB=${VALUE_MB:-100}
CLIENTS=${CLIENTS:-12}
HOLD=${HOLD:-3}
MEMORY_MB=${MEMORY_MB:-1024}
SERVER_THREADS=${SERVER_THREADS:-4}

for v in VALUE_MB CLIENTS HOLD MEMORY_MB SERVER_THREADS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer, got '${!v}'"
done
((VALUE_MB < 128)) || bench_die "VALUE_MB must be below 128 (-I 128m)"
command -v ss >/dev/null || bench_die "ss (iproute2) is needed to find free ports"

bench_install_trap
NEED_CORVID=0 bench_resolve_commands
bench_available_targets
((${#targets[@]})) || bench_die "nothing to measure"

size=$((VALUE_MB << 20))
head -c "$size" /dev/urandom >"$BENCH_TMP/value"

# peak_rss PID SECONDS prints the largest VmRSS (KiB) of PID sampled every
# 0.1 s for SECONDS, or until the file $BENCH_TMP/stop appears.
peak_rss() {
	local pid=$1 n=$(($2 * 10)) max=0 r i
	for ((i = 0; i < n; i++)); do
		[[ -e $BENCH_TMP/stop ]] && break
		r=$(bench_rss_kb "$pid") || break
		((r > max)) && max=$r
		sleep 0.1
	done
	echo "$max"
}

printf '%-10s %14s %14s %14s %16s\n' server "set peak MB" "after set MB" "readers MB" "per reader MB"
for t in "${targets[@]}"; do
	bench_target_argv "$t"
	bench_start_server "$t" "${TARGET_ARGV[@]}" -I 128m
	pid=$STARTED_PID port=$STARTED_PORT

	rm -f "$BENCH_TMP/stop"
	peak_rss "$pid" 120 >"$BENCH_TMP/setpeak" &
	sampler=$!
	exec {fd}<>"/dev/tcp/127.0.0.1/$port"
	{
		printf 'set big 0 0 %d\r\n' "$size"
		cat "$BENCH_TMP/value"
		printf '\r\n'
	} >&"$fd"
	IFS= read -r reply <&"$fd"
	exec {fd}>&-
	[[ $reply == STORED* ]] || bench_die "$t: set answered '$reply'"
	touch "$BENCH_TMP/stop"
	wait "$sampler"
	setpeak=$(<"$BENCH_TMP/setpeak")
	after=$(bench_rss_kb "$pid")

	fds=()
	for ((i = 0; i < CLIENTS; i++)); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$port"
		printf 'get big\r\n' >&"$fd"
		fds+=("$fd")
	done
	rm -f "$BENCH_TMP/stop"
	held=$(peak_rss "$pid" "$HOLD")
	for fd in "${fds[@]}"; do
		exec {fd}>&-
	done
	bench_stop_server "$pid"
	printf '%-10s %14d %14d %14d %16.1f\n' "$t" $((setpeak >> 10)) $((after >> 10)) $((held >> 10)) \
		"$(awk -v h="$held" -v a="$after" -v n="$CLIENTS" 'BEGIN { printf "%.1f", (h - a) / 1024 / n }')"
done
