#!/bin/sh
# The demo: Docker up, the three-tier app started from the offline test
# image, and bulkhead on it live: check, the dry-run plan, trace of the
# allowed and denied pairs, then `apply` enforcing the policy and real
# connections between the containers showing it. It removes what it
# started on exit, our table included (KEEP=1 keeps all of it).
set -eu
cd "$(dirname "$0")/.."
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Installing what is missing and building"
scripts/install-deps.sh
make -s >/dev/null
scripts/docker-up.sh
scripts/test-image.sh >/dev/null

tmp=$(mktemp -d)
daemon=""
cleanup() {
	[ -z "$daemon" ] || kill "$daemon" 2>/dev/null || true
	if [ "${KEEP:-0}" != 1 ]; then
		./bulkhead flush 2>/dev/null || true
		docker rm -f demo-nginx demo-backend demo-db demo-redis demo-rabbitmq demo-db2 >/dev/null 2>&1 || true
		docker network rm appnet >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
cleanup_net() { docker network rm appnet >/dev/null 2>&1 || true; }

step "Starting the three-tier app on network appnet"
docker rm -f demo-nginx demo-backend demo-db demo-redis demo-rabbitmq demo-db2 >/dev/null 2>&1 || true
cleanup_net
docker network create appnet >/dev/null
img=bulkhead-test
docker run -d --name demo-nginx --network appnet "$img/nginx:1.25" httpd -f -p 80 -h /www >/dev/null
docker run -d --name demo-backend --network appnet --label app=backend "$img/backend:1.0" httpd -f -p 8080 -h /www >/dev/null
docker run -d --name demo-db --network appnet "$img/postgres:16" httpd -f -p 5432 -h /www >/dev/null
docker run -d --name demo-redis --network appnet "$img/redis:7" httpd -f -p 6379 -h /www >/dev/null
docker run -d --name demo-rabbitmq --network appnet "$img/rabbitmq:3" httpd -f -p 5672 -h /www >/dev/null
docker ps --filter name=demo- --format '  {{.Names}}\t{{.Image}}'

# the demo's containers carry a prefix; the policy matches on names
sed -e 's/{ name: nginx }/{ name: demo-nginx }/' -e 's/"db\*"/"demo-db*"/' \
	-e 's/{ name: rabbitmq }/{ name: demo-rabbitmq }/' \
	policies/three-tier.yaml >"$tmp/policy.yaml"
docker inspect $(docker ps -q --filter name=demo-) >"$tmp/inventory.json"

step "bulkhead check: the policy against the running containers"
./bulkhead check -p "$tmp/policy.yaml" --inventory "$tmp/inventory.json"

step "bulkhead plan: the dry run (first lines; $(./bulkhead plan -p "$tmp/policy.yaml" --inventory "$tmp/inventory.json" | wc -l) in all)"
./bulkhead plan -p "$tmp/policy.yaml" --inventory "$tmp/inventory.json" >"$tmp/plan.nft"
sed -n '1,3p;/set backend_peer4/,/^	}/p;/chain svc_nginx/,/^	}/p' "$tmp/plan.nft"
if [ "$(id -u)" -eq 0 ]; then
	unshare -n nft -c -f "$tmp/plan.nft" && echo "  (nft -c -f accepts it)"
fi

step "bulkhead trace: the allowed pairs"
for t in "demo-nginx demo-backend 8080/tcp" "demo-backend demo-db 5432/tcp" \
	"demo-backend demo-redis 6379/tcp" "demo-backend 203.0.113.10 443/tcp"; do
	# shellcheck disable=SC2086
	./bulkhead trace -p "$tmp/policy.yaml" --inventory "$tmp/inventory.json" $t | sed -n '1p;/edge:/p'
done

step "bulkhead trace: the denied pairs"
for t in "demo-nginx demo-db 5432/tcp" "demo-nginx demo-redis 6379/tcp" \
	"demo-nginx demo-rabbitmq 5672/tcp" "demo-nginx demo-backend 22/tcp" \
	"demo-db 198.51.100.1 443/tcp"; do
	# shellcheck disable=SC2086
	./bulkhead trace -p "$tmp/policy.yaml" --inventory "$tmp/inventory.json" $t | sed -n '1p;/default:/p'
done

ip() { docker inspect -f '{{.NetworkSettings.Networks.appnet.IPAddress}}' "$1"; }
probe() { # FROM TO PORT: try a TCP connection for one second
	if docker exec "$1" nc -w 1 "$(ip "$2")" "$3" </dev/null >/dev/null 2>&1; then
		printf '  %-14s -> %-14s %-6s connects\n' "$1" "$2" "$3"
	else
		printf '  %-14s -> %-14s %-6s blocked\n' "$1" "$2" "$3"
	fi
}
probes() {
	probe demo-nginx demo-backend 8080
	probe demo-backend demo-db 5432
	probe demo-backend demo-redis 6379
	probe demo-nginx demo-db 5432
	probe demo-nginx demo-redis 6379
	probe demo-nginx demo-rabbitmq 5672
	probe demo-db demo-backend 8080
}

step "Before bulkhead: every container reaches every other"
probes

# every table but ours, counters left out (traffic moves them)
others() {
	nft list tables | grep -v '^table inet bulkhead$' | while read -r _ fam name; do
		nft list table "$fam" "$name" 2>/dev/null
	done | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/'
}

step "bulkhead apply: one atomic netlink batch into table inet bulkhead"
others >"$tmp/tables-before"
./bulkhead apply -p "$tmp/policy.yaml" --inventory "$tmp/inventory.json" 2>&1 | grep -v "matches no service" || true
others >"$tmp/tables-after"
if cmp -s "$tmp/tables-before" "$tmp/tables-after"; then
	echo "Docker's own tables ($(nft list tables | grep -v 'inet bulkhead' | cut -d' ' -f2- | paste -sd, -); $(wc -l <"$tmp/tables-after") lines) are as they were, byte for byte."
else
	echo "Docker's tables changed during apply:"
	diff "$tmp/tables-before" "$tmp/tables-after" | head -20
fi
./bulkhead diff -p "$tmp/policy.yaml" --inventory "$tmp/inventory.json" 2>/dev/null | tail -1

step "After: the allowed pairs connect, everything else is dropped"
probes

step "bulkhead run: the daemon follows Docker as containers come and go"
./bulkhead run -p "$tmp/policy.yaml" --control "$tmp/ctl" --log "$tmp/denied.jsonl" >"$tmp/daemon.log" 2>&1 &
daemon=$!
st() { ./bulkhead status --control "$tmp/ctl" "$@" 2>/dev/null; }
waitfor() { # what, a command that succeeds when it is so
	what=$1
	shift
	i=0
	until "$@"; do
		i=$((i + 1))
		[ $i -lt 100 ] || { cat "$tmp/daemon.log"; echo "demo: $what did not happen" >&2; exit 1; }
		sleep 0.1
	done
}
waitfor "the daemon's first sync" sh -c "grep -q 'in sync' '$tmp/daemon.log'"
echo "  \$ docker run -d --name demo-db2 --network appnet $img/postgres:16 ..."
docker run -d --name demo-db2 --network appnet "$img/postgres:16" httpd -f -p 5432 -h /www >/dev/null
placed() { st --json | grep -q '"name": "demo-db2"'; }
waitfor "demo-db2's placement" placed
probe demo-backend demo-db2 5432
probe demo-nginx demo-db2 5432
echo "  \$ docker rm -f demo-db2"
docker rm -f demo-db2 >/dev/null
gone() { ! placed; }
waitfor "demo-db2's removal" gone
echo "  daemon log:"
sed 's/^/    /' "$tmp/daemon.log"
echo "  \$ bulkhead status"
st | sed 's/^/    /'

step "bulkhead denials: every denied flow, both ends named"
probe demo-nginx demo-db 5432 >/dev/null
probe demo-nginx demo-redis 6379 >/dev/null
sleep 0.3
./bulkhead denials --log "$tmp/denied.jsonl"
echo "  \$ bulkhead denials --summary"
./bulkhead denials --log "$tmp/denied.jsonl" --summary | sed 's/^/    /'
echo "  \$ bulkhead denials --suggest    (the edges that would allow them)"
./bulkhead denials --log "$tmp/denied.jsonl" --suggest | sed 's/^/    /'

step "Done"
echo "The daemon placed demo-db2 when it started, removed it when it went, and"
echo "logged every denied flow with both ends named. On exit the demo stops the"
echo "daemon (its rules would stay in force) and runs bulkhead flush; KEEP=1"
echo "$0 leaves the containers and the table in place."
