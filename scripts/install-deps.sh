#!/bin/sh
# Installs what bulkhead needs to build, test and demo, from Debian's
# packages. Idempotent: it installs only what is missing.
#
# usage: scripts/install-deps.sh          build, run and test
#        scripts/install-deps.sh --run    run the demo and the end-to-end
#                                         tests on a tree built already
#        scripts/install-deps.sh --list-run   print that list, install nothing
set -eu

# what running a built tree needs: the tools the demo and the end-to-end
# tests call (gcc and make for their small helpers), Docker and compose;
# the libraries the binary links come with the -dev packages below, and
# scripts/compat.sh reads them off the binary
RUN_PKGS="nftables iproute2 jq time procps make gcc libc6-dev docker.io
docker-compose busybox-static socat iperf3 graphviz python3 python3-scapy
conntrack prometheus curl logrotate"
BUILD_PKGS="build-essential pkg-config clang libnftnl-dev libmnl-dev
libyaml-dev libjansson-dev libcurl4-openssl-dev libcap-ng-dev libc-ares-dev
libnetfilter-conntrack-dev libmicrohttpd-dev check debootstrap"

case "${1:-}" in
--list-run)
	# shellcheck disable=SC2086
	echo $RUN_PKGS
	exit 0
	;;
--run) PKGS=$RUN_PKGS ;;
"") PKGS="$BUILD_PKGS $RUN_PKGS" ;;
*)
	echo "usage: scripts/install-deps.sh [--run | --list-run]" >&2
	exit 2
	;;
esac

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
