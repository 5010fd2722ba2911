#!/bin/sh
# Datapath benchmark (design §6), in throwaway network namespaces: TCP
# throughput (iperf3) between two "containers" on a bridge in a "host"
# namespace, through a forward chain that looks every packet up, in one
# run:
#   set-10, set-100k:     bulkhead's peer set (a hash set of exact
#                         oifname . ip daddr . meta l4proto . th dport
#                         tuples; the reply matched by source port)
#                         holding 10 or 100,000 allowed tuples
#   ranges-10, ranges-10k: the same tuples in an interval set, the kind
#                         bulkhead keeps for port and protocol ranges (a
#                         few per service; the kernel takes minutes to
#                         load 100,000 of them into one interval set)
#   chain-10, chain-1k, chain-10k: the allow-list as a linear chain,
#                         one rule per tuple, the flow's own last (at
#                         100,000 rules it carries a few Mbit/s and takes
#                         minutes to load)
#   set-10-id, set-100k-id: the same, with bulkhead's bridge table in
#                         front (each frame's port, MAC, EtherType and
#                         source address checked), 10,000 other ports
#                         bound besides the two of the flow
#   set-10-log:           set-10 as the daemon runs it when allowed flows
#                         are on record (settings.log_allowed) or counted
#                         (--metrics): conntrack's accounting on (every
#                         packet counted in its entry) and a listener of
#                         conntrack's events (NEW, UPDATE, DESTROY)
# There is no `ct state established` shortcut here (bulkhead's chains put
# one first), so every packet pays for the lookup. Targets: set-100k
# within 5% of set-10, with the bridge table as without it, and the
# bridge table costing under 5%, allowed flows on record costing under
# 5%; the linear chain falls off.
set -eu
cd "$(dirname "$0")/.."
SECS=${SECS:-3}
if [ "$(id -u)" -ne 0 ]; then
	echo "datapath: needs root for network namespaces" >&2
	exit 1
