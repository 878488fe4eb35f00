# shellcheck shell=bash disable=SC2034 # globals here are read by the sourcing scripts
# Helpers shared by the corvid bench scripts (server.sh, rss.sh).
# Source it; it defines functions and a few globals and starts nothing.
#
# Every process started through bench_start_server or bench_spawn is recorded
# in BENCH_PIDS and killed by bench_cleanup, which bench_install_trap runs on
# EXIT, INT and TERM.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)

BENCH_PIDS=()
BENCH_TMP=""

bench_log() { printf '%s\n' "$*" >&2; }
bench_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# bench_cleanup stops every recorded process (TERM, then KILL after 3 s),
# reaps it, and removes the scratch directory unless KEEP_TMP=1.
bench_cleanup() {
	local pid i
	for pid in "${BENCH_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${BENCH_PIDS[@]}"; do
		for ((i = 0; i < 30; i++)); do
			bench_alive "$pid" || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	BENCH_PIDS=()
	if [[ -n $BENCH_TMP && -d $BENCH_TMP ]]; then
		if [[ ${KEEP_TMP:-0} == 1 ]]; then
			bench_log "kept scratch directory $BENCH_TMP"
		else
			rm -rf "$BENCH_TMP"
		fi
	fi
}

bench_install_trap() {
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/corvid-bench.XXXXXX")
}

# bench_forget removes a pid from BENCH_PIDS once it has been reaped.
bench_forget() {
	local keep=() p
	for p in "${BENCH_PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	BENCH_PIDS=("${keep[@]}")
}

# bench_stop_server PID stops one server started by bench_start_server.
bench_stop_server() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 30; i++)); do
		bench_alive "$pid" || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	bench_forget "$pid"
}

# bench_alive PID succeeds while PID runs (a dead child not yet reaped is a
# zombie, which kill -0 would still report as alive).
bench_alive() {
	local state
	state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
	[[ -n $state && $state != Z && $state != X ]]
}

# bench_rss_kb PID prints the process's resident set size in KiB.
bench_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# bench_cpu_ticks PID prints the CPU time (user + system) the process has
# used, in clock ticks of BENCH_CLK_TCK a second (/proc/PID/stat fields 14
# and 15; the command name, field 2, may hold spaces, so fields are counted
# after its closing parenthesis).
BENCH_CLK_TCK=$(getconf CLK_TCK)
bench_cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# bench_free_port prints a loopback TCP port nobody listens on, chosen at
# random below the kernel's ephemeral range so client sockets cannot take it.
bench_free_port() {
	local port i
	for ((i = 0; i < 200; i++)); do
		port=$((20000 + RANDOM % 12000))
		if [[ -z $(ss -Htan "( sport = :$port )" 2>/dev/null) ]]; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

# bench_ready PORT succeeds when a server on 127.0.0.1:PORT answers "version".
bench_ready() {
	bench_answers "$1" version VERSION
}

# bench_answers PORT REQUEST PREFIX succeeds when 127.0.0.1:PORT answers the
# one-line REQUEST with a line that begins with PREFIX, within 2 seconds.
bench_answers() {
	local reply
	# shellcheck disable=SC2016 # $1, $2 and $line belong to the inner shell
	reply=$(timeout 2 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf "%s\r\n" "$2" >&3
		IFS= read -r line <&3
		printf "%s" "$line"
	' _ "$1" "$2" 2>/dev/null) || return 1
	[[ $reply == "$3"* ]]
}

# bench_resolve_commands sets the argv prefixes of both servers:
#   MEMCACHED_ARGV  from MEMCACHED_CMD (default "memcached -u nobody";
#                   -u is only acted on when running as root)
#   CORVID_ARGV     from CORVID_CMD, else "$CORVID server", else a fresh
#                   build of ./cmd/corvid in the scratch directory.
# The common flags (-p -l -m -t -U) are appended when a server starts.
# With NEED_CORVID=0 a failed build leaves CORVID_ARGV empty instead of
# exiting.
bench_resolve_commands() {
	local need=${NEED_CORVID:-1}
	read -r -a MEMCACHED_ARGV <<<"${MEMCACHED_CMD:-memcached -u nobody}"
	if [[ -n ${CORVID_CMD:-} ]]; then
		read -r -a CORVID_ARGV <<<"$CORVID_CMD"
		return 0
	fi
	if [[ -n ${CORVID:-} ]]; then
		[[ -x $CORVID ]] || bench_die "CORVID=$CORVID is not an executable"
		CORVID_ARGV=("$CORVID" server)
		return 0
	fi
	bench_log "building corvid (go build ./cmd/corvid) ..."
	if (cd "$REPO_ROOT" && go build -o "$BENCH_TMP/corvid" ./cmd/corvid) >"$BENCH_TMP/build.log" 2>&1; then
		CORVID_ARGV=("$BENCH_TMP/corvid" server)
		return 0
	fi
	CORVID_ARGV=()
	if [[ $need == 1 ]]; then
		cat "$BENCH_TMP/build.log" >&2
		bench_die "cannot build ./cmd/corvid (set CORVID=/path/to/corvid or CORVID_CMD)"
	fi
	bench_log "corvid is not available (build failed); skipping it"
	return 0
}

# bench_available_targets sets the array targets to the servers that can
# run: memcached when its command is found, corvid when it was resolved
# (run bench_resolve_commands first, with NEED_CORVID=0 to allow a failed
# build).
bench_available_targets() {
	targets=()
	if command -v "${MEMCACHED_ARGV[0]}" >/dev/null; then
		targets+=(memcached)
	else
		bench_log "${MEMCACHED_ARGV[0]} not found; skipping memcached"
	fi
	if ((${#CORVID_ARGV[@]})); then
		targets+=(corvid)
	fi
}

# bench_target_argv TARGET sets the array TARGET_ARGV to the command of
# TARGET (memcached or corvid).
bench_target_argv() {
	if [[ $1 == memcached ]]; then
		TARGET_ARGV=("${MEMCACHED_ARGV[@]}")
	else
		TARGET_ARGV=("${CORVID_ARGV[@]}")
	fi
}

# bench_start_server LABEL ARGV... starts a server on a free loopback port
# with the memcached command line "-p PORT -l 127.0.0.1 -m MEMORY_MB
# -t SERVER_THREADS -U 0", pinned with taskset when SERVER_CPUS is set.
# On success it sets STARTED_PID and STARTED_PORT; its output goes to
# $BENCH_TMP/LABEL.log.
bench_start_server() {
	local label=$1 attempt port pid i
	shift
	local pin=()
	[[ -n ${SERVER_CPUS:-} ]] && pin=(taskset -c "$SERVER_CPUS")
	for ((attempt = 0; attempt < 5; attempt++)); do
		port=$(bench_free_port) || bench_die "no free loopback port"
		"${pin[@]}" "$@" -p "$port" -l 127.0.0.1 -m "${MEMORY_MB:-64}" \
			-t "${SERVER_THREADS:-2}" -U 0 >>"$BENCH_TMP/$label.log" 2>&1 &
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
		bench_log "$label did not come up on port $port; retrying"
	done
	bench_log "--- $label output:"
	tail -n 20 "$BENCH_TMP/$label.log" >&2
	bench_die "cannot start $label: $*"
}

# bench_median prints the median of its numeric arguments.
bench_median() {
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 }
		END {
			if (NR == 0) exit 1
			if (NR % 2) printf "%d\n", v[(NR + 1) / 2]
			else printf "%d\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
		}'
}
