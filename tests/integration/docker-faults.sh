#!/bin/sh
# The daemon against a Docker API that misbehaves (tests/lib/fake_docker.py):
# a line of garbage on the event stream, a chunk cut in the middle, a line
# that never ends, inspect answers of the wrong shape, HTTP 500, and a
# Docker that reads requests and never answers. Each time the daemon says
# so (once per outage, not once per retry), keeps running and answering
# status, and the kernel keeps the last good rules byte for byte; once
# Docker behaves again it converges exactly. The daemon runs in a network
# namespace of its own, so the host's ruleset is never touched; it ends
# with SIGTERM and a clean exit (no leaks, under the sanitizers).
set -eu
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root for network namespaces"
	exit 0
fi
B=$PWD/${BUILD:-build}/bulkhead
. tests/lib/daemon.sh
tmp=$(mktemp -d)
ns=bhfake$$
pid=""
fake=""
trap ns_cleanup EXIT
in_ns() { ip netns exec "$ns" "$@"; }
table() { in_ns nft list table inet bulkhead 2>/dev/null | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/'; }
st() { "$B" status --control "$tmp/ctl" --json; }
wait_for() { # what, seconds, then a command that succeeds once it is so
	what=$1 n=$(($2 * 20))
	shift 2
	until "$@"; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "$what did not happen"
		sleep 0.05
	done
}
logged() { grep -c -- "$1" "$tmp/daemon.log" || true; }
resyncs_more() { [ "$(st | jq .resyncs)" -gt "$1" ]; }
intact() { # the daemon lives, answers, and the kernel has the last good rules
	kill -0 "$pid" 2>/dev/null || fail "$1: the daemon died"
	st >/dev/null || fail "$1: status does not answer"
	table | cmp -s - "$tmp/good" || { table | diff "$tmp/good" - | head; fail "$1: the kernel changed"; }
}
recover() { # back to a well-behaved Docker: a fresh sync, exact
	syncs=$(st | jq .resyncs)
	echo ok >"$tmp/mode"
	wait_for "$1: the resync after recovery" 40 resyncs_more "$syncs"
	in_ns "$B" diff -p policies/three-tier.yaml --inventory tests/fixtures/three-tier.json --exit-code >"$tmp/diff" 2>&1 ||
		{ cat "$tmp/diff"; fail "$1: not exact after recovery"; }
}

fake_docker_start
ip netns add "$ns"
ip netns exec "$ns" "$B" run -p policies/three-tier.yaml --docker "$tmp/docker.sock" --control "$tmp/ctl" \
	--log "$tmp/flows.jsonl" --resync 1 >"$tmp/daemon.log" 2>&1 &
pid=$!
wait_for "the first sync" 10 grep -q "in sync" "$tmp/daemon.log"
in_ns "$B" diff -p policies/three-tier.yaml --inventory tests/fixtures/three-tier.json --exit-code >/dev/null 2>&1 ||
	fail "not exact at start"
table >"$tmp/good"

# 1. a line that is not JSON: warned once, counted, a resync covers it
errors=$(st | jq .errors)
echo garbage >"$tmp/mode"
wait_for "the garbage's warning" 5 grep -q "an event that does not parse" "$tmp/daemon.log"
[ "$(st | jq .errors)" -gt "$errors" ] || fail "garbage: not counted as an error"
intact garbage
recover garbage
echo "ok: garbage on the event stream: warned, counted, resynced"

# 2. a chunk cut in the middle: the stream is lost, the daemon reconnects
echo midchunk >"$tmp/mode"
wait_for "the cut's notice" 5 grep -q "event stream ended" "$tmp/daemon.log"
intact midchunk
recover midchunk
echo "ok: a chunk cut in the middle: reconnected and resynced"

# 3. a line that never ends is a broken stream, not a memory hog
echo longline >"$tmp/mode"
wait_for "the long line's notice" 5 grep -q "an event line too long" "$tmp/daemon.log"
intact longline
[ "$(st | jq .rss_kb)" -lt 65536 ] || fail "longline: the daemon grew to $(st | jq .rss_kb) kB"
recover longline
echo "ok: a 2 MB event line: refused, reconnected, memory bounded"

# 4. inspect answers of the wrong shape, for several resyncs: the rules
# in force stay, and the outage is logged once, not at every retry
down=$(logged "reconnecting with backoff")
echo inspect-bad >"$tmp/mode"
wait_for "the bad inspect's notice" 5 grep -q "container inspect" "$tmp/daemon.log"
sleep 3
intact inspect-bad
[ "$(logged 'reconnecting with backoff')" -eq $((down + 1)) ] || fail "inspect-bad: the outage was not logged exactly once"
recover inspect-bad
echo "ok: inspect objects of the wrong shape: refused for 3 s, logged once, rules kept"

# 5. HTTP 500 from the container list
echo list-500 >"$tmp/mode"
wait_for "the 500's notice" 5 grep -q "/containers/json: HTTP status 500" "$tmp/daemon.log"
intact list-500
recover list-500
echo "ok: HTTP 500: rules kept, recovered"

# 6. a Docker that never answers: the loop does not freeze (status
# answers at once), the request times out, and the daemon recovers
echo stall >"$tmp/mode"
sleep 1.5 # a resync is under way and hangs
t0=$(date +%s%N)
st >/dev/null || fail "stall: status does not answer"
[ $((($(date +%s%N) - t0) / 1000000)) -lt 500 ] || fail "stall: status took more than 0.5 s"
wait_for "the stalled request's timeout" 20 grep -q "timed out\|Timeout" "$tmp/daemon.log"
intact stall
recover stall
echo "ok: a Docker that never answers: status still answers, the request times out, recovered"

kill -0 "$pid" || fail "the daemon died"
# a clean exit: under the sanitizers, also no leak after all of it
stop_clean
echo "ok: docker faults: garbage, a cut chunk, an endless line, bad inspect objects, HTTP 500, a stall; the kernel kept its rules throughout"
