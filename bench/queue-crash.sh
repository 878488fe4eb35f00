#!/usr/bin/env bash
# queue-crash.sh — the long run of corvid queue's crash test.
#
# Runs TestCrash of package queue/store with KILLS (default 200) kills: a
# helper process puts numbered items with sync=always while its reader opens
# and confirms them (every other run also aborts, takes without a
# transaction and reads items back from the journal past its memory
# limit); it is killed with SIGKILL at a random moment, the journal is
# replayed and checked: every acknowledged item present exactly once and in
# order, confirmed and taken items gone, open items back. Prints one
# summary line:
#
#   queue-crash: KILLS kills, N items acknowledged, M confirmed, 0 lost, 0 duplicates
#
# and fails (with the test's message) at the first loss, duplicate or
# reordering.
set -euo pipefail

KILLS=${KILLS:-200}
[[ $KILLS =~ ^[1-9][0-9]*$ ]] || { echo "error: KILLS must be a positive integer, got '$KILLS'" >&2; exit 1; }
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=$(mktemp "${TMPDIR:-/tmp}/corvid-queue-crash.XXXXXX")
trap 'rm -f "$out"' EXIT
echo "queue-crash: $KILLS kills ..." >&2
if ! CORVID_QSTORE_CRASH_ITERS=$KILLS go test -count=1 -timeout 0 -run '^TestCrash$' -v ./queue/store >"$out" 2>&1; then
	cat "$out" >&2
	echo "queue-crash: FAILED" >&2
	exit 1
fi
summary=$(grep -o '[0-9]* kills, .*' "$out" | tail -1)
[[ -n $summary ]] || { cat "$out" >&2; echo "queue-crash: no summary line" >&2; exit 1; }
echo "queue-crash: $summary"
