#!/bin/sh
# End to end: the flow log never lies. Its directory is a tmpfs of 64
# KiB, most of it taken by a filler file; a flood of denied datagrams
# fills the rest. Then: the daemon says once that it cannot write,
# status counts the records lost, every line on file parses, and a
# container started meanwhile is placed as fast as usual. The filler
# removed, new records appear, the daemon says it writes again, a
# summary record carries the count lost, and the lines handed to the log
# are those written plus those lost, exactly. Last, a SIGKILL in the
# middle of a flood: the daemon started again, every line parses.
set -eu
cd "$(dirname "$0")/../.."
. tests/lib/e2e.sh
logs=""
cleanup() {
	set +e
	[ -z "$pid" ] || kill -9 "$pid" 2>/dev/null
	docker rm -f bh-dblate >/dev/null 2>&1
	compose down -t 0 >/dev/null 2>&1
	"$B" flush
	[ -z "$logs" ] || umount "$logs"
	rm -rf "$tmp"
}
trap cleanup EXIT
LOG=$tmp/logs/flows.jsonl
# fail() shows $tmp/flows.jsonl
ln -s "$LOG" "$tmp/flows.jsonl"

bh_policy bhnet "$tmp/policy.yaml"
sed -i 's|log_rate: 20/second|log_rate: 10000/second|' "$tmp/policy.yaml"
grep -q "log_rate: 10000/second" "$tmp/policy.yaml" || fail "the policy's log_rate was not raised"
mkdir "$tmp/logs"
mount -t tmpfs -o size=64k tmpfs "$tmp/logs"
logs=$tmp/logs
compose down -t 0 >/dev/null 2>&1 || true
compose up -d >/dev/null 2>&1 || fail "docker-compose up"
cc -O2 -o "$tmp/udpflood" tests/lib/udpflood.c
db=$(addr bh-db)
flood() { nsenter -t "$(docker inspect -f '{{.State.Pid}}' bh-nginx)" -n "$tmp/udpflood" "$db" 9 "$1" >/dev/null; }
st() { "$B" status --control "$tmp/ctl" --json; }
field() { st | jq -r ".$1"; }
start() {
	synced=$(grep -c "docker: in sync" "$tmp/daemon.log" 2>/dev/null || true)
	"$B" run -p "$tmp/policy.yaml" --control "$tmp/ctl" --log "$LOG" >>"$tmp/daemon.log" 2>&1 &
	pid=$!
	wait_for "the daemon's sync" sh -c "[ \$(grep -c 'docker: in sync' '$tmp/daemon.log') -gt ${synced:-0} ]"
}
parses() { # every line of the log is a JSON object: 0, else the bad ones
	bad=$(jq -c 'select(type != "object")' "$LOG" 2>&1 | head -3)
	[ -z "$bad" ] && [ "$(jq -c . "$LOG" | wc -l)" -eq "$(wc -l <"$LOG")" ]
}
start
# a filler leaves about 16 KiB: a few dozen records
dd if=/dev/zero of="$tmp/logs/filler" bs=1k count=44 2>/dev/null
flood 20000
wait_for "records lost" sh -c "[ \"\$('$B' status --control '$tmp/ctl' --json | jq .log_lost)\" -gt 0 ]"
[ "$(field log_failing)" = "No space left on device" ] || fail "status does not say why the log fails: $(field log_failing)"
grep -q "flow log $LOG: cannot write (No space left on device): records are counted as lost" "$tmp/daemon.log" ||
	fail "the daemon did not say the log cannot be written"
flood 5000
sleep 0.5
[ "$(grep -c "cannot write (No space left" "$tmp/daemon.log")" -eq 1 ] || fail "the failing log said more than once"
parses || fail "a line of the full log does not parse: $bad"
tail -c 1 "$LOG" | od -c | grep -q '\\n' || fail "the full log does not end at a line boundary"
"$B" status --control "$tmp/ctl" | grep -q "^flow log: [0-9]* lines written, [1-9][0-9]* lost of [0-9]*; failing: No space left on device" ||
	fail "status's text does not show the lost records"
lost=$(field log_lost)
echo "  the disk full: $(field log_written) lines written, $lost lost, every line whole"

# a container started while the disk is full is placed at once
t0=$(date +%s%N)
docker run -d --name bh-dblate --network bhnet bulkhead-test/postgres:16 sleep 600 >/dev/null
wait_for "bh-dblate placed" sh -c "'$B' status --control '$tmp/ctl' | grep -q bh-dblate"
ms=$((($(date +%s%N) - t0) / 1000000))
own=$(st | jq '.connect_to_commit.own_median_us')
echo "  a container placed ${ms} ms after docker run (its placement's own part: median ${own} us)"
[ "$ms" -lt 3000 ] || fail "placement took $ms ms with the log full"

# room again: new records, said once, the count on record, the sum exact
rm "$tmp/logs/filler"
before=$(wc -l <"$LOG")
flood 200
wait_for "writing again" grep -q "flow log $LOG: writing again; [0-9]* records lost meanwhile" "$tmp/daemon.log"
wait_for "new records" sh -c "[ \$(wc -l <'$LOG') -gt $before ]"
wait_for "the summary with the count lost" sh -c "jq -e 'select(.verdict == \"summary\" and .lost >= $lost)' '$LOG' >/dev/null"
[ "$(field log_failing)" = null ] || fail "status still says the log fails"
parses || fail "a line does not parse after the episode: $bad"
sleep 0.3
lines=$(field log_lines)
written=$(field log_written)
lost=$(field log_lost)
[ "$lines" -eq $((written + lost)) ] || fail "lines handed to the log $lines != written $written + lost $lost"
[ "$(wc -l <"$LOG")" -eq "$written" ] || fail "$(wc -l <"$LOG") lines on file, $written counted written"
echo "  room again: $lines lines handed to the log = $written written + $lost lost; $(wc -l <"$LOG") on file"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=""

# SIGKILL in a flood, the log on room enough: after a restart every line
# parses
umount "$logs"
logs=""
rm -f "$LOG"
start
flood 30000 &
f=$!
sleep 1
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=""
wait "$f" || true
killed=$(wc -l <"$LOG")
[ "$killed" -gt 100 ] || fail "only $killed records before the SIGKILL"
start
parses || fail "after a SIGKILL and a restart, a line does not parse: $bad"
stop_clean
echo "ok: the flow log never lies: full, it counted $lost lost and kept whole lines, placement went on, room again it wrote and said so, the sum held; after a SIGKILL in a flood ($killed lines) every line parses"
