#!/bin/sh
# End to end with a real dockerd: runs the demo (the shop from
# docker-compose, bulkhead's daemon on policies/shop.yaml) and checks its
# verdicts: every pair connects before, after the daemon takes over the
# allowed pairs connect and the others are blocked, Docker's own tables
# are byte for byte the same, `diff` finds the kernel holding the plan, a
# scaled-up backend is placed and reachable, denied flows are recorded
# with both ends named, summarised and turned into a YAML edge, the graph
# is rendered to SVG, and on exit the table and the shop are gone.
set -eu
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root for dockerd and nftables"
	exit 0
fi
out=$(mktemp)
dir=$(mktemp -d)
trap 'rm -rf "$out" "$dir"' EXIT
DEMO_OUT=$dir scripts/demo.sh >"$out" 2>&1 || { cat "$out"; echo "FAIL: the demo exited non-zero"; exit 1; }
fail() { cat "$out"; echo "FAIL: $*"; exit 1; }
part() { sed -n "/== $1/,/== /p" "$out" | tr -s ' '; }

before=$(part "Before bulkhead")
[ "$(echo "$before" | grep -c ' connects$')" -eq 8 ] || fail "before bulkhead, not every pair connected"
with=$(part "With bulkhead")
for pair in "nginx -> backend_1 8080" "backend -> db_1 5432" "backend -> redis_1 6379" "backend -> rabbitmq_1 5672"; do
	echo "$with" | grep -q " $pair connects" || fail "$pair should connect"
done
for pair in "nginx -> redis_1 6379" "nginx -> rabbitmq_1 5672" "redis -> backend_1 8080" "rabbitmq -> db_1 5432"; do
	echo "$with" | grep -q " $pair blocked" || fail "$pair should be blocked"
done
part "bulkhead plan" | grep -q "chain svc_nginx {" || fail "the plan's excerpt"
run=$(part "bulkhead run")
echo "$run" | grep -q "docker: in sync (API [0-9.]*): 5 containers" || fail "the daemon's first sync"
echo "$run" | grep -q "Docker's own tables (.*ip filter.*) are as they were, byte for byte" ||
	fail "the daemon changed another table (or Docker has none)"
echo "$run" | grep -q "diff: the kernel holds the plan" || fail "diff finds differences after the sync"
late=$(part "A container that comes later")
# compose v1 names containers shop_backend_2, v2 shop-backend-2
echo "$late" | grep -q "placed shop[_-]backend[_-]2 (backend) on" || fail "the daemon's log lacks the late backend"
echo "$late" | grep -q " nginx -> backend_2 8080 connects" || fail "nginx cannot reach the late backend"
echo "$late" | grep -q " db -> backend_2 8080 blocked" || fail "db reaches the late backend"
att=$(part "An attack refused")
for what in "SYNs to redis:6379" "ARP" "a VLAN-0 tagged SYN"; do
	echo "$att" | grep -q "$what.*: 0 frames reached redis" || { echo "$att"; fail "the demo's attack ($what) reached redis"; }
done
echo "$att" | grep -q "dropped at the containers' bridge ports by table bridge bulkhead: [1-9][0-9]* frames" || fail "the bridge table counted no drop"
alw=$(part "An allowed flow on record")
echo "$alw" | grep -q "allowed shop[_-]backend[_-]1 (backend) .* shop[_-]db[_-]1 (db) .* 5432/tcp open by " || { echo "$alw"; fail "the demo's allowed flow has no open record"; }
echo "$alw" | grep -q "allowed shop[_-]backend[_-]1 (backend) .* 5432/tcp [a-z]* after [0-9.]* s: [0-9]\{6,\} B sent" || { echo "$alw"; fail "the demo's allowed flow has no close record with its 100 kB"; }
rev=$(part "A revoked edge")
echo "$rev" | grep -q "revoked 1 flow: shop[_-]backend[_-]1 -> shop[_-]db[_-]1 5432/tcp (no-edge)" || { echo "$rev"; fail "the revocation is not logged"; }
echo "$rev" | grep -q " backend -> db_1 5432 blocked" || fail "backend reaches db after its edge was removed"
part "bulkhead status" | grep -q "backend: 2 containers" || fail "status lacks the two backends"
met=$(part "Metrics: what Prometheus scrapes")
echo "$met" | grep -q 'bulkhead_flows_total{verdict="allowed",src_service="nginx",dst_service="backend",reason="edge"} [1-9]' || { echo "$met"; fail "the metrics count no allowed nginx -> backend"; }
echo "$met" | grep -q 'bulkhead_flows_total{verdict="denied",src_service="nginx",dst_service="redis",reason="no-edge"} [1-9]' || { echo "$met"; fail "the metrics count no denied nginx -> redis"; }
echo "$met" | grep -q 'bulkhead_flow_bytes_total{src_service="backend",dst_service="db",direction="sent"} [0-9]\{6,\}' || { echo "$met"; fail "the metrics lack backend -> db's 100 kB"; }
echo "$met" | grep -q 'bulkhead_containers{service="backend"} 2' || { echo "$met"; fail "the metrics do not count two backends"; }
tms=$(part "Teams on one host")
echo "$tms" | grep -q "policies/teams: ok: 4 services, 4 edges, 4 containers" || { echo "$tms"; fail "check -p policies/teams"; }
echo "$tms" | grep -q "^ *allowed shop-backend-1 -> billing-api-1 443/tcp" || { echo "$tms"; fail "the accepted cross-team edge"; }
echo "$tms" | grep -q "accepted: policies/teams/billing.yaml:" || { echo "$tms"; fail "trace does not name the other side's declaration"; }
echo "$tms" | grep -q "warning: billing/api does not accept this edge (no ingress from shop/backend in billing.yaml)" || { echo "$tms"; fail "the one-sided edge's warning"; }
echo "$tms" | grep -q "reason: not-accepted" || { echo "$tms"; fail "the one-sided edge is not denied as not-accepted"; }
den=$(part "bulkhead denials:")
echo "$den" | grep -q "denied shop[_-]nginx[_-]1 (nginx) [0-9.]* shop[_-]redis[_-]1 (redis) [0-9.]* 6379/tcp no-edge" ||
	fail "denials lacks nginx -> redis with both ends named"
echo "$den" | grep -q "shop[_-]rabbitmq[_-]1 (rabbitmq) .* shop[_-]db[_-]1 (db) .* 5432/tcp" || fail "denials lacks rabbitmq -> db"
part "bulkhead graph" | grep -q "edges drawn: $dir/peers.svg" || fail "the graph's path"
grep -q "<svg" "$dir/peers.svg" || fail "no SVG graph"
grep -q '"nginx" -> "redis" \[color=red' "$dir/peers.dot" || fail "the graph lacks the denied pair"
sug=$(part "bulkhead denials --suggest")
echo "$sug" | grep -q "^ - to: redis$" || fail "--suggest lacks nginx's edge to redis"
if nft list table inet bulkhead >/dev/null 2>&1; then fail "the demo left our table"; fi
if nft list table bridge bulkhead >/dev/null 2>&1; then fail "the demo left our bridge table"; fi
[ -z "$(docker ps -aq --filter label=com.docker.compose.project=shop)" ] || fail "the demo left the shop running"
echo "ok: demo: 4 allowed pairs connect, 4 denied pairs are blocked, a late backend is placed, forged frames are refused, an allowed flow is on record with its bytes, a removed edge ends its connection; metrics scraped; denials named, graphed and suggested; all removed after"
