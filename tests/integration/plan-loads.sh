#!/bin/sh
# Every example's `bulkhead plan` output passes `nft -c -f` and really
# loads with `nft -f`, inside a throwaway network namespace (the host's
# ruleset is never touched); loading it twice replaces the table. And
# what `bulkhead apply` programs through netlink lists the same as what
# `nft -f` of the plan loads (normalised: no handles, elements as sets).
set -eu
cd "$(dirname "$0")/../.."
B=${BULKHEAD:-./bulkhead}
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root for network namespaces (unit tests cover the rest)"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. tests/lib/examples.sh
# shellcheck disable=SC2086
set -- $EXAMPLES
while [ $# -gt 0 ]; do
	pol=$1 inv=$2
	shift 2
	out="$tmp/$(basename "$pol").nft"
	"$B" plan -p "$pol" --inventory "$inv" --fqdn api.example.com=203.0.113.5 \
		>"$out" 2>"$tmp/err"
	unshare -n nft -c -f "$out"
	# load for real, twice (the second replaces the first), then count
	# what the kernel holds against what the plan says
	n=$(unshare -n sh -c "nft -f '$out' && nft -f '$out' && nft list table inet bulkhead && nft list table bridge bulkhead" |
		grep -c '^	chain ')
	want=$(grep -c '^	chain ' "$out")
	[ "$n" -eq "$want" ] || { echo "FAIL: $pol: $n chains loaded, plan has $want"; exit 1; }
	unshare -n sh -c "nft -f '$out' && sh tests/lib/nft-normalize.sh" >"$tmp/want"
	unshare -n sh -c "'$B' apply -p '$pol' --inventory '$inv' --fqdn api.example.com=203.0.113.5 \
		>/dev/null 2>&1 && sh tests/lib/nft-normalize.sh" >"$tmp/got"
	[ -s "$tmp/want" ] || { echo "FAIL: $pol: nothing listed after nft -f"; exit 1; }
	cmp -s "$tmp/want" "$tmp/got" || { diff "$tmp/want" "$tmp/got" | head -20; echo "FAIL: $pol: apply differs from nft -f of plan"; exit 1; }
	"$B" plan -p "$pol" --inventory "$inv" --format json --fqdn api.example.com=203.0.113.5 \
		2>/dev/null | jq -e '.table == "bulkhead" and (.sets | length) > 0' >/dev/null
	echo "ok: $pol ($want chains, $(grep -c . "$out") lines; apply lists as nft -f does)"
done
