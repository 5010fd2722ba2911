#!/bin/sh
# Soak: CYCLES container start/stop cycles (default 1,000), WORKERS at a
# time (default 8), against a real dockerd with the daemon following, and
# two faults on the way: the daemon SIGKILLed and restarted while the
# cycles run (at a tenth of them), and dockerd restarted under it (at
# half). At the end the kernel holds exactly the plan for what runs (no
# stale element of any of the thousand containers), the daemon's RSS is
# flat from the first checkpoint to the end (both printed), and it exits
# cleanly on SIGTERM (built with the sanitizers: no leaks).
#
# usage: tests/soak/cycles.sh   (CYCLES=, WORKERS=; BUILD=build/asan)
set -eu
cd "$(dirname "$0")/../.."
. tests/lib/e2e.sh
CYCLES=${CYCLES:-1000}
WORKERS=${WORKERS:-8}
IMG=bulkhead-test/busybox:latest
# ASan's quarantine would hold freed memory back and hide a flat RSS
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=1}
cleanup() {
	set +e
	[ -z "$pid" ] || kill -9 "$pid" 2>/dev/null
	docker ps -aq --filter name=soak- | xargs -r docker rm -f >/dev/null 2>&1
	docker network rm soaknet >/dev/null 2>&1
	"$B" flush
	rm -rf "$tmp"
}
trap cleanup EXIT
cleanup
tmp=$(mktemp -d)
docker network create --subnet 10.203.0.0/16 soaknet >/dev/null
cat >"$tmp/policy.yaml" <<'P'
version: 1
settings: { networks: [soaknet] }
services:
  web:
    match: { name: "soak-web-*" }
    egress: [ { to: app, ports: [8080/tcp] } ]
  app:
    match: { name: "soak-app-*" }
    egress: [ { to: db, ports: [5432/tcp] }, { to: app, ports: [7000-7100/tcp] } ]
  db:
    match: { name: "soak-db-*" }
  anchor:
    match: { name: "soak-anchor" }
    ingress: [ { from: web, ports: [9000/tcp] } ]
P
# one container that stays throughout
docker run -d --name soak-anchor --network soaknet --stop-signal SIGKILL "$IMG" sleep 100000 >/dev/null

start_daemon() {
	"$B" run -p "$tmp/policy.yaml" --control "$tmp/ctl" --log "$tmp/flows.jsonl" >>"$tmp/daemon.log" 2>&1 &
	pid=$!
	wait_for "the daemon's sync" grep -q "in sync" "$tmp/daemon.log"
}
st() { "$B" status --control "$tmp/ctl" --json; }
done_cycles() { cat "$tmp"/done.* 2>/dev/null | wc -l; }
until_cycles() { # wait until N cycles are done
	while [ "$(done_cycles)" -lt "$1" ]; do sleep 0.2; done
}

start_daemon
t0=$(date +%s)
w=1
workers=""
while [ "$w" -le "$WORKERS" ]; do
	(
		i=$w
		while [ "$i" -le "$CYCLES" ]; do
			set -- web app db
			shift $((i % 3))
			# while dockerd restarts these fail; the cycle still counts
			n=soak-$1-$i
			docker run -d --name "$n" --network soaknet --log-driver none \
				--stop-signal SIGKILL "$IMG" sleep 100000 >/dev/null 2>&1 || true
			# gone for sure, even when dockerd was away for the rm
			while ! docker rm -f "$n" >/dev/null 2>&1 &&
				{ ! docker info >/dev/null 2>&1 || docker inspect "$n" >/dev/null 2>&1; }; do
				sleep 0.2
			done
			echo "$i" >>"$tmp/done.$w"
			i=$((i + WORKERS))
		done
	) &
	workers="$workers $!"
	w=$((w + 1))
done

# a tenth in: SIGKILL the daemon mid-stream, and start it again
until_cycles $((CYCLES / 10))
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
echo "  daemon SIGKILLed at $(done_cycles) cycles; restarted"
: >"$tmp/daemon.log"
start_daemon
until_cycles $((CYCLES / 5))
rss0=$(st | jq .rss_kb)

# half way: dockerd restarted under the daemon (it kills what runs)
until_cycles $((CYCLES / 2))
pkill -TERM -x dockerd
while [ -e /var/run/docker.pid ]; do sleep 0.2; done
scripts/docker-up.sh
echo "  dockerd restarted at $(done_cycles) cycles"
docker start soak-anchor >/dev/null

# shellcheck disable=SC2086
wait $workers
secs=$(($(date +%s) - t0))
# settled: the kernel holds the plan for what runs, nothing stale
i=0
until "$B" diff -p "$tmp/policy.yaml" --exit-code >"$tmp/diff" 2>&1; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "the kernel is not exact after $CYCLES cycles: $(cat "$tmp/diff")"
	sleep 0.2
done
[ -z "$(docker ps -aq --filter name=soak-web- --filter name=soak-app- --filter name=soak-db-)" ] ||
	fail "test setup: cycle containers left over"
left=$(nft list table inet bulkhead | grep -c '10\.203\.' || true)
anchor=$(docker inspect -f '{{.NetworkSettings.Networks.soaknet.IPAddress}}' soak-anchor)
stale=$(nft list table inet bulkhead | grep -o '10\.203\.[0-9]*\.[0-9]*' | grep -vx "$anchor" | sort -u | wc -l)
[ "$stale" -eq 0 ] || fail "$stale addresses of gone containers are still in the table"
rss1=$(st | jq .rss_kb)
errors=$(st | jq .errors)
events=$(st | jq .events)
stop_clean
echo "  $CYCLES cycles by $WORKERS workers in ${secs} s; $events events handled; $left lines of the table hold the anchor's address, none any other"
echo "  RSS at $((CYCLES / 5)) cycles: $rss0 kB; at the end: $rss1 kB"
[ "$rss1" -le $((rss0 + rss0 / 5 + 1024)) ] || fail "RSS grew from $rss0 to $rss1 kB"
echo "ok: soak: $CYCLES start/stop cycles, a SIGKILL and a dockerd restart; kernel exact, nothing stale, RSS $rss0 -> $rss1 kB, $errors errors counted (Docker going away), clean exit"
