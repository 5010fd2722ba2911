#!/bin/sh
# The demo: Docker up, the three-tier app started from the offline test
# image, and bulkhead reading it live: check, the dry-run plan, and trace
# of the allowed and denied pairs, with the plan verified by nft in a
# throwaway network namespace. It removes what it started on exit
# (KEEP=1 keeps the containers running).
set -eu
cd "$(dirname "$0")/.."
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Installing what is missing and building"
scripts/install-deps.sh
make -s >/dev/null
scripts/docker-up.sh
scripts/test-image.sh >/dev/null

tmp=$(mktemp -d)
cleanup() {
	if [ "${KEEP:-0}" != 1 ]; then
		docker rm -f demo-nginx demo-backend demo-db demo-redis demo-rabbitmq >/dev/null 2>&1 || true
		docker network rm appnet >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
cleanup_net() { docker network rm appnet >/dev/null 2>&1 || true; }

step "Starting the three-tier app on network appnet"
docker rm -f demo-nginx demo-backend demo-db demo-redis demo-rabbitmq >/dev/null 2>&1 || true
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

step "Done"
echo "Programming the kernel (bulkhead apply / run) is not built yet; the plan"
echo "above is exactly what it will load. KEEP=1 $0 leaves the containers up."
