# Shared by the end-to-end tests (sourced from the repository's root):
# skips when not root, brings dockerd and the offline image up, and gives
# $B (the binary under test), $tmp, `compose` for the three-tier app of
# tests/e2e/three-tier, and `bh_policy NETWORKS OUT`: the three-tier
# example policy matching that app's bh- names, managing NETWORKS;
# `wait_for WHAT COMMAND...` (up to 10 s for COMMAND to succeed, else
# fail), `addr NAME [NETWORK]` (a container's IPv4 address there,
# bhnet unless told), `cpid NAME` (its process, for nsenter), and what
# tests/lib/daemon.sh gives.
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root for dockerd and nftables"
	exit 0
fi
B=$PWD/${BUILD:-build}/bulkhead
scripts/docker-up.sh
scripts/test-image.sh >/dev/null
tmp=$(mktemp -d)
pid=""
. tests/lib/compose.sh
COMPOSE=$(compose_cmd)
compose() { $COMPOSE -p bh -f tests/e2e/three-tier/docker-compose.yml "$@"; }
bh_policy() {
	sed -e 's/{ name: nginx }/{ name: bh-nginx }/' -e 's/"db\*"/"bh-db*"/' \
		-e 's/{ name: rabbitmq }/{ name: bh-rabbitmq }/' \
		-e "s/networks: \[appnet\]/networks: [$1]/" \
		policies/three-tier.yaml >"$2"
}
. tests/lib/daemon.sh
addr() { docker inspect -f "{{(index .NetworkSettings.Networks \"${2:-bhnet}\").IPAddress}}" "$1"; }
cpid() { docker inspect -f '{{.State.Pid}}' "$1"; }
wait_for() {
	what=$1
	shift
	n=0
	until "$@"; do
		n=$((n + 1))
		[ $n -lt 100 ] || fail "$what did not happen"
		sleep 0.1
	done
}
