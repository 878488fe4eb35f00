#!/usr/bin/env bash
# client.sh: GetMulti of 100 keys over three memcached (corvid servers when
# memcached is absent), corvid's client next to gomemcache on the same
# servers; prints the median ns/op and client cpu-ns/op of each and the
# ratio. COUNT runs of each, alternating (default 6); the raw output, in
# go test's format (for benchstat), stays in $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-6}
out=${OUT:-$(mktemp)}
# One run of both at a time, so that both see the same machine load.
go test -c -o "$out.test" ./client
: > "$out"
for _ in $(seq "$count"); do
  (cd client && "$out.test" -test.run '^$' -test.bench 'GetMulti' -test.benchtime "${BENCHTIME:-2s}") | tee -a "$out" | grep '^Benchmark' || true
done
rm -f "$out.test"
awk '
function median(a, n,   i, j, t) {
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t }
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
/^BenchmarkGetMulti\// {
	split($1, p, "/"); sub(/-[0-9]+$/, "", p[2]); c = p[2]
	for (i = 3; i < NF; i++) {
		if ($(i+1) == "ns/op") ns[c, ++nn[c]] = $i
		if ($(i+1) == "cpu-ns/op") cpu[c, ++nc[c]] = $i
	}
}
END {
	for (k in nn) {
		n = nn[k]; for (i = 1; i <= n; i++) a[i] = ns[k, i]; mns[k] = median(a, n)
		n = nc[k]; for (i = 1; i <= n; i++) a[i] = cpu[k, i]; mcpu[k] = median(a, n)
		printf "%-12s median %9.0f ns/op  %9.0f cpu-ns/op\n", k, mns[k], mcpu[k]
	}
	if (mns["corvid"] > 0 && mcpu["corvid"] > 0)
		printf "gomemcache/corvid: %.2fx wall time, %.2fx client CPU\n", mns["gomemcache"] / mns["corvid"], mcpu["gomemcache"] / mcpu["corvid"]
}' "$out"
