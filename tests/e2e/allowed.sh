#!/bin/sh
# End to end: allowed flows on record. With settings.log_allowed, a
# connection from bh-backend to an echo server matched as db, moving a
# known number of bytes each way, gets an open record naming both ends
# and the edge that allowed it, then a close record with its duration,
# packets and bytes (whole IP packets, as conntrack counts them: the
# payload plus each packet's IP and TCP headers) and how it ended; a
# denied connection still gets its denied record; `flows` filters by
# verdict and `flows --summary` counts both. The control: with
# log_allowed off, the same connection leaves no allowed record.
set -eu
cd "$(dirname "$0")/../.."
. tests/lib/e2e.sh
PY=/usr/bin/python3
ACCT=/proc/sys/net/netfilter/nf_conntrack_acct
acct_was=$(cat "$ACCT")
cleanup() {
	set +e
	[ -z "$pid" ] || kill -9 "$pid" 2>/dev/null
	docker rm -f bh-dbecho >/dev/null 2>&1
	compose down -t 0 >/dev/null 2>&1
	"$B" flush
	echo "$acct_was" >"$ACCT"
	rm -rf "$tmp"
}
trap cleanup EXIT

bh_policy bhnet "$tmp/policy.yaml"
sed -i 's/^settings:$/settings:\n  log_allowed: true/' "$tmp/policy.yaml"
grep -q "log_allowed: true" "$tmp/policy.yaml" || fail "the policy has no log_allowed"
compose down -t 0 >/dev/null 2>&1 || true
compose up -d >/dev/null 2>&1 || fail "docker-compose up"
docker run -d --name bh-dbecho --network bhnet bulkhead-test/postgres:16 nc -ll -p 5432 -e cat >/dev/null
db=$(addr bh-dbecho)
echo 0 >"$ACCT" # the daemon turns it on
"$B" run -p "$tmp/policy.yaml" --control "$tmp/ctl" --log "$tmp/flows.jsonl" >>"$tmp/daemon.log" 2>&1 &
pid=$!
wait_for "the daemon's first sync" grep -q "docker: in sync" "$tmp/daemon.log"
grep -q "nf_conntrack_acct was off: turned it on" "$tmp/daemon.log" || fail "the daemon did not turn accounting on"
[ "$(cat "$ACCT")" = 1 ] || fail "accounting is off"

# N bytes to the echo server, half-closed, everything echoed read back
N=200000
send() { nsenter -t "$(cpid bh-backend)" -n $PY tests/lib/echo.py "$db" 5432 "$N"; }
got=$(send) || fail "bh-backend -> bh-dbecho did not connect"
[ "$got" -eq "$N" ] || fail "the echo gave back $got bytes of $N"
wait_for "the close record" grep -q '"verdict":"allowed","event":"close"' "$tmp/flows.jsonl"
open=$(jq -c 'select(.verdict == "allowed" and .event == "open" and .dst.ip == "'"$db"'")' "$tmp/flows.jsonl")
close=$(jq -c 'select(.verdict == "allowed" and .event == "close" and .dst.ip == "'"$db"'")' "$tmp/flows.jsonl")
[ "$(echo "$open" | wc -l)" -eq 1 ] && [ "$(echo "$close" | wc -l)" -eq 1 ] || fail "not one open and one close record: $open / $close"
echo "$open" | jq -e '.src.container == "bh-backend" and .src.service == "backend" and .dst.container == "bh-dbecho" and .dst.service == "db" and .dst.port == 5432 and .proto == "tcp"' >/dev/null ||
	fail "the open record does not name both ends: $open"
# the edge: backend's egress to db, where the policy file has it
line=$(grep -n -- "- to: db$" "$tmp/policy.yaml" | head -1 | cut -d: -f1)
echo "$open" | jq -e --arg e "$tmp/policy.yaml:$line:9" '.edge == $e' >/dev/null || fail "the open record's edge is not $tmp/policy.yaml:$line:9: $open"
echo "$close" | jq -e --argjson o "$open" '.src == $o.src and .dst == $o.dst and .edge == $o.edge and .end == "closed" and .duration_ms >= 0' >/dev/null ||
	fail "the close record does not repeat the ends and edge, or did not end closed: $close"
# bytes each way: the payload and, per packet, 20 bytes of IPv4 header
# and 32 of TCP header (timestamps on), within 5%
for dir in sent received; do
	b=$(echo "$close" | jq ".bytes.$dir")
	p=$(echo "$close" | jq ".packets.$dir")
	want=$((N + p * 52))
	[ "$b" -ge "$N" ] || fail "$dir: $b bytes, fewer than the $N of payload"
	[ $((b * 100)) -ge $((want * 95)) ] && [ $((b * 100)) -le $((want * 105)) ] ||
		fail "$dir: $b bytes in $p packets, not within 5% of $want"
	echo "  $dir: $b bytes in $p packets ($N of payload; $want expected with headers)"
done

# a denied one still gets its denied record
docker exec bh-nginx nc -w 1 "$db" 5432 </dev/null >/dev/null 2>&1 || true
wait_for "the denied record" grep -q '"verdict":"denied".*"container":"bh-nginx"' "$tmp/flows.jsonl"
"$B" flows --log "$tmp/flows.jsonl" --verdict allowed >"$tmp/allowed.txt"
grep -q "allowed.*bh-backend.*bh-dbecho.*open by" "$tmp/allowed.txt" || { cat "$tmp/allowed.txt"; fail "flows --verdict allowed shows no opening"; }
grep -q "denied" "$tmp/allowed.txt" && fail "flows --verdict allowed shows a denied record"
"$B" flows --log "$tmp/flows.jsonl" --summary >"$tmp/summary.txt"
cat "$tmp/summary.txt"
grep -q "^ *1  backend  *db  *5432/tcp  *allowed  *[0-9][0-9]*  *[0-9][0-9]* " "$tmp/summary.txt" || fail "flows --summary does not count the allowed connection and its bytes"
grep -q "nginx  *db  *5432/tcp  *denied: no-edge  *-  *-" "$tmp/summary.txt" || fail "flows --summary does not count the denied one"
"$B" denials --log "$tmp/flows.jsonl" | grep -q allowed && fail "denials shows an allowed record"

# the control: log_allowed off, the same connection, no allowed record
sed -i '/log_allowed: true/d' "$tmp/policy.yaml"
"$B" reload --control "$tmp/ctl" >/dev/null || fail "reload"
before=$(grep -c '"verdict":"allowed"' "$tmp/flows.jsonl")
send >/dev/null || fail "bh-backend -> bh-dbecho did not connect after the reload"
sleep 1
[ "$(grep -c '"verdict":"allowed"' "$tmp/flows.jsonl")" -eq "$before" ] || fail "log_allowed off, and still an allowed record"
stop_clean
echo "ok: allowed flows on record: an open and a close record naming both ends and the edge, bytes each way within 5% of payload and headers; denied still recorded; flows filters and counts both; off, nothing"
