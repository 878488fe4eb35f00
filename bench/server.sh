#!/usr/bin/env bash
# server.sh — throughput of corvid server against memcached, side by side.
#
# Starts memcached and corvid with the same command line (-m 64 -t 2 -U 0 on
# free loopback ports), drives each with memcaslap (90% get / 10% set,
# 100-byte values, 64 concurrent clients) alternating memcached, corvid,
# memcached, corvid ... for ROUNDS rounds, and prints the ops/s of every run,
# the medians and the ratio corvid/memcached. See bench/README.md for knobs.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
DURATION=${DURATION%s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
WARMUP=${WARMUP%s}
CONCURRENCY=${CONCURRENCY:-64}
CLIENT_THREADS=${CLIENT_THREADS:-2}
GET_RATIO=${GET_RATIO:-0.9}
KEY_SIZE=${KEY_SIZE:-32}
VALUE_SIZE=${VALUE_SIZE:-100}
MEMORY_MB=${MEMORY_MB:-64}
SERVER_THREADS=${SERVER_THREADS:-2}
SERVER_CPUS=${SERVER_CPUS:-}
CLIENT_CPUS=${CLIENT_CPUS:-}
MEMCASLAP_ARGS=${MEMCASLAP_ARGS:-}

for v in DURATION ROUNDS CONCURRENCY CLIENT_THREADS KEY_SIZE VALUE_SIZE MEMORY_MB SERVER_THREADS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer, got '${!v}'"
done
[[ $WARMUP =~ ^[0-9]+$ ]] || bench_die "WARMUP must be a whole number of seconds, got '$WARMUP'"
awk -v r="$GET_RATIO" 'BEGIN { exit !(r >= 0 && r <= 1) }' ||
	bench_die "GET_RATIO must be between 0 and 1, got '$GET_RATIO'"

if [[ -z ${MEMCASLAP:-} ]]; then
	MEMCASLAP=$(command -v memcaslap || command -v memaslap || true)
fi
[[ -n $MEMCASLAP ]] || bench_die "memcaslap not found (apt-get install libmemcached-tools) or set MEMCASLAP"
command -v ss >/dev/null || bench_die "ss (iproute2) is needed to find free ports"

bench_install_trap
bench_resolve_commands
read -r load_start _ </proc/loadavg

# memcaslap workload: fixed key and value sizes, set/get proportions.
CFG=$BENCH_TMP/memcaslap.cfg
awk -v k="$KEY_SIZE" -v v="$VALUE_SIZE" -v g="$GET_RATIO" 'BEGIN {
	print "key"; printf "%d %d 1\n", k, k
	print "value"; printf "%d %d 1\n", v, v
	print "cmd"; printf "0 %g\n1 %g\n", 1 - g, g
}' >"$CFG"

bench_start_server memcached "${MEMCACHED_ARGV[@]}"
MC_PID=$STARTED_PID MC_PORT=$STARTED_PORT
bench_start_server corvid "${CORVID_ARGV[@]}"
CV_PID=$STARTED_PID CV_PORT=$STARTED_PORT

# Pinning is off by default. Both servers get the identical memcaslap
# command, run one at a time, and share the machine with it the same way.
# Splitting a 2-core box (server on one CPU, client on the other) measured
# slower and noisier with memcached, and it is not neutral: the Go runtime
# sizes GOMAXPROCS from the affinity mask (1), while memcached still runs its
# two workers on the one CPU. SERVER_CPUS / CLIENT_CPUS pin with taskset -c.
client_pin=()
[[ -n $CLIENT_CPUS ]] && client_pin=(taskset -c "$CLIENT_CPUS")
read -r -a extra <<<"$MEMCASLAP_ARGS"

