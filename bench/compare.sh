#!/usr/bin/env bash
# compare.sh — corvid next to memcached on five workloads.
#
# Starts memcached and corvid once with the same command line
# (-m MEMORY_MB -t SERVER_THREADS -c CONN_LIMIT), fills each workload's key
# space, then for ROUNDS rounds runs every workload against both servers,
# alternating which goes first. Throughput of A-C comes from memcaslap
# (libmemcached-tools), so the headline does not depend on corvid's own
# client; latency percentiles, and the workloads memcaslap cannot express
# (D: pipelining, E: idle connections), come from `corvid bench`.
# Prints the median of every figure and the corvid/memcached ratio, with
# the server CPU time per operation (from /proc/PID/stat) for each run.
#
#   A  90/10 get/set, 100-byte values, 64 connections, no pipelining
#   B  10-key multi-gets (90/10), 100-byte values, 64 connections
#   C  50/50 get/set, 1-KB values, 64 connections
#   D  gets only, pipelined 16 deep on D_CONNS connections
#   E  IDLE idle + 64 busy connections (90/10); memory per idle connection
#      is measured on fresh servers: RSS with IDLE idle connections open
#      minus RSS before, divided by IDLE.
#
# See bench/README.md for the knobs.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
DURATION=${DURATION%s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
WORKLOADS=${WORKLOADS:-A B C D E}
CONCURRENCY=${CONCURRENCY:-64}
CLIENT_THREADS=${CLIENT_THREADS:-2}
MEMORY_MB=${MEMORY_MB:-1024}
SERVER_THREADS=${SERVER_THREADS:-2}
CONN_LIMIT=${CONN_LIMIT:-4096}
KEYS=${KEYS:-100000}
MULTIGET=${MULTIGET:-10}
DEPTH=${DEPTH:-16}
D_CONNS=${D_CONNS:-8}
IDLE=${IDLE:-1000}
SERVER_CPUS=${SERVER_CPUS:-}
CLIENT_CPUS=${CLIENT_CPUS:-}
PROFILE_DIR=${PROFILE_DIR:-}
SYSCALLS=${SYSCALLS:-0}

for v in DURATION ROUNDS CONCURRENCY CLIENT_THREADS MEMORY_MB SERVER_THREADS CONN_LIMIT KEYS MULTIGET DEPTH D_CONNS IDLE; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer, got '${!v}'"
done
[[ $WARMUP =~ ^[0-9]+$ ]] || bench_die "WARMUP must be a whole number of seconds, got '$WARMUP'"
read -r -a workloads <<<"$WORKLOADS"
for w in "${workloads[@]}"; do
	[[ $w =~ ^[ABCDE]$ ]] || bench_die "unknown workload '$w' (want some of A B C D E)"
done
((CONN_LIMIT > IDLE + CONCURRENCY + 16)) || bench_die "CONN_LIMIT must exceed IDLE + CONCURRENCY"

if [[ -z ${MEMCASLAP:-} ]]; then
	MEMCASLAP=$(command -v memcaslap || command -v memaslap || true)
fi
[[ -n $MEMCASLAP ]] || bench_die "memcaslap not found (apt-get install libmemcached-tools) or set MEMCASLAP"
command -v ss >/dev/null || bench_die "ss (iproute2) is needed to find free ports"
[[ $SYSCALLS == [01] ]] || bench_die "SYSCALLS must be 0 or 1, got '$SYSCALLS'"
if [[ $SYSCALLS == 1 ]]; then
	command -v perf >/dev/null || bench_die "SYSCALLS=1 needs perf (apt-get install linux-perf)"
	perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1 ||
		bench_die "SYSCALLS=1: perf cannot count syscall tracepoints (run as root, or lower kernel.perf_event_paranoid)"
fi

# Every connection is a file descriptor in the servers and in the client.
need_fds=$((CONN_LIMIT + 256))
if (($(ulimit -n) < need_fds)); then
	ulimit -n "$need_fds" 2>/dev/null || bench_die "open files limit $(ulimit -n) < $need_fds (CONN_LIMIT + 256)"
fi

bench_install_trap
bench_resolve_commands
read -r load_start _ </proc/loadavg

# The load generator is always corvid bench built from this tree, whatever
# runs in the corvid slot.
BENCH=${CORVID_BENCH:-}
if [[ -z $BENCH ]]; then
	bench_log "building corvid bench ..."
	(cd "$REPO_ROOT" && go build -o "$BENCH_TMP/corvid-bench" ./cmd/corvid) ||
		bench_die "cannot build ./cmd/corvid for corvid bench"
	BENCH=$BENCH_TMP/corvid-bench
fi
commit=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)

