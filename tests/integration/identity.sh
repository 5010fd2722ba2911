#!/bin/sh
# Identity, with real frames on a Docker-shaped host (tests/lib/
# dockerhost.sh, each SandboxKey naming the container's namespace): nginx,
# holding only CAP_NET_RAW (Docker's default for a container, less the
# rest), forges what tests/lib/attack.py sends, and db's side counts what
# arrives (tests/lib/sniff.py). Each attack is run twice: without
# bulkhead (the control: the attack works) and with it (it fails).
# Honest traffic still flows, ICMP errors from a connection's own end
# included; a port that no container is bound to passes nothing; IPv6
# stays filtered when the host's ip6tables switch was off.
set -eu
cd "$(dirname "$0")/../.."
B=${BULKHEAD:-$PWD/bulkhead}
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root for network namespaces"
	exit 0
fi
command -v setpriv >/dev/null || { echo "FAIL: setpriv (util-linux) is missing"; exit 1; }
PY=/usr/bin/python3 # Debian's, which has python3-scapy
$PY -c 'import scapy' 2>/dev/null || { echo "FAIL: python3-scapy is missing"; exit 1; }
POL=policies/three-tier.yaml
INV=tests/fixtures/three-tier.json
NAMES="nginx backend db"
PORTS="8080 5432"
UDP_PORTS="5000" # backend's 8125/udp, open to nginx, has no listener
HOST_PORTS="53"
. tests/lib/dockerhost.sh
tmp=$DH_TMP
trap dh_cleanup EXIT INT TERM
dh_up
dh_inventory "$tmp/inv.json"
mac() { jq -r --arg c "/$1" '.[] | select(.Name == $c) | .NetworkSettings.Networks.appnet.MacAddress' "$INV"; }
ll() { ip -n "$DH-$1" -6 addr show dev eth0 scope link | sed -n 's/.*inet6 \([^/]*\).*/\1/p'; }

# reach KIND ARGS...: how many frames of nginx's attack (its sender
# holding only CAP_NET_RAW) db's eth0 saw
FORGE_TMP=$tmp
. tests/lib/forge.sh
reach() { forge "ip netns exec $DH-db" "ip netns exec $DH-nginx" eth0 "$@"; }
works() {
	c=$(reach "$@")
	[ "$c" -gt 0 ] || fail "control: $* did not reach db without bulkhead"
	echo "control: $1 reaches db without bulkhead ($c frames)"
}
refused() {
	c=$(reach "$@")
	[ "$c" -eq 0 ] || fail "$*: $c frames reached db with bulkhead"
	echo "refused: $1"
}
apply() { hx "$B" apply -p "$POL" --inventory "$tmp/inv.json" >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; fail "apply"; }; }

# an advertisement's target and nginx's MAC in its option, as bytes
na_mark() {
	echo "hex:$($PY -c 'import ipaddress, sys; print(ipaddress.IPv6Address(sys.argv[1]).packed.hex())' "$1")0201$(echo "$NGMAC" | tr -d :)"
}

NG4=$(v4 nginx) BE4=$(v4 backend) DB4=$(v4 db)
NG6=$(v6 nginx) BE6=$(v6 backend) DB6=$(v6 db)
DBMAC=$(mac db) BEMAC=$(mac backend) NGMAC=$(mac nginx)
spoof4="src=$BE4 dst=$DB4 dmac=$DBMAC"
spoof6="src=$BE6 dst=$DB6 dmac=$DBMAC"

apply
hx nft list set bridge bulkhead id_mac | grep -q "$NGMAC" || fail "nginx is not bound to its port"
# the control: without bulkhead, each attack works
hx "$B" flush >/dev/null
# neighbours first: the spoofed SYNs below keep db talking to backend
# (a neighbour entry updated within the last second is locked)
ip -n "$DH-db" neigh flush all
works arp src="$BE4" dst="$DB4"
ip -n "$DH-db" neigh show "$BE4" | grep -q "$NGMAC" ||
	fail "control: db did not take nginx's MAC for backend's address"
ip -n "$DH-db" -6 neigh replace "$BE6" lladdr "$BEMAC" dev eth0 nud stale
MARK=$(na_mark "$BE6") works na src="$BE6" own="$NG6" dst="$DB6" dmac="$DBMAC"
ip -n "$DH-db" -6 neigh show "$BE6" | grep -q "$NGMAC" ||
	fail "control: db did not take nginx's MAC for backend's IPv6 address"
works ra src="$(ll nginx)"
sleep 0.2
ip -n "$DH-db" -6 route show default | grep -q "via fe80" ||
	fail "control: db took no default route from nginx's advertisement"
ip -n "$DH-db" neigh flush all
allowed nginx "$BE4" 8080
works spoof4 $spoof4
works spoof6 $spoof6
works vlan0 src="$NG4" dst="$DB4" dmac="$DBMAC"
works nd_data own="$NG6" dst="$DB6" dmac="$DBMAC"
# an ICMP error about backend's connection to db, forged by nginx
sleep 20 | ip netns exec "$DH-backend" socat - TCP:"$DB4":5432 >/dev/null 2>&1 &
sleep 0.5
bport=$(ip netns exec "$DH-backend" ss -tnH state established dst "$DB4" | awk '{split($3, a, ":"); print a[2]; exit}')
[ -n "$bport" ] || fail "no connection from backend to db"
icmperr="own=$NG4 dst=$DB4 peer=$BE4 sport=5432 dport=$bport dmac=$DBMAC"
works icmperr $icmperr
echo "control: db's neighbours and routes poisoned"
# clean db's view again before the defended round
ip -n "$DH-db" neigh flush all
ip -n "$DH-db" -6 route del default 2>/dev/null || true

