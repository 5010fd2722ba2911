#!/bin/sh
# Recreates the `docker inspect` fixtures under tests/fixtures/ from real
# containers: the three-tier app (plain `docker run`) and the shop
# compose project. Needs dockerd (scripts/docker-up.sh) and the test
# image (scripts/test-image.sh). Removes what it started.
set -eu
cd "$(dirname "$0")/.."
out=tests/fixtures
img=bulkhead-test

cleanup() {
	docker rm -f nginx backend db redis-1 rabbitmq stray >/dev/null 2>&1 || true
	docker network rm appnet >/dev/null 2>&1 || true
	docker-compose -p shop -f policies/shop/docker-compose.yml down -v >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup

docker network create --ipv6 --subnet 172.28.5.0/24 \
	--subnet fd00:28:5::/64 appnet >/dev/null
run() {
	name=$1
	shift
	docker run -d --name "$name" --network appnet "$@" sleep 3600 >/dev/null
}
run nginx -p 127.0.0.1:8088:80 "$img/nginx:1.25"
run backend --label app=backend --label tier=app "$img/backend:1.0"
run db "$img/postgres:16"
run redis-1 "$img/redis:7"
run rabbitmq "$img/rabbitmq:3"
run stray "$img/busybox"
docker inspect nginx backend db redis-1 rabbitmq stray >"$out/three-tier.json"

docker-compose -p shop -f policies/shop/docker-compose.yml up -d >/dev/null 2>&1
# compose records the checkout's path in a label: keep it out of the tree
docker inspect $(docker-compose -p shop -f policies/shop/docker-compose.yml ps -q) |
	sed "s|$PWD|/srv/bulkhead|g" >"$out/shop.json"
echo "captured $out/three-tier.json $out/shop.json"
