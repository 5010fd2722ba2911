#!/bin/sh
# End to end: egress to the world, the host, published ports and IPv6,
# against the real dockerd. The "world" is a network namespace reached
# through a veth from the host, holding addresses in 203.0.113.0/24 and
# 2001:db8::/64 (the host routes only those ranges there), with TCP
# listeners and a DNS server the test controls (tests/lib/fake_dns.py).
# Containers on an IPv6-enabled Docker network probe:
#   - egress by CIDR, both families: the allowed address and port connect,
#     another address or port does not;
#   - egress by FQDN: the name's address connects; when its answer changes
#     the new address connects within the TTL and the old one no longer;
#     when DNS fails the last good address stays (past its TTL), status
#     says so; the elements carry the kernel timeout, and lapse on their
#     own once the daemon is gone;
#   - the host: an allowed port connects, another does not (both families);
#     Docker's embedded DNS keeps answering for containers, and forwards
#     other names to the container's resolver (in the world) only where
#     the policy allows it;
#   - ingress from the world into a published port (IPv4, after Docker's
#     DNAT) and straight to a container (IPv6), and from one source
#     address (a CIDR) into another published port; a port published but
#     not opened by the policy is refused and reported by status.
set -eu
cd "$(dirname "$0")/../.."
. tests/lib/e2e.sh
ns=bhworld$$
net=bhworld
v4net=10.213.7
v6net=fd00:bd:7
fwd6=""
cleanup() {
	set +e
	[ -z "$pid" ] || kill -9 "$pid" 2>/dev/null
	# the world's listeners and DNS server, and the host's listener
	ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
	pkill -f "tests/lib/listen.py $v4net.1" 2>/dev/null
	docker rm -f bhw-app bhw-other >/dev/null 2>&1
	docker network rm "$net" >/dev/null 2>&1
	ip netns del "$ns" 2>/dev/null
	[ -z "$fwd6" ] || sysctl -qw net.ipv6.conf.all.forwarding="$fwd6"
	"$B" flush
	rm -rf "$tmp"
}
trap cleanup EXIT
in_w() { ip netns exec "$ns" "$@"; }
st() { "$B" status --control "$tmp/ctl" --json; }

# the world: 203.0.113.0/24 and 2001:db8::/64 behind a veth, routed back
ip netns add "$ns"
ip link add bhw0 type veth peer name eth0 netns "$ns"
ip addr add 203.0.113.1/24 dev bhw0
ip -6 addr add 2001:db8::1/64 dev bhw0 nodad
ip link set bhw0 up
in_w ip link set lo up
in_w ip link set eth0 up
for a in 10 20 30 53; do in_w ip addr add 203.0.113.$a/24 dev eth0; done
for a in 10 20; do in_w ip -6 addr add 2001:db8::$a/64 dev eth0 nodad; done
in_w ip route add default via 203.0.113.1
in_w ip -6 route add default via 2001:db8::1
fwd6=$(sysctl -n net.ipv6.conf.all.forwarding)
sysctl -qw net.ipv6.conf.all.forwarding=1
# (their stderr to a file: `ip netns exec` says "Terminated" when they
# are killed at the end)
(in_w python3 tests/lib/listen.py 203.0.113.10 443 203.0.113.10 8443 \
	203.0.113.20 443 203.0.113.20 8443 203.0.113.30 8443 \
	2001:db8::10 443 2001:db8::20 443 2001:db8::20 8443 2>>"$tmp/bg.log" &)
zone() { printf 'api.bh.test 2 %s\napi.bh.test 2 2001:db8::20\n' "$1" >"$tmp/zone"; }
zone 203.0.113.20
(in_w python3 tests/lib/fake_dns.py 203.0.113.53 53 "$tmp/zone" 2>>"$tmp/bg.log" &)

# an IPv6-enabled Docker network; app may reach the world by CIDR and
# FQDN, the host on 8081, and is open to the world on 80; other
# publishes 80 too, which its service does not open
docker network rm "$net" >/dev/null 2>&1 || true
docker network create --ipv6 --subnet "$v4net.0/24" --subnet "$v6net::/64" "$net" >/dev/null
(python3 tests/lib/listen.py "$v4net.1" 8081 "$v4net.1" 8082 "$v6net::1" 8081 "$v6net::1" 8082 2>>"$tmp/bg.log" &)
cat >"$tmp/policy.yaml" <<EOF
version: 1
settings:
  networks: [$net]
