#!/bin/sh
# End to end: denied flows from real containers become records that name
# both ends, within a second, with the reason; a flood is capped in the
# kernel while the daemon stays responsive; `denials` reads them back, counts them and suggests the edges that,
# reloaded, let the same flows through; in audit mode the flow passes and
# the record says would-deny.
set -eu
cd "$(dirname "$0")/../.."
. tests/lib/e2e.sh
cleanup() {
	set +e
	[ -z "$pid" ] || kill "$pid" 2>/dev/null
	compose down -t 0 >/dev/null 2>&1
	docker rm -f bh-db2 >/dev/null 2>&1
	"$B" flush
	rm -rf "$tmp"
}
trap cleanup EXIT

bh_policy bhnet "$tmp/policy.yaml"
compose down -t 0 >/dev/null 2>&1 || true
compose up -d >/dev/null 2>&1 || fail "docker-compose up"

start_daemon() {
	"$B" run -p "$1" --control "$tmp/ctl" --log "$tmp/flows.jsonl" ${2:-} >>"$tmp/daemon.log" 2>&1 &
	pid=$!
	i=0
	until "$B" diff -p "$1" ${2:-} --exit-code >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 50 ] || fail "the daemon did not converge"
		sleep 0.2
	done
}
stop_daemon() { kill "$pid"; wait "$pid" || true; pid=""; }
can() { docker exec "$1" nc -w 1 "$2" "$3" </dev/null >/dev/null 2>&1; }
ms() { echo $(($(date +%s%N) / 1000000)); }
# records to DST:PORT logged at or after T0 (ms since the epoch), so
# that an older record to the same place is never taken for a new one
since() {
	jq -c --arg ip "$2" --argjson p "$3" --argjson t0 "$1" 'select(.dst.ip == $ip and .dst.port == $p and
		((.ts[0:19] + "Z") | fromdateiso8601) * 1000 + (.ts[20:23] | tonumber) >= $t0)' "$tmp/flows.jsonl" 2>/dev/null
}
# waits up to a second for a record to DST:PORT since T0; prints how long
record_to() {
	t0=$1
	while [ -z "$(since "$t0" "$2" "$3")" ]; do
		[ $(($(ms) - t0)) -lt 1000 ] || fail "no record to $2:$3 within a second"
		sleep 0.02
	done
	echo $(($(ms) - t0))
}
rec() { since "$1" "$2" "$3" | tail -1; } # T0 DST PORT: the latest such record

start_daemon "$tmp/policy.yaml"
ngx=$(addr bh-nginx)
db=$(addr bh-db)
be=$(addr bh-backend)

# 1. nginx -> db:5432: a record naming both ends within a second
t0=$(ms)
can bh-nginx "$db" 5432 &
probe=$!
took=$(record_to "$t0" "$db" 5432)
wait "$probe" || true
r=$(rec "$t0" "$db" 5432)
echo "$r" | jq -e --arg s "$ngx" '.verdict == "denied" and .proto == "tcp" and .reason == "no-edge"
	and .src.ip == $s and .src.container == "bh-nginx" and .src.service == "nginx" and .src.network == "bhnet"
	and (.src.port | type) == "number"
	and .dst.container == "bh-db" and .dst.service == "db" and .dst.network == "bhnet"
	and (.ts | test("^[0-9-]+T[0-9:.]+Z$"))' >/dev/null || fail "record: $r"
echo "ok: nginx -> db:5432 logged in $took ms with both ends named: $r"

# 2. an edge to backend exists, for other ports
t0=$(ms)
can bh-nginx "$be" 9999 &
probe=$!
record_to "$t0" "$be" 9999 >/dev/null
wait "$probe" || true
rec "$t0" "$be" 9999 | jq -e '.reason == "port-not-allowed" and .dst.service == "backend"' >/dev/null ||
	fail "nginx -> backend:9999 is not port-not-allowed"
echo "ok: nginx -> backend:9999 is port-not-allowed"

# 3. denials reads them back, counts, suggests
"$B" denials --log "$tmp/flows.jsonl" >"$tmp/table"
grep -q "bh-nginx (nginx) $ngx .* bh-db (db) $db .* 5432/tcp .* no-edge" "$tmp/table" || { cat "$tmp/table"; fail "denials table"; }
[ "$("$B" denials --log "$tmp/flows.jsonl" --json --service backend | wc -l)" -ge 1 ] || fail "denials --service"
[ "$("$B" denials --log "$tmp/flows.jsonl" --json --container bh-redis | wc -l)" -eq 0 ] || fail "denials --container"
"$B" denials --log "$tmp/flows.jsonl" --summary | grep -q "^ *[1-9][0-9]*  nginx  *db  *5432/tcp  *no-edge" ||
	fail "denials --summary"
