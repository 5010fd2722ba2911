#!/bin/sh
# End to end: teams on one host, with real users and real containers.
# Two compose projects (shop, billing) share a network; the daemon reads
# a policy directory: the host's file, shop.yaml and billing.yaml, each
# team's file writable by its group. Two groups with one user each own
# the files; a third user is in neither.
#  - shop's edge to billing/api is one-sided: it does not connect, and
#    the record says not-accepted; the billing user accepts it (writes
#    the file, `bulkhead reload` as that user) and it connects.
#  - each user's status, trace and flows show their scope alone: the
#    other team's containers are never named, its end shown as its
#    service; the user of neither group is refused; neither can read the
#    flow log itself, and flows go through the daemon (--follow too).
#  - shop's service that claims billing's containers (by compose
#    service) holds none; a file made world-writable and a file whose
#    service lies outside its scope are refused at reload (exit 2), and
#    the running policy stays in force.
set -eu
cd "$(dirname "$0")/../.."
. tests/lib/e2e.sh
US=bh-shopper UB=bh-biller UN=bh-nobody GS=bh-shop GB=bh-billing
shop() { $COMPOSE -p shop -f tests/e2e/teams/shop.yml "$@"; }
billing() { $COMPOSE -p billing -f tests/e2e/teams/billing.yml "$@"; }
accounts_gone() {
	for u in $US $UB $UN; do userdel "$u" 2>/dev/null || true; done
	for g in $GS $GB; do groupdel "$g" 2>/dev/null || true; done
}
follower=""
cleanup() {
	set +e
	[ -z "$follower" ] || kill "$follower" 2>/dev/null
	[ -z "$pid" ] || kill -9 "$pid" 2>/dev/null
	shop down -t 0 >/dev/null 2>&1
	billing down -t 0 >/dev/null 2>&1
	docker network rm bhteams >/dev/null 2>&1
	accounts_gone
	"$B" flush
	rm -rf "$tmp"
}
trap cleanup EXIT
accounts_gone
groupadd $GS
groupadd $GB
useradd -M -N -s /bin/sh -G $GS $US
useradd -M -N -s /bin/sh -G $GB $UB
useradd -M -N -s /bin/sh $UN
as() {
	u=$1
	shift
	setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups "$@"
}

# the directory root's, each team's file root's and its group's; the log
# root's alone; the socket's directory open to all
chmod 755 "$tmp"
mkdir -m 755 "$tmp/policy.d" "$tmp/run"
mkdir -m 700 "$tmp/log"
P=$tmp/policy.d C=$tmp/run/ctl
cat >"$P/00-host.yaml" <<EOF
version: 1
settings:
  networks: [bhteams]
  log_allowed: true
EOF
cat >"$P/shop.yaml" <<EOF
version: 1
scope: { compose_project: shop }
owners: [$GS]
services:
  web:
    match: { compose_service: web }
    egress:
      - to: backend
        ports: [8080/tcp]
  backend:
    match: { compose_service: backend }
    egress:
      - to: billing/api
        ports: [443/tcp]
  thief:
    match: { compose_service: api }
EOF
billing_file() {
	cat <<EOF
version: 1
scope: { compose_project: billing }
owners: [$GB]
services:
  api:
    match: { compose_service: api }
    egress:
      - to: db
        ports: [5432/tcp]
$1
  db:
    match: { compose_service: db }
EOF
}
billing_file "" >"$P/billing.yaml"
chgrp $GS "$P/shop.yaml"
chgrp $GB "$P/billing.yaml"
chmod 664 "$P/shop.yaml" "$P/billing.yaml"

docker network rm bhteams >/dev/null 2>&1 || true
docker network create bhteams >/dev/null
shop up -d >/dev/null 2>&1 || fail "compose up shop"
billing up -d >/dev/null 2>&1 || fail "compose up billing"
SW=$(compose_name shop web) SB=$(compose_name shop backend)
BA=$(compose_name billing api) BD=$(compose_name billing db)
"$B" check -p "$P" >"$tmp/check.out" 2>&1 || fail "check -p DIR: $(cat "$tmp/check.out")"
grep -q "shop.yaml:13:9: warning: billing/api does not accept this edge (no ingress from shop/backend in billing.yaml)" "$tmp/check.out" ||
	fail "check does not warn about the one-sided edge: $(cat "$tmp/check.out")"
