#!/bin/sh
# End to end: the daemon notices, through the nftables event group, when
# another process changes its table, and puts it back within a second.
# The daemon runs in a network namespace of its own (against the real
# dockerd and the three-tier app), so that `nft flush ruleset` and the
# other faults touch nobody else's rules. Each fault: the table deleted,
# the whole ruleset flushed, a chain flushed, a rule deleted, a set
# flushed, an element added by hand, the bridge table deleted, a port
# bound by hand. After each the table must be back,
# exactly, within one second, and a container placed by a delta after
# the daemon's last full sync must keep its elements through them; the
# daemon's own deltas must not count as faults; and at the end `diff`
# finds the kernel exact.
set -eu
cd "$(dirname "$0")/../.."
. tests/lib/e2e.sh
ns=bhheal$$
cleanup() {
	set +e
	[ -z "$pid" ] || kill -9 "$pid" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	docker rm -f bh-heal-db bh-db-heal2 >/dev/null 2>&1
	compose down -t 0 >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
in_ns() { ip netns exec "$ns" "$@"; }
# our table as nft lists it, without what moves by itself (counters)
table() {
	{ in_ns nft list table inet bulkhead && in_ns nft list table bridge bulkhead; } 2>/dev/null |
		sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/'
}
st() { "$B" status --control "$tmp/ctl" --json; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

bh_policy "bhnet" "$tmp/policy.yaml"
compose down -t 0 >/dev/null 2>&1 || true
compose up -d >/dev/null 2>&1 || fail "docker-compose up"
ip netns add "$ns"
ip netns exec "$ns" "$B" run -p "$tmp/policy.yaml" --control "$tmp/ctl" --log "$tmp/flows.jsonl" >"$tmp/daemon.log" 2>&1 &
pid=$!
wait_for "the daemon's first sync" grep -q "in sync" "$tmp/daemon.log"
table >"$tmp/good"
[ -s "$tmp/good" ] || fail "no table in the namespace"

# the daemon's own changes are not faults
docker run -d --name bh-heal-db --network bhnet bulkhead-test/postgres:16 httpd -f -p 5432 -h /www >/dev/null
wait_for "bh-heal-db's placement" grep -q "placed bh-heal-db" "$tmp/daemon.log"
docker rm -f bh-heal-db >/dev/null
wait_for "bh-heal-db's removal" grep -q "removed bh-heal-db" "$tmp/daemon.log"
sleep 0.3
[ "$(st | jq .restores)" -eq 0 ] || fail "the daemon took its own deltas for someone else's"
# placed by a delta, after the last full sync: a restore keeps it
docker run -d --name bh-db-heal2 --network bhnet bulkhead-test/postgres:16 httpd -f -p 5432 -h /www >/dev/null
wait_for "bh-db-heal2's placement" grep -q "placed bh-db-heal2" "$tmp/daemon.log"
db2=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' bh-db-heal2)
table >"$tmp/good"
grep -q "$db2" "$tmp/good" || fail "bh-db-heal2 ($db2) has no elements"

worst=0
fault() { # what, then the command that breaks the table
	what=$1
	shift
	before=$(st | jq .restores)
	t0=$(now_ms)
	in_ns "$@" || fail "$what: the fault itself failed"
	until table | cmp -s - "$tmp/good"; do
		[ $(($(now_ms) - t0)) -lt 1000 ] || { table | diff "$tmp/good" - | head -20; fail "$what: not restored within 1 s"; }
		sleep 0.01
	done
	took=$(($(now_ms) - t0))
	[ "$took" -le "$worst" ] || worst=$took
	i=0
	until [ "$(st | jq .restores)" -gt "$before" ]; do
		i=$((i + 1))
		[ $i -lt 50 ] || fail "$what: status does not count the restore"
		sleep 0.02
	done
	printf '  %-28s restored in %4d ms: %s\n' "$what" "$took" "$(st | jq -r .last_restore.why)"
}
echo "faults injected into the daemon's namespace:"
fault "nft delete table" nft delete table inet bulkhead
fault "nft flush ruleset" nft flush ruleset
fault "nft flush chain forward" nft flush chain inet bulkhead forward
h=$(in_ns nft -a list chain inet bulkhead svc_nginx | sed -n 's/.*jump deny # handle \([0-9]*\)$/\1/p')
[ -n "$h" ] || fail "no rule handle to delete"
fault "nft delete rule" nft delete rule inet bulkhead svc_nginx handle "$h"
fault "nft flush set backend_peer4" nft flush set inet bulkhead backend_peer4
fault "nft add element" nft add element inet bulkhead nginx_peer4 '{ "br-0000000000" . 10.9.9.9 . tcp . 22 }'
# the bridge table: deleted, or a port bound by hand to a MAC of its own
fault "nft delete table bridge" nft delete table bridge bulkhead
fault "nft add element id_mac" nft add element bridge bulkhead id_mac '{ "veth-forged" . 02:00:00:00:00:01 }'

in_ns "$B" diff -p "$tmp/policy.yaml" --exit-code >"$tmp/diff" 2>&1 || { cat "$tmp/diff"; fail "the kernel is not exact after the faults"; }
[ "$(st | jq .errors)" -eq 0 ] || fail "the daemon counted errors"
[ "$(grep -c 'changed by another process' "$tmp/daemon.log")" -eq 8 ] || fail "want one log line per fault"
stop_clean
echo "ok: selfheal: 8 faults by hand (the bridge table's among them), each restored exactly (worst ${worst} ms, target 1000); own deltas not mistaken for faults"
