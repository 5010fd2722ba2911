#!/bin/sh
# A batch the kernel refuses (an element overlapping an interval) leaves
# the previous ruleset exactly in place, and the error names the object;
# where the kernel says more (an extended ack: its own words, the
# attribute it points at), the error says it too.
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
	grep -q 'at NFTA_SET_ELEM_LIST_ELEMENTS, element 2 of the message' /tmp/bh-fail-msg.\$\$ ||
		{ echo 'FAIL: error does not say which element the kernel points at'; exit 1; }
	if '$BUILD/kernel-helper' policies/three-tier.yaml tests/fixtures/three-tier.json long >/tmp/bh-fail-msg.\$\$; then
		echo 'FAIL: the kernel took a set name past its limit'; exit 1
	fi
	sed 's/x\{20,\}/x.../' /tmp/bh-fail-msg.\$\$
	grep -q 'Attribute failed policy validation, at NFTA_SET_NAME)' /tmp/bh-fail-msg.\$\$ ||
		{ echo \"FAIL: the own message of the kernel is not in the error\"; exit 1; }
	nft list table inet bulkhead >/tmp/bh-fail-after.\$\$
	cmp -s /tmp/bh-fail-before.\$\$ /tmp/bh-fail-after.\$\$ || { echo 'FAIL: the ruleset changed'; exit 1; }
	rm -f /tmp/bh-fail-*.\$\$
"
echo "ok: a refused batch changes nothing, names the object and says the kernel's words"