services:
  app:
    match: { name: bhw-app }
    ingress:
      - from: world
        ports: [80/tcp]
      - from: { cidr: [203.0.113.20/32] }
        ports: [81/tcp]
    egress:
      - to: { cidr: [203.0.113.10/32, "2001:db8::10/128"] }
        ports: [443/tcp]
      - to: { fqdn: api.bh.test }
        ports: [8443/tcp]
      - to: { cidr: [203.0.113.53/32] }
        ports: [53/udp, 53/tcp]
      - to: host
        ports: [8081/tcp]
  other:
    match: { name: bhw-other }
EOF
# Docker's embedded DNS forwards what it does not know to --dns, from
# inside the container's namespace: through our forward chain
docker run -d --name bhw-app --network "$net" --dns 203.0.113.53 -p 8080:80 -p 8091:81 \
	bulkhead-test/busybox sh -c 'httpd -p 81 -h /www && exec httpd -f -p 80 -h /www' >/dev/null
docker run -d --name bhw-other --network "$net" --dns 203.0.113.53 -p 8090:80 bulkhead-test/busybox httpd -f -p 80 -h /www >/dev/null
app6=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$net\").GlobalIPv6Address}}" bhw-app)
other6=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$net\").GlobalIPv6Address}}" bhw-other)
[ -n "$app6" ] && [ -n "$other6" ] || fail "the containers have no IPv6 address"

start_daemon() {
	: >"$tmp/daemon.log"
	"$B" run -p "$tmp/policy.yaml" --control "$tmp/ctl" --log "$tmp/flows.jsonl" \
		--dns 203.0.113.53 --dns-min-ttl 2 >"$tmp/daemon.log" 2>&1 &
	pid=$!
}
start_daemon
wait_for "the daemon's first sync" grep -q "in sync" "$tmp/daemon.log"

can() { # from to port: a TCP connection within a second
	docker exec "$1" nc -w 1 "$2" "$3" </dev/null >/dev/null 2>&1
}
allowed() { can "$@" || fail "$1 -> $2 port $3 should connect"; }
denied() { ! can "$@" || fail "$1 -> $2 port $3 should be blocked"; }
world_can() { in_w busybox nc -w 1 "$1" "$2" </dev/null >/dev/null 2>&1; }
world_from() { # source address, then address and port
	in_w socat -u /dev/null "TCP:$2:$3,bind=$1,connect-timeout=1" 2>/dev/null
}

echo "egress by CIDR, IPv4 and IPv6:"
allowed bhw-app 203.0.113.10 443
denied bhw-app 203.0.113.20 443
denied bhw-app 203.0.113.10 8443
allowed bhw-app 2001:db8::10 443
denied bhw-app 2001:db8::20 443
denied bhw-other 203.0.113.10 443
denied bhw-other 2001:db8::10 443
grep -q '"dst":{"ip":"203.0.113.20","port":443,"peer":"world"}' "$tmp/flows.jsonl" ||
	fail "no denied-flow record naming the world"

echo "egress by FQDN:"
allowed bhw-app 203.0.113.20 8443
allowed bhw-app api.bh.test 8443 # resolved by the container itself
allowed bhw-app 2001:db8::20 8443
denied bhw-app 203.0.113.30 8443
denied bhw-app 2001:db8::20 443
denied bhw-other 203.0.113.20 8443
nft list set inet bulkhead app_fqdn4 | grep -Eq '203\.0\.113\.20 \. tcp \. 8443 timeout 3s' ||
	{ nft list set inet bulkhead app_fqdn4; fail "the fqdn element has no timeout of TTL and margin"; }