client_pin=()
[[ -n $CLIENT_CPUS ]] && client_pin=(taskset -c "$CLIENT_CPUS")

# memcaslap configuration files: key sizes, value sizes, set/get shares.
mcs_cfg() { # FILE VALUE_SIZE SET_SHARE
	awk -v v="$2" -v s="$3" 'BEGIN {
		print "key"; print "32 32 1"
		print "value"; printf "%d %d 1\n", v, v
		print "cmd"; printf "0 %g\n1 %g\n", s, 1 - s
	}' >"$1"
}
mcs_cfg "$BENCH_TMP/a.cfg" 100 0.1
mcs_cfg "$BENCH_TMP/c.cfg" 1024 0.5

# Workload shapes. mcs_args: memcaslap flags (empty: no memcaslap row);
# cb_args: corvid bench flags.
declare -A mcs_args cb_args title
title[A]="A: 90/10 get/set, 100 B, $CONCURRENCY conns"
mcs_args[A]="-F $BENCH_TMP/a.cfg -c $CONCURRENCY"
cb_args[A]="-c $CONCURRENCY --ratio 9:1 --value-size 100 --key-prefix a:"
title[B]="B: $MULTIGET-key multi-gets, 100 B, $CONCURRENCY conns"
mcs_args[B]="-F $BENCH_TMP/a.cfg -c $CONCURRENCY -d $MULTIGET"
cb_args[B]="-c $CONCURRENCY --ratio 9:1 --multiget $MULTIGET --value-size 100 --key-prefix a:"
title[C]="C: 50/50 get/set, 1 KB, $CONCURRENCY conns"
mcs_args[C]="-F $BENCH_TMP/c.cfg -c $CONCURRENCY"
cb_args[C]="-c $CONCURRENCY --ratio 1:1 --value-size 1024 --key-prefix c:"
title[D]="D: gets pipelined $DEPTH deep, $D_CONNS conns"
mcs_args[D]=""
cb_args[D]="-c $D_CONNS --pipeline $DEPTH --ratio 1:0 --value-size 100 --key-prefix a:"
title[E]="E: $IDLE idle + $CONCURRENCY busy conns, 90/10"
mcs_args[E]=""
cb_args[E]="-c $CONCURRENCY --idle $IDLE --ratio 9:1 --value-size 100 --key-prefix a:"

servers=(memcached corvid)
# With PROFILE_DIR, corvid serves its profiles on an admin port.
admin_args=()
if [[ -n $PROFILE_DIR ]]; then
	ADMIN_PORT=$(bench_free_port)
	admin_args=(--admin "127.0.0.1:$ADMIN_PORT")
fi
start_all() {
	bench_start_server memcached "${MEMCACHED_ARGV[@]}" -c "$CONN_LIMIT"
	PID[memcached]=$STARTED_PID PORT[memcached]=$STARTED_PORT
	bench_start_server corvid "${CORVID_ARGV[@]}" -c "$CONN_LIMIT" "${admin_args[@]}"
	PID[corvid]=$STARTED_PID PORT[corvid]=$STARTED_PORT
}

# check_alive SERVER fails when the server has died.
check_alive() {
	bench_alive "${PID[$1]}" && return 0
	bench_log "--- $1 (pid ${PID[$1]}) is no longer running; its log:"
	tail -n 20 "$BENCH_TMP/$1.log" >&2
	exit 1
}

# run_bench OUT SERVER ARGS... runs corvid bench with --json into OUT.
run_bench() {
	local out=$1 srv=$2 rc=0 lp
	shift 2
	"${client_pin[@]}" timeout --kill-after=5 $((DURATION + 120)) \
		"$BENCH" bench -s "127.0.0.1:${PORT[$srv]}" --keys "$KEYS" --json -q "$@" >"$out" 2>"$out.err" &
	lp=$!
	BENCH_PIDS+=("$lp")
	wait "$lp" || rc=$?
	bench_forget "$lp"
	check_alive "$srv"
	if ((rc != 0)); then
		bench_log "--- corvid bench against $srv failed (exit $rc):"
		cat "$out.err" >&2
		exit 1
	fi
}

# json FIELD FILE prints a number from corvid bench's JSON.
json() { awk -v f="\"$1\":" '$1 == f { gsub(/,/, "", $2); print $2; exit }' "$2"; }

