#!/bin/sh
# Read-back, `diff` and reconciling `apply`, in throwaway network
# namespaces: for every example, what `apply` programs reads back as the
# plan (`diff --exit-code` is 0) and a second apply changes nothing.
# Changes made by hand show in `diff` (an element, a foreign rule, a
# dormant table, a changed chain, an extra set); `apply` mends element
# changes with element changes only and anything else by replacing the
# table. Without CAP_NET_ADMIN, and with br_netfilter off, the errors
# say what to do.
set -eu
cd "$(dirname "$0")/../.."
B=${BULKHEAD:-$PWD/bulkhead}
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root for network namespaces"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
FQ="--fqdn api.example.com=203.0.113.5"

. tests/lib/examples.sh
# shellcheck disable=SC2086
set -- $EXAMPLES
while [ $# -gt 0 ]; do
	pol=$1 inv=$2
	shift 2
	unshare -n sh -eu -c "
		'$B' diff -p '$pol' --inventory '$inv' $FQ --exit-code >'$tmp/d0' 2>/dev/null && exit 11
		grep -q '^+ table inet bulkhead (not in the kernel)' '$tmp/d0' || exit 12
		'$B' apply -p '$pol' --inventory '$inv' $FQ >/dev/null 2>&1 || exit 13
		'$B' diff -p '$pol' --inventory '$inv' $FQ --exit-code >'$tmp/d1' 2>/dev/null || exit 14
		'$B' apply -p '$pol' --inventory '$inv' $FQ 2>/dev/null >'$tmp/a2' || exit 15
		grep -q 'already holds the plan' '$tmp/a2' || exit 16
	" || { cat "$tmp"/d* 2>/dev/null | head -20; fail "$pol: read-back (step $?)"; }
	echo "ok: $pol: applied table reads back as the plan ($(tail -1 "$tmp/d1"))"
done

POL=policies/three-tier.yaml
INV=tests/fixtures/three-tier.json
run() { # a script run in a fresh namespace holding the applied plan
	unshare -n sh -eu -c "'$B' apply -p $POL --inventory $INV >/dev/null 2>&1; $1"
}
D="'$B' diff -p $POL --inventory $INV"
BR=br-$(jq -r '.[0].NetworkSettings.Networks.appnet.NetworkID[0:12]' "$INV")
A="'$B' apply -p $POL --inventory $INV"

# an element deleted and one added by hand: element changes only
run "
	nft delete element inet bulkhead nginx_peer4 '{ "$BR" . 172.28.5.3 . tcp . 8080 }'
	nft add element inet bulkhead unmanaged4 '{ \"br-x\" . 192.0.2.9 }'
	$D --exit-code >'$tmp/out' 2>/dev/null && exit 1
	$A >>'$tmp/out' 2>/dev/null
	$D --exit-code >>'$tmp/out' 2>/dev/null
" || { cat "$tmp/out"; fail "element changes"; }
grep -qF "+ element nginx_peer4 { \"$BR\" . 172.28.5.3 . tcp . 8080 }" "$tmp/out" || fail "missing element not shown"
grep -q '^- element unmanaged4 { "br-x" . 192.0.2.9 }' "$tmp/out" || fail "extra element not shown"
grep -q '^diff: 1 elements to add, 1 to delete; apply changes elements only' "$tmp/out" || fail "element summary"
grep -q '^applied: 1 elements added, 1 deleted' "$tmp/out" || fail "apply did not reconcile by elements"
grep -q '^diff: the kernel holds the plan' "$tmp/out" || fail "not converged"
echo "ok: elements changed by hand show in diff; apply mends them element by element"

# changes only a replace mends, each shown
run "
	nft add rule inet bulkhead forward counter
	nft add table inet bulkhead '{ flags dormant; }'
	nft add set inet bulkhead extra '{ type ipv4_addr; }'
	nft add chain inet bulkhead input '{ policy drop; }'
	$D --exit-code >'$tmp/out' 2>/dev/null && exit 1
	$A >>'$tmp/out' 2>/dev/null
	$D --exit-code >>'$tmp/out' 2>/dev/null
	nft list table inet bulkhead | grep -q dormant && exit 2
	nft list chain inet bulkhead input | grep -q 'policy accept'
" || { cat "$tmp/out"; fail "structural changes"; }
grep -q '^  - # a rule bulkhead did not write (handle [0-9]*: counter)' "$tmp/out" || fail "foreign rule not shown"
grep -q '^~ table inet bulkhead is dormant' "$tmp/out" || fail "dormant table not shown"
grep -q '^- set extra' "$tmp/out" || fail "extra set not shown"
grep -q '^~ chain input: hook, priority, type or policy differs' "$tmp/out" || fail "chain policy not shown"
grep -q '^diff: 4 structural differences; apply replaces the table' "$tmp/out" || fail "structural summary"
grep -q '^applied: table inet bulkhead, 22 chains' "$tmp/out" || fail "apply did not replace"
grep -q '^diff: the kernel holds the plan' "$tmp/out" || fail "not converged after replace"
echo "ok: foreign rule, dormant table, extra set and chain policy show in diff; apply replaces"

# without CAP_NET_ADMIN: a clear error, exit 1
set +e
unshare -n setpriv --reuid 65534 --regid 65534 --clear-groups --inh-caps=-all \
	--bounding-set=-all "$B" apply -p $POL --inventory $INV >"$tmp/out" 2>&1
rc=$?
set -e
[ "$rc" -eq 1 ] || { cat "$tmp/out"; fail "apply without privilege exited $rc"; }
grep -q "needs root or CAP_NET_ADMIN" "$tmp/out" || { cat "$tmp/out"; fail "no privilege hint"; }
echo "ok: without CAP_NET_ADMIN: $(grep -v warning "$tmp/out" | head -1)"

# br_netfilter's switches off: apply turns both on and says so; where
# it cannot (/proc/sys read-only here), it says loudly what to run
modprobe br_netfilter 2>/dev/null || true
unshare -n sh -c "sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0
	$A && sysctl -n net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables" >"$tmp/sw" 2>"$tmp/out" ||
	{ cat "$tmp/out"; fail "apply with br_netfilter off"; }
[ "$(tail -2 "$tmp/sw" | tr '\n' ' ')" = "1 1 " ] || { cat "$tmp/sw"; fail "the switches were not turned on"; }
grep -q "bridge-nf-call-iptables was off: turned it on" "$tmp/out" || { cat "$tmp/out"; fail "no word of iptables' switch"; }
grep -q "bridge-nf-call-ip6tables was off: turned it on, so that IPv6" "$tmp/out" || { cat "$tmp/out"; fail "no word of ip6tables' switch"; }
echo "ok: br_netfilter's switches off: apply turned both on and said so"
unshare -m -n sh -c "sysctl -qw net.bridge.bridge-nf-call-ip6tables=0 && mount --bind -o ro /proc/sys /proc/sys
	$A" >/dev/null 2>"$tmp/out" || { cat "$tmp/out"; fail "apply with a read-only /proc/sys"; }
grep -q "bridge-nf-call-ip6tables is off and could not be turned on (Read-only file system): IPv6 traffic between containers on one bridge is NOT filtered. Run: modprobe br_netfilter && sysctl -w net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1" "$tmp/out" ||
	{ cat "$tmp/out"; fail "no loud word when the IPv6 switch cannot be turned on"; }
echo "ok: a switch that cannot be turned on is reported with the command to run"
