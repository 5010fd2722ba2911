#!/bin/sh
# The demo: Docker up, the shop (nginx, backend, db, redis, rabbitmq on two
# networks) started with docker-compose from the offline test image, and
# bulkhead enforcing policies/shop.yaml as a daemon. Step by step: the
# dry run, the allowed pairs connecting and the denied ones failing, a
# container that comes later placed at once, an attack refused (nginx
# forging backend's address and ARP), a revoked edge ending its live
# connection, the denied flows with both ends named, the daemon's
# status, the peer graph as SVG, --suggest turning a denial into a
# YAML edge, and a policy directory of two teams' files (an edge between
# them holds only where both declare it).
#
# On exit it removes what it started: the daemon, the containers, their
# networks and our table. KEEP=1 leaves them running instead, and says
# how to stop them.
set -eu
cd "$(dirname "$0")/.."
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '  %s\n' "$*"; }
indent() { sed 's/^/    /'; }

step "Installing what is missing, building, starting Docker"
# a tree built already (as in another Debian's root) needs only what runs
if [ -x build/bulkhead ] && make -q bulkhead 2>/dev/null; then
	scripts/install-deps.sh --run
else
	scripts/install-deps.sh
	make -s >/dev/null
fi
scripts/docker-up.sh
scripts/test-image.sh >/dev/null
docker version --format '  Docker {{.Server.Version}}, API {{.Server.APIVersion}}'

