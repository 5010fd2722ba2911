# The shape of a Docker host, built in network namespaces for the kernel
# tests: a namespace for the host with a bridge named as Docker names it
# (br_netfilter on), and one namespace per "container" on a veth into the
# bridge, with the addresses of an inventory fixture. Sourced; needs
# root. Set INV and NAMES first; the caller's EXIT trap calls dh_cleanup.
#   dh_up                   build it; containers serve TCP on PORTS and
#                           echo UDP on UDP_PORTS; the host serves TCP
#                           and UDP on HOST_PORTS at the bridge address;
#                           each container's eth0 has the fixture's MAC
#   dh_inventory OUT        the fixture with each SandboxKey naming the
#                           container's namespace here (/run/netns/...)
#   hx CMD...               run CMD in the host namespace
#   v4 NAME / v6 NAME       a container's addresses
#   connect FROM ADDR PORT  0 when a TCP connection opens within 1 s
#   udp FROM ADDR PORT      0 when a UDP datagram is answered within 1 s
#   allowed / denied / udp_allowed / udp_denied   the same, or fail
DH=bh$$
DH_HOST=${DH}-host
DH_TMP=$(mktemp -d)
PORTS=${PORTS:-80 8080 5432 6379 5672 15672 9999}
UDP_PORTS=${UDP_PORTS:-8125 8126}
HOST_PORTS=${HOST_PORTS:-53 2222}

hx() { ip netns exec "$DH_HOST" "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

# everything still running in our namespaces goes with them
dh_cleanup() {
	set +e # a process already gone must not stop the cleanup
	[ -f "$DH_TMP/pids" ] && kill $(cat "$DH_TMP/pids") 2>/dev/null
	for ns in "$DH_HOST" $(for n in $NAMES; do echo "$DH-$n"; done); do
		kill $(ip netns pids "$ns" 2>/dev/null) 2>/dev/null
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -rf "$DH_TMP"
}

# bg CMD...: a server in the background, killed by dh_cleanup
bg() {
	"$@" >/dev/null 2>&1 &
	echo $! >>"$DH_TMP/pids"
}

dh_up() {
	net=$(jq -r '[.[0].NetworkSettings.Networks | keys[]][0]' "$INV")
	br="br-$(jq -r --arg n "$net" '.[0].NetworkSettings.Networks[$n].NetworkID[0:12]' "$INV")"
	gw=$(jq -r --arg n "$net" '.[0].NetworkSettings.Networks[$n].Gateway' "$INV")
	gw6=$(jq -r --arg n "$net" '.[0].NetworkSettings.Networks[$n].IPv6Gateway' "$INV")
	ip netns add "$DH_HOST"
	hx ip link set lo up
	hx ip link add "$br" type bridge
	hx ip addr add "$gw/24" dev "$br"
	hx ip -6 addr add "$gw6/64" dev "$br" nodad
	hx ip link set "$br" up
	hx sysctl -qw net.bridge.bridge-nf-call-iptables=1 \
		net.bridge.bridge-nf-call-ip6tables=1
	mkdir -p "$DH_TMP/www"
	echo ok >"$DH_TMP/www/index.html"
	i=0
	for n in $NAMES; do
		i=$((i + 1))
		ns="$DH-$n"
		ip4=$(jq -r --arg c "/$n" --arg n "$net" '.[] | select(.Name == $c) | .NetworkSettings.Networks[$n].IPAddress' "$INV")
		ip6=$(jq -r --arg c "/$n" --arg n "$net" '.[] | select(.Name == $c) | .NetworkSettings.Networks[$n].GlobalIPv6Address' "$INV")
		mac=$(jq -r --arg c "/$n" --arg n "$net" '.[] | select(.Name == $c) | .NetworkSettings.Networks[$n].MacAddress' "$INV")
		ip netns add "$ns"
		hx ip link add "v$i" type veth peer name eth0 address "$mac" netns "$ns"
		hx ip link set "v$i" master "$br" up
		ip -n "$ns" link set lo up
		ip -n "$ns" addr add "$ip4/24" dev eth0
		ip -n "$ns" -6 addr add "$ip6/64" dev eth0 nodad
		ip -n "$ns" link set eth0 up
		ip -n "$ns" route add default via "$gw"
		echo "$ip4 $ip6" >"$DH_TMP/addr-$n"
		for port in $PORTS; do
			bg ip netns exec "$ns" busybox httpd -f -p "$port" -h "$DH_TMP/www"
		done
		for port in $UDP_PORTS; do
			bg ip netns exec "$ns" socat UDP6-RECVFROM:"$port",ipv6only=0,fork EXEC:cat
		done
	done
	for port in $HOST_PORTS; do
		bg ip netns exec "$DH_HOST" busybox httpd -f -p "$gw:$port" -h "$DH_TMP/www"
		bg ip netns exec "$DH_HOST" socat UDP4-RECVFROM:"$port",bind="$gw",fork EXEC:cat
	done
	sleep 0.5
}

dh_inventory() {
	jq --arg p "/run/netns/$DH-" '[.[] | .NetworkSettings.SandboxKey = $p + (.Name | ltrimstr("/"))]' "$INV" >"$1"
}

v4() { cut -d' ' -f1 "$DH_TMP/addr-$1"; }
v6() { cut -d' ' -f2 "$DH_TMP/addr-$1"; }

connect() {
	ip netns exec "$DH-$1" timeout 1 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null
}
udp() {
	case $2 in *:*) a="[$2]" ;; *) a=$2 ;; esac
	r=$(echo "ping-$$" | ip netns exec "$DH-$1" timeout 2 socat -T1 - "UDP:$a:$3" 2>/dev/null) || true
	[ "$r" = "ping-$$" ]
}
allowed() { connect "$@" || fail "$1 -> $2:$3/tcp should connect"; }
denied() { if connect "$@"; then fail "$1 -> $2:$3/tcp should be dropped"; fi; }
udp_allowed() { udp "$@" || fail "$1 -> $2:$3/udp should be answered"; }
udp_denied() { if udp "$@"; then fail "$1 -> $2:$3/udp should be dropped"; fi; }
