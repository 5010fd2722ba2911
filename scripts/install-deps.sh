#!/bin/sh
# Installs what bulkhead needs to build, test and demo, from Debian's
# packages. Idempotent: it installs only what is missing.
set -eu

PKGS="build-essential pkg-config clang libnftnl-dev libmnl-dev libyaml-dev
libjansson-dev libcurl4-openssl-dev libcap-ng-dev libc-ares-dev libnetfilter-conntrack-dev check nftables iproute2 jq time docker.io docker-compose
busybox-static socat iperf3 graphviz python3 python3-scapy conntrack"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages:$missing (run as root to install)" >&2
	exit 1
fi
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