# run_load LABEL PID PORT RUN [SECONDS] runs memcaslap once and sets RUN_TPS
# to the ops/s it reports; it fails when there is no figure or the server
# died.
run_load() {
	local label=$1 pid=$2 port=$3 run=$4 secs=${5:-$DURATION} out tps lp rc=0
	RUN_TPS=""
	out=$BENCH_TMP/run$run-$label.out
	"${client_pin[@]}" timeout --kill-after=5 $((secs + 60)) \
		"$MEMCASLAP" -s "127.0.0.1:$port" -F "$CFG" -t "${secs}s" \
		-T "$CLIENT_THREADS" -c "$CONCURRENCY" "${extra[@]}" >"$out" 2>&1 &
	lp=$!
	BENCH_PIDS+=("$lp")
	wait "$lp" || rc=$?
	bench_forget "$lp"
	tps=$(awk '/^Run time:/ { for (i = 1; i < NF; i++) if ($i == "TPS:") t = $(i + 1) } END { print t }' "$out")
	if [[ $rc != 0 || ! $tps =~ ^[0-9]+$ || $tps == 0 ]] || ! bench_alive "$pid"; then
		bench_log "--- run $run ($label) failed (memcaslap exit $rc); its output:"
		tail -n 20 "$out" >&2
		bench_alive "$pid" || bench_log "--- $label (pid $pid) is no longer running"
		return 1
	fi
	RUN_TPS=$tps
}

pin_desc="none (server and client share all CPUs)"
if [[ -n $SERVER_CPUS || -n $CLIENT_CPUS ]]; then
	pin_desc="server CPUs ${SERVER_CPUS:-all}, client CPUs ${CLIENT_CPUS:-all}"
fi
bench_log "memcached: ${MEMCACHED_ARGV[*]} -p $MC_PORT (pid $MC_PID)"
bench_log "corvid:    ${CORVID_ARGV[*]} -p $CV_PORT (pid $CV_PID)"

if ((WARMUP > 0)); then
	bench_log "warm-up: ${WARMUP}s each, not counted ..."
	run_load memcached "$MC_PID" "$MC_PORT" warmup "$WARMUP" || exit 1
	run_load corvid "$CV_PID" "$CV_PORT" warmup "$WARMUP" || exit 1
fi

mc=() cv=()
run=0
for ((r = 1; r <= ROUNDS; r++)); do
	run=$((run + 1))
	bench_log "round $r/$ROUNDS: memcached ..."
	run_load memcached "$MC_PID" "$MC_PORT" "$run" || exit 1
	mc+=("$RUN_TPS")
	run=$((run + 1))
	bench_log "round $r/$ROUNDS: corvid ..."
	run_load corvid "$CV_PID" "$CV_PORT" "$run" || exit 1
	cv+=("$RUN_TPS")
done

mc_med=$(bench_median "${mc[@]}")
cv_med=$(bench_median "${cv[@]}")
ratio=$(awk -v a="$cv_med" -v b="$mc_med" 'BEGIN { printf "%.3f", a / b }')

get_pct=$(awk -v g="$GET_RATIO" 'BEGIN { printf "%g", g * 100 }')
echo "corvid server throughput vs memcached (memcaslap ops/s)"
echo "workload: ${get_pct}% get, ${KEY_SIZE}-byte keys, ${VALUE_SIZE}-byte values," \
	"concurrency $CONCURRENCY, $CLIENT_THREADS client threads, ${DURATION}s per run" \
	"after a ${WARMUP}s warm-up"
echo "servers:  -m $MEMORY_MB -t $SERVER_THREADS -U 0 on 127.0.0.1; pinning: $pin_desc"
echo "memcached: ${MEMCACHED_ARGV[*]}"
echo "corvid:    ${CORVID_ARGV[*]}"
read -r load_end _ </proc/loadavg
echo "1-min load average: $load_start before, $load_end after (other work on the machine skews results)"
echo
row() { printf '%-8s %12s %12s %8s\n' "$@"; }
row round memcached corvid ratio
for ((i = 0; i < ROUNDS; i++)); do
	row "$((i + 1))" "${mc[i]}" "${cv[i]}" \
		"$(awk -v a="${cv[i]}" -v b="${mc[i]}" 'BEGIN { printf "%.3f", a / b }')"
done
row median "$mc_med" "$cv_med" "$ratio"
echo
echo "ratio corvid/memcached (median/median): $ratio"
