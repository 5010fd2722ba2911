#!/bin/sh
# Dry-run benchmark (design §6): `bulkhead plan` of 10,000 containers in
# 500 services with 2,000 edges, read from a `docker inspect`-shaped file,
# against jansson alone loading the same file, measured in one run.
# Targets: compile+render under 200 ms; the whole plan within 1.3x of the
# bare load; peak memory under 100 MB. Each figure is a median of rounds.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
B="$BUILD/bulkhead"
out=bench/out
mkdir -p "$out" "$BUILD/bench"
CFL="-O2 $(pkg-config --cflags --libs jansson)"
cc -o "$BUILD/bench/gen" bench/gen.c $CFL
cc -o "$BUILD/bench/jload" bench/jload.c $CFL
if [ ! -s "$out/inv.json" ]; then
	"$BUILD/bench/gen" tests/fixtures/three-tier.json "$out/inv.json" "$out/policy.yaml"
fi
size=$(stat -c %s "$out/inv.json")

# warm the page cache so both sides read from memory
cat "$out/inv.json" >/dev/null
# both sides run in turns, ROUNDS times, and each figure is the median of
# its rounds: this machine's speed wanders from one second to the next
ROUNDS=${ROUNDS:-3}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
r=0
while [ $r -lt "$ROUNDS" ]; do
	"$BUILD/bench/jload" "$out/inv.json" >>"$out/bare.txt"
	BULKHEAD_TIMINGS=1 /usr/bin/time -f "wall %e s, peak %M KB" \
		"$B" plan -p "$out/policy.yaml" --inventory "$out/inv.json" \
		>"$out/plan.nft" 2>"$out/plan.err"
	cat "$out/plan.err" >>"$out/plan.all"
	r=$((r + 1))
done
bare_ms=$(cut -d' ' -f1 "$out/bare.txt" | median)
bare_kb=$(cut -d' ' -f2 "$out/bare.txt" | median)
wall_s=$(sed -n 's/^wall \([0-9.]*\) s.*/\1/p' "$out/plan.all" | median)
peak_kb=$(sed -n 's/.*peak \([0-9]*\) KB.*/\1/p' "$out/plan.all" | median)
load_ms=$(sed -n 's/^timing: load \([0-9.]*\) ms/\1/p' "$out/plan.all" | median)
comp_ms=$(sed -n 's/^timing: compile \([0-9.]*\) ms/\1/p' "$out/plan.all" | median)
rend_ms=$(sed -n 's/^timing: render \([0-9.]*\) ms/\1/p' "$out/plan.all" | median)
rm -f "$out/bare.txt" "$out/plan.all"
elems=$(sed -n 's/^# .* sets and maps, \([0-9]*\) elements.*/\1/p' "$out/plan.nft")

awk -v size="$size" -v bare="$bare_ms" -v barekb="$bare_kb" -v wall="$wall_s" \
	-v peak="$peak_kb" -v load="$load_ms" -v comp="$comp_ms" -v rend="$rend_ms" \
	-v elems="$elems" 'BEGIN {
	whole = wall * 1000; cr = comp + rend; ratio = whole / bare
	printf "inventory: %.1f MB, 10000 containers; plan: %d elements\n", size / 1e6, elems
	printf "bare json_load_file:    %8.1f ms, peak %6.1f MB\n", bare, barekb / 1024
	printf "bulkhead plan (whole):  %8.1f ms, peak %6.1f MB\n", whole, peak / 1024
	printf "  streamed inventory:   %8.1f ms\n", load
	printf "  compile + render:     %8.1f ms (%.1f + %.1f)  target < 200 ms: %s\n", cr, comp, rend, cr < 200 ? "met" : "MISSED"
	printf "ratio plan / bare load: %8.2f            target <= 1.30: %s\n", ratio, ratio <= 1.3 ? "met" : "MISSED"
	printf "peak memory:            %8.1f MB          target < 100 MB: %s\n", peak / 1024, peak < 102400 ? "met" : "MISSED"
}'
