#!/bin/sh
# End to end: `bulkhead run` against a real dockerd, with the three-tier app
# started by docker-compose. The oracle is twofold: real connections
# between the containers, and `bulkhead diff --exit-code` (a full compile
# of what Docker runs now, compared with the kernel), which must find the
# daemon's deltas exact after every step: start, a late container, a
# stop, a network connected at run time, a container's first moments,
# SIGKILL and restart with a probe running, dockerd restarted, a reload
# with a broken file, SIGHUP, SIGTERM.
set -eu
cd "$(dirname "$0")/../.."
. tests/lib/e2e.sh
cleanup() {
	set +e
	[ -z "$pid" ] || kill -9 "$pid" 2>/dev/null
	compose down -t 0 >/dev/null 2>&1
	docker rm -f bh-db2 bh-backend2 bh-dbfail >/dev/null 2>&1
	docker network rm bhback bhnet >/dev/null 2>&1
	"$B" flush
	rm -rf "$tmp"
}
trap cleanup EXIT

bh_policy "bhnet, bhback" "$tmp/policy.yaml"
cp "$tmp/policy.yaml" "$tmp/good.yaml"

start_daemon() {
	"$B" run -p "$tmp/policy.yaml" --control "$tmp/ctl" --log "$tmp/flows.jsonl" >>"$tmp/daemon.log" 2>&1 &
	pid=$!
}
# the kernel holds exactly what a full compile of the running containers
# gives: every delta so far was right
converged() {
	i=0
	while ! "$B" diff -p "$tmp/policy.yaml" --exit-code >"$tmp/diff" 2>&1; do
		i=$((i + 1))
		[ $i -lt 50 ] || { cat "$tmp/diff"; fail "not converged: $1"; }
		sleep 0.2
	done
}
can() { docker exec "$1" nc -w 1 "$(addr "$2" "${4:-bhnet}")" "$3" </dev/null >/dev/null 2>&1; }
allowed() { can "$@" || fail "$1 -> $2:$3 ${4:-} should connect"; }
denied() { ! can "$@" || fail "$1 -> $2:$3 ${4:-} should be blocked"; }
st() { "$B" status --control "$tmp/ctl" --json; }

compose down -t 0 >/dev/null 2>&1 || true
compose up -d >/dev/null 2>&1 || fail "docker-compose up"
docker network rm bhback >/dev/null 2>&1 || true
docker network create bhback >/dev/null

# 1. start: one converging batch, then the verdicts
start_daemon
converged "at start"
allowed bh-nginx bh-backend 8080
allowed bh-backend bh-db 5432
denied bh-nginx bh-db 5432
denied bh-nginx bh-redis 6379
denied bh-nginx bh-rabbitmq 5672
[ "$(st | jq -r '.services.nginx[0].name')" = bh-nginx ] || fail "status does not place bh-nginx"
[ "$(st | jq -r '.services.db[0].addresses[0].ipv4')" = "$(addr bh-db)" ] || fail "status: bh-db's address"
"$B" status --control "$tmp/ctl" | grep -q "^kernel: table inet bulkhead, [1-9][0-9]* elements" ||
	fail "status: element counts"
"$B" status --control "$tmp/ctl" | grep -q "^denied flows: [0-9]* records to $tmp/flows.jsonl" ||
	fail "status: the denied-flow log"
"$B" trace --control "$tmp/ctl" bh-nginx bh-db 5432/tcp | grep -q "^denied bh-nginx -> bh-db" ||
	fail "trace through the daemon"
if setpriv --reuid=nobody --regid=nogroup --clear-groups "$B" status --control "$tmp/ctl" >/dev/null 2>&1; then
	fail "the control socket answered an unprivileged user"
fi
# least privilege: CAP_NET_ADMIN alone (bit 12), bounding set too, and
# no_new_privs, once its sockets are open
grep -q "^CapEff:[[:space:]]*0000000000001000$" /proc/$pid/status || fail "capabilities beyond CAP_NET_ADMIN: $(grep CapEff /proc/$pid/status)"
grep -q "^CapBnd:[[:space:]]*0000000000001000$" /proc/$pid/status || fail "bounding set beyond CAP_NET_ADMIN"
grep -q "^NoNewPrivs:[[:space:]]*1$" /proc/$pid/status || fail "no_new_privs not set"
[ "$(st | jq -r .capabilities)" = 0000000000001000 ] || fail "status does not show the capabilities"
echo "ok: start: nginx->backend and backend->db connect, nginx->db/redis/rabbitmq blocked; status and trace answer; only CAP_NET_ADMIN kept"

# 2. a container started after the daemon is placed; stopped, its elements go
docker run -d --name bh-db2 --network bhnet -p 127.0.0.1:15432:5432 bulkhead-test/postgres:16 httpd -f -p 5432 -h /www >/dev/null
converged "after bh-db2 started"
# it publishes a port that db opens to no one outside: said in the log
# and in status
wait_for "the published port's warning" grep -q "container 'bh-db2' publishes 5432/tcp on the host (127.0.0.1:15432), but service 'db' opens it to no one outside" "$tmp/daemon.log"
st | jq -e '.warnings | map(select(test("bh-db2. publishes 5432/tcp"))) | length == 1' >/dev/null ||
	fail "status does not list bh-db2's published port"
