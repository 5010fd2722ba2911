#!/bin/sh
# bulkhead SIGKILLed while it sends a batch: the kernel holds the old
# ruleset or the new one, whole, never a part. In a throwaway namespace:
# the three-tier ruleset in force, then `apply` of a 48,000-element
# ruleset (4,000 generated containers) killed at spread-out moments
# around its send, a dozen times; after each kill the table must list
# exactly as one of the two. The figures say how many kills left which.
set -eu
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root for network namespaces"
	exit 0
fi
BUILD=${BUILD:-build}
B=$PWD/$BUILD/bulkhead
tmp=$(mktemp -d)
ns=bhkill$$
cleanup() {
	ip netns del "$ns" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
cc -O2 -Iinclude -o "$tmp/gen" bench/gen.c $(pkg-config --cflags --libs jansson)
"$tmp/gen" tests/fixtures/three-tier.json "$tmp/inv.json" "$tmp/policy.yaml" 4000 200 800
ip netns add "$ns"
in_ns() { ip netns exec "$ns" "$@"; }
listing() { in_ns nft list table inet bulkhead 2>/dev/null | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/' | md5sum | cut -c1-32; }
small() { in_ns "$B" apply --replace -p policies/three-tier.yaml --inventory tests/fixtures/three-tier.json >/dev/null 2>&1; }

# the two states a kill may leave, and how long the big apply takes
in_ns "$B" apply -p "$tmp/policy.yaml" --inventory "$tmp/inv.json" >/dev/null 2>&1 || fail "the big apply"
new=$(listing)
small || fail "the small apply"
old=$(listing)
t0=$(date +%s%N)
in_ns env BULKHEAD_TIMINGS=1 "$B" apply --replace -p "$tmp/policy.yaml" --inventory "$tmp/inv.json" \
	>/dev/null 2>"$tmp/timing" || fail "the timed apply"
total=$((($(date +%s%N) - t0) / 1000000))
kernel=$(sed -n 's/^timing: kernel \([0-9]*\).*/\1/p' "$tmp/timing")
start=$((total - kernel)) # the send begins about here

n_old=0 n_new=0 k=0
while [ $k -lt 12 ]; do
	small
	# from a little before the send to a little after its end
	delay=$((start - kernel / 4 + k * kernel * 3 / 2 / 11))
	in_ns "$B" apply --replace -p "$tmp/policy.yaml" --inventory "$tmp/inv.json" >/dev/null 2>&1 &
	p=$!
	sleep "$(echo "$delay" | awk '{ printf "%.3f", $1 / 1000 }')"
	kill -9 "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	now=$(listing)
	if [ "$now" = "$old" ]; then
		n_old=$((n_old + 1))
	elif [ "$now" = "$new" ]; then
		n_new=$((n_new + 1))
	else
		fail "killed at $delay ms: the table is neither the old ruleset nor the new one"
	fi
	k=$((k + 1))
done
echo "ok: 12 SIGKILLs of apply around its batch (send $kernel ms from about $start ms): $n_old left the old ruleset, $n_new the new one, none a part"