[ "$(st | jq -r '.fqdn[0].state + " " + .fqdn[0].addresses[0]')" = "ok 203.0.113.20" ] || fail "status: $(st | jq -c .fqdn)"
# refreshed by TTL (2 s): its sets refilled again and again
r0=$(st | jq .fqdn_refills)
wait_for "a refresh by TTL" sh -c "[ \$('$B' status --control '$tmp/ctl' --json | jq .fqdn_refills) -gt $r0 ]"
# the answer moves: within the TTL (2 s) and a refresh, .30 in, .20 out
zone 203.0.113.30
wait_for "the new answer in force" can bhw-app 203.0.113.30 8443
denied bhw-app 203.0.113.20 8443
grep -q "fqdn api.bh.test: 203.0.113.30, 2001:db8::20 (ttl 2 s, kept 2 s)" "$tmp/daemon.log" || fail "the change is not logged"
# DNS fails: the last good address stays, long past its TTL and timeout
printf 'mode servfail\n' >"$tmp/zone"
wait_for "status to report the failure" sh -c "'$B' status --control '$tmp/ctl' --json | jq -e '.fqdn[0].state == \"stale\"' >/dev/null"
sleep 4
allowed bhw-app 203.0.113.30 8443
st | jq -e '.fqdn[0].error and .fqdn[0].failures >= 2 and .fqdn[0].addresses == ["203.0.113.30", "2001:db8::20"]' >/dev/null ||
	fail "status: $(st | jq -c .fqdn)"
[ "$(grep -c 'warning: fqdn api.bh.test: .*keeping the last good addresses: 203.0.113.30, 2001:db8::20' "$tmp/daemon.log")" -eq 1 ] ||
	fail "want one warning for the outage"
"$B" status --control "$tmp/ctl" | grep -q "DNS failing for .*(the last good addresses stay)" || fail "status text"
# back: one line says so
zone 203.0.113.30
wait_for "the recovery" grep -q "fqdn api.bh.test: resolves again" "$tmp/daemon.log"

echo "the host:"
allowed bhw-app "$v4net.1" 8081
denied bhw-app "$v4net.1" 8082
allowed bhw-app "$v6net::1" 8081
denied bhw-app "$v6net::1" 8082
denied bhw-other "$v4net.1" 8081
docker exec bhw-app busybox nslookup bhw-other 127.0.0.11 >/dev/null 2>&1 || fail "Docker's embedded DNS does not answer"
docker exec bhw-other busybox nslookup bhw-app 127.0.0.11 >/dev/null 2>&1 || fail "Docker's embedded DNS does not answer other"
docker exec bhw-app busybox nslookup api.bh.test 127.0.0.11 2>&1 | grep -q 203.0.113.30 || fail "app's DNS through its resolver"
! docker exec bhw-other busybox nslookup api.bh.test 127.0.0.11 >/dev/null 2>&1 || fail "other may not reach the resolver"

echo "ingress from the world:"
world_can 203.0.113.1 8080 || fail "world -> published 8080 (app:80) should connect"
! world_can 203.0.113.1 8090 || fail "world -> published 8090 (other:80) should be blocked"
world_from 203.0.113.20 203.0.113.1 8091 || fail "203.0.113.20 -> published 8091 (app:81) should connect"
! world_from 203.0.113.10 203.0.113.1 8091 || fail "203.0.113.10 -> published 8091 (app:81) should be blocked"
world_can "$app6" 80 || fail "world -> [$app6]:80 should connect"
! world_can "$other6" 80 || fail "world -> [$other6]:80 should be blocked"
st | jq -r '.warnings[]' | grep -qF "'bhw-other' publishes 80/tcp on the host (0.0.0.0:8090)" || fail "status does not report bhw-other's published port: $(st | jq -c .warnings)"

# the daemon gone, the fqdn elements lapse by their kernel timeout; the
# CIDR ones stay
kill -9 "$pid"
pid=""
sleep 4
denied bhw-app 203.0.113.30 8443
denied bhw-app 2001:db8::20 8443
allowed bhw-app 203.0.113.10 443
# started again, its first sync waits for DNS and programs the answer
start_daemon
wait_for "the restart's sync" grep -q "in sync" "$tmp/daemon.log"
allowed bhw-app 203.0.113.30 8443
"$B" diff -p "$tmp/policy.yaml" --resolve --dns 203.0.113.53 --exit-code >"$tmp/diff" 2>&1 ||
	{ cat "$tmp/diff"; fail "the kernel differs from a full compile"; }
stop_clean
echo "ok: world: egress by CIDR and FQDN (TTL, change, failure, lapse), the host, ingress and IPv6"
