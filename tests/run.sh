#!/bin/sh
# Runs every test: the unit suites (no root needed), then the integration
# tests that load our plans into nftables inside throwaway network
# namespaces. Prints a closing "N passed, N failed" line.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BULKHEAD="$PWD/$BUILD/bulkhead"
pass=0
fail=0

echo "== unit tests"
# generous per-test time: under the sanitizers on a busy machine some
# property tests take seconds (Check's default is 4)
if CK_FORK=yes CK_DEFAULT_TIMEOUT=120 "$BUILD/unit-tests"; then pass=$((pass + 1)); else fail=$((fail + 1)); fi

for t in tests/integration/*.sh; do
	echo "== $t"
	if sh "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $t"; fi
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
