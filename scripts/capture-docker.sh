#!/bin/sh
# Records what this dockerd answers bulkhead, raw, at the API version
# bulkhead negotiates (its own newest, 1.44, or the daemon's when older),
# into tests/fixtures/docker/VERSION/ (VERSION: the Engine's major.minor):
#   version.json  /version
#   inspect.json  /containers/{id}/json of a running container
#   list.json     /containers/json filtered to it (what the daemon reads
#                 at a network connect)
#   network.json  /networks/{id} of its network
#   connect-list.json  the list entry fetched the moment its network
#                 connect event came, as the daemon does (no address in
#                 it yet: the network object is what gives it then)
#   events.jsonl  /events from its run to its removal: a start, an exec,
#                 a stop and a removal; then a container whose start fails
#                 (its command does not exist), removed
# tests/unit/test_docker.c parses each version's set. `scripts/compat.sh
# --capture` runs this inside each Debian's root.
set -eu
cd "$(dirname "$0")/.."
api() { python3 tests/lib/dockerapi.py "$@"; }
IMG=bulkhead-test/nginx:1.25
scripts/docker-up.sh
scripts/test-image.sh >/dev/null
ver=$(api /version | jq -r .ApiVersion)
case "$(printf '%s\n1.44\n' "$ver" | sort -V | head -1)" in
1.44) v=v1.44 ;;
*) v=v$ver ;;
esac
engine=$(api /version | jq -r .Version | sed 's/^\([0-9]*\.[0-9]*\).*/\1/')
out=tests/fixtures/docker/$engine
mkdir -p "$out"
cleanup() {
	docker rm -f bh-fix-web bh-fix-fail >/dev/null 2>&1 || true
	docker network rm bhfix >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
docker network create --subnet 10.77.0.0/24 -o com.docker.network.bridge.name=bhfix0 bhfix >/dev/null
t0=$(date +%s)
python3 tests/lib/dockerapi.py --at-connect \
	"/$v/containers/json?all=1&filters=%7B%22id%22%3A%5B%22{id}%22%5D%7D" \
	>"$out/connect-list.json" 2>"$out/.ready" &
atc=$!
until [ -s "$out/.ready" ]; do sleep 0.1; done
rm -f "$out/.ready"
id=$(docker run -d --name bh-fix-web --network bhfix --label app=web \
	--label com.docker.compose.project=fix --label com.docker.compose.service=web \
	"$IMG" sleep 1000)
docker exec bh-fix-web true
wait "$atc"
api "/$v/version" >"$out/version.json"
api "/$v/containers/$id/json" >"$out/inspect.json"
api "/$v/containers/json?all=1&filters=%7B%22id%22%3A%5B%22$id%22%5D%7D" >"$out/list.json"
api "/$v/networks/$(docker network inspect -f '{{.Id}}' bhfix)" >"$out/network.json"
docker stop -t 1 bh-fix-web >/dev/null
docker rm bh-fix-web >/dev/null
docker run -d --rm --name bh-fix-fail --network bhfix "$IMG" /no/such/command >/dev/null 2>&1 || true
# the failed one is removed (--rm) by the time its events are out
sleep 1
t1=$(($(date +%s) + 1))
api "/$v/events?since=$t0&until=$t1" >"$out/events.jsonl"
# one JSON object a line, as the stream sends them
[ "$(jq -c . "$out/events.jsonl" | wc -l)" -eq "$(wc -l <"$out/events.jsonl")" ]
echo "captured Docker $engine (API $ver, recorded at $v) into $out: $(wc -l <"$out/events.jsonl") events"
