#!/usr/bin/env bash
# hostile.sh — does the server hold its memory bound under hostile clients?
#
# Runs bench/hostile: each attack of corvid's hostile-client suite (unread
# multi-gets of 1 MB values, huge declared values, slow readers, half-sent
# lines, unread metadumps, their binary forms, 10k idle connections) on a
# fresh memcached, corvid and corvid --event-loops 0, each with -m 64 -I 2m,
# and prints each server's peak RSS and a well-behaved client's get p99
# side by side. Fails when a corvid column breaks the bound (RSS over
# -m + 64 MB, p99 over 100 ms, or a stored item lost). Extra arguments go
# to bench/hostile (e.g. -conns 200 -hold 3s; see go doc ./bench/hostile).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_install_trap
bench_resolve_commands

bench_log "building bench/hostile ..."
(cd "$REPO_ROOT" && go build -o "$BENCH_TMP/hostile" ./bench/hostile) ||
	bench_die "cannot build bench/hostile"

memcached=""
if command -v "${MEMCACHED_ARGV[0]}" >/dev/null; then
	memcached="${MEMCACHED_ARGV[*]}"
else
	bench_log "${MEMCACHED_ARGV[0]} not found; corvid only"
fi
"$BENCH_TMP/hostile" -corvid "${CORVID_ARGV[*]}" -memcached "$memcached" "$@"
