#!/bin/sh
# End to end: Prometheus metrics. The daemon runs with --metrics on
# loopback and the policy logs no allowed flow (the metrics count every
# flow anyway); the test makes three allowed connections from bh-backend
# to an echo server matched as db, each moving a known number of bytes,
# and denied ones from bh-nginx to it. A real Prometheus (Debian's,
# started here on loopback) scrapes the daemon, and a query over its
# HTTP API gives back the counts the test caused: three allowed flows,
# as many denied ones as the flow log recorded, their bytes. `promtool
# check metrics` finds nothing to say. Then hostile scrapers: garbage,
# a request line of 1 MB, 100 idle connections held open: meanwhile
# status answers, a scrape still does, a new container is placed, and
# the daemon's memory stays bounded. Last, unix:PATH serves too, mode
# 0600, and a bad --metrics is refused with exit 2.
set -eu
cd "$(dirname "$0")/../.."
. tests/lib/e2e.sh
PY=/usr/bin/python3
MPORT=19464
PPORT=19490
M=127.0.0.1:$MPORT
prom=""
held=""
cleanup() {
	set +e
	[ -z "$held" ] || kill "$held" 2>/dev/null
	[ -z "$prom" ] || kill "$prom" 2>/dev/null
	[ -z "$pid" ] || kill -9 "$pid" 2>/dev/null
	docker rm -f bh-dbecho bh-dblate >/dev/null 2>&1
	compose down -t 0 >/dev/null 2>&1
	"$B" flush
	rm -rf "$tmp"
}
trap cleanup EXIT
for p in prometheus promtool curl; do
	command -v $p >/dev/null || fail "$p is not installed (scripts/install-deps.sh installs it)"
done

bh_policy bhnet "$tmp/policy.yaml"
compose down -t 0 >/dev/null 2>&1 || true
compose up -d >/dev/null 2>&1 || fail "docker-compose up"
docker run -d --name bh-dbecho --network bhnet bulkhead-test/postgres:16 nc -ll -p 5432 -e cat >/dev/null
db=$(addr bh-dbecho)
"$B" run -p "$tmp/policy.yaml" --control "$tmp/ctl" --log "$tmp/flows.jsonl" --metrics "$M" >>"$tmp/daemon.log" 2>&1 &
pid=$!
wait_for "the daemon's first sync" grep -q "docker: in sync" "$tmp/daemon.log"
grep -q "metrics on $M" "$tmp/daemon.log" || fail "the daemon does not say where it serves metrics"

scrape() { curl -sf --max-time 5 "http://$M/metrics"; }
scrape >"$tmp/m0.txt" || fail "GET /metrics did not answer"
grep -q '^bulkhead_build_info{version="[0-9]' "$tmp/m0.txt" || fail "no bulkhead_build_info: $(cat "$tmp/m0.txt")"
grep -q '^bulkhead_docker_connected 1$' "$tmp/m0.txt" || fail "docker_connected is not 1"
grep -q '^bulkhead_containers{service="nginx"} 1$' "$tmp/m0.txt" || fail "bulkhead_containers does not count nginx's one container"
grep -q '^bulkhead_containers{service="db"} 2$' "$tmp/m0.txt" || fail "bulkhead_containers does not count db's two (bh-db, bh-dbecho)"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$M/")
[ "$code" = 404 ] || fail "GET / answered $code, not 404"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x=1 "http://$M/metrics")
[ "$code" = 405 ] || fail "POST /metrics answered $code, not 405"

# three allowed connections, N bytes each way; denied ones from nginx
N=100000
send() { nsenter -t "$(cpid bh-backend)" -n $PY tests/lib/echo.py "$db" 5432 "$N"; }
for i in 1 2 3; do
	got=$(send) || fail "bh-backend -> bh-dbecho did not connect"
	[ "$got" -eq "$N" ] || fail "the echo gave back $got bytes of $N"
done
docker exec bh-nginx nc -w 1 "$db" 5432 </dev/null >/dev/null 2>&1 || true
docker exec bh-nginx nc -w 1 "$db" 5432 </dev/null >/dev/null 2>&1 || true
wait_for "the denied records" grep -q '"verdict":"denied".*"container":"bh-nginx"' "$tmp/flows.jsonl"
sleep 1 # the last closes and denials read
denied=$(jq -c 'select(.verdict == "denied" and .src.service == "nginx" and .dst.service == "db")' "$tmp/flows.jsonl" | wc -l)
[ "$denied" -ge 2 ] || fail "$denied denied records for two attempts"
grep -q '"verdict":"allowed"' "$tmp/flows.jsonl" && fail "the policy logs no allowed flow, yet one is in the log"

# a real Prometheus scrapes us every second
cat >"$tmp/prometheus.yml" <<EOF
global: { scrape_interval: 1s, scrape_timeout: 1s }
scrape_configs:
  - job_name: bulkhead
    static_configs: [ { targets: ["$M"] } ]
EOF
promtool check config "$tmp/prometheus.yml" >/dev/null || fail "promtool: the scrape config is not valid"
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
	--web.listen-address="127.0.0.1:$PPORT" >"$tmp/prometheus.log" 2>&1 &
