#!/bin/sh
# Atomicity, in the shape of a Docker host (tests/lib/dockerhost.sh):
# while the ruleset is replaced ROUNDS times (120; more with ROUNDS=N)
# in each of two ways, a steady allowed TCP
# stream never breaks, allowed connections keep opening, and a denied
# pair never connects (a window with no table would let it through).
#   1. `apply --replace`: the whole table deleted and created anew in one
#      transaction. The kernel may drop a new connection's first packet
#      in the commit (the old rules briefly see their sets emptied; `nft
#      -f` does the same): it fails closed, and the retransmitted SYN
#      opens the connection a second later. Counted and shown.
#   2. reconciling `apply`, alternating two inventories (a container
#      coming and going): element changes only, and then no allowed
#      connection may be delayed at all.
set -eu
cd "$(dirname "$0")/../.."
B=${BULKHEAD:-$PWD/bulkhead}
ROUNDS=${ROUNDS:-120}
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root for network namespaces"
	exit 0
fi
POL=policies/three-tier.yaml
INV=tests/fixtures/three-tier.json
NAMES="nginx backend db"
PORTS="5432" UDP_PORTS="" HOST_PORTS=""
. tests/lib/dockerhost.sh
trap dh_cleanup EXIT INT TERM
dh_up
tmp=$DH_TMP
jq '[.[] | select(.Name != "/rabbitmq")]' "$INV" >"$tmp/less.json"
hx "$B" apply -p "$POL" --inventory "$INV" >/dev/null 2>&1 || fail "apply"

# the stream: nginx sends to backend:8080 (allowed) all along
ip netns exec "$DH-backend" sh -c "sleep 3600 | busybox nc -l -p 8080 >'$tmp/received'" &
echo $! >>"$tmp/pids"
sleep 0.2
ip netns exec "$DH-nginx" sh -c "while :; do echo 0123456789abcdef0123456789abcdef; sleep 0.01; done |
	busybox nc $(v4 backend) 8080; echo \$? >'$tmp/stream-ended'" &
echo $! >>"$tmp/pids"
sleep 0.5
[ -s "$tmp/received" ] || fail "the stream did not start"

# one phase: probes run while CMD runs ROUNDS times. A denied attempt
# starts every 20 ms (each waits for its own timeout); allowed
# connections open one after another, those slower than 900 ms (a
# retransmitted SYN) counted as delayed.
phase() {
	rm -f "$tmp/stop" "$tmp/leaks"
	(
		n=0
		while [ ! -f "$tmp/stop" ]; do
			(if connect nginx "$(v4 db)" 5432; then echo x >>"$tmp/leaks"; fi) &
			n=$((n + 1))
			sleep 0.02
		done
		wait
		echo "$n" >"$tmp/denied-tries"
	) &
	deniedp=$!
	(
		ok=0 bad=0 slow=0
		while [ ! -f "$tmp/stop" ]; do
			s=$(date +%s%N)
			if ip netns exec "$DH-backend" timeout 3 bash -c \
				"exec 3<>/dev/tcp/$(v4 db)/5432" 2>/dev/null; then
				ok=$((ok + 1))
			else
				bad=$((bad + 1))
			fi
			[ $(( ($(date +%s%N) - s) / 1000000 )) -lt 900 ] || slow=$((slow + 1))
		done
		echo "$ok $bad $slow" >"$tmp/allowed-tries"
	) &
	allowedp=$!
	a=$(date +%s%N)
	i=0
	while [ $i -lt "$ROUNDS" ]; do
		inv=$INV
		[ $((i % 2)) -eq 0 ] || inv=$tmp/less.json
		hx "$B" apply $1 -p "$POL" --inventory "$inv" >"$tmp/apply.out" 2>&1 ||
			{ cat "$tmp/apply.out"; fail "apply round $i"; }
		i=$((i + 1))
	done
	ms=$(( ($(date +%s%N) - a) / 1000000 ))
	touch "$tmp/stop"
	wait $deniedp $allowedp
	size1=$(stat -c %s "$tmp/received")
	sleep 0.3
	size2=$(stat -c %s "$tmp/received")
	[ ! -f "$tmp/stream-ended" ] || fail "the allowed stream broke (nc exited $(cat "$tmp/stream-ended"))"
	[ "$size2" -gt "$size1" ] || fail "the allowed stream stalled"
	[ ! -s "$tmp/leaks" ] || fail "the denied pair connected $(wc -l <"$tmp/leaks") times"
	set -- $(cat "$tmp/allowed-tries")
	ok=$1 slow=$3
	[ "$2" -eq 0 ] || fail "$2 allowed connections did not open"
	[ "$ok" -gt 10 ] || fail "only $ok allowed connections ran"
}

phase --replace
echo "ok: $ROUNDS replacements of the whole table in $ms ms: stream unbroken ($size2 bytes), $ok allowed connections opened ($slow after a retransmitted SYN), $(cat "$tmp/denied-tries") denied attempts all dropped"
grep -q "^applied: table inet bulkhead, 22 chains" "$tmp/apply.out" || fail "--replace did not replace"

phase ""
grep -q "^applied: .* elements added, .* deleted" "$tmp/apply.out" || { cat "$tmp/apply.out"; fail "apply did not reconcile by elements"; }
[ "$slow" -eq 0 ] || fail "$slow allowed connections were delayed by element changes"
echo "ok: $ROUNDS reconciling applies (a container coming and going) in $ms ms: stream unbroken ($size2 bytes), $ok allowed connections opened, none delayed, $(cat "$tmp/denied-tries") denied attempts all dropped"