"$B" denials --log "$tmp/flows.jsonl" --service db --container bh-db --suggest -p "$tmp/policy.yaml" >"$tmp/suggested.yaml"
"$B" check -p "$tmp/suggested.yaml" >/dev/null || { cat "$tmp/suggested.yaml"; fail "the suggested policy does not check"; }
cp "$tmp/suggested.yaml" "$tmp/policy.yaml"
"$B" reload --control "$tmp/ctl" >/dev/null || fail "reload of the suggested policy"
can bh-nginx "$db" 5432 || fail "after the suggested edges, nginx still cannot reach db:5432"
can bh-nginx "$be" 9999 && fail "the suggestion allowed more than was asked"
echo "ok: denials: table, filters, summary; --suggest's policy, reloaded, lets exactly that flow through"

# 4. a flood: hundreds of thousands of denied datagrams from nginx, capped
# by the kernel's per-source limit; the daemon answers all along and its
# memory stays flat (under 2 MB of growth for 400,000 packets, room for
# the sanitizers' quarantine; LeakSanitizer checks the rest at exit)
cc -O2 -o "$tmp/udpflood" tests/lib/udpflood.c
st() { "$B" status --control "$tmp/ctl" --json; }
rss0=$(st | jq .rss_kb)
before=$(grep -c '"dst":{"ip":"'"$db"'","port":9' "$tmp/flows.jsonl" || true)
t0=$(ms)
nsenter -t "$(docker inspect -f '{{.State.Pid}}' bh-nginx)" -n "$tmp/udpflood" "$db" 9 400000 >"$tmp/sent" &
flood=$!
sleep 0.5
st >/dev/null || fail "status did not answer during the flood"
wait "$flood"
secs=$(( ($(ms) - t0 + 999) / 1000 ))
sleep 0.3
sent=$(cat "$tmp/sent")
got=$(( $(grep -c '"dst":{"ip":"'"$db"'","port":9' "$tmp/flows.jsonl") - before ))
rss1=$(st | jq .rss_kb)
# log_rate 20/second a source (with room for the burst and the edges of
# the time window)
[ "$sent" -ge 300000 ] || fail "the flood sent only $sent datagrams"
[ "$got" -ge 1 ] && [ "$got" -le $((20 * secs + 20)) ] || fail "$got records in $secs s: not capped at 20 a second"
[ $((rss1 - rss0)) -le 2048 ] || fail "memory grew from $rss0 to $rss1 kB in the flood"
st | jq -e '.errors == 0' >/dev/null || fail "errors counted in the flood"
# what the limit kept out of the log is counted: the deny chain's count
# of packets less the records
supp=$(st | jq .denied_flows.suppressed)
[ "$supp" -ge $((sent / 2)) ] && [ "$supp" -le "$sent" ] || fail "suppressed $supp of $sent sent, $got logged"
"$B" status --control "$tmp/ctl" | grep -q "^denied flows: [0-9]* records to .* ([0-9]* more held back by the rate limit" ||
	fail "status does not say what the rate limit held back"
echo "ok: a flood of $sent denied datagrams in ${secs} s gave $got records (capped in the kernel), $supp counted as held back; status answered; RSS $rss0 -> $rss1 kB"

# a reload that moves the log to another NFLOG group takes it along
sed -i -e '/^  log_group:/d' -e 's/^  log_rate: 20\/second$/  log_rate: 20\/second\n  log_group: 101/' "$tmp/policy.yaml"
grep -q "log_group: 101" "$tmp/policy.yaml" || fail "test setup: no log_group line"
"$B" reload --control "$tmp/ctl" >/dev/null || fail "reload to log group 101"
nft list chain inet bulkhead deny | grep -q "group 101" || fail "the deny chain does not log to group 101"
redis=$(addr bh-redis)
t0=$(ms)
can bh-nginx "$redis" 6379 &
probe=$!
record_to "$t0" "$redis" 6379 >/dev/null
wait "$probe" || true
echo "ok: a reload to NFLOG group 101 keeps the records coming"
stop_daemon

# 5. audit mode: the flow passes and is logged as would-deny
bh_policy bhnet "$tmp/policy.yaml"
start_daemon "$tmp/policy.yaml" --audit
t0=$(ms)
can bh-nginx "$(addr bh-redis)" 6379 || fail "in audit mode nginx -> redis:6379 did not connect"
record_to "$t0" "$(addr bh-redis)" 6379 >/dev/null || exit 1
rec "$t0" "$(addr bh-redis)" 6379 | jq -e '.verdict == "would-deny" and .dst.service == "redis"' >/dev/null ||
	fail "audit mode record"
"$B" status --control "$tmp/ctl" --json | jq -e '.mode == "audit" and .denied_flows.records >= 1' >/dev/null ||
	fail "status in audit mode"
echo "ok: audit mode: nginx -> redis:6379 connects and is logged as would-deny"
stop_daemon
