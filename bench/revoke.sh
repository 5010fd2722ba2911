#!/bin/sh
# Revocation benchmark (issue "Identity, not address"): 100,000 conntrack
# entries in a throwaway network namespace, 100 of which the policy no
# longer allows; one sweep (read, judge by trace's decision, delete) must
# end them in under 100 ms. Prints the figure.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
if [ "$(id -u)" -ne 0 ]; then
	echo "revoke bench: needs root for a network namespace" >&2
	exit 1
fi
make -s "$BUILD/bench/revoke" BUILD="$BUILD"
unshare -n "$BUILD/bench/revoke" policies/three-tier.yaml tests/fixtures/three-tier.json "${N:-100000}" "${K:-100}"
