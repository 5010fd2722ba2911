#!/bin/sh
# End to end, identity: containers started by Docker (the three-tier app
# from docker-compose), bh-nginx's network namespace sending forged
# frames (tests/lib/attack.py, the sender holding only CAP_NET_RAW) at
# bh-db, whose namespace counts what arrives (tests/lib/sniff.py). First
# without bulkhead (the control: spoofed sources, forged ARP and VLAN
# tags get through), then under the daemon (refused), honest traffic
# flowing all along.
set -eu
cd "$(dirname "$0")/../.."
. tests/lib/e2e.sh
cleanup() {
	set +e
	[ -z "$pid" ] || kill -9 "$pid" 2>/dev/null
	ip link del bhtest0 2>/dev/null
	compose down -t 0 >/dev/null 2>&1
	"$B" flush
	rm -rf "$tmp"
}
trap cleanup EXIT

bh_policy bhnet "$tmp/policy.yaml"
compose down -t 0 >/dev/null 2>&1 || true
"$B" flush
compose up -d >/dev/null 2>&1 || fail "docker-compose up"

netattr() { docker inspect -f "{{(index .NetworkSettings.Networks \"bhnet\").$2}}" "$1"; }
can() { docker exec "$1" nc -w 1 "$(netattr "$2" IPAddress)" "$3" </dev/null >/dev/null 2>&1; }
NG4=$(netattr bh-nginx IPAddress) BE4=$(netattr bh-backend IPAddress) DB4=$(netattr bh-db IPAddress)
DBMAC=$(netattr bh-db MacAddress) NGMAC=$(netattr bh-nginx MacAddress)
# reach KIND ARGS...: how many frames of bh-nginx's attack bh-db's eth0
# saw
FORGE_TMP=$tmp
. tests/lib/forge.sh
reach() { forge "nsenter -t $(cpid bh-db) -n" "nsenter -t $(cpid bh-nginx) -n" eth0 "$@"; }
attacks() {
	nsenter -t "$(cpid bh-db)" -n ip neigh flush all
	echo "arp $(reach arp src="$BE4" dst="$DB4")"
	# what bh-db now takes for bh-backend's MAC (before the spoofed SYNs
	# below make it ask bh-backend itself)
	nsenter -t "$(cpid bh-db)" -n ip neigh show "$BE4" >"$tmp/neigh"
	echo "spoof4 $(reach spoof4 src="$BE4" dst="$DB4" dmac="$DBMAC")"
	echo "vlan0 $(reach vlan0 src="$NG4" dst="$DB4" dmac="$DBMAC")"
}

# the control: no bulkhead, and every attack arrives
attacks >"$tmp/control"
while read -r kind c; do
	[ "$c" -gt 0 ] || fail "control: $kind did not reach bh-db without bulkhead"
done <"$tmp/control"
grep -q "$NGMAC" "$tmp/neigh" ||
	fail "control: bh-db did not take bh-nginx's MAC for bh-backend's address"
echo "ok: control: $(tr '\n' ' ' <"$tmp/control")frames reach bh-db without bulkhead"

"$B" run -p "$tmp/policy.yaml" --control "$tmp/ctl" --log "$tmp/flows.jsonl" >>"$tmp/daemon.log" 2>&1 &
pid=$!
wait_for "the daemon's first sync" grep -q "docker: in sync" "$tmp/daemon.log"
wait_for "bh-nginx bound to its port" sh -c "nft list set bridge bulkhead id_mac | grep -q '$NGMAC'"
can bh-nginx bh-backend 8080 || fail "bh-nginx -> bh-backend:8080 should connect"
attacks >"$tmp/defended"
while read -r kind c; do
	[ "$c" -eq 0 ] || fail "$kind: $c frames reached bh-db under the daemon"
done <"$tmp/defended"
if grep -q "$NGMAC" "$tmp/neigh"; then
	fail "bh-db took bh-nginx's MAC for bh-backend's address under the daemon"
fi
can bh-nginx bh-backend 8080 || fail "bh-nginx -> bh-backend:8080 should connect"
can bh-backend bh-db 5432 || fail "bh-backend -> bh-db:5432 should connect"
if can bh-nginx bh-db 5432; then fail "bh-nginx -> bh-db:5432 should be blocked"; fi
echo "ok: under the daemon, spoofed sources, forged ARP and VLAN tags from a container started by Docker are refused; the allowed edges connect"

# a container started while the daemon runs is bound before it can send
docker run -d --name bh-db9 --network bhnet bulkhead-test/postgres:16 httpd -f -p 5432 -h /www >/dev/null
mac9=$(netattr bh-db9 MacAddress)
wait_for "bh-db9 bound to its port" sh -c "nft list set bridge bulkhead id_mac | grep -q '$mac9'"
docker rm -f bh-db9 >/dev/null
wait_for "bh-db9's port gone" sh -c "! nft list set bridge bulkhead id_mac | grep -q '$mac9'"
# a port on our bridge that no Docker event tells of (made by hand
# here; a veth Docker deletes after a resync read it, in real life):
# listed while it is there, so nothing from it passes; gone with it
br=br-$(docker network inspect -f '{{.Id}}' bhnet | cut -c1-12)
ip link add bhtest0 type veth peer name bhtest1
ip link set bhtest0 master "$br"
wait_for "the hand-made port listed" sh -c "nft list set bridge bulkhead id_ports | grep -q bhtest0"
"$B" diff -p "$tmp/policy.yaml" --exit-code >"$tmp/diff" 2>&1 || { cat "$tmp/diff"; fail "the kernel differs from a full compile (a hand-made port)"; }
ip link del bhtest0
wait_for "the hand-made port unlisted" sh -c "! nft list set bridge bulkhead id_ports | grep -q bhtest0"
"$B" diff -p "$tmp/policy.yaml" --exit-code >"$tmp/diff" 2>&1 || { cat "$tmp/diff"; fail "the kernel differs from a full compile"; }
stop_clean
echo "ok: identity end to end: a late container bound and unbound, a port no container holds listed and unlisted with the link; the kernel exact"
