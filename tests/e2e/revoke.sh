#!/bin/sh
# End to end, revocation under the daemon: bh-backend holds a TCP
# connection to an echo server matched as db, and bh-nginx one to an echo
# server matched as backend, both carrying data. `bulkhead reload` of a
# policy without the backend -> db edge ends the first within a second,
# says so in the log and in status; the second, on an edge that stays,
# goes on, until its server's container leaves the network: then it ends
# too.
set -eu
cd "$(dirname "$0")/../.."
. tests/lib/e2e.sh
PY=/usr/bin/python3
cleanup() {
	set +e
	[ -z "$pid" ] || kill -9 "$pid" 2>/dev/null
	[ -z "${streams:-}" ] || kill $streams 2>/dev/null
	docker rm -f bh-dbecho bh-beecho >/dev/null 2>&1
	compose down -t 0 >/dev/null 2>&1
	"$B" flush
	rm -rf "$tmp"
}
trap cleanup EXIT

bh_policy bhnet "$tmp/policy.yaml"
compose down -t 0 >/dev/null 2>&1 || true
compose up -d >/dev/null 2>&1 || fail "docker-compose up"
docker run -d --name bh-dbecho --network bhnet bulkhead-test/postgres:16 nc -ll -p 5432 -e cat >/dev/null
docker run -d --name bh-beecho --network bhnet -l app=backend bulkhead-test/backend:1.0 nc -ll -p 8080 -e cat >/dev/null
"$B" run -p "$tmp/policy.yaml" --control "$tmp/ctl" --log "$tmp/flows.jsonl" >>"$tmp/daemon.log" 2>&1 &
pid=$!
wait_for "the daemon's first sync" grep -q "docker: in sync" "$tmp/daemon.log"

nsenter -t "$(cpid bh-backend)" -n $PY tests/lib/stream.py tcp "$(addr bh-dbecho)" 5432 "$tmp/s-db" &
streams=$!
nsenter -t "$(cpid bh-nginx)" -n $PY tests/lib/stream.py tcp "$(addr bh-beecho)" 8080 "$tmp/s-be" &
streams="$streams $!"
count() { cat "$tmp/s-$1" 2>/dev/null || echo 0; }
flowing() { a=$(count "$1"); sleep 0.5; [ "$(count "$1")" -gt "$a" ]; }
sleep 1
flowing db || fail "bh-backend -> bh-dbecho does not flow"
flowing be || fail "bh-nginx -> bh-beecho does not flow"

sed -i '/- to: db$/,+1d' "$tmp/policy.yaml"
grep -q "to: db" "$tmp/policy.yaml" && fail "the edge is still in the policy"
"$B" reload --control "$tmp/ctl" >/dev/null || fail "reload"
wait_for "the revocation in the log" grep -q "revoked 1 flow: bh-backend -> bh-dbecho 5432/tcp (no-edge)" "$tmp/daemon.log"
sleep 1
if flowing db; then fail "bh-backend -> bh-dbecho still flows a second after its edge was removed"; fi
flowing be || fail "bh-nginx -> bh-beecho stopped, but its edge stays"
[ "$("$B" status --control "$tmp/ctl" --json | jq '.revoked_flows')" -ge 1 ] || fail "status does not count the revoked flow"
"$B" status --control "$tmp/ctl" | grep -q "^revoked 1 flows in" || fail "status does not say it"
# a container leaving its network without closing its connections (its
# process lives on, its veth goes: no FIN, no RST): the flows to the
# address it gave up end with it, judged by that address alone, and the
# log names the reason
docker network disconnect bhnet bh-beecho
wait_for "the departed container's flow revoked" grep -q "revoked 1 flow: bh-nginx -> [0-9.]* 8080/tcp (container left)" "$tmp/daemon.log"
stop_clean
echo "ok: a reload without an edge ends its live connection within a second (logged, counted); a stream on an edge that stays goes on; a container leaving its network takes its flows with it"
