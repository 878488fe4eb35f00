#!/usr/bin/env bash
# rss.sh — does the server keep to its memory limit?
#
# For each target (memcached, corvid) starts a fresh server with -m 64, fills
# it for DURATION seconds with random keys and values of 10 B to 100 KB
# (log-uniform) from several connections using bench/fill, samples its VmRSS
# every second, and prints max RSS, items held and evictions side by side.
# Fails unless max RSS < RSS_FACTOR x MEMORY_MB + RSS_SLACK_MB
# (default 1.25 x 64 MiB + 8 MiB = 88 MiB). See bench/README.md for knobs.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-30}
DURATION=${DURATION%s}
FILL_SETS=${FILL_SETS:-0}
CONNS=${CONNS:-8}
PIPELINE=${PIPELINE:-16}
MIN_SIZE=${MIN_SIZE:-10}
MAX_SIZE=${MAX_SIZE:-102400}
MEMORY_MB=${MEMORY_MB:-64}
SERVER_THREADS=${SERVER_THREADS:-2}
RSS_FACTOR=${RSS_FACTOR:-1.25}
RSS_SLACK_MB=${RSS_SLACK_MB:-8}
SERVER_CPUS=${SERVER_CPUS:-}
CLIENT_CPUS=${CLIENT_CPUS:-}

for v in DURATION CONNS PIPELINE MIN_SIZE MAX_SIZE MEMORY_MB SERVER_THREADS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer, got '${!v}'"
done
[[ $FILL_SETS =~ ^[0-9]+$ ]] || bench_die "FILL_SETS must be a whole number, got '$FILL_SETS'"
command -v ss >/dev/null || bench_die "ss (iproute2) is needed to find free ports"

bench_install_trap

# Targets: explicit TARGETS must all work; by default every available one.
if [[ -n ${TARGETS:-} ]]; then
	read -r -a targets <<<"$TARGETS"
	NEED_CORVID=0
	for t in "${targets[@]}"; do
		case $t in
		memcached) ;;
		corvid) NEED_CORVID=1 ;;
		*) bench_die "unknown target '$t' (want memcached and/or corvid)" ;;
		esac
	done
	bench_resolve_commands
else
	NEED_CORVID=0 bench_resolve_commands
	bench_available_targets
fi
((${#targets[@]})) || bench_die "nothing to measure"

bench_log "building bench/fill ..."
(cd "$REPO_ROOT" && go build -o "$BENCH_TMP/fill" ./bench/fill) ||
	bench_die "cannot build bench/fill"

client_pin=()
[[ -n $CLIENT_CPUS ]] && client_pin=(taskset -c "$CLIENT_CPUS")

declare -A result
rows=()
failed=0
for t in "${targets[@]}"; do
	bench_target_argv "$t"
	bench_start_server "$t" "${TARGET_ARGV[@]}"
	pid=$STARTED_PID port=$STARTED_PORT
	bench_log "$t: ${TARGET_ARGV[*]} -p $port (pid $pid): filling for ${DURATION}s ..."
	out=$BENCH_TMP/fill-$t.out
	"${client_pin[@]}" "$BENCH_TMP/fill" -addr "127.0.0.1:$port" -pid "$pid" \
		-duration "${DURATION}s" -sets "$FILL_SETS" -conns "$CONNS" \
		-pipeline "$PIPELINE" -min "$MIN_SIZE" -max "$MAX_SIZE" \
		-m "$MEMORY_MB" -factor "$RSS_FACTOR" -slack "$RSS_SLACK_MB" >"$out" &
	fp=$!
	BENCH_PIDS+=("$fp")
	rc=0
	wait "$fp" || rc=$?
	bench_forget "$fp"
	alive=yes
	bench_alive "$pid" || alive=no
	bench_stop_server "$pid"
	if [[ $alive == no ]]; then
		bench_log "$t (pid $pid) died during the fill; its output:"
		tail -n 20 "$BENCH_TMP/$t.log" >&2
		rc=2
	fi
	while read -r name value; do
		[[ -n $name && $name != result ]] || continue
		result[$t.$name]=$value
		[[ " ${rows[*]} " == *" $name "* ]] || rows+=("$name")
	done <"$out"
	case $rc in
	0) result[$t.result]=$(awk '$1 == "result" { print $2 }' "$out") ;;
	1) result[$t.result]=FAIL failed=1 ;;
	*)
		bench_log "$t: fill failed (exit $rc)"
		result[$t.result]=ERROR failed=1
		;;
	esac
done
rows+=(result)

echo "server memory under fill: -m $MEMORY_MB, values $MIN_SIZE-$MAX_SIZE bytes (log-uniform), random keys,"
echo "$CONNS connections, ${DURATION}s$( ((FILL_SETS > 0)) && echo " or $FILL_SETS sets")," \
	"limit: max RSS < $RSS_FACTOR x $MEMORY_MB MiB + $RSS_SLACK_MB MiB"
for t in "${targets[@]}"; do
	if [[ $t == memcached ]]; then
		echo "memcached: ${MEMCACHED_ARGV[*]}"
	else
		echo "corvid:    ${CORVID_ARGV[*]}"
	fi
done
echo
line=$(printf '%-20s' "")
for t in "${targets[@]}"; do line+=$(printf ' %16s' "$t"); done
echo "$line"
for name in "${rows[@]}"; do
	case $name in addr | conns | value_sizes | rss_rule) continue ;; esac
	line=$(printf '%-20s' "$name")
	for t in "${targets[@]}"; do
		line+=$(printf ' %16s' "${result[$t.$name]:--}")
	done
	echo "$line"
done
exit "$failed"
