#!/bin/sh
# Kernel programming benchmark (design §6), in throwaway network
# namespaces: the 10,000-container ruleset of bench/plan.sh programmed
# through our netlink batch, against `nft -f` of our own plan output,
# in one run. Target: ours at least 3x faster.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
B="$PWD/$BUILD/bulkhead"
out=bench/out
[ -s "$out/inv.json" ] || BUILD=$BUILD bench/plan.sh >/dev/null
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