# run_memcaslap OUT SERVER SECONDS ARGS... sets TPS to memcaslap's figure.
run_memcaslap() {
	local out=$1 srv=$2 secs=$3 rc=0 lp
	shift 3
	"${client_pin[@]}" timeout --kill-after=5 $((secs + 60)) \
		"$MEMCASLAP" -s "127.0.0.1:${PORT[$srv]}" -t "${secs}s" -T "$CLIENT_THREADS" "$@" >"$out" 2>&1 &
	lp=$!
	BENCH_PIDS+=("$lp")
	wait "$lp" || rc=$?
	bench_forget "$lp"
	check_alive "$srv"
	TPS=$(awk '/^Run time:/ { for (i = 1; i < NF; i++) if ($i == "TPS:") t = $(i + 1) } END { print t }' "$out")
	if [[ $rc != 0 || ! $TPS =~ ^[0-9]+$ || $TPS == 0 ]]; then
		bench_log "--- memcaslap against $srv failed (exit $rc):"
		tail -n 20 "$out" >&2
		exit 1
	fi
}

# Results: res[W|METRIC|SERVER] is a space-separated list, one per round.
declare -A res PID PORT
metrics=()
add() { # WORKLOAD METRIC SERVER VALUE
	local k="$1|$2"
	[[ $2 == ops/s* || $2 == keys/s* ]] && bench_log "  $1 $2 $3: $4"
	[[ " ${metrics[*]} " == *" $k "* ]] || metrics+=("$k")
	res[$k|$3]+="$4 "
}


# cpu_per_op TICKS_BEFORE TICKS_AFTER OPS prints the server's CPU time per
# operation in nanoseconds, steadier on a noisy machine than
# ops/s: other work slows the server without making each request dearer.
cpu_per_op() {
	awk -v a="$1" -v b="$2" -v n="$3" -v hz="$BENCH_CLK_TCK" 'BEGIN { if (n <= 0) print 0; else printf "%d", (b - a) / hz * 1e9 / n }'
}

# With SYSCALLS=1, perf counts the server's system calls (all of them, and
# the epoll waits among them) and context switches over each throughput run,
# reported per 1,000 operations: counts, unlike times, do not move when
# other work shares the machine.
PERF_EVENTS=raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,context-switches
perf_start() { # SERVER OUT
	[[ $SYSCALLS == 1 ]] || return 0
	perf stat -x, -e "$PERF_EVENTS" -p "${PID[$1]}" -o "$2" >/dev/null 2>&1 &
	PERF_PID=$!
	BENCH_PIDS+=("$PERF_PID")
}
perf_stop() { # WORKLOAD SERVER TOOL OPS OUT
	[[ $SYSCALLS == 1 ]] || return 0
	kill -INT "$PERF_PID" 2>/dev/null || true
	wait "$PERF_PID" || true
	bench_forget "$PERF_PID"
	local w=$1 srv=$2 tool=$3 ops=$4 out=$5
	per1k() { # EVENT...: the events' sum per 1,000 operations
		awk -F, -v n="$ops" -v evs="$*" 'BEGIN { split(evs, e, " "); for (i in e) want[e[i]] = 1 }
			($3 in want) && $1 ~ /^[0-9]+$/ { sum += $1 }
			END { printf "%d", (n > 0 ? sum * 1000 / n : 0) }' "$out"
	}
	add "$w" "server syscalls/1k ops ($tool)" "$srv" "$(per1k raw_syscalls:sys_enter)"
	add "$w" "server epoll waits/1k ops ($tool)" "$srv" "$(per1k syscalls:sys_enter_epoll_wait syscalls:sys_enter_epoll_pwait)"
	add "$w" "server ctx switches/1k ops ($tool)" "$srv" "$(per1k context-switches)"
}

