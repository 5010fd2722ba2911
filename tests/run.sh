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
	# with the sanitizers (make asan sets SANITIZED), the two tests of
	# the kernel's atomicity are left to the plain run: 300 replacements
	# under a TCP stream and a dozen SIGKILLs mid-batch test what the
	# kernel does with our batches, which the sanitizers add nothing to,
	# and take a minute and a half there
	case "${SANITIZED:-}:$t" in
	1:*/kernel-atomic.sh | 1:*/kill-mid-batch.sh)
		echo "== $t: run without the sanitizers only"
		continue
		;;
	esac
	echo "== $t"
	if sh "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $t"; fi
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
