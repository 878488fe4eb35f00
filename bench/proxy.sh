#!/usr/bin/env bash
# proxy.sh — corvid proxy next to nutcracker (twemproxy).
#
# Starts three memcached backends and, in front of them, nutcracker and
# corvid proxy reading the same nutcracker.yml (the two files differ only in
# the listen port), plus a fourth memcached as the direct baseline. Then,
# for ROUNDS rounds, alternating the order of direct, nutcracker and corvid:
#
#   throughput  memcaslap, 90/10 get/set, 32-byte keys, 100-byte values,
#               CONCURRENCY connections; the target's CPU time meanwhile
#   latency     corvid bench, the same mix, p50 and p99, at CONCURRENCY
#               connections (saturated) and at LIGHT (4) connections; the
#               added p99 of a proxy is its light p99 minus direct's
#   wide get    bench/wideget: one get of WIDE_KEYS keys (100-byte values),
#               median of WIDE_GETS gets, through each proxy and direct
#   routes      (ROUTES=1, the default; ROUTES=only runs just these rows)
#               corvid router's throughput through a PrefixSelectorRoute
#               over three pools and a WarmUpRoute whose cold pool holds
#               every key, against a plain PoolRoute over the same three
#               backends, each a `corvid router -f FILE` process (corvid
#               bench, CONCURRENCY connections, 90/10 get/set, rotating
#               order); the issue's target is 0.9 or more for both
#   idle memory RSS of a fresh proxy holding IDLE idle client connections
#               (bench/idleconns) once it has settled, minus its RSS
#               before, per connection: connections that sent nothing, and
#               connections that each sent a set and two gets first
#
# corvid proxy runs with --procs auto (its default: one processor while the
# load fits in one, more when it needs them). With FIXED=1 (the default) it
# also runs a second time with --procs set to every CPU (column "corvid
# fixed"), as a proxy that always spreads over all its processors. With
# CORVID_B=path that column is another build instead, with --procs auto
# (column "corvid B"), for an A/B of two builds in the same rounds;
# CORVID_B_ARGS are extra arguments of its proxy command (e.g.
# --event-loop).
#
# Prints the medians and the ratios corvid/nutcracker (and wide get/direct).
# See bench/README.md.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-8}
DURATION=${DURATION%s}
ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-2}
CONCURRENCY=${CONCURRENCY:-64}
CLIENT_THREADS=${CLIENT_THREADS:-2}
WIDE_KEYS=${WIDE_KEYS:-10000}
WIDE_GETS=${WIDE_GETS:-10}
IDLE=${IDLE:-10000}
LIGHT=${LIGHT:-4}
ROUTES=${ROUTES:-1}
FIXED=${FIXED:-1}
[[ -n ${CORVID_B:-} ]] && FIXED=1
[[ $FIXED =~ ^(0|1)$ ]] || bench_die "FIXED must be 0 or 1, got '$FIXED'"
[[ $ROUTES =~ ^(0|1|only)$ ]] || bench_die "ROUTES must be 0, 1 or only, got '$ROUTES'"
MEMORY_MB=${MEMORY_MB:-256}
SERVER_THREADS=${SERVER_THREADS:-2}
NUTCRACKER=${NUTCRACKER:-$(command -v nutcracker || true)}

for v in DURATION ROUNDS CONCURRENCY LIGHT CLIENT_THREADS WIDE_KEYS WIDE_GETS MEMORY_MB SERVER_THREADS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer, got '${!v}'"
done
[[ $IDLE =~ ^[0-9]+$ ]] || bench_die "IDLE must be a whole number, got '$IDLE'"
[[ $WARMUP =~ ^[0-9]+$ ]] || bench_die "WARMUP must be a whole number of seconds, got '$WARMUP'"
[[ -n $NUTCRACKER ]] || bench_die "nutcracker not found (apt-get install nutcracker) or set NUTCRACKER"
if [[ -z ${MEMCASLAP:-} ]]; then
	MEMCASLAP=$(command -v memcaslap || command -v memaslap || true)
