#!/bin/sh
# The kernel path with real packets: inside network namespaces, the shape
# of a Docker host (tests/lib/dockerhost.sh: a bridge with br_netfilter
# on, one namespace per "container" on a veth, addresses from the
# three-tier fixture), and `bulkhead apply` run there. Allowed pairs
# connect over TCP and UDP (IPv4 and IPv6), every other pair is dropped,
# in both directions; a container's arrival and departure are element
# deltas that end in the same state as a full apply, with the same
# verdicts; `flush` removes our table and leaves another table as it was.
set -eu
cd "$(dirname "$0")/../.."
B=${BULKHEAD:-$PWD/bulkhead}
HELPER=$PWD/${BUILD:-build}/kernel-helper
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root for network namespaces"
	exit 0
fi
POL=policies/three-tier.yaml
INV=tests/fixtures/three-tier.json
NAMES="nginx backend db redis-1 rabbitmq stray"
PORTS="80 8080 5432 6379 5672 15672 9999 16380 16381"
. tests/lib/dockerhost.sh
tmp=$DH_TMP
trap dh_cleanup EXIT INT TERM
"$B" plan -p "$POL" --inventory "$INV" >"$tmp/plan.nft" 2>/dev/null
unshare -n sh -c "nft -f '$tmp/plan.nft' && sh tests/lib/nft-normalize.sh" >"$tmp/want"
dh_up

# without our table everything connects: the probes can tell
allowed nginx "$(v4 db)" 5432
allowed stray "$(v4 backend)" 8080
udp_allowed nginx "$(v4 db)" 8125

hx "$B" apply -p "$POL" --inventory "$INV" >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; fail "apply"; }
hx nft add table inet other
hx nft add chain inet other c '{ type filter hook forward priority 100; }'
hx nft add rule inet other c counter
hx nft list table inet other | grep -v packets >"$tmp/other-before"

allowed nginx "$(v4 backend)" 8080
allowed nginx "$(v6 backend)" 8080
allowed backend "$(v4 db)" 5432
allowed backend "$(v6 db)" 5432
allowed backend "$(v4 redis-1)" 6379
allowed backend "$(v4 redis-1)" 16380 # a port range: a rule over redis's members
allowed backend "$(v6 redis-1)" 16380
denied backend "$(v4 redis-1)" 16381
denied nginx "$(v4 redis-1)" 16380
denied db "$(v4 redis-1)" 16380
allowed backend "$(v4 rabbitmq)" 5672
allowed backend "$(v4 rabbitmq)" 15672
allowed backend 172.28.5.1 53
denied nginx "$(v4 db)" 5432
denied nginx "$(v6 db)" 5432
denied nginx "$(v4 redis-1)" 6379
denied nginx "$(v4 rabbitmq)" 5672
denied nginx "$(v4 backend)" 9999
denied backend "$(v4 nginx)" 80
denied db "$(v4 backend)" 8080
denied db "$(v6 backend)" 8080
denied redis-1 "$(v4 backend)" 8080
denied stray "$(v4 db)" 5432
denied backend "$(v4 stray)" 80
denied nginx 172.28.5.1 53
denied backend 172.28.5.1 2222
udp_allowed nginx "$(v4 backend)" 8125
udp_allowed nginx "$(v6 backend)" 8125
udp_allowed backend 172.28.5.1 53
udp_denied nginx "$(v4 backend)" 8126
udp_denied nginx "$(v6 backend)" 8126
udp_denied nginx "$(v4 db)" 8125
udp_denied backend "$(v4 nginx)" 8125
udp_denied backend "$(v6 nginx)" 8125
udp_denied stray "$(v4 backend)" 8125
udp_denied nginx 172.28.5.1 53
echo "ok: allowed pairs connect, denied pairs are dropped (TCP and UDP, IPv4 and IPv6)"

# a container arriving and leaving, as element deltas
hx "$HELPER" "$POL" "$INV" without db >/dev/null || fail "apply without db"
denied backend "$(v4 db)" 5432 # not placed yet: fail closed
udp_denied backend "$(v4 db)" 8125
hx "$HELPER" "$POL" "$INV" add db >"$tmp/delta" || { cat "$tmp/delta"; fail "delta add"; }
allowed backend "$(v4 db)" 5432
allowed backend "$(v6 db)" 5432
denied nginx "$(v4 db)" 5432
udp_denied backend "$(v4 db)" 8125
udp_allowed nginx "$(v4 backend)" 8125
hx sh tests/lib/nft-normalize.sh >"$tmp/got"
cmp -s "$tmp/want" "$tmp/got" || { diff "$tmp/want" "$tmp/got" | head -30; fail "full apply and delta differ"; }
hx "$HELPER" "$POL" "$INV" del db >>"$tmp/delta" || fail "delta del"
denied backend "$(v4 db)" 5432
hx "$HELPER" "$POL" "$INV" add db >>"$tmp/delta" || fail "delta add again"
allowed backend "$(v4 db)" 5432
echo "ok: arrival and departure as deltas ($(head -1 "$tmp/delta")), same state as a full apply"

hx nft list table inet other | grep -v packets >"$tmp/other-after"
cmp -s "$tmp/other-before" "$tmp/other-after" || fail "apply changed another table"
hx "$B" flush
if hx nft list table inet bulkhead >/dev/null 2>&1; then fail "flush left our table"; fi
hx nft list table inet other | grep -v packets >"$tmp/other-after"
cmp -s "$tmp/other-before" "$tmp/other-after" || fail "flush changed another table"
hx "$B" flush || fail "flush of a missing table"
allowed nginx "$(v4 db)" 5432
echo "ok: flush removes our table only, and is idempotent"
