#!/bin/sh
# End to end with a real dockerd: runs the demo (three-tier app from the
# offline image, bulkhead apply on the host) and checks its verdicts:
# allowed pairs connect, denied pairs are blocked after apply, every pair
# connects before it, Docker's own tables are byte for byte the same after
# apply, `diff` finds the kernel holding the plan, and our table is gone
# afterwards.
set -eu
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root for dockerd and nftables"
	exit 0
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
scripts/demo.sh >"$out" 2>&1 || { cat "$out"; echo "FAIL: the demo exited non-zero"; exit 1; }
fail() { cat "$out"; echo "FAIL: $*"; exit 1; }
after=$(sed -n '/== After:/,/== Done/p' "$out")
before=$(sed -n '/== Before bulkhead/,/== bulkhead apply/p' "$out")
[ "$(echo "$before" | grep -c ' connects$')" -eq 7 ] || fail "before apply, not every pair connected"
for pair in "demo-nginx -> demo-backend 8080" "demo-backend -> demo-db 5432" "demo-backend -> demo-redis 6379"; do
	echo "$after" | tr -s ' ' | grep -q "$pair connects" || fail "$pair should connect"
done
for pair in "demo-nginx -> demo-db 5432" "demo-nginx -> demo-redis 6379" "demo-nginx -> demo-rabbitmq 5672" "demo-db -> demo-backend 8080"; do
	echo "$after" | tr -s ' ' | grep -q "$pair blocked" || fail "$pair should be blocked"
done
grep -q "^denied demo-nginx -> demo-db 5432/tcp" "$out" || fail "trace of a denied pair"
grep -q "^Docker's own tables (.*ip filter.*; [1-9][0-9]* lines) are as they were, byte for byte" "$out" ||
	fail "apply changed another table (or Docker has none)"
grep -q "^diff: the kernel holds the plan" "$out" || fail "after apply, diff finds differences"
daemon=$(sed -n '/== bulkhead run/,/== Done/p' "$out" | tr -s ' ')
echo "$daemon" | grep -q "demo-backend -> demo-db2 5432 connects" || fail "the daemon did not let backend reach a late db"
echo "$daemon" | grep -q "demo-nginx -> demo-db2 5432 blocked" || fail "the daemon let nginx reach a late db"
echo "$daemon" | grep -q "placed demo-db2 (db) on appnet" || fail "the daemon's log lacks the placement"
echo "$daemon" | grep -q "removed demo-db2: -" || fail "the daemon's log lacks the removal"
den=$(sed -n '/== bulkhead denials/,/== Done/p' "$out" | tr -s ' ')
echo "$den" | grep -q "denied demo-nginx (nginx) [0-9.]* demo-db (db) [0-9.]* 5432/tcp no-edge" || fail "denials lacks nginx -> db"
echo "$den" | grep -q "^ - to: db$" || fail "denials --suggest lacks nginx's edge to db"
if nft list table inet bulkhead >/dev/null 2>&1; then fail "the demo left our table"; fi
echo "ok: demo: 3 allowed pairs connect, 4 denied pairs are blocked; the daemon places and removes a late container; table removed after"
