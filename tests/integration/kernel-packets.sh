#!/bin/sh
# The kernel path with real packets: inside network namespaces, the shape
# of a Docker host (a bridge with br_netfilter on, one namespace per
# "container" on a veth, addresses from the three-tier fixture), and
# `bulkhead apply` run there. Allowed pairs connect over TCP (IPv4 and
# IPv6), every other pair is dropped, in both directions; `flush` removes
# our table and leaves another table as it was. Also: what `apply`
# programs lists the same as what `nft -f` of `plan` loads, and a
# container's arrival and departure are element deltas that end in the
# same state as a full apply.
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
BR=$(jq -r '.[0].NetworkSettings.Networks.appnet.NetworkID[0:12]' "$INV")
BR="br-$BR"
H=bhh$$
NAMES="nginx backend db redis-1 rabbitmq stray"
tmp=$(mktemp -d)
cleanup() {
	[ -f "$tmp/pids" ] && kill $(cat "$tmp/pids") 2>/dev/null
	for n in $NAMES; do ip netns del "bh$$-$n" 2>/dev/null || true; done
	ip netns del "$H" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

# --- equivalence: apply vs nft -f of plan, each in its own namespace ---
"$B" plan -p "$POL" --inventory "$INV" >"$tmp/plan.nft" 2>/dev/null
unshare -n sh -c "nft -f '$tmp/plan.nft' && sh tests/lib/nft-normalize.sh" >"$tmp/want"
unshare -n sh -c "'$B' apply -p '$POL' --inventory '$INV' >/dev/null 2>&1 && sh tests/lib/nft-normalize.sh" >"$tmp/got"
[ -s "$tmp/want" ] || fail "nothing listed after nft -f"
cmp -s "$tmp/want" "$tmp/got" || { diff "$tmp/want" "$tmp/got" | head -20; fail "apply differs from plan"; }
echo "ok: apply programs what plan prints ($(wc -l <"$tmp/want") normalised lines)"

# --- the host and its containers ---
ip netns add "$H"
hx() { ip netns exec "$H" "$@"; }
hx ip link set lo up
hx ip link add "$BR" type bridge
hx ip addr add 172.28.5.1/24 dev "$BR"
hx ip -6 addr add fd00:28:5::1/64 dev "$BR" nodad
hx ip link set "$BR" up
hx sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
i=0
for n in $NAMES; do
	i=$((i + 1))
	ns="bh$$-$n"
	ip4=$(jq -r --arg n "/$n" '.[] | select(.Name == $n) | .NetworkSettings.Networks.appnet.IPAddress' "$INV")
	ip6=$(jq -r --arg n "/$n" '.[] | select(.Name == $n) | .NetworkSettings.Networks.appnet.GlobalIPv6Address' "$INV")
	ip netns add "$ns"
	hx ip link add "v$i" type veth peer name eth0 netns "$ns"
	hx ip link set "v$i" master "$BR" up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$ip4/24" dev eth0
	ip -n "$ns" -6 addr add "$ip6/64" dev eth0 nodad
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add default via 172.28.5.1
	echo "$ip4 $ip6" >"$tmp/addr-$n"
	mkdir -p "$tmp/www"
	echo ok >"$tmp/www/index.html"
	for port in 80 8080 5432 6379 5672 15672 9999; do
		ip netns exec "$ns" busybox httpd -f -p "$port" -h "$tmp/www" &
		echo $! >>"$tmp/pids"
	done
done
for port in 53 2222; do
	hx busybox httpd -f -p "172.28.5.1:$port" -h "$tmp/www" &
	echo $! >>"$tmp/pids"
done
sleep 0.5

v4() { cut -d' ' -f1 "$tmp/addr-$1"; }
v6() { cut -d' ' -f2 "$tmp/addr-$1"; }
# connect FROM TO-ADDR PORT: 0 when a TCP connection opens within 1 s
connect() {
	ip netns exec "bh$$-$1" timeout 1 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null
}
allowed() { connect "$@" || fail "$1 -> $2:$3 should connect"; }
denied() { if connect "$@"; then fail "$1 -> $2:$3 should be dropped"; fi; }

# without our table everything connects: the probes can tell
allowed nginx "$(v4 db)" 5432
allowed stray "$(v4 backend)" 8080

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
echo "ok: allowed pairs connect, denied pairs are dropped (IPv4 and IPv6)"

# a container arriving and leaving, as element deltas
hx "$HELPER" "$POL" "$INV" without db >/dev/null || fail "apply without db"
denied backend "$(v4 db)" 5432 # not placed yet: fail closed
hx "$HELPER" "$POL" "$INV" add db >"$tmp/delta" || { cat "$tmp/delta"; fail "delta add"; }
allowed backend "$(v4 db)" 5432
allowed backend "$(v6 db)" 5432
denied nginx "$(v4 db)" 5432
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
