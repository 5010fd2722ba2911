#!/bin/sh
# Kernel programming benchmark (design §6), in throwaway network
# namespaces: the 10,000-container ruleset of bench/plan.sh programmed
# through our netlink batch, against `nft -f` of our own plan output,
# in one run (the medians of ROUNDS alternations). Target: ours at
# least 3x faster. Then one container's delta at 10 and at 5,000
# running containers (target: within 2x).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
B="$PWD/$BUILD/bulkhead"
out=bench/out
[ -s "$out/inv.json" ] || BUILD=$BUILD bench/plan.sh >/dev/null
[ -x "$BUILD/bench/delta" ] || make -s "$BUILD/bench/delta" BUILD="$BUILD"
"$B" plan -p "$out/policy.yaml" --inventory "$out/inv.json" >"$out/plan.nft" 2>/dev/null
# ROUNDS alternations of the two, each in a fresh namespace; the medians
# are compared, since one sample of either swings by a third on a busy
# machine
rounds=${ROUNDS:-9}
: >"$out/kernel.times"
i=0
while [ "$i" -lt "$rounds" ]; do
	n=$(unshare -n sh -c "a=\$(date +%s%N); nft -f '$out/plan.nft'; b=\$(date +%s%N); echo \$(( (b - a) / 1000000 ))")
	o=$(unshare -n env BULKHEAD_TIMINGS=1 "$B" apply -p "$out/policy.yaml" \
		--inventory "$out/inv.json" 2>&1 >/dev/null | sed -n 's/^timing: kernel \([0-9.]*\) ms/\1/p')
	echo "$n $o" >>"$out/kernel.times"
	i=$((i + 1))
done
elems=$(sed -n 's/^# .* sets and maps, \([0-9]*\) elements.*/\1/p' "$out/plan.nft")
awk -v e="$elems" '
	{ n[NR] = $1; o[NR] = $2; r[NR] = $1 / $2 }
	function median(a, k,   i, j, t) {
		for (i = 2; i <= k; i++)
			for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
				t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
			}
		return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	}
	END {
		printf "ruleset: %d elements, %d rounds\n", e, NR
		lo = hi = r[1]
		for (i = 2; i <= NR; i++) { if (r[i] < lo) lo = r[i]; if (r[i] > hi) hi = r[i] }
		mn = median(n, NR); mo = median(o, NR)
		printf "nft -f of the plan:        %8.1f ms (median)\n", mn
		printf "bulkhead batch (kernel):   %8.1f ms (median)\n", mo
		rr = mn / mo
		printf "speed-up: %.2fx (rounds %.2f-%.2fx)   target at least 3x: %s\n", rr, lo, hi, (rr >= 3) ? "met" : "MISSED"
	}' "$out/kernel.times"

# one container's delta (compile_delta + its batch committed), median of
# 101 arrivals and departures, with 10 and with 5,000 containers running
d10=$(unshare -n "$BUILD/bench/delta" "$out/policy.yaml" "$out/inv.json" 10 101 2>/dev/null)
d5k=$(unshare -n "$BUILD/bench/delta" "$out/policy.yaml" "$out/inv.json" 5000 101 2>/dev/null)
echo "$d10 $d5k" | awk '{
	printf "one container, 10 running:     arrive %6.2f ms, leave %6.2f ms\n", $2 / 1000, $3 / 1000
	printf "one container, 5,000 running:  arrive %6.2f ms, leave %6.2f ms\n", $5 / 1000, $6 / 1000
	ra = $5 / $2; rl = $6 / $3
	printf "ratio 5,000 / 10: arrive %.2fx, leave %.2fx   target within 2x: %s\n", ra, rl, (ra <= 2 && rl <= 2) ? "met" : "MISSED"
}'