fi
[[ -n $MEMCASLAP ]] || bench_die "memcaslap not found (apt-get install libmemcached-tools) or set MEMCASLAP"
command -v ss >/dev/null || bench_die "ss (iproute2) is needed to find free ports"

need_fds=$((IDLE + 1024))
if (($(ulimit -n) < need_fds)); then
	ulimit -n "$need_fds" 2>/dev/null || bench_die "open files limit $(ulimit -n) < $need_fds (IDLE + 1024)"
fi

bench_install_trap
read -r -a MEMCACHED_ARGV <<<"${MEMCACHED_CMD:-memcached -u nobody}"
read -r load_start _ </proc/loadavg

# corvid (proxy and bench) and the two helpers, built from this tree.
CORVID=${CORVID:-}
if [[ -z $CORVID ]]; then
	bench_log "building corvid ..."
	(cd "$REPO_ROOT" && go build -o "$BENCH_TMP/corvid" ./cmd/corvid) || bench_die "cannot build ./cmd/corvid"
	CORVID=$BENCH_TMP/corvid
fi
(cd "$REPO_ROOT" && go build -o "$BENCH_TMP/wideget" ./bench/wideget && go build -o "$BENCH_TMP/idleconns" ./bench/idleconns) ||
	bench_die "cannot build bench/wideget and bench/idleconns"
commit=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)

declare -A PID PORT res
targets=(direct nutcracker corvid)
((FIXED)) && targets+=(corvid-fixed)

# The backends and the direct baseline.
backends=()
for i in 1 2 3; do
	bench_start_server "backend$i" "${MEMCACHED_ARGV[@]}"
	backends+=("127.0.0.1:$STARTED_PORT")
done
bench_start_server direct "${MEMCACHED_ARGV[@]}"
PID[direct]=$STARTED_PID PORT[direct]=$STARTED_PORT

# write_conf FILE PORT writes the pool both proxies read.
write_conf() {
	{
		echo "alpha:"
		echo "  listen: 127.0.0.1:$2"
		echo "  hash: fnv1a_64"
		echo "  distribution: ketama"
		echo "  timeout: 2000"
		echo "  server_connections: 1"
		echo "  auto_eject_hosts: false"
		echo "  servers:"
		for b in "${backends[@]}"; do echo "   - $b:1"; done
	} >"$1"
}

# proxy_ready PORT succeeds when a get through 127.0.0.1:PORT answers.
proxy_ready() {
	bench_answers "$1" "get proxy.sh:ready" END
}

# start_proxy NAME LABEL starts nutcracker or corvid proxy on a fresh
# configuration; sets STARTED_PID and STARTED_PORT.
start_proxy() {
	local name=$1 label=$2 port sport pid i conf
	port=$(bench_free_port) && sport=$(bench_free_port) || bench_die "no free loopback port"
	conf=$BENCH_TMP/$label.yml
	write_conf "$conf" "$port"
	case $name in
	nutcracker) "$NUTCRACKER" -c "$conf" -s "$sport" -a 127.0.0.1 -o "$BENCH_TMP/$label.log" & ;;
	corvid) "$CORVID" proxy -c "$conf" -s "$sport" -a 127.0.0.1 -o "$BENCH_TMP/$label.log" & ;;
	corvid-fixed)
		if [[ -n ${CORVID_B:-} ]]; then
			read -r -a b_args <<<"${CORVID_B_ARGS:-}"
			"$CORVID_B" proxy "${b_args[@]}" -c "$conf" -s "$sport" -a 127.0.0.1 -o "$BENCH_TMP/$label.log" &
		else
			"$CORVID" proxy --procs "$(nproc)" -c "$conf" -s "$sport" -a 127.0.0.1 -o "$BENCH_TMP/$label.log" &
		fi
		;;
	esac
	pid=$!
	BENCH_PIDS+=("$pid")
	for ((i = 0; i < 100; i++)); do
		bench_alive "$pid" || break
		if proxy_ready "$port"; then
			STARTED_PID=$pid STARTED_PORT=$port
			return 0
		fi
		sleep 0.1
	done
	tail -n 20 "$BENCH_TMP/$label.log" >&2 || true
	bench_die "cannot start $name"
}