"$B" run -p "$P" --control "$C" --log "$tmp/log/flows.jsonl" >>"$tmp/daemon.log" 2>&1 &
pid=$!
wait_for "the daemon's first sync" grep -q "docker: in sync" "$tmp/daemon.log"
[ "$(stat -c %a "$C")" = 666 ] || fail "with scope owners the socket is $(stat -c %a "$C"), not 0666"

can() { docker exec "$1" nc -w 1 "$(addr "$2" bhteams)" "$3" </dev/null >/dev/null 2>&1; }
can "$SW" "$SB" 8080 || fail "shop/web -> shop/backend (one scope's edge) did not connect"
can "$BA" "$BD" 5432 || fail "billing/api -> billing/db did not connect"
if can "$SB" "$BA" 443; then fail "shop/backend -> billing/api connected, one-sided"; fi
wait_for "a not-accepted record" grep -q '"reason":"not-accepted"' "$tmp/log/flows.jsonl"
jq -e "select(.reason == \"not-accepted\") | select(.src.container == \"$SB\" and .dst.service == \"billing/api\")" \
	"$tmp/log/flows.jsonl" >/dev/null || fail "the not-accepted record does not name both ends"

# views: each team its own
as $US "$B" status --control "$C" --json >"$tmp/st-shop.json" || fail "the shop user's status"
as $UB "$B" status --control "$C" --json >"$tmp/st-bill.json" || fail "the billing user's status"
"$B" status --control "$C" --json >"$tmp/st-root.json"
jq -e '.view == "scope shop"' "$tmp/st-shop.json" >/dev/null || fail "the shop user's status is not scope shop's"
for n in "$BA" "$BD" billing/; do
	grep -q "$n" "$tmp/st-shop.json" && fail "the shop user's status names $n"
done
for n in "$SW" "$SB" shop/; do
	grep -q "$n" "$tmp/st-bill.json" && fail "the billing user's status names $n"
done
grep -q "$SB" "$tmp/st-shop.json" || fail "the shop user's status does not show $SB"
grep -q "$BA" "$tmp/st-bill.json" || fail "the billing user's status does not show $BA"
grep -q "$BA" "$tmp/st-root.json" && grep -q "$SB" "$tmp/st-root.json" || fail "root's status does not show both teams"
# shop/thief claims billing's api by compose service: its scope says no
jq -e ".services[\"shop/thief\"] | length == 0" "$tmp/st-root.json" >/dev/null ||
	fail "shop/thief holds containers: $(jq -c '.services["shop/thief"]' "$tmp/st-root.json")"
jq -e ".services[\"billing/api\"][] | select(.name == \"$BA\")" "$tmp/st-root.json" >/dev/null ||
	fail "$BA is not billing/api's"
# the shop user's trace: the other end by its service alone
as $US "$B" trace --control "$C" "$SB" billing/api 443/tcp >"$tmp/tr.out" 2>&1 || true
grep -q "reason: not-accepted" "$tmp/tr.out" || fail "the shop user's trace: $(cat "$tmp/tr.out")"
grep -q "billing/api (another scope's service)" "$tmp/tr.out" || fail "trace shows billing's end: $(cat "$tmp/tr.out")"
grep -q "$BA" "$tmp/tr.out" && fail "the shop user's trace names $BA"
if as $US "$B" trace --control "$C" "$SB" "$BA" 443/tcp >"$tmp/tr2.out" 2>&1; then
	fail "the shop user traced to billing's container by its name"
fi
grep -q "'$BA' is not a container, service" "$tmp/tr2.out" || fail "another team's container by name: $(cat "$tmp/tr2.out")"
as $US "$B" trace --control "$C" billing/api billing/db 5432/tcp >"$tmp/tr3.out" 2>&1 &&
	fail "the shop user traced between billing's services: $(cat "$tmp/tr3.out")"
grep -q "neither billing/api nor billing/db is a container of your scope" "$tmp/tr3.out" ||
	fail "trace outside the scope: $(cat "$tmp/tr3.out")"
# the user of neither group, refused
if as $UN "$B" status --control "$C" >"$tmp/st-none.out" 2>&1; then fail "a user of neither group was answered"; fi
grep -q "not allowed" "$tmp/st-none.out" || fail "the refusal does not say why: $(cat "$tmp/st-none.out")"