apply
refused spoof4 $spoof4
refused spoof6 $spoof6
refused spoof4 $spoof4 mac="$BEMAC"
refused vlan0 src="$NG4" dst="$DB4" dmac="$DBMAC"
refused vlan5 src="$NG4" dst="$DB4" dmac="$DBMAC"
ip -n "$DH-db" neigh flush all
refused arp src="$BE4" dst="$DB4"
ip netns exec "$DH-db" ip neigh show "$BE4" | grep -q "$NGMAC" && fail "db took nginx's MAC for backend's address"
ip -n "$DH-db" -6 neigh replace "$BE6" lladdr "$BEMAC" dev eth0 nud stale
MARK=$(na_mark "$BE6") refused na src="$BE6" own="$NG6" dst="$DB6" dmac="$DBMAC"
ip -n "$DH-db" -6 neigh show "$BE6" | grep -q "$NGMAC" && fail "db took nginx's MAC for backend's IPv6 address"
refused ra src="$(ll nginx)"
ip -n "$DH-db" -6 route show default | grep -q "via fe80" && fail "db took a default route from nginx"
refused nd_data own="$NG6" dst="$DB6" dmac="$DBMAC"
sleep 20 | ip netns exec "$DH-backend" socat - TCP:"$DB4":5432 >/dev/null 2>&1 &
sleep 0.5
bport=$(ip netns exec "$DH-backend" ss -tnH state established dst "$DB4" | awk '{split($3, a, ":"); print a[2]; exit}')
[ -n "$bport" ] || fail "no connection from backend to db"
refused icmperr own="$NG4" dst="$DB4" peer="$BE4" sport=5432 dport="$bport" dmac="$DBMAC"
# an error from the connection's own end passes: backend's port
# unreachable for nginx's datagram to 8125, which nginx may send
r=$(ip netns exec "$DH-nginx" $PY -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[1], 8125))
s.send(b"x")
try:
    s.recv(10)
    print("answered")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("silence")' "$BE4")
[ "$r" = refused ] || fail "backend's port unreachable did not reach nginx ($r)"
echo "ok: an ICMP error from the connection's own end reaches its peer"
# nginx's advertisement of its own address still passes (its neighbours
# must learn it)
c=$(MARK=$(na_mark "$NG6") reach na src="$NG6" own="$NG6" dst="$DB6" dmac="$DBMAC")
[ "$c" -gt 0 ] || fail "nginx's advertisement of its own address was dropped"

# honest traffic: the allowed pairs, over IPv4 and IPv6, neighbour
# discovery and ARP included (flushed first)
ip -n "$DH-nginx" neigh flush all
ip -n "$DH-backend" neigh flush all
allowed nginx "$BE4" 8080
allowed nginx "$BE6" 8080
allowed backend "$DB4" 5432
allowed backend "$DB6" 5432
allowed backend "$(v4 db | sed 's/\.[0-9]*$/.1/')" 53
denied nginx "$DB4" 5432
echo "ok: honest traffic flows: ARP, neighbour discovery, the allowed edges"

# a port that no container of the inventory is bound to: nothing from it
# passes, not even ARP to the host
ip netns add "$DH-x"
NAMES="$NAMES x"
hx ip link add vx type veth peer name eth0 address 02:42:ac:1c:05:99 netns "$DH-x"
ip -n "$DH-x" link set eth0 up
ip -n "$DH-x" addr add 172.28.5.99/24 dev eth0
hx ip link set vx master "$br" up
apply
hx nft list set bridge bulkhead id_ports | grep -q '"vx"' || fail "the unbound port is not in id_ports"
hx nft list set bridge bulkhead id_mac | grep -q '"vx"' && fail "the unbound port has a MAC bound"
ip netns exec "$DH-x" ping -c 1 -W 1 172.28.5.1 >/dev/null 2>&1 || true
hx ip neigh show 172.28.5.99 | grep -q lladdr && fail "the host learnt the unbound container's MAC"
hx "$B" diff -p "$POL" --inventory "$tmp/inv.json" >/dev/null 2>&1 || fail "diff after apply is not empty"
# the host's IPv6 switch off: without a word, IPv6 between containers
# would not be filtered at all (the control); apply turns it on again
hx sysctl -qw net.bridge.bridge-nf-call-ip6tables=0
allowed nginx "$DB6" 5432
apply
grep -q "bridge-nf-call-ip6tables was off: turned it on" "$tmp/err" || { cat "$tmp/err"; fail "apply said nothing of the IPv6 switch"; }
denied nginx "$DB6" 5432
echo "ok: IPv6 filtered again: apply turned net.bridge.bridge-nf-call-ip6tables on and said so"
echo "ok: identity: spoofed sources (IPv4, IPv6, MAC), VLAN tags, forged ARP, neighbour and router advertisements, ND carrying data and forged ICMP errors reach db without bulkhead and not with it; an unbound port passes nothing"
