#!/bin/sh
# Revocation with real flows on a Docker-shaped host: backend holds a TCP
# connection and a UDP flow to db, over IPv4 and IPv6, and nginx a TCP
# connection to backend. An apply of a policy without the backend -> db
# edge ends backend's flows within a second, in both directions, and
# says how many it ended; nginx's stream, on an edge that stays, goes on.
# Narrowing the edge (UDP taken away) ends the UDP flow alone, where the
# narrowed ruleset loaded by nft alone (the control) does not.
set -eu
cd "$(dirname "$0")/../.."
B=${BULKHEAD:-$PWD/bulkhead}
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root for network namespaces"
	exit 0
fi
PY=/usr/bin/python3
INV=tests/fixtures/three-tier.json
NAMES="nginx backend db"
PORTS="8080"
UDP_PORTS="7001"
HOST_PORTS="53"
. tests/lib/dockerhost.sh
tmp=$DH_TMP
trap dh_cleanup EXIT INT TERM
dh_up
dh_inventory "$tmp/inv.json"
# echo servers: db on 7000/tcp (7001/udp from dockerhost), backend on 7002/tcp
bg ip netns exec "$DH-db" socat TCP6-LISTEN:7000,ipv6only=0,fork,reuseaddr EXEC:cat
bg ip netns exec "$DH-backend" socat TCP6-LISTEN:7002,ipv6only=0,fork,reuseaddr EXEC:cat
policy() { # $1: backend's ports to db, or "" for no edge
	cat <<-POL
	version: 1
	settings: { networks: [appnet] }
	services:
	  nginx:
	    match: { name: nginx }
	    egress: [{ to: backend, ports: [7002/tcp] }]
	  backend:
	    match: { labels: { app: backend } }
	POL
	[ -z "$1" ] || printf '    egress: [{ to: db, ports: [%s] }]\n' "$1"
	printf '  db:\n    match: { name: "db*" }\n'
}
policy "7000/tcp, 7001/udp" >"$tmp/full.yaml"
policy "7000/tcp" >"$tmp/narrow.yaml"
policy "" >"$tmp/none.yaml"
apply() { hx "$B" apply -p "$1" --inventory "$tmp/inv.json" >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err" "$tmp/out"; fail "apply $1"; }; }
count() { cat "$tmp/s-$1" 2>/dev/null || echo 0; }
stream() { # NAME FROM PROTO ADDR PORT
	bg ip netns exec "$DH-$2" $PY tests/lib/stream.py "$3" "$4" "$5" "$tmp/s-$1"
}
# flowing: NAME's echoes still come back (more after half a second)
flowing() { a=$(count "$1"); sleep 0.5; [ "$(count "$1")" -gt "$a" ]; }

apply "$tmp/full.yaml"
stream tcp4 backend tcp "$(v4 db)" 7000
stream udp4 backend udp "$(v4 db)" 7001
stream tcp6 backend tcp "$(v6 db)" 7000
stream keep nginx tcp "$(v4 backend)" 7002
sleep 1
for s in tcp4 udp4 tcp6 keep; do flowing $s || fail "stream $s does not flow before the change"; done

# the control: the narrowed ruleset loaded alone (nft -f of the plan,
# no revocation): the open UDP flow keeps going, as conntrack lets it
hx "$B" plan -p "$tmp/narrow.yaml" --inventory "$tmp/inv.json" >"$tmp/narrow.nft" 2>/dev/null
hx nft -f "$tmp/narrow.nft"
sleep 0.5
flowing udp4 || fail "control: the UDP flow stopped without revocation"
echo "control: the ruleset alone leaves the open UDP flow flowing"
# narrowed by apply: the UDP flow ends, the TCP ones stay
apply "$tmp/narrow.yaml"
grep -q "^revoked 1 flow " "$tmp/out" || { cat "$tmp/out"; fail "narrowing did not say it ended 1 flow"; }
grep -q "backend -> db 7001/udp (port-not-allowed)" "$tmp/out" || { cat "$tmp/out"; fail "the revoked pair is not named"; }
sleep 0.3
if flowing udp4; then fail "the UDP flow still flows after its port was taken away"; fi
for s in tcp4 tcp6 keep; do flowing $s || fail "stream $s stopped, but its edge stays"; done
echo "ok: narrowing an edge ends the flows of the ports taken away ($(sed -n 's/^revoked //p' "$tmp/out"))"

# the edge removed: backend's TCP flows end within a second, both ways
t0=$(date +%s%N)
apply "$tmp/none.yaml"
grep -q "^revoked 2 flows" "$tmp/out" || { cat "$tmp/out"; fail "removing the edge did not say it ended 2 flows"; }
ms=$((($(date +%s%N) - t0) / 1000000))
sleep 0.3
for s in tcp4 tcp6; do if flowing $s; then fail "stream $s still flows after its edge was removed"; fi; done
flowing keep || fail "nginx's stream stopped, but its edge stays"
# db's side of the revoked connection cannot send either: a new packet
# from db is judged as db's own connection, which db may not open
hx conntrack -L 2>/dev/null | grep -q "dport=7000 .*ESTABLISHED" && fail "an entry of the revoked connection remains"
echo "ok: removing an edge ends its TCP flows (IPv4, IPv6) within a second (apply and revocation: $ms ms); a stream on an edge that stays goes on"
