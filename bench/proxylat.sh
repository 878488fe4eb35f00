#!/usr/bin/env bash
# proxylat.sh — the latency a proxy adds at light load, and where it comes
# from.
#
# Starts three memcached backends with nutcracker and corvid proxy in front
# of them (one pool, as bench/proxy.sh), a fourth memcached as the direct
# baseline, and bench/relay in front of that fourth one: a goroutine per
# direction per connection (as corvid proxy waits), the same with
# GOMAXPROCS=1, one event loop in epoll_wait (nutcracker's way), and two
# event loops. corvid proxy runs three ways: --procs auto (its default),
# --procs set to every CPU ("corvid-fixed"), and GOMAXPROCS=1; with
# CORVID_B=path another build runs too (corvid-b, corvid-b-1p), for an A/B
# of two builds in the same rounds; CORVID_B_ARGS are extra arguments of
# its proxy command (e.g. --event-loop). Then, for ROUNDS rounds in rotating
# order, `corvid bench -c LIGHT` (90/10 get/set, 100-byte values) for
# DURATION seconds against each, and prints the medians of p50 and p99,
# each one's p99 minus direct's, and the median over rounds of its p99
# divided by nutcracker's in the same round (steadier on a noisy machine),
# and each process's CPU time and context switches (all its threads, from
# /proc) per request: counts that other work on the machine moves far
# less than it moves a p99.
# TARGETS="nutcracker corvid ..." measures only those (direct and
# nutcracker always).
#
# The relays do no work but copy bytes: their added latency is what a Go
# process's way of waiting for sockets costs, with nothing of a proxy's
# own. See bench/README.md, "proxy.sh", for what it showed.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-4}
DURATION=${DURATION%s}
ROUNDS=${ROUNDS:-5}
LIGHT=${LIGHT:-4}
MEMORY_MB=${MEMORY_MB:-256}
SERVER_THREADS=${SERVER_THREADS:-2}
NUTCRACKER=${NUTCRACKER:-$(command -v nutcracker || true)}
for v in DURATION ROUNDS LIGHT MEMORY_MB SERVER_THREADS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer, got '${!v}'"
done
[[ -n $NUTCRACKER ]] || bench_die "nutcracker not found (apt-get install nutcracker) or set NUTCRACKER"
command -v ss >/dev/null || bench_die "ss (iproute2) is needed to find free ports"

bench_install_trap
read -r -a MEMCACHED_ARGV <<<"${MEMCACHED_CMD:-memcached -u nobody}"
read -r load_start _ </proc/loadavg

CORVID=${CORVID:-}
if [[ -z $CORVID ]]; then
	bench_log "building corvid ..."
	(cd "$REPO_ROOT" && go build -o "$BENCH_TMP/corvid" ./cmd/corvid) || bench_die "cannot build ./cmd/corvid"
	CORVID=$BENCH_TMP/corvid
fi
(cd "$REPO_ROOT" && go build -o "$BENCH_TMP/relay" ./bench/relay) || bench_die "cannot build bench/relay"
commit=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)

declare -A PORT PID res
all_targets=(direct nutcracker corvid corvid-fixed corvid-1p relay-goroutine relay-goroutine-1p relay-epoll-1 relay-epoll-2)
[[ -n ${CORVID_B:-} ]] && all_targets+=(corvid-b corvid-b-1p)
read -r -a targets <<<"${TARGETS:-${all_targets[*]}}"
# direct and nutcracker are the yardsticks: always measured.
read -r -a targets <<<"direct nutcracker $(printf '%s\n' "${targets[@]}" | grep -vx -e direct -e nutcracker | tr '\n' ' ')"

backends=()
for i in 1 2 3; do
	bench_start_server "backend$i" "${MEMCACHED_ARGV[@]}"
	backends+=("127.0.0.1:$STARTED_PORT")
done
bench_start_server direct "${MEMCACHED_ARGV[@]}"
PORT[direct]=$STARTED_PORT PID[direct]=$STARTED_PID

# start TARGET CMD... starts a proxy or relay listening on PORT[TARGET]
# (chosen before) and waits until a get through it answers.
start() {
	local t=$1 pid i
	shift
	"$@" >"$BENCH_TMP/$t.log" 2>&1 &
	pid=$!
	BENCH_PIDS+=("$pid")
	PID[$t]=$pid
	for ((i = 0; i < 100; i++)); do
		bench_alive "$pid" || break
		bench_answers "${PORT[$t]}" "get proxylat.sh:ready" END && return 0
		sleep 0.1
	done
	tail -n 20 "$BENCH_TMP/$t.log" >&2 || true
	bench_die "cannot start $t"
}

for t in "${all_targets[@]:1}"; do
	PORT[$t]=$(bench_free_port) || bench_die "no free loopback port"
done
for t in nutcracker corvid corvid-fixed corvid-1p ${CORVID_B:+corvid-b corvid-b-1p}; do
	{
		echo "alpha:"
		echo "  listen: 127.0.0.1:${PORT[$t]}"
		echo "  hash: fnv1a_64"
		echo "  distribution: ketama"
		echo "  timeout: 2000"
		echo "  servers:"
		for b in "${backends[@]}"; do echo "   - $b:1"; done
	} >"$BENCH_TMP/$t.yml"