for t in "${targets[@]:1}"; do
	start_proxy "$t" "$t"
	PID[$t]=$STARTED_PID PORT[$t]=$STARTED_PORT
done
bench_log "backends:   ${backends[*]} (${MEMCACHED_ARGV[*]} -m $MEMORY_MB -t $SERVER_THREADS)"
bench_log "direct:     127.0.0.1:${PORT[direct]}"
bench_log "nutcracker: 127.0.0.1:${PORT[nutcracker]} (pid ${PID[nutcracker]})"
bench_log "corvid:     127.0.0.1:${PORT[corvid]} (pid ${PID[corvid]})"

check_alive() {
	bench_alive "${PID[$1]}" && return 0
	bench_log "--- $1 (pid ${PID[$1]}) is no longer running"
	tail -n 20 "$BENCH_TMP/$1.log" >&2 || true
	exit 1
}

# run_bg LOG CMD... runs a load generator, recorded for cleanup; fails
# the script when it fails.
run_bg() {
	local log=$1 rc=0 lp
	shift
	timeout --kill-after=5 $((DURATION + 120)) "$@" >"$log" 2>&1 &
	lp=$!
	BENCH_PIDS+=("$lp")
	wait "$lp" || rc=$?
	bench_forget "$lp"
	if ((rc != 0)); then
		bench_log "--- $1 failed (exit $rc):"
		tail -n 20 "$log" >&2
		exit 1
	fi
}

mcs_cfg=$BENCH_TMP/mcs.cfg
printf 'key\n32 32 1\nvalue\n100 100 1\ncmd\n0 0.1\n1 0.9\n' >"$mcs_cfg"

# memcaslap TARGET SECONDS OUT runs memcaslap against TARGET and sets TPS
# to its throughput and CPU to the CPU time the target's process used over
# the run's SECONDS, in percent of one core (nutcracker cannot go above
# 100), and CPUOP to that CPU time per operation in nanoseconds.
memcaslap() {
	local t0 t1
	t0=$(bench_cpu_ticks "${PID[$1]}")
	run_bg "$3" "$MEMCASLAP" -s "127.0.0.1:${PORT[$1]}" -t "${2}s" -T "$CLIENT_THREADS" -c "$CONCURRENCY" -F "$mcs_cfg"
	check_alive "$1"
	t1=$(bench_cpu_ticks "${PID[$1]}")
	TPS=$(awk '/^Run time:/ { for (i = 1; i < NF; i++) if ($i == "TPS:") t = $(i + 1) } END { print t }' "$3")
	[[ $TPS =~ ^[0-9]+$ && $TPS != 0 ]] || { tail -n 20 "$3" >&2; bench_die "memcaslap against $1 printed no figure"; }
	CPU=$(awk -v d=$((t1 - t0)) -v hz="$BENCH_CLK_TCK" -v s="$2" 'BEGIN { printf "%d", 100 * d / hz / s }')
	CPUOP=$(awk -v d=$((t1 - t0)) -v hz="$BENCH_CLK_TCK" -v n=$((TPS * $2)) 'BEGIN { printf "%d", d / hz * 1e9 / n }')
}

json() { awk -v f="\"$1\":" '$1 == f { gsub(/,/, "", $2); print $2; exit }' "$2"; }

# write_router_conf FILE TREE writes corvid router's JSON for one of the
# route trees over the three backends: pool A is all three, W, B and C
# one each. The prefix tree splits keys p:0 .. p:99999 in thirds by
# their first digit (W: 1-3, B: 4-6, C: the rest), so that it uses as
# many server connections as the plain pool.
write_router_conf() {
	local all route
	all=$(printf '"%s", ' "${backends[@]}")
	case $2 in
	pool) route='"PoolRoute|A"' ;;
	prefix3) route='{"type": "PrefixSelectorRoute", "policies": {"p:1": "PoolRoute|W", "p:2": "PoolRoute|W", "p:3": "PoolRoute|W", "p:4": "PoolRoute|B", "p:5": "PoolRoute|B", "p:6": "PoolRoute|B"}, "wildcard": "PoolRoute|C"}' ;;
	warmup) route='{"type": "WarmUpRoute", "cold": "PoolRoute|A", "warm": "PoolRoute|W"}' ;;
	esac
	cat >"$1" <<-EOF
		{
		  "pools": {
		    "A": {"servers": [${all%, }]},
		    "B": {"servers": ["${backends[1]}"]},
		    "C": {"servers": ["${backends[2]}"]},
		    "W": {"servers": ["${backends[0]}"]},
		  },
		  "route": $route,
		}
	EOF
}