# idle_memory SERVER ROUND: on a fresh server, RSS with IDLE idle
# connections (and one busy one) minus RSS before, in bytes per connection.
idle_memory() {
	local srv=$1 r=$2 before after lp rc=0 out
	bench_target_argv "$srv"
	bench_start_server "$srv-idle" "${TARGET_ARGV[@]}" -c "$CONN_LIMIT"
	local pid=$STARTED_PID port=$STARTED_PORT
	sleep 1
	before=$(bench_rss_kb "$pid")
	out=$BENCH_TMP/idle-$srv-$r.json
	"${client_pin[@]}" "$BENCH" bench -s "127.0.0.1:$port" -c 1 --idle "$IDLE" --ratio 1:0 \
		--duration 5s --json -q >"$out" 2>"$out.err" &
	lp=$!
	BENCH_PIDS+=("$lp")
	sleep 3
	after=$(bench_rss_kb "$pid")
	wait "$lp" || rc=$?
	bench_forget "$lp"
	bench_alive "$pid" || { bench_log "$srv died holding $IDLE connections"; exit 1; }
	bench_stop_server "$pid"
	((rc == 0)) || { cat "$out.err" >&2; bench_die "corvid bench --idle $IDLE against $srv failed"; }
	add E "idle B/conn (RSS)" "$srv" $(((after - before) * 1024 / IDLE))
	add E "RSS KiB before idle" "$srv" "$before"
}

start_all
bench_log "memcached: ${MEMCACHED_ARGV[*]} -c $CONN_LIMIT -p ${PORT[memcached]} (pid ${PID[memcached]})"
bench_log "corvid:    ${CORVID_ARGV[*]} -c $CONN_LIMIT -p ${PORT[corvid]} (pid ${PID[corvid]})"

# Fill both key spaces (a: 100 B values, c: 1 KB values) so corvid bench
# gets hit; memcaslap gets only keys it has set itself.
for srv in "${servers[@]}"; do
	bench_log "prefill $srv ..."
	run_bench "$BENCH_TMP/prefill-a-$srv.json" "$srv" -c 8 --pipeline 16 --prefill --requests 1 --value-size 100 --key-prefix a:
	run_bench "$BENCH_TMP/prefill-c-$srv.json" "$srv" -c 8 --pipeline 16 --prefill --requests 1 --value-size 1024 --key-prefix c:
	if ((WARMUP > 0)); then
		bench_log "warm-up $srv: ${WARMUP}s, not counted ..."
		run_memcaslap "$BENCH_TMP/warmup-$srv.out" "$srv" "$WARMUP" -F "$BENCH_TMP/a.cfg" -c "$CONCURRENCY"
	fi
done

for ((r = 1; r <= ROUNDS; r++)); do
	order=(memcached corvid)
	((r % 2 == 0)) && order=(corvid memcached)
	for w in "${workloads[@]}"; do
		for srv in "${order[@]}"; do
			bench_log "round $r/$ROUNDS, workload $w: $srv ..."
			if [[ -n ${mcs_args[$w]} ]]; then
				perf_start "$srv" "$BENCH_TMP/$w-$srv-$r.mcs.perf"
				t0=$(bench_cpu_ticks "${PID[$srv]}")
				# shellcheck disable=SC2086 # word splitting intended
				run_memcaslap "$BENCH_TMP/$w-$srv-$r.mcs" "$srv" "$DURATION" ${mcs_args[$w]}
				t1=$(bench_cpu_ticks "${PID[$srv]}")
				add "$w" "ops/s (memcaslap)" "$srv" "$TPS"
				add "$w" "server CPU ns/op (memcaslap)" "$srv" "$(cpu_per_op "$t0" "$t1" $((TPS * DURATION)))"
				perf_stop "$w" "$srv" memcaslap $((TPS * DURATION)) "$BENCH_TMP/$w-$srv-$r.mcs.perf"
			fi
			out=$BENCH_TMP/$w-$srv-$r.json
			perf_start "$srv" "$out.perf"
			t0=$(bench_cpu_ticks "${PID[$srv]}")
			# shellcheck disable=SC2086
			run_bench "$out" "$srv" --duration "${DURATION}s" ${cb_args[$w]}
			t1=$(bench_cpu_ticks "${PID[$srv]}")
			ops=$(json ops_per_sec "$out" | cut -d. -f1)
			add "$w" "ops/s (corvid bench)" "$srv" "$ops"
			add "$w" "server CPU ns/op (corvid bench)" "$srv" "$(cpu_per_op "$t0" "$t1" $((ops * DURATION)))"
			perf_stop "$w" "$srv" "corvid bench" $((ops * DURATION)) "$out.perf"
			[[ $w == B ]] && add "$w" "keys/s (corvid bench)" "$srv" "$(json keys_per_sec "$out" | cut -d. -f1)"
			for p in p50 p99 p99.9; do
				add "$w" "$p µs (corvid bench)" "$srv" "$(json "$p" "$out" | cut -d. -f1)"
			done
			errs=$(json errors "$out")
			[[ $errs == 0 ]] || bench_log "warning: $errs error replies from $srv in workload $w"
		done
		if [[ $w == E ]]; then
			for srv in "${order[@]}"; do
				bench_log "round $r/$ROUNDS, workload E memory: fresh $srv with $IDLE idle connections ..."
				idle_memory "$srv" "$r"
			done
		fi
	done