POLICY=policies/shop.yaml
# compose v1 or v2, and the shop's containers found by their labels
. tests/lib/compose.sh
COMPOSE=$(compose_cmd)
compose() { $COMPOSE -p shop -f policies/shop/docker-compose.yml "$@"; }
c() { compose_name shop "$@"; } # c SERVICE [N]: its container's name
out=${DEMO_OUT:-${TMPDIR:-/tmp}/bulkhead-demo}
mkdir -p "$out"
tmp=$(mktemp -d)
daemon=""
cleanup() {
	set +e
	if [ "${KEEP:-0}" = 1 ]; then
		rm -rf "$tmp"
		return
	fi
	[ -z "$daemon" ] || { kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; }
	./bulkhead flush 2>/dev/null
	compose down -v >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Starting the shop with $COMPOSE"
compose down -v >/dev/null 2>&1 || true
./bulkhead flush 2>/dev/null || true
compose up -d 2>&1 | grep -v '^Creating network' | indent
docker ps --filter label=com.docker.compose.project=shop \
	--format '{{.Names}}\t{{.Networks}}' | sort | indent

# the address of container $2 on a network it shares with $1
addr() {
	for n in $(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$1"); do
		a=$(docker inspect -f "{{with index .NetworkSettings.Networks \"$n\"}}{{.IPAddress}}{{end}}" "$2")
		[ -z "$a" ] || { echo "$a"; return; }
	done
}
probe() { # FROM TO_N PORT: a TCP connection, given one second
	from=$(c "$1") to=$(c "${2%_*}" "${2##*_}")
	if docker exec "$from" nc -w 1 "$(addr "$from" "$to")" "$3" </dev/null >/dev/null 2>&1; then
		printf '  %-9s -> %-11s %-5s connects\n' "$1" "$2" "$3"
	else
		printf '  %-9s -> %-11s %-5s blocked\n' "$1" "$2" "$3"
	fi
}
probes() {
	say "allowed by the policy:"
	probe nginx backend_1 8080
	probe backend db_1 5432
	probe backend redis_1 6379
	probe backend rabbitmq_1 5672
	say "not allowed by the policy:"
	probe nginx redis_1 6379
	probe nginx rabbitmq_1 5672
	probe redis backend_1 8080
	probe rabbitmq db_1 5432
}

step "Before bulkhead: every container reaches every other on a shared network"
probes

step "bulkhead check: the policy against the running containers"
docker inspect $(compose ps -q) >"$tmp/inventory.json"
say "\$ bulkhead check -p $POLICY --inventory inventory.json"
./bulkhead check -p "$POLICY" --inventory "$tmp/inventory.json" 2>&1 | indent

step "bulkhead plan: the dry run (read from the Docker API; nothing touches the kernel)"
./bulkhead plan -p "$POLICY" >"$tmp/plan.nft"
say "\$ bulkhead plan -p $POLICY     ($(wc -l <"$tmp/plan.nft") lines; a few of them)"
sed -n '2,3p;/set backend_peer4 {/,/^	}/p;/chain svc_nginx {/,/^	}/p' "$tmp/plan.nft" | indent
if unshare -n nft -c -f "$tmp/plan.nft" 2>/dev/null; then
	say "(nft -c -f accepts it as it is)"
fi

# every table but ours, counters left out (traffic moves them)
others() {
	nft list tables | grep -v '^table \(inet\|bridge\) bulkhead$' | while read -r _ fam name; do
		nft list table "$fam" "$name" 2>/dev/null
	done | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/'
}

step "bulkhead run: the daemon takes over"
others >"$tmp/tables-before"
# the daemon runs on a copy, which a later step edits and reloads
cp "$POLICY" "$out/policy.yaml"
say "\$ cp $POLICY $out/policy.yaml"
METRICS=${DEMO_METRICS:-127.0.0.1:9464}
say "\$ bulkhead run -p $out/policy.yaml --log $out/flows.jsonl --metrics $METRICS &"
rm -f "$out/flows.jsonl"
./bulkhead run -p "$out/policy.yaml" --control "$tmp/ctl" --log "$out/flows.jsonl" --metrics "$METRICS" >"$out/daemon.log" 2>&1 &
daemon=$!
st() { ./bulkhead status --control "$tmp/ctl" "$@" 2>/dev/null; }
waitfor() { # what, then a command that succeeds once it is so
	what=$1
	shift
	i=0
	until "$@"; do
		i=$((i + 1))
		[ $i -lt 100 ] || { cat "$out/daemon.log"; echo "demo: $what did not happen" >&2; exit 1; }
		sleep 0.1
	done
}
waitfor "the daemon's first sync" grep -q 'in sync' "$out/daemon.log"
indent <"$out/daemon.log"
others >"$tmp/tables-after"
if cmp -s "$tmp/tables-before" "$tmp/tables-after"; then
	say "Docker's own tables ($(nft list tables | grep -v ' bulkhead$' | cut -d' ' -f2- | paste -sd, -)) are as they were, byte for byte."
else
	say "Docker's tables changed:"
	diff "$tmp/tables-before" "$tmp/tables-after" | head -20
fi
./bulkhead diff -p "$POLICY" 2>/dev/null | tail -1 | indent

step "With bulkhead: the allowed pairs connect, everything else is blocked"
probes

step "A container that comes later: $COMPOSE up --scale backend=2"
n=$(wc -l <"$out/daemon.log")
compose up -d --no-recreate --scale backend=2 backend 2>&1 | grep -v 'is up-to-date' | indent
placed() { st --json | grep -q "\"name\": \"$(c backend 2)\""; }
waitfor "the second backend's placement" placed
sed -n "$((n + 1)),\$p" "$out/daemon.log" | indent
probe nginx backend_2 8080
probe backend db_1 5432
probe db backend_2 8080

step "An attack refused: nginx, with only CAP_NET_RAW, forges backend's address and ARP"
# the sender runs in nginx's network namespace, as the container's own
# process would, with every capability but CAP_NET_RAW gone; redis, its
# neighbour on the front network, counts what arrives
on() { docker inspect -f "{{with index .NetworkSettings.Networks \"shop_front\"}}{{.$2}}{{end}}" "$1"; }
ng=$(docker inspect -f '{{.State.Pid}}' "$(c nginx)")
rdp=$(docker inspect -f '{{.State.Pid}}' "$(c redis)")
be4=$(on "$(c backend)" IPAddress)
rd4=$(on "$(c redis)" IPAddress)
rdmac=$(on "$(c redis)" MacAddress)
rdif=$(nsenter -t "$rdp" -n ip -o -4 addr show | awk -v a="$rd4" 'index($4, a "/") == 1 { print $2 }')
FORGE_TMP=$tmp
. tests/lib/forge.sh
forged() { forge "nsenter -t $rdp -n" "nsenter -t $ng -n" "$rdif" "$@"; } # frames that reached redis
say "SYNs to redis:6379 (an edge backend has) from backend's address $be4: $(forged spoof4 src="$be4" dst="$rd4" dmac="$rdmac") frames reached redis"
say "ARP \"$be4 is at nginx's MAC\" to redis: $(forged arp src="$be4" dst="$rd4") frames reached redis"
say "a VLAN-0 tagged SYN from nginx's own address: $(forged vlan0 src="$(on "$(c nginx)" IPAddress)" dst="$rd4" dmac="$rdmac") frames reached redis"
say "dropped at the containers' bridge ports by table bridge bulkhead: $(nft list table bridge bulkhead | sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | awk '{ n += $1 } END { print n + 0 }') frames so far"

step "An allowed flow on record, with its bytes: backend -> db logged"
say "\$ sed -i 's|^\( *\)- to: db\$|&\\n\\1  log: true|' $out/policy.yaml && bulkhead reload"
sed -i 's|^\( *\)- to: db$|&\n\1  log: true|' "$out/policy.yaml"
./bulkhead reload --control "$tmp/ctl" >/dev/null
say "\$ docker exec $(c backend) sh -c 'head -c 100000 /dev/zero | nc -w 1 db 5432'"
docker exec "$(c backend)" sh -c "head -c 100000 /dev/zero | nc -w 1 $(addr "$(c backend)" "$(c db)") 5432" >/dev/null 2>&1 || true
waitfor "the close record" grep -q '"event":"close"' "$out/flows.jsonl"
say "\$ bulkhead flows --verdict allowed"
./bulkhead flows --log "$out/flows.jsonl" --verdict allowed | indent
say "\$ bulkhead flows --verdict allowed --json | tail -1"
./bulkhead flows --log "$out/flows.jsonl" --verdict allowed --json | tail -1 | indent
cp "$POLICY" "$out/policy.yaml"
./bulkhead reload --control "$tmp/ctl" >/dev/null

step "A revoked edge ends its live connection: bulkhead reload without backend -> db"
db4=$(addr "$(c backend)" "$(c db)")
docker exec -d "$(c backend)" sh -c "sleep 30 | nc $db4 5432"
waitfor "backend's connection to db" sh -c "conntrack -L -p tcp --dport 5432 2>/dev/null | grep -q ESTABLISHED"
n=$(wc -l <"$out/daemon.log")
say "\$ sed -i '/- to: db\$/,+1d' $out/policy.yaml && bulkhead reload"
sed -i '/- to: db$/,+1d' "$out/policy.yaml"
./bulkhead reload --control "$tmp/ctl" >/dev/null
waitfor "the revocation" grep -q "revoked" "$out/daemon.log"
sed -n "$((n + 1)),\$p" "$out/daemon.log" | indent
probe backend db_1 5432
say "(the edge back: cp $POLICY $out/policy.yaml && bulkhead reload)"
cp "$POLICY" "$out/policy.yaml"
./bulkhead reload --control "$tmp/ctl" >/dev/null

step "bulkhead status: what the daemon sees and has programmed"
st | indent

step "Metrics: what Prometheus scrapes from the daemon (--metrics $METRICS)"
say "\$ curl -s http://$METRICS/metrics | grep -E '^bulkhead_(flows_total|flow_bytes_total|containers)'"
curl -sf --max-time 5 "http://$METRICS/metrics" >"$out/metrics.txt" || { echo "demo: GET /metrics did not answer" >&2; exit 1; }
grep -E '^bulkhead_(flows_total|flow_bytes_total|containers)[{ ]' "$out/metrics.txt" | indent
say "($(grep -c '^bulkhead_' "$out/metrics.txt") series in all: $out/metrics.txt)"

step "bulkhead denials: every denied flow, both ends named"
sleep 0.3
./bulkhead denials --log "$out/flows.jsonl" | indent
say "\$ bulkhead denials --summary"
./bulkhead denials --log "$out/flows.jsonl" --summary | indent

step "bulkhead graph: the allowed peers, and the denied pairs in red"
docker inspect $(compose ps -q) >"$tmp/inventory.json"
./bulkhead graph -p "$POLICY" --inventory "$tmp/inventory.json" --denials "$out/flows.jsonl" >"$out/peers.dot"
dot -Tsvg "$out/peers.dot" >"$out/peers.svg"
dot -Tpng "$out/peers.dot" >"$out/peers.png"
say "$(grep -c -- '->' "$out/peers.dot") edges drawn: $out/peers.svg (and .png, .dot)"

step "bulkhead denials --suggest: a denial turned into the YAML edge that would allow it"
./bulkhead denials --log "$out/flows.jsonl" --service nginx --suggest | indent

step "Teams on one host: a file per team, an edge between teams only where both declare it"
# a copy, so that the directory is root's 0755 whatever the checkout's umask
mkdir -m 755 "$tmp/teams"
install -m 644 policies/teams/*.yaml "$tmp/teams/"
teams() { ./bulkhead "$@" 2>&1 | grep -v -e '^  identity:' -e '^  path:' | sed "s|$tmp/teams|policies/teams|g" | indent; }
say "policies/teams: 00-host.yaml (root's), shop.yaml and billing.yaml (scope: their compose project)"
say "\$ bulkhead check -p policies/teams --inventory tests/fixtures/teams.json"
teams check -p "$tmp/teams" --inventory tests/fixtures/teams.json
say "\$ bulkhead trace -p policies/teams --inventory tests/fixtures/teams.json shop-backend-1 billing-api-1 443/tcp"
teams trace -p "$tmp/teams" --inventory tests/fixtures/teams.json shop-backend-1 billing-api-1 443/tcp
say "billing takes its ingress from shop/backend out of billing.yaml; shop's egress alone is not enough:"
sed -i '/^    ingress:/,/ports: \[443\/tcp\]/d' "$tmp/teams/billing.yaml"
say "\$ bulkhead check -p policies/teams"
teams check -p "$tmp/teams"
say "\$ bulkhead trace ... shop-backend-1 billing-api-1 443/tcp"
teams trace -p "$tmp/teams" --inventory tests/fixtures/teams.json shop-backend-1 billing-api-1 443/tcp

step "Done"
say "The daemon enforced $POLICY on the shop, placed the late backend as"
say "Docker started it, logged each denied flow with both ends named, and"
say "an allowed one with its edge and bytes, and served it all as metrics."
say "Its log and the denied flows are in $out."
if [ "${KEEP:-0}" = 1 ]; then
	say "KEEP=1: all of it keeps running. To stop it:"
	say "  kill $daemon; $PWD/bulkhead flush; $COMPOSE -p shop -f policies/shop/docker-compose.yml down -v"
else
	say "Now the demo stops the daemon (its rules would stay in force: fail"
	say "closed), flushes our tables and removes the shop. To keep it"
	say "all running instead: KEEP=1 $0"
fi