# route_rows runs corvid router with each route tree and prints its
# throughput relative to the plain PoolRoute.
route_rows() {
	local trees=(pool prefix3 warmup) t r i port pid conf out order ok
	declare -A RPORT
	for t in "${trees[@]}"; do
		port=$(bench_free_port) || bench_die "no free loopback port"
		conf=$BENCH_TMP/router-$t.json
		write_router_conf "$conf" "$t"
		"$CORVID" router -f "$conf" -p "$port" --listen-addresses 127.0.0.1 2>"$BENCH_TMP/router-$t.log" &
		pid=$!
		BENCH_PIDS+=("$pid")
		ok=0
		for ((i = 0; i < 100; i++)); do
			bench_alive "$pid" || break
			if proxy_ready "$port"; then
				ok=1
				break
			fi
			sleep 0.1
		done
		((ok)) || { tail -n 20 "$BENCH_TMP/router-$t.log" >&2; bench_die "cannot start corvid router ($t)"; }
		RPORT[$t]=$port
		bench_log "router $t: 127.0.0.1:$port (pid $pid)"
		run_bg "$BENCH_TMP/router-prefill-$t.json" "$CORVID" bench -s "127.0.0.1:$port" -c 8 --prefill --requests 1 \
			--value-size 100 --key-prefix p: --json -q
	done
	for ((r = 1; r <= ROUNDS; r++)); do
		order=()
		for ((i = 0; i < 3; i++)); do order+=("${trees[(i + r - 1) % 3]}"); done
		for t in "${order[@]}"; do
			bench_log "routes round $r/$ROUNDS: $t ..."
			out=$BENCH_TMP/router-$t-$r.json
			run_bg "$out" "$CORVID" bench -s "127.0.0.1:${RPORT[$t]}" -c "$CONCURRENCY" --ratio 9:1 --value-size 100 \
				--key-prefix p: --duration "${DURATION}s" --json -q
			add "router ops/s" "$t" "$(json ops_per_sec "$out" | cut -d. -f1)"
			errs=$(json errors "$out")
			[[ $errs == 0 ]] || bench_log "warning: $errs error replies from router $t"
		done
	done
	local pool_ops
	pool_ops=$(bench_median ${res[router ops/s|pool]})
	echo
	echo "corvid router, route trees from JSON files over the same three backends, medians of $ROUNDS rounds (${DURATION}s, rotating order)"
	echo "load: corvid bench -c $CONCURRENCY, 90/10 get/set, 100 B values, keys p:0 .. p:99999 (prefilled)"
	printf '%-44s %10s %8s\n' route "ops/s" "x pool"
	printf '%-44s %10s %8s\n' "PoolRoute|A (3 servers)" "$pool_ops" 1
	for t in "prefix3:PrefixSelectorRoute (3 one-server pools)" "warmup:WarmUpRoute (cold A holds every key)"; do
		ops=$(bench_median ${res[router ops/s|${t%%:*}]})
		printf '%-44s %10s %8s\n' "${t#*:}" "$ops" "$(awk -v a="$ops" -v b="$pool_ops" 'BEGIN { printf "%.3f", a / b }')"
	done
}

add() { # METRIC TARGET VALUE
	bench_log "  $1 $2: $3"
	res[$1|$2]+="$3 "
}