# billing accepts: the billing user writes its file and reloads
if as $US sh -c "echo >>'$P/billing.yaml'" 2>/dev/null; then fail "the shop user could write billing.yaml"; fi
billing_file "    ingress:
      - from: shop/backend
        ports: [443/tcp]" | as $UB sh -c "cat >'$P/billing.yaml'" || fail "the billing user cannot write its file"
as $UB "$B" reload --control "$C" >"$tmp/reload.out" 2>&1 || fail "the billing user's reload: $(cat "$tmp/reload.out")"
wait_for "shop/backend -> billing/api, accepted" can "$SB" "$BA" 443
wait_for "the allowed record" grep -q "\"verdict\":\"allowed\".*\"container\":\"$SB\".*\"service\":\"billing/api\"" "$tmp/log/flows.jsonl"

# flows through the daemon: the log is root's alone
if as $US cat "$tmp/log/flows.jsonl" >/dev/null 2>&1; then fail "the shop user can read the log"; fi
as $US "$B" flows --control "$C" --json --log "$tmp/log/flows.jsonl" >"$tmp/fl-shop.jsonl" || fail "the shop user's flows"
[ -s "$tmp/fl-shop.jsonl" ] || fail "the shop user's flows are empty"
jq -e 'select((.src.service // "" | startswith("shop/") | not) and (.dst.service // "" | startswith("shop/") | not))' \
	"$tmp/fl-shop.jsonl" >/dev/null && fail "the shop user sees a flow with no end in shop"
for n in "$BA" "$BD"; do
	grep -q "$n" "$tmp/fl-shop.jsonl" && fail "the shop user's flows name $n"
done
jq -e 'select(.verdict == "allowed" and .dst.service == "billing/api" and (.dst | has("ip") | not))' \
	"$tmp/fl-shop.jsonl" >/dev/null || fail "no allowed flow to billing/api, cut to its service: $(cat "$tmp/fl-shop.jsonl")"
# --follow through the daemon: what comes later arrives too
as $US "$B" flows --control "$C" --follow --json --log "$tmp/log/flows.jsonl" >"$tmp/follow.jsonl" 2>&1 &
follower=$!
wait_for "the follower's first records" test -s "$tmp/follow.jsonl"
before=$(grep -c . "$tmp/follow.jsonl")
can "$SW" "$SB" 8080 || fail "shop/web -> shop/backend, again"
wait_for "a record that came after --follow began" sh -c "[ \$(grep -c . '$tmp/follow.jsonl') -gt $before ]"
kill "$follower"
follower=""
grep -q "$BA" "$tmp/follow.jsonl" && fail "the shop user's followed flows name $BA"
[ "$(grep -c "asks flows" "$tmp/daemon.log")" -le 3 ] || fail "each poll of --follow is logged"
as $UB "$B" denials --control "$C" --log "$tmp/log/flows.jsonl" --summary >"$tmp/dn-bill.out" || fail "the billing user's denials"
grep -q "shop/backend" "$tmp/dn-bill.out" || fail "billing's denials do not show shop/backend's attempt: $(cat "$tmp/dn-bill.out")"
grep -q "$SB" "$tmp/dn-bill.out" && fail "billing's denials name $SB"

# bad input keeps the running policy
chmod 666 "$P/billing.yaml"
if as $UB "$B" reload --control "$C" >"$tmp/bad.out" 2>&1; then fail "a world-writable file was taken"; fi
grep -q "billing.yaml: error: refused: anyone may write it" "$tmp/bad.out" || fail "the refusal: $(cat "$tmp/bad.out")"
chmod 664 "$P/billing.yaml"
sed -i 's/match: { compose_service: api }/match: { compose_project: billing }/' "$P/shop.yaml"
set +e
as $US "$B" reload --control "$C" >"$tmp/bad2.out" 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "reload of an out-of-scope match exited $rc: $(cat "$tmp/bad2.out")"
grep -q "shop.yaml:15:3: error: service 'thief' can never hold a container" "$tmp/bad2.out" || fail "the error: $(cat "$tmp/bad2.out")"
can "$SB" "$BA" 443 || fail "after refused reloads the accepted edge no longer holds"
stop_clean
echo "ok: teams: a one-sided edge denied (not-accepted), accepted by billing's user; views per scope; a stranger refused; bad files refused"
