#!/bin/sh
# Kernel programming benchmark (design §6), in throwaway network
# namespaces: the 10,000-container ruleset of bench/plan.sh programmed
# through our netlink batch, against `nft -f` of our own plan output,
# in one run. Target: ours at least 3x faster. Then one container's
# delta at 10 and at 5,000 running containers (target: within 2x).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
B="$PWD/$BUILD/bulkhead"
out=bench/out
[ -s "$out/inv.json" ] || BUILD=$BUILD bench/plan.sh >/dev/null
[ -x "$BUILD/bench/delta" ] || make -s "$BUILD/bench/delta" BUILD="$BUILD"
"$B" plan -p "$out/policy.yaml" --inventory "$out/inv.json" >"$out/plan.nft" 2>/dev/null
nft_ms=$(unshare -n sh -c "a=\$(date +%s%N); nft -f '$out/plan.nft'; b=\$(date +%s%N); echo \$(( (b - a) / 1000000 ))")
ours=$(unshare -n env BULKHEAD_TIMINGS=1 "$B" apply -p "$out/policy.yaml" \
	--inventory "$out/inv.json" 2>&1 >/dev/null | sed -n 's/^timing: kernel \([0-9.]*\) ms/\1/p')
elems=$(sed -n 's/^# .* sets and maps, \([0-9]*\) elements.*/\1/p' "$out/plan.nft")
awk -v n="$nft_ms" -v o="$ours" -v e="$elems" 'BEGIN {
	printf "ruleset: %d elements\n", e
	printf "nft -f of the plan:        %8.1f ms\n", n
	printf "bulkhead batch (kernel):   %8.1f ms\n", o
	r = n / o; printf "speed-up: %.2fx   target at least 3x: %s\n", r, (r >= 3) ? "met" : "MISSED"
}'

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