# idle_memory TARGET ROUND MODE: a fresh proxy, RSS with IDLE idle client
# connections (bench/idleconns -mode MODE: silent or used) once it has
# settled (changed by less than 256 kB over a second), minus RSS before,
# per connection.
idle_memory() {
	local t=$1 r=$2 mode=$3 pid port before after prev lp i out
	start_proxy "$t" "$t-idle-$mode-$r"
	pid=$STARTED_PID port=$STARTED_PORT
	before=$(bench_rss_kb "$pid")
	out=$BENCH_TMP/idle-$t-$mode-$r.out
	"$BENCH_TMP/idleconns" -addr "127.0.0.1:$port" -conns "$IDLE" -mode "$mode" -hold 300s >"$out" 2>&1 &
	lp=$!
	BENCH_PIDS+=("$lp")
	for ((i = 0; i < 2400; i++)); do
		grep -q '^open' "$out" && break
		bench_alive "$lp" || break
		sleep 0.1
	done
	grep -q '^open' "$out" || { cat "$out" >&2; bench_die "cannot hold $IDLE connections to $t"; }
	after=$(bench_rss_kb "$pid") prev=0
	for ((i = 0; i < 30 && (after - prev > 256 || prev - after > 256); i++)); do
		sleep 1
		prev=$after after=$(bench_rss_kb "$pid")
	done
	bench_stop_server "$lp"
	bench_alive "$pid" || bench_die "$t died holding $IDLE connections"
	bench_stop_server "$pid"
	add "idle B/conn $mode (RSS)" "$t" $(((after - before) * 1024 / IDLE))
}

if [[ $ROUTES == only ]]; then
	route_rows
	exit 0
fi

# Warm-up: memcaslap and a prefill of corvid bench's key space on each.
for t in "${targets[@]}"; do
	bench_log "prefill and warm-up $t ..."
	run_bg "$BENCH_TMP/prefill-$t.json" "$CORVID" bench -s "127.0.0.1:${PORT[$t]}" -c 8 --prefill --requests 1 \
		--value-size 100 --key-prefix p: --json -q
	((WARMUP > 0)) && memcaslap "$t" "$WARMUP" "$BENCH_TMP/warmup-$t.out"
done