fi
command -v iperf3 >/dev/null || { echo "datapath: iperf3 is missing (scripts/install-deps.sh)" >&2; exit 1; }
P=bhdp$$
tmp=$(mktemp -d)
cleanup() {
	set +e
	for ns in $P-host $P-a $P-b; do
		kill $(ip netns pids "$ns" 2>/dev/null) 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
ip netns add $P-host
ip -n $P-host link set lo up
ip -n $P-host link add br-bench type bridge
ip -n $P-host link set br-bench up
ip netns exec $P-host sysctl -qw net.bridge.bridge-nf-call-iptables=1
i=0
for n in a b; do
	i=$((i + 1))
	ip netns add $P-$n
	ip -n $P-host link add v$n type veth peer name eth0 address 02:00:00:00:00:0$i netns $P-$n
	ip -n $P-host link set v$n master br-bench up
	ip -n $P-$n link set lo up
	ip -n $P-$n addr add 10.99.0.$i/24 dev eth0
	ip -n $P-$n link set eth0 up
done

# filler tuples: other addresses and ports on the same bridge
fill() { # N: N tuples that are not the flow's
	awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++)
		printf "\"br-other\" . 10.%d.%d.%d . tcp . %d\n", 100 + int(i / 60000), int(i / 250) % 240, i % 250 + 1, 1000 + i % 60000 }'
}
ruleset_set() { # N [interval]
	{
		echo "table inet bhbench {"
		echo " set peer4 { type ifname . ipv4_addr . inet_proto . inet_service; ${2:+flags interval;} elements = {"
		fill $(($1 - 2)) | sed 's/$/,/'
		echo "\"br-bench\" . 10.99.0.2 . tcp . 5201, \"br-bench\" . 10.99.0.1 . tcp . 5201 } }"
		echo " chain forward { type filter hook forward priority -10; policy drop;"
		echo "  oifname . ip daddr . meta l4proto . th dport @peer4 accept"
		echo "  oifname . ip daddr . meta l4proto . th sport @peer4 accept"
		echo "  meta nfproto ipv6 accept"; echo " }"; echo "}"
	} >"$tmp/rules.nft"
}
ruleset_chain() { # N
	{
		echo "table inet bhbench {"
		echo " chain forward { type filter hook forward priority -10; policy drop;"
		fill $(($1 - 2)) | awk '{ printf "  oifname %s ip daddr %s meta l4proto %s th dport %s accept\n", $1, $3, $5, $7 }'
		echo "  oifname \"br-bench\" ip daddr 10.99.0.2 meta l4proto tcp th dport 5201 accept"
		echo "  oifname \"br-bench\" ip daddr 10.99.0.1 meta l4proto tcp th sport 5201 accept"
		echo "  meta nfproto ipv6 accept"; echo " }"; echo "}"
	} >"$tmp/rules.nft"
}
# bulkhead's bridge table (the layout of its plan), va and vb bound and
# N other ports besides
ruleset_bridge() { # N
	awk -v n="$1" 'BEGIN {
		print "table bridge bhbench {"
		print " set id_ports { type ifname; elements = { \"va\", \"vb\""
		for (i = 0; i < n; i++) printf ", \"p%d\"", i
		print " } }"
		print " set id_mac { type ifname . ether_addr; elements = { \"va\" . 02:00:00:00:00:01, \"vb\" . 02:00:00:00:00:02"
		for (i = 0; i < n; i++) printf ", \"p%d\" . 02:01:%02x:%02x:%02x:01", i, int(i / 65536), int(i / 256) % 256, i % 256
		print " } }"
		print " set id_addr4 { type ifname . ipv4_addr; elements = { \"va\" . 10.99.0.1, \"vb\" . 10.99.0.2"
		for (i = 0; i < n; i++) printf ", \"p%d\" . 10.98.%d.%d", i, int(i / 250), i % 250 + 1
		print " } }"
		print " chain id_ip4 { meta protocol ip iifname . ip saddr @id_addr4 accept; counter drop; }"
		print " chain id_arp { ether type arp iifname . arp saddr ip @id_addr4 accept; counter drop; }"
		print " chain id_port { iifname . ether saddr != @id_mac counter drop; ether type ip jump id_ip4; ether type arp jump id_arp; ether type ip6 accept; counter drop; }"
		print " chain prerouting { type filter hook prerouting priority filter - 10; policy accept; iifname @id_ports jump id_port; }"
		print "}"
	}'
}
once() { # RULES-FILE: load it, one iperf3 run, print Mbit/s
	ip netns exec $P-host nft delete table inet bhbench 2>/dev/null || true
	ip netns exec $P-host nft delete table bridge bhbench 2>/dev/null || true
	ip netns exec $P-host nft -f "$1"
	case $1 in
	*-log.nft)
		ip netns exec $P-host sysctl -qw net.netfilter.nf_conntrack_acct=1
		ip netns exec $P-host conntrack -E -e NEW,UPDATE,DESTROY >/dev/null 2>&1 &
		listener=$!
		;;
	*) ip netns exec $P-host sysctl -qw net.netfilter.nf_conntrack_acct=0 ;;
	esac
	ip netns exec $P-b sh -c "iperf3 -s -D -1 >/dev/null 2>&1"
	sleep 0.3
	timeout $((SECS + 20)) ip netns exec $P-a iperf3 -c 10.99.0.2 -t "$SECS" -J >"$tmp/out.json" 2>/dev/null ||
		{ echo "datapath: iperf3 failed for $1" >&2; exit 1; }
	if [ -n "$listener" ]; then
		kill "$listener" 2>/dev/null
		wait "$listener" 2>/dev/null || true
		listener=""
	fi
	jq '.end.sum_received.bits_per_second / 1e6' "$tmp/out.json"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# the sets' variants take turns, ROUNDS times, so that drift in the
