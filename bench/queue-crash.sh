#!/usr/bin/env bash
# queue-crash.sh — the long run of corvid queue's crash test.
#
# MODE=store (the default) runs TestCrash of package queue/store with KILLS
# (default 200) kills: a helper process puts numbered items with
# sync=always while its reader opens and confirms them (every other run also aborts, takes without a
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
#
# MODE=process runs TestQueueBinaryCrash of cmd/corvid instead: the corvid
# queue process itself, started with --sync always on 127.0.0.1, a writer
# setting numbered items over TCP and a reader confirming them with
# get q/close/open; the process is SIGKILLed once a random number of items
# is acknowledged, restarted on the same data directory and drained, with
# the same checks and the same summary line.
set -euo pipefail

KILLS=${KILLS:-200}
[[ $KILLS =~ ^[1-9][0-9]*$ ]] || { echo "error: KILLS must be a positive integer, got '$KILLS'" >&2; exit 1; }
MODE=${MODE:-store}
case $MODE in
store) run=(env CORVID_QSTORE_CRASH_ITERS="$KILLS" go test -count=1 -timeout 0 -run '^TestCrash$' -v ./queue/store) ;;
process) run=(env CORVID_QUEUE_CRASH_KILLS="$KILLS" go test -count=1 -timeout 0 -run '^TestQueueBinaryCrash$' -v ./cmd/corvid) ;;
*) echo "error: MODE must be store or process, got '$MODE'" >&2; exit 1 ;;
esac
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=$(mktemp "${TMPDIR:-/tmp}/corvid-queue-crash.XXXXXX")
trap 'rm -f "$out"' EXIT
echo "queue-crash: $KILLS kills ($MODE) ..." >&2
if ! "${run[@]}" >"$out" 2>&1; then
	cat "$out" >&2
	echo "queue-crash: FAILED" >&2
	exit 1
fi
summary=$(grep -o '[0-9]* kills, .*' "$out" | tail -1)
[[ -n $summary ]] || { cat "$out" >&2; echo "queue-crash: no summary line" >&2; exit 1; }
echo "queue-crash: $summary"