for ((r = 1; r <= ROUNDS; r++)); do
	# Rotate the order: each target goes first, second and last in turn.
	order=()
	for ((i = 0; i < ${#targets[@]}; i++)); do order+=("${targets[(i + r - 1) % ${#targets[@]}]}"); done
	for t in "${order[@]}"; do
		bench_log "round $r/$ROUNDS: $t ..."
		memcaslap "$t" "$DURATION" "$BENCH_TMP/mcs-$t-$r.out"
		add "ops/s (memcaslap)" "$t" "$TPS"
		add "CPU % (memcaslap)" "$t" "$CPU"
		add "CPU ns/op (memcaslap)" "$t" "$CPUOP"
		out=$BENCH_TMP/cb-$t-$r.json
		run_bg "$out" "$CORVID" bench -s "127.0.0.1:${PORT[$t]}" -c "$CONCURRENCY" --ratio 9:1 --value-size 100 \
			--key-prefix p: --duration "${DURATION}s" --json -q
		check_alive "$t"
		add "ops/s (corvid bench)" "$t" "$(json ops_per_sec "$out" | cut -d. -f1)"
		add "p50 µs (corvid bench)" "$t" "$(json p50 "$out" | cut -d. -f1)"
		add "p99 µs (corvid bench)" "$t" "$(json p99 "$out" | cut -d. -f1)"
		errs=$(json errors "$out")
		[[ $errs == 0 ]] || bench_log "warning: $errs error replies from $t"
		out=$BENCH_TMP/light-$t-$r.json
		run_bg "$out" "$CORVID" bench -s "127.0.0.1:${PORT[$t]}" -c "$LIGHT" --ratio 9:1 --value-size 100 \
			--key-prefix p: --duration "${DURATION}s" --json -q
		check_alive "$t"
		add "p50 µs light" "$t" "$(json p50 "$out" | cut -d. -f1)"
		add "p99 µs light" "$t" "$(json p99 "$out" | cut -d. -f1)"
		out=$BENCH_TMP/wide-$t-$r.out
		run_bg "$out" "$BENCH_TMP/wideget" -addr "127.0.0.1:${PORT[$t]}" -keys "$WIDE_KEYS" -rounds "$WIDE_GETS"
		check_alive "$t"
		add "$WIDE_KEYS-key get µs" "$t" "$(awk '$1 == "median_us" { print $2 }' "$out")"
	done
	if ((IDLE > 0)); then
		for t in "${order[@]}"; do
			[[ $t == direct || $t == corvid-fixed ]] && continue
			for mode in silent used; do
				bench_log "round $r/$ROUNDS: fresh $t with $IDLE idle connections ($mode) ..."
				idle_memory "$t" "$r" "$mode"
			done
		done
	fi
done

read -r load_end _ </proc/loadavg
med() { # METRIC TARGET
	# shellcheck disable=SC2086
	bench_median ${res[$1|$2]:-}
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.3f", a / b }'; }
echo "corvid proxy vs nutcracker, medians of $ROUNDS rounds (${DURATION}s runs, rotating order)"
echo "date:       $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit"
echo "machine:    $(nproc) CPUs, $(uname -sr); 1-min load average $load_start before, $load_end after"
echo "backends:   3 x ${MEMCACHED_ARGV[*]} -m $MEMORY_MB -t $SERVER_THREADS ($("${MEMCACHED_ARGV[0]}" -V 2>/dev/null || echo '?')); direct: one more"
echo "nutcracker: $("$NUTCRACKER" -V 2>&1 | head -n 1); corvid: $CORVID proxy; pool: fnv1a_64, ketama, 1 connection per server"
if [[ -n ${CORVID_B:-} ]]; then
	echo "corvid:     --procs auto; corvid B: $CORVID_B proxy, --procs auto"
elif ((FIXED)); then
	echo "corvid:     --procs auto; corvid fixed: --procs $(nproc)"
fi
echo "load:       memcaslap and corvid bench -c $CONCURRENCY, 90/10 get/set, 100 B values; wide get $WIDE_KEYS keys x $WIDE_GETS; $IDLE idle connections"
echo
row() { printf '%-24s %10s %11s %10s %18s %10s\n' "$@"; }
last="corvid fixed"
[[ -n ${CORVID_B:-} ]] && last="corvid B"
row metric direct nutcracker corvid corvid/nutcracker "$last"
for m in "ops/s (memcaslap)" "CPU % (memcaslap)" "CPU ns/op (memcaslap)" "ops/s (corvid bench)" "p50 µs (corvid bench)" "p99 µs (corvid bench)" "$WIDE_KEYS-key get µs" "p50 µs light" "p99 µs light"; do
	d=$(med "$m" direct) n=$(med "$m" nutcracker) c=$(med "$m" corvid) o=-
	((FIXED)) && o=$(med "$m" corvid-fixed)
	row "$m" "$d" "$n" "$c" "$(ratio "$c" "$n")" "$o"
done
# The latency a proxy adds is measured light, where direct is not
# saturated: under full load direct's p99 can exceed a proxy's, and a
# ratio of two negative differences reads backwards.
m="p99 µs light"
d=$(med "$m" direct) n=$(med "$m" nutcracker) c=$(med "$m" corvid)
o=-
((FIXED)) && o=$(($(med "$m" corvid-fixed) - d))
if ((n - d > 0)); then
	row "added p99 µs (light)" - $((n - d)) $((c - d)) "$(ratio $((c - d)) $((n - d)))" "$o"
else
	row "added p99 µs (light)" - $((n - d)) $((c - d)) - "$o"
fi
m="$WIDE_KEYS-key get µs"
d=$(med "$m" direct)
o=-
((FIXED)) && o=$(ratio "$(med "$m" corvid-fixed)" "$d")
row "$WIDE_KEYS-key get / direct" 1 "$(ratio "$(med "$m" nutcracker)" "$d")" "$(ratio "$(med "$m" corvid)" "$d")" - "$o"
if ((IDLE > 0)); then
	for m in "idle B/conn silent (RSS)" "idle B/conn used (RSS)"; do
		n=$(med "$m" nutcracker) c=$(med "$m" corvid)
		row "$m" - "$n" "$c" "$(ratio "$c" "$n")"
	done
fi
echo
echo "corvid/nutcracker: above 1 is better for ops/s, below 1 for latency and memory."

if [[ $ROUTES == 1 ]]; then
	route_rows
fi
