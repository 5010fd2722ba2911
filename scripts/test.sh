#!/bin/sh
# The whole test suite from a fresh machine: installs what it needs,
# builds with -Werror, runs every test, runs them again under
# AddressSanitizer and UndefinedBehaviorSanitizer, and fuzzes each parser.
# Ends with one "N passed, N failed" line over those stages.
set -u
cd "$(dirname "$0")/.."
pass=0
fail=0
stage() {
	name=$1
	shift
	echo "=== $name"
	t0=$(date +%s)
	if "$@"; then
		pass=$((pass + 1))
		echo "=== $name: passed in $(($(date +%s) - t0)) s"
	else
		fail=$((fail + 1))
		echo "=== FAILED: $name (after $(($(date +%s) - t0)) s)"
	fi
}

scripts/install-deps.sh || exit 1
make -j"$(nproc)" >/dev/null || exit 1
stage "tests" make test
stage "tests under ASan+UBSan" make asan
# end to end against a real dockerd (started when none runs): the demo
# and the rest; the daemon's own tests of its loop (events, self-heal,
# the flow log and its file, world egress, the metrics endpoint) run
# once, in the
# stage after, built with the sanitizers: the same assertions, and
# memory errors and leaks at exit checked besides
ASAN_E2E="daemon selfheal flowlog logfull world metrics teams"
e2e() {
	scripts/docker-up.sh || return 1
	for t in tests/e2e/*.sh; do
		case " $ASAN_E2E " in *" $(basename "$t" .sh) "*) continue ;; esac
		sh "$t" || return 1
	done
}
asan_e2e() {
	scripts/docker-up.sh || return 1
	for t in $ASAN_E2E; do
		BUILD=build/asan sh "tests/e2e/$t.sh" || return 1
	done
}
stage "end to end" e2e
stage "daemon end to end under ASan+UBSan" asan_e2e
# 200 container start/stop cycles with a SIGKILL and a dockerd restart,
# the daemon built with the sanitizers: exact at the end, RSS flat, no
# leak (`make soak` runs 1,000; here they would take a quarter of an
# hour, most of it Docker's own cost per container)
stage "soak under ASan+UBSan" env BUILD=build/asan CYCLES="${SOAK_CYCLES:-200}" sh tests/soak/cycles.sh
# every parser's fuzzer, briefly (crashers are kept in tests/fuzz/regressions;
# FUZZ_SECONDS=N for longer)
stage "fuzzing" make -j"$(nproc)" fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
echo "suite: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
