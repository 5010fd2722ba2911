#!/bin/sh
# A batch the kernel refuses (an element overlapping an interval) leaves
# the previous ruleset exactly in place, and the error names the object.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root for network namespaces"
	exit 0
fi
unshare -n sh -eu -c "
	'$BUILD/kernel-helper' policies/three-tier.yaml tests/fixtures/three-tier.json good
	nft list table inet bulkhead >/tmp/bh-fail-before.\$\$
	if '$BUILD/kernel-helper' policies/three-tier.yaml tests/fixtures/three-tier.json bad >/tmp/bh-fail-msg.\$\$; then
		echo 'FAIL: the kernel took an overlapping element'; exit 1
	fi
	cat /tmp/bh-fail-msg.\$\$
	grep -q 'set backend_out4' /tmp/bh-fail-msg.\$\$ || { echo 'FAIL: error does not name the set'; exit 1; }
	nft list table inet bulkhead >/tmp/bh-fail-after.\$\$
	cmp -s /tmp/bh-fail-before.\$\$ /tmp/bh-fail-after.\$\$ || { echo 'FAIL: the ruleset changed'; exit 1; }
	rm -f /tmp/bh-fail-*.\$\$
"
echo "ok: a refused batch changes nothing and names the object"
