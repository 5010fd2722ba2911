#!/bin/sh
# The control socket's gate: with --control-group GROUP the socket is
# mode 0660 and group GROUP; a peer is let in when SO_PEERCRED says root,
# the daemon's own user, or a member of GROUP (its gid, or GROUP in the
# user database); anyone else is refused even when the file would let
# them connect. The daemon runs in a namespace of its own against the
# fake Docker API (well behaved here).
set -eu
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root for network namespaces and other users"
	exit 0
fi
B=$PWD/${BUILD:-build}/bulkhead
. tests/lib/daemon.sh
tmp=$(mktemp -d)
chmod 0711 "$tmp" # others may reach the socket, as in /run
ns=bhctl$$
pid=""
fake=""
trap ns_cleanup EXIT
fake_docker_start
ip netns add "$ns"
ip netns exec "$ns" "$B" run -p policies/three-tier.yaml --docker "$tmp/docker.sock" --control "$tmp/ctl" \
	--control-group adm --log "$tmp/flows.jsonl" >"$tmp/daemon.log" 2>&1 &
pid=$!
i=0
until grep -q "in sync" "$tmp/daemon.log"; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "the daemon did not sync"
	sleep 0.1
done
[ "$(stat -c '%a %G' "$tmp/ctl")" = "660 adm" ] || fail "control socket is $(stat -c '%a %G' "$tmp/ctl"), want 660 adm"
as() { setpriv --reuid=nobody "$@" "$B" status --control "$tmp/ctl" >"$tmp/out" 2>&1; }

"$B" status --control "$tmp/ctl" >/dev/null || fail "root was refused"
as --regid=adm --clear-groups || { cat "$tmp/out"; fail "a peer whose group is adm was refused"; }
grep -q "^daemon: policy" "$tmp/out" || fail "a member got no status"
# the file lets this one connect (adm among its groups), but its
# credentials say neither root nor adm: SO_PEERCRED refuses it
if as --regid=daemon --groups=adm; then fail "a peer that is not a member was let in"; fi
grep -q "^bulkhead: not allowed: uid 65534 gid 1 is neither root nor in the control group$" "$tmp/out" || { cat "$tmp/out"; fail "the refusal does not say so"; }
# and a peer the file keeps out
if as --regid=nogroup --clear-groups; then fail "a peer outside the group connected"; fi
stop_clean
echo "ok: control socket: 0660 group adm; root and members answered, a non-member refused by SO_PEERCRED, others by the file"