done
sport() { bench_free_port || bench_die "no free loopback port"; }
start nutcracker "$NUTCRACKER" -c "$BENCH_TMP/nutcracker.yml" -s "$(sport)" -a 127.0.0.1
start corvid "$CORVID" proxy -c "$BENCH_TMP/corvid.yml" -s "$(sport)" -a 127.0.0.1
start corvid-fixed "$CORVID" proxy --procs "$(nproc)" -c "$BENCH_TMP/corvid-fixed.yml" -s "$(sport)" -a 127.0.0.1
start corvid-1p env GOMAXPROCS=1 "$CORVID" proxy -c "$BENCH_TMP/corvid-1p.yml" -s "$(sport)" -a 127.0.0.1
if [[ -n ${CORVID_B:-} ]]; then
	read -r -a b_args <<<"${CORVID_B_ARGS:-}"
	start corvid-b "$CORVID_B" proxy "${b_args[@]}" -c "$BENCH_TMP/corvid-b.yml" -s "$(sport)" -a 127.0.0.1
	start corvid-b-1p env GOMAXPROCS=1 "$CORVID_B" proxy "${b_args[@]}" -c "$BENCH_TMP/corvid-b-1p.yml" -s "$(sport)" -a 127.0.0.1
fi
for m in goroutine goroutine-1p epoll-1 epoll-2; do
	mode=${m%-*} loops=${m#epoll-} env=()
	[[ $m == goroutine* ]] && mode=goroutine loops=1
	[[ $m == *-1p ]] && env=(GOMAXPROCS=1)
	start "relay-$m" env "${env[@]}" "$BENCH_TMP/relay" -listen "127.0.0.1:${PORT[relay-$m]}" \
		-backend "127.0.0.1:${PORT[direct]}" -mode "$mode" -loops "$loops"
done

# The key space, stored once through each pool (the relays reach direct's).
for t in direct nutcracker; do
	"$CORVID" bench -s "127.0.0.1:${PORT[$t]}" -c 8 --prefill --requests 1 --value-size 100 \
		--key-prefix p: --json -q >"$BENCH_TMP/prefill-$t.json" || bench_die "prefill through $t failed"
done

# switches PID prints the context switches of all the process's threads.
switches() {
	cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^(non)?voluntary_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}
json() { awk -v f="\"$1\":" '$1 == f { gsub(/,/, "", $2); print $2; exit }' "$2"; }
n=${#targets[@]}
for ((r = 1; r <= ROUNDS; r++)); do
	for ((i = 0; i < n; i++)); do
		t=${targets[(i + r - 1) % n]}
		bench_log "round $r/$ROUNDS: $t ..."
		out=$BENCH_TMP/$t-$r.json
		cpu0=$(bench_cpu_ticks "${PID[$t]}") cs0=$(switches "${PID[$t]}")
		timeout --kill-after=5 $((DURATION + 60)) "$CORVID" bench -s "127.0.0.1:${PORT[$t]}" -c "$LIGHT" \
			--ratio 9:1 --value-size 100 --key-prefix p: --duration "${DURATION}s" --json -q >"$out" ||
			bench_die "corvid bench against $t failed"
		cpu1=$(bench_cpu_ticks "${PID[$t]}") cs1=$(switches "${PID[$t]}")
		reqs=$(json requests "$out")
		res[cpu|$t]+="$(awk -v d=$((cpu1 - cpu0)) -v n="$reqs" -v hz="$BENCH_CLK_TCK" 'BEGIN { printf "%.1f", n ? d * 1e6 / hz / n : 0 }') "
		res[cs|$t]+="$(awk -v d=$((cs1 - cs0)) -v n="$reqs" 'BEGIN { printf "%.3f", n ? d / n : 0 }') "
		errs=$(json errors "$out")
		[[ $errs == 0 ]] || bench_log "warning: $errs error replies from $t"
		res[p50|$t]+="$(json p50 "$out" | cut -d. -f1) "
		res[p99|$t]+="$(json p99 "$out" | cut -d. -f1) "
	done
	# Each target's p99 against nutcracker's of the same round.
	nc=$(json p99 "$BENCH_TMP/nutcracker-$r.json")
	for t in "${targets[@]}"; do
		res[ratio|$t]+="$(awk -v a="$(json p99 "$BENCH_TMP/$t-$r.json")" -v b="$nc" 'BEGIN { printf "%.2f", a / b }') "
	done
done

read -r load_end _ </proc/loadavg
echo "light-load latency, medians of $ROUNDS rounds (corvid bench -c $LIGHT, ${DURATION}s, rotating order)"
echo "date:     $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit"
echo "machine:  $(nproc) CPUs, $(uname -sr); 1-min load average $load_start before, $load_end after"
echo
printf '%-18s %8s %8s %14s %10s %11s %9s  %s\n' target p50_µs p99_µs added_p99_µs p99/nutcr cpu_µs/req cs/req "p99 per round"
# fmedian prints the median of its arguments as they are written (the
# middle one; the lower of the two middle ones for an even count).
fmedian() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# shellcheck disable=SC2086 # the lists are space-separated numbers
d=$(bench_median ${res[p99|direct]})
for t in "${targets[@]}"; do
	# shellcheck disable=SC2086
	p50=$(bench_median ${res[p50|$t]}) p99=$(bench_median ${res[p99|$t]})
	# shellcheck disable=SC2086
	ratio=$(fmedian ${res[ratio|$t]})
	# shellcheck disable=SC2086
	cpu=$(fmedian ${res[cpu|$t]}) cs=$(fmedian ${res[cs|$t]})
	printf '%-18s %8s %8s %14s %10s %11s %9s  %s\n' "$t" "$p50" "$p99" $((p99 - d)) "$ratio" "$cpu" "$cs" "${res[p99|$t]}"
done
