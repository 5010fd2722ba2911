# Shared by the tests that run the daemon (sourced from the repository's
# root): `stop_clean` ends the daemon $pid with SIGTERM and fails unless
# it exits 0 (built with the sanitizers, a leak at exit is a failure).
stop_clean() {
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	pid=""
	[ "$rc" -eq 0 ] || fail "the daemon exited $rc after SIGTERM (under the sanitizers: a leak?)"
}
