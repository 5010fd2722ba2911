# Shared by the tests that run the daemon (sourced from the repository's
# root, with $tmp set): `fail` (the daemon's log, the flow log's records
# when there are any, then the message),
# `stop_clean` (SIGTERM to the daemon $pid; it must exit 0, so that built
# with the sanitizers a leak at exit fails), `fake_docker_start` (the
# misbehaving Docker API of tests/lib/fake_docker.py on $tmp/docker.sock,
# its mode in $tmp/mode, its pid in $fake) and `ns_cleanup` (the daemon,
# the fake, the namespace $ns and $tmp, gone).
fail() {
	echo "--- daemon log"; cat "$tmp/daemon.log" 2>/dev/null
	if [ -s "$tmp/flows.jsonl" ]; then
		echo "--- records"; cat "$tmp/flows.jsonl"
	fi
	echo "FAIL: $*"
	exit 1
}
stop_clean() {
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	pid=""
	[ "$rc" -eq 0 ] || fail "the daemon exited $rc after SIGTERM (under the sanitizers: a leak?)"
}
fake_docker_start() {
	echo ok >"$tmp/mode"
	python3 tests/lib/fake_docker.py "$tmp/docker.sock" tests/fixtures/three-tier.json "$tmp/mode" &
	fake=$!
	n=0
	until [ -S "$tmp/docker.sock" ]; do
		n=$((n + 1))
		[ $n -lt 100 ] || fail "the fake Docker did not start"
		sleep 0.1
	done
}
ns_cleanup() {
	set +e
	[ -z "${pid:-}" ] || kill -9 "$pid" 2>/dev/null
	[ -z "${fake:-}" ] || kill "$fake" 2>/dev/null
	[ -z "${ns:-}" ] || ip netns del "$ns" 2>/dev/null
	rm -rf "$tmp"
}