# machine's speed falls on all of them alike; medians are compared
ROUNDS=${ROUNDS:-5}
VARIANTS="set-10 set-100k set-10-id set-100k-id ranges-10 ranges-10k set-10-log"
listener=""
for v in $VARIANTS; do
	base=${v%-id}
	base=${base%-log}
	n=${base#*-}
	case $n in *k) n=${n%k}000 ;; esac
	case $base in ranges-*) ruleset_set "$n" i ;; *) ruleset_set "$n" ;; esac
	cp "$tmp/rules.nft" "$tmp/$v.nft"
	case $v in *-id) ruleset_bridge 10000 >>"$tmp/$v.nft" ;; esac
done
r=0
while [ $r -lt "$ROUNDS" ]; do
	for v in $VARIANTS; do
		once "$tmp/$v.nft" >>"$tmp/$v.mbps"
	done
	r=$((r + 1))
done
s10=$(median <"$tmp/set-10.mbps")
s100k=$(median <"$tmp/set-100k.mbps")
i10=$(median <"$tmp/set-10-id.mbps")
i100k=$(median <"$tmp/set-100k-id.mbps")
r10=$(median <"$tmp/ranges-10.mbps")
r10k=$(median <"$tmp/ranges-10k.mbps")
l10=$(median <"$tmp/set-10-log.mbps")
ruleset_chain 10;     c10=$(once "$tmp/rules.nft")
ruleset_chain 1000;   c1k=$(once "$tmp/rules.nft")
ruleset_chain 10000;  c10k=$(once "$tmp/rules.nft")
awk -v l10="$l10" -v i10="$i10" -v i100k="$i100k" -v s10="$s10" -v r10="$r10" -v r10k="$r10k" -v s100k="$s100k" -v c10="$c10" -v c1k="$c1k" -v c10k="$c10k" 'BEGIN {
	printf "TCP throughput, every packet looked up (iperf3, Mbit/s; sets: median of the rounds):\n"
	printf "  set, 10 tuples:        %10.0f\n", s10
	printf "  set, 100,000 tuples:   %10.0f   (%.1f%% of 10)\n", s100k, 100 * s100k / s10
	printf "  set, 10, bridge table: %10.0f   (%.1f%% of the same without)\n", i10, 100 * i10 / s10
	printf "  set, 100k, bridge tbl: %10.0f   (%.1f%% of 10 with it, %.1f%% of 100k without)\n", i100k, 100 * i100k / i10, 100 * i100k / s100k
	printf "  set, 10, flows on record: %7.0f   (%.1f%% of the same without)\n", l10, 100 * l10 / s10
	printf "  ranges, 10 tuples:     %10.0f\n", r10
	printf "  ranges, 10,000:        %10.0f   (%.1f%% of 10)\n", r10k, 100 * r10k / r10
	printf "  chain, 10 rules:       %10.0f\n", c10
	printf "  chain, 1,000 rules:    %10.0f   (%.1f%% of 10)\n", c1k, 100 * c1k / c10
	printf "  chain, 10,000 rules:   %10.0f   (%.1f%% of 10)\n", c10k, 100 * c10k / c10
	d = 100 * (1 - s100k / s10)
	printf "set at 100k within 5%% of 10: %s (%.1f%% slower); linear chain at 10k: %.1f%% of its 10\n",
		(d <= 5 ? "met" : "MISSED"), d, 100 * c10k / c10
	di = 100 * (1 - i100k / i10); dw = 100 * (1 - i100k / s100k)
	printf "with the bridge table, 100k within 5%% of 10: %s (%.1f%% slower); within 5%% of the same without it: %s (%.1f%% slower)\n",
		(di <= 5 ? "met" : "MISSED"), di, (dw <= 5 ? "met" : "MISSED"), dw
	dl = 100 * (1 - l10 / s10)
	printf "allowed flows on record (accounting and events) within 5%% of off: %s (%.1f%% slower)\n",
		(dl <= 5 ? "met" : "MISSED"), dl
}'
