#!/bin/sh
# Prints `nft -j list table inet bulkhead` (and table bridge bulkhead,
# when there is one) in a canonical form: no
# handles, sets and chains sorted by name, set elements as sets, and
# each chain's rules in their order, and without the elements of
# timeout sets (the rate limiter's per-source state, filled by packets)
# and without counter values (the deny chain's count of packets).
# Two tables that print the same describe the same ruleset.
{
	nft -j list table inet bulkhead
	nft -j list table bridge bulkhead 2>/dev/null || true
} | jq -s '[.[].nftables[]] | {nftables: .}' | jq -S '
	.nftables | map(select(.metainfo | not))
	| walk(if type == "object" then del(.handle) else . end)
	| walk(if type == "object" and (.counter | type) == "object"
	       then .counter = {} else . end)
	| map(if .set and any(.set.flags[]?; . == "timeout")
	      then del(.set.elem) else . end)
	| walk(if type == "object" and (.elem | type) == "array" then .elem |= sort else . end)
	| { sets: [.[] | select(.set or .map)] | sort,
	    chains: [.[] | select(.chain)] | sort,
	    rules: [.[] | select(.rule)] | group_by(.rule.chain) }'
