#!/bin/sh
# End to end: the daemon as a dedicated user (--user), a member of the
# docker group, holding CAP_NET_ADMIN and nothing else. It still follows
# Docker (a new container is placed), programs the kernel (a table
# deleted by hand is put back), reloads its policy, and the kernel ends
# exact. The user is made for the test and removed after; the daemon runs
# in a network namespace of its own.
set -eu
cd "$(dirname "$0")/../.."
. tests/lib/e2e.sh
user=bh-e2e-$$
ns=bhuser$$
cleanup() {
	set +e
	[ -z "$pid" ] || kill -9 "$pid" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	docker rm -f bh-db-user >/dev/null 2>&1
	docker network rm bhuser >/dev/null 2>&1
	userdel "$user" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
useradd --system --no-create-home --shell /usr/sbin/nologin --groups docker "$user"
chmod 0755 "$tmp" # the policy is read, and the log written, as the user
mkdir "$tmp/log" && chown "$user" "$tmp/log"
bh_policy "bhuser" "$tmp/policy.yaml"
chmod 0644 "$tmp/policy.yaml"
docker network create bhuser >/dev/null
ip netns add "$ns"
ip netns exec "$ns" "$B" run -p "$tmp/policy.yaml" --control "$tmp/ctl" --log "$tmp/log/flows.jsonl" \
	--user "$user" >"$tmp/daemon.log" 2>&1 &
pid=$!
wait_for "the daemon's first sync" grep -q "in sync" "$tmp/daemon.log"
st() { "$B" status --control "$tmp/ctl" --json; }
uid=$(id -u "$user")
grep -q "^Uid:[[:space:]]*$uid[[:space:]]$uid[[:space:]]$uid[[:space:]]$uid$" /proc/$pid/status || fail "not running as $user: $(grep Uid /proc/$pid/status)"
grep -q "^Groups:.*\b$(getent group docker | cut -d: -f3)\b" /proc/$pid/status || fail "not in the docker group"
grep -q "^CapEff:[[:space:]]*0000000000001000$" /proc/$pid/status || fail "capabilities: $(grep CapEff /proc/$pid/status)"
grep -q "^NoNewPrivs:[[:space:]]*1$" /proc/$pid/status || fail "no_new_privs not set"

# Docker's socket, as the user: a new container is placed
docker run -d --name bh-db-user --network bhuser bulkhead-test/postgres:16 httpd -f -p 5432 -h /www >/dev/null
wait_for "bh-db-user's placement" grep -q "placed bh-db-user (db)" "$tmp/daemon.log"
# the kernel, as the user: a deleted table is put back
ip netns exec "$ns" nft delete table inet bulkhead
# (the log names the weightiest change among the events read when it
# acted, which may be the rules, deleted ahead of their table)
wait_for "the table's restore" grep -q "changed by another process (.*): restored" "$tmp/daemon.log"
ip netns exec "$ns" nft list table inet bulkhead >/dev/null 2>&1 || fail "the table is not back"
# the policy, as the user
"$B" reload --control "$tmp/ctl" >/dev/null || fail "reload as $user"
ip netns exec "$ns" "$B" diff -p "$tmp/policy.yaml" --exit-code >"$tmp/diff" 2>&1 || { cat "$tmp/diff"; fail "not exact"; }
[ "$(st | jq .errors)" -eq 0 ] || fail "the daemon counted errors"
stop_clean
echo "ok: as user $user (docker group, CAP_NET_ADMIN only): places containers, restores its table, reloads; exact"