done

# The profiling pass: each workload once more against corvid while its CPU
# profile is taken (the memcaslap run where there is one, else corvid
# bench), with the allocations of the whole run; its figures do not count.
pprof_get() { # OUT URL [pprof flags]
	local out=$1 url=$2
	shift 2
	go tool pprof -proto "$@" -output "$out" "$url" >/dev/null 2>"$out.err" ||
		bench_die "cannot fetch $url: $(cat "$out.err")"
}
if [[ -n $PROFILE_DIR ]]; then
	mkdir -p "$PROFILE_DIR"
	base=http://127.0.0.1:$ADMIN_PORT/debug/pprof
	for w in "${workloads[@]}"; do
		bench_log "profiling pass, workload $w: corvid ..."
		pprof_get "$PROFILE_DIR/$w-allocs-before.pb.gz" "$base/allocs"
		pprof_get "$PROFILE_DIR/$w-cpu.pb.gz" "$base/profile" -seconds "$DURATION" &
		fp=$!
		BENCH_PIDS+=("$fp")
		if [[ -n ${mcs_args[$w]} ]]; then
			# shellcheck disable=SC2086
			run_memcaslap "$BENCH_TMP/$w-profile.mcs" corvid "$DURATION" ${mcs_args[$w]}
		else
			# shellcheck disable=SC2086
			run_bench "$BENCH_TMP/$w-profile.json" corvid --duration "${DURATION}s" ${cb_args[$w]}
		fi
		wait "$fp" || exit 1
		bench_forget "$fp"
		pprof_get "$PROFILE_DIR/$w-allocs.pb.gz" "$base/allocs"
	done
fi

read -r load_end _ </proc/loadavg
echo "corvid vs memcached, medians of $ROUNDS rounds (${DURATION}s runs, alternating order)"
echo "date:      $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit"
echo "machine:   $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(uname -sr)"
echo "memcached: ${MEMCACHED_ARGV[*]} -m $MEMORY_MB -t $SERVER_THREADS -c $CONN_LIMIT ($("${MEMCACHED_ARGV[0]}" -V 2>/dev/null || echo '?'))"
echo "corvid:    ${CORVID_ARGV[*]} -m $MEMORY_MB -t $SERVER_THREADS -c $CONN_LIMIT"
echo "pinning:   server CPUs ${SERVER_CPUS:-all}, client CPUs ${CLIENT_CPUS:-all}"
echo "1-min load average: $load_start before, $load_end after (other work on the machine skews results)"
echo
for w in "${workloads[@]}"; do echo "  ${title[$w]}"; done
echo
row() { printf '%-2s %-42s %12s %12s %9s\n' "$@"; }
row "" metric memcached corvid ratio
for k in "${metrics[@]}"; do
	w=${k%%|*} m=${k#*|}
	# shellcheck disable=SC2086
	mc=$(bench_median ${res[$k|memcached]})
	# shellcheck disable=SC2086
	cv=$(bench_median ${res[$k|corvid]})
	ratio=$(awk -v a="$cv" -v b="$mc" 'BEGIN { if (b == 0) print "-"; else printf "%.3f", a / b }')
	row "$w" "$m" "$mc" "$cv" "$ratio"
done
echo
echo "ratio = corvid/memcached: above 1 is better for ops/s, below 1 is better for latency, memory and CPU per op."
if [[ -n $PROFILE_DIR ]]; then
	for w in "${workloads[@]}"; do
		echo
		echo "== workload $w: CPU ($PROFILE_DIR/$w-cpu.pb.gz)"
		go tool pprof -top -nodecount=15 "$PROFILE_DIR/$w-cpu.pb.gz" 2>/dev/null | sed -n '/^ *flat/,$p'
		echo "== workload $w: bytes allocated during the run ($PROFILE_DIR/$w-allocs.pb.gz)"
		go tool pprof -top -nodecount=8 -sample_index=alloc_space \
			-diff_base "$PROFILE_DIR/$w-allocs-before.pb.gz" "$PROFILE_DIR/$w-allocs.pb.gz" 2>/dev/null |
			sed -n '/^Showing\|^ *flat/,$p'
	done
fi
