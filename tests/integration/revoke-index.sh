#!/bin/sh
# The daemon's index of live flows, kept by conntrack's events through
# opening, closing and growth, gives each container's leaving exactly
# the flows with an end at its address: ended, each once, and no other
# entry touched (tests/integration/revoke_helper.c has the model). And
# the host's addresses, which a flow's judge asks about, kept by the
# kernel's events as getifaddrs lists them, through a burst of veths.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root for network namespaces"
	exit 0
fi
unshare -n "$BUILD/revoke-helper" policies/three-tier.yaml tests/fixtures/three-tier.json
unshare -n "$BUILD/revoke-helper" addrs