[ "$(st | jq '.start_to_commit.placed_before_start')" -ge 1 ] || fail "bh-db2 was not placed at its network connect, before its start"
allowed bh-backend bh-db2 5432
denied bh-nginx bh-db2 5432
db2=$(addr bh-db2)
docker stop -t 0 bh-db2 >/dev/null
converged "after bh-db2 stopped"
st | jq -e '.warnings | map(select(test("bh-db2"))) | length == 0' >/dev/null || fail "status still warns of stopped bh-db2"
if nft list table inet bulkhead | grep -q "$db2 "; then fail "stopped bh-db2 ($db2) left elements"; fi
# a container whose start fails is not placed, and the kernel is exact,
# whatever events its Docker sends (20.10: a connect, then a disconnect;
# 28: create, disconnect, destroy, and no connect)
if docker run -d --name bh-dbfail --network bhnet bulkhead-test/postgres:16 /nonexistent >/dev/null 2>&1; then
	fail "a container with no command started"
fi
converged "after bh-dbfail failed to start"
st | jq -e '[.services[][] | .name] | index("bh-dbfail") == null' >/dev/null || fail "bh-dbfail is still placed"
if grep -q "placed bh-dbfail (db)" "$tmp/daemon.log"; then
	grep -q "removed bh-dbfail" "$tmp/daemon.log" || fail "bh-dbfail was placed at its connect, and never removed"
fi
docker rm -f bh-dbfail >/dev/null
echo "ok: a late container is placed (before its start event) and works; stopped, none of its elements remain; a failed start leaves nothing"

# 3. a second network connected at run time
for c in bh-backend bh-nginx bh-db; do docker network connect bhback "$c"; done
converged "after network connect"
allowed bh-nginx bh-backend 8080 bhback
denied bh-nginx bh-db 5432 bhback
docker network disconnect bhback bh-db
converged "after network disconnect"
echo "ok: containers connected to bhback at run time follow"

# 4. fail closed: a new backend tries nginx:80 (never allowed) and db:5432
# (allowed once placed) from its first instant
ngx=$(addr bh-nginx)
dbip=$(addr bh-db)
docker run -d --name bh-backend2 --label app=backend --network bhnet bulkhead-test/backend:1.0 \
	sh -c "while true; do nc -w 1 $ngx 80 </dev/null && echo OPEN-nginx; nc -w 1 $dbip 5432 </dev/null && echo OPEN-db; sleep 0.05; done" >/dev/null
i=0
until docker logs bh-backend2 2>&1 | grep -q OPEN-db; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "bh-backend2 never reached bh-db once placed"
	sleep 0.2
done
sleep 1
if docker logs bh-backend2 2>&1 | grep -q OPEN-nginx; then fail "bh-backend2 reached nginx:80 in its first moments"; fi
docker rm -f bh-backend2 >/dev/null
converged "after bh-backend2 removed"
echo "ok: a new container is denied from its first moment and reaches its allowed peer once placed"

# 5. SIGKILL: the rules stay; a restart converges with no window
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
denied bh-nginx bh-db 5432
docker exec -d bh-nginx sh -c "while [ ! -e /tmp/stop ]; do nc -w 1 $dbip 5432 </dev/null && echo OPEN >>/tmp/opened; done"
start_daemon
converged "after restart"
sleep 1
docker exec bh-nginx sh -c "echo >/tmp/stop"
sleep 1.5
if docker exec bh-nginx cat /tmp/opened 2>/dev/null | grep -q OPEN; then fail "nginx reached db while bulkhead restarted"; fi
[ "$(grep -c 'replaced in one transaction' "$tmp/daemon.log")" -eq 1 ] || fail "the restart replaced the table instead of reconciling"
echo "ok: SIGKILL leaves the rules; the restart reconciles with no window (probe never connected)"

# 6. dockerd restarted under the daemon
pkill -TERM -x dockerd
i=0
while [ -e /var/run/docker.pid ]; do
	i=$((i + 1))
	[ $i -lt 150 ] || fail "dockerd did not stop"
	sleep 0.2
done
scripts/docker-up.sh
compose up -d >/dev/null 2>&1 || fail "docker-compose up after the dockerd restart"
converged "after dockerd restarted"
allowed bh-nginx bh-backend 8080
denied bh-nginx bh-db 5432
[ "$(grep -c 'reconnecting with backoff' "$tmp/daemon.log")" -eq 1 ] || fail "Docker's absence was not logged exactly once"
[ "$(st | jq -r .docker)" = connected ] || fail "status: docker not connected"
echo "ok: dockerd restarted: the daemon reconnects, resyncs and the kernel is exact"

# 7. reload: a broken file is refused and the running policy stays
printf 'version: 1\nservices:\n  nginx:\n    egress:\n      - to: nowhere\n' >"$tmp/policy.yaml"
set +e
"$B" reload --control "$tmp/ctl" 2>"$tmp/reload.err"
r=$?
set -e
[ $r -eq 2 ] || fail "reload of a broken policy exited $r, not 2"
grep -q "policy.yaml:[0-9]*:[0-9]*: error:" "$tmp/reload.err" || { cat "$tmp/reload.err"; fail "reload errors lack FILE:LINE:COL"; }
cp "$tmp/good.yaml" "$tmp/policy.yaml"
converged "after a broken reload"
denied bh-nginx bh-db 5432
# SIGHUP with nginx -> db allowed
sed 's/^      - to: backend$/      - to: db\n        ports: [5432\/tcp]\n      - to: backend/' "$tmp/good.yaml" >"$tmp/policy.yaml"
kill -HUP "$pid"
converged "after SIGHUP"
allowed bh-nginx bh-db 5432
echo "ok: reload: a broken file is refused with FILE:LINE:COL, SIGHUP applies a new edge"

# 8. SIGTERM: a clean exit, the rules stay
kill -TERM "$pid"
wait "$pid" || fail "the daemon exited non-zero on SIGTERM"
pid=""
nft list table inet bulkhead >/dev/null || fail "SIGTERM removed our table"
echo "ok: SIGTERM exits 0 and leaves the rules in force"
