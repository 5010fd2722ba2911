#!/bin/sh
# Denied-flow records (design §6: at least 200,000 a second decoded and
# written): NFLOG datagrams replayed through the daemon's decode,
# attribution and write, with 6 containers (the three-tier fixture) and
# with the 10,000 of the plan benchmark's inventory. No root needed.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
make -s "$BUILD/bench/flowlog" BUILD="$BUILD"
out=bench/out
mkdir -p "$out" "$BUILD/bench"
cc -o "$BUILD/bench/gen" bench/gen.c -O2 $(pkg-config --cflags --libs jansson)
if [ ! -s "$out/inv.json" ]; then
	"$BUILD/bench/gen" tests/fixtures/three-tier.json "$out/inv.json" "$out/policy.yaml"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$BUILD/bench/flowlog" policies/three-tier.yaml tests/fixtures/three-tier.json "$tmp/a.jsonl" 1000000
"$BUILD/bench/flowlog" "$out/policy.yaml" "$out/inv.json" "$tmp/b.jsonl" 200000
echo "(records written: $(wc -l <"$tmp/b.jsonl") in the last run)"
