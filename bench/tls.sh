#!/usr/bin/env bash
# tls.sh — the throughput cost of TLS: `corvid bench` against one server
# listening on a TLS port and a plain (notls) port, alternating, for corvid
# and, when its build has TLS, memcached. Prints ops/s medians and the
# ratio TLS/plain for each.
#
#   bench/tls.sh            ROUNDS=3 DURATION=5s CONNS=16 RATIO=9:1
#
# Needs openssl (to make a throwaway certificate) and ss.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_install_trap
bench_resolve_commands

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-16}
RATIO=${RATIO:-9:1}

chmod 755 "$BENCH_TMP" # memcached runs as nobody and reads the files
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj /CN=127.0.0.1 -keyout "$BENCH_TMP/key.pem" -out "$BENCH_TMP/cert.pem" 2>/dev/null
chmod 644 "$BENCH_TMP"/*.pem
TLS_OPTS="ssl_chain_cert=$BENCH_TMP/cert.pem,ssl_key=$BENCH_TMP/key.pem"

# start_tls LABEL ARGV... starts a server with a TLS port and a notls
# port and sets TLS_PORT, PLAIN_PORT.
start_tls() {
	local label=$1 pid i
	shift
	TLS_PORT=$(bench_free_port) && PLAIN_PORT=$(bench_free_port) || bench_die "no free port"
	"$@" -Z -o "$TLS_OPTS" -p "$TLS_PORT" -l "127.0.0.1,notls:127.0.0.1:$PLAIN_PORT" \
		-m "${MEMORY_MB:-64}" -t "${SERVER_THREADS:-2}" -U 0 >>"$BENCH_TMP/$label.log" 2>&1 &
	pid=$!
	BENCH_PIDS+=("$pid")
	for ((i = 0; i < 100; i++)); do
		bench_ready "$PLAIN_PORT" && return 0
		bench_alive "$pid" || break
		sleep 0.1
	done
	tail -n 20 "$BENCH_TMP/$label.log" >&2
	bench_die "cannot start $label with TLS"
}

# ops PORT [--tls] prints one run's ops/s.
ops() {
	local port=$1
	shift
	"${CORVID_ARGV[0]}" bench -q --json -s "127.0.0.1:$port" -c "$CONNS" --ratio "$RATIO" \
		--duration "$DURATION" --prefill --keys 10000 "$@" |
		sed -n 's/.*"ops_per_sec": *\([0-9.]*\).*/\1/p' | head -n 1
}

targets=(corvid)
if "${MEMCACHED_ARGV[0]}" -h 2>/dev/null | grep -q enable-ssl; then
	targets=(memcached corvid)
fi
printf '%-10s %14s %14s %10s\n' server "plain ops/s" "TLS ops/s" TLS/plain
for t in "${targets[@]}"; do
	if [[ $t == corvid ]]; then
		start_tls "$t" "${CORVID_ARGV[@]}"
	else
		start_tls "$t" "${MEMCACHED_ARGV[@]}"
	fi
	plain=() tlsr=()
	for ((r = 0; r < ROUNDS; r++)); do
		plain+=("$(ops "$PLAIN_PORT")")
		tlsr+=("$(ops "$TLS_PORT" --tls)")
	done
	p=$(bench_median "${plain[@]}")
	s=$(bench_median "${tlsr[@]}")
	printf '%-10s %14.0f %14.0f %10.2f\n' "$t" "$p" "$s" "$(awk -v a="$s" -v b="$p" 'BEGIN { print a / b }')"
	for pid in "${BENCH_PIDS[@]}"; do bench_stop_server "$pid"; done
done