prom=$!
query() {
	curl -sf --max-time 5 "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1" |
		jq -r '.data.result[0].value[1] // "none"'
}
is() { [ "$(query "$1")" = "$2" ]; }
n=0
until is 'up{job="bulkhead"}' 1; do
	n=$((n + 1))
	[ $n -lt 300 ] || { cat "$tmp/prometheus.log"; fail "Prometheus never scraped the daemon"; }
	sleep 0.1
done
wait_for "Prometheus's count of allowed flows" is 'sum(bulkhead_flows_total{verdict="allowed",src_service="backend",dst_service="db",reason="edge"})' 3
wait_for "Prometheus's count of denied flows" is 'sum(bulkhead_flows_total{verdict="denied",src_service="nginx",dst_service="db",reason="no-edge"})' "$denied"
for dir in sent received; do
	b=$(query "sum(bulkhead_flow_bytes_total{src_service=\"backend\",dst_service=\"db\",direction=\"$dir\"})")
	[ "$b" != none ] && [ "$b" -ge $((3 * N)) ] && [ "$b" -le $((3 * N * 110 / 100)) ] ||
		fail "Prometheus has $b bytes $dir for 3 x $N of payload (headers: within 10%)"
	echo "  bytes $dir: $b for 3 x $N of payload, as Prometheus has them"
done
[ "$(query 'bulkhead_denied_packets_total')" -ge "$denied" ] || fail "bulkhead_denied_packets_total is under the denied records"
echo "  flows_total: 3 allowed backend -> db, $denied denied nginx -> db, as Prometheus has them"

scrape >"$tmp/m1.txt" || fail "GET /metrics did not answer"
promtool check metrics <"$tmp/m1.txt" >"$tmp/lint.txt" 2>&1 || { cat "$tmp/lint.txt"; fail "promtool check metrics failed"; }
[ ! -s "$tmp/lint.txt" ] || { cat "$tmp/lint.txt"; fail "promtool check metrics has something to say"; }
kill "$prom"
wait "$prom" 2>/dev/null || true
prom=""

# hostile scrapers
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }
rss0=$(rss)
printf '\001\002 garbage \377\r\n\r\n' | socat -t 2 - "TCP:$M" >/dev/null 2>&1 || true
$PY - "$MPORT" <<'EOF' || fail "the 1 MB request line was not refused"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
try:
    s.sendall(b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
except (BrokenPipeError, ConnectionResetError):
    pass  # refused before it was all sent
try:
    reply = s.recv(200)
except ConnectionResetError:
    reply = b""
assert not reply.startswith(b"HTTP/1.1 200"), reply
print("  a 1 MB request line: %s" % (reply.split(b"\r\n")[0].decode() or "closed"))
EOF
$PY - "$MPORT" "$tmp/held" <<'EOF' &
import socket, sys, time
conns = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(100)]
conns[0].sendall(b"GET /metrics HTTP/1.1\r\n")  # and never the rest
open(sys.argv[2], "w").write("%d\n" % len(conns))
time.sleep(8)
EOF
held=$!
wait_for "100 idle connections" test -s "$tmp/held"
"$B" status --control "$tmp/ctl" >/dev/null || fail "status did not answer with 100 idle scrapers"
scrape >/dev/null || fail "a scrape did not answer beside 100 idle connections"
docker run -d --name bh-dblate --network bhnet bulkhead-test/postgres:16 sleep 600 >/dev/null
wait_for "bh-dblate placed" sh -c "'$B' status --control '$tmp/ctl' | grep -q bh-dblate"
rss1=$(rss)
echo "  RSS ${rss0} kB before the hostile scrapers, ${rss1} kB with 100 held"
[ $((rss1 - rss0)) -lt 16384 ] || fail "the daemon's memory grew by $((rss1 - rss0)) kB"
kill "$held" 2>/dev/null || true
wait "$held" 2>/dev/null || true
held=""
scrape | grep -q '^bulkhead_containers{service="db"} 3$' || fail "the scrape after does not count bh-dblate"
stop_clean

# unix:PATH, and a bad address refused
"$B" run -p "$tmp/policy.yaml" --control "$tmp/ctl" --log "$tmp/flows.jsonl" --metrics "unix:$tmp/metrics.sock" >>"$tmp/daemon.log" 2>&1 &
pid=$!
wait_for "the metrics socket" test -S "$tmp/metrics.sock"
[ "$(stat -c %a "$tmp/metrics.sock")" = 600 ] || fail "the metrics socket is mode $(stat -c %a "$tmp/metrics.sock"), not 600"
curl -sf --max-time 5 --unix-socket "$tmp/metrics.sock" http://localhost/metrics | grep -q '^bulkhead_build_info' ||
	fail "unix:PATH serves no metrics"
stop_clean
[ ! -e "$tmp/metrics.sock" ] || fail "the metrics socket is left behind"
rc=0
"$B" run -p "$tmp/policy.yaml" --metrics localhost:9100 2>"$tmp/bad.txt" || rc=$?
[ "$rc" -eq 2 ] && grep -q "not IPV4:PORT" "$tmp/bad.txt" || fail "--metrics localhost:9100: exit $rc, $(cat "$tmp/bad.txt")"
echo "ok: metrics: Prometheus scraped the counts the test caused (allowed, denied, bytes); promtool clean; 404/405; garbage, a 1 MB line and 100 idle connections left status, scrapes and placement working, memory bounded; unix:PATH; a bad address refused"
