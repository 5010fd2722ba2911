#!/bin/sh
# Runs one libFuzzer harness: first its kept crashers (regressions), then
# SECONDS of fuzzing from the seed corpus; prints one line of figures.
# usage: scripts/fuzz-one.sh NAME SECONDS   (make fuzz runs them all)
set -u
f=$1
secs=$2
log=build/fuzz/$f.log
mkdir -p "build/fuzz/corpus-$f"
regs=$(ls tests/fuzz/regressions/"$f"-* 2>/dev/null || true)
if [ -n "$regs" ]; then
	# shellcheck disable=SC2086
	build/fuzz/fuzz_$f $regs >"$log" 2>&1 || { tail -40 "$log"; echo "fuzz $f: a kept crasher fails again"; exit 1; }
fi
build/fuzz/fuzz_$f -max_total_time="$secs" -max_len=65536 -print_final_stats=1 -artifact_prefix=build/fuzz/ \
	"build/fuzz/corpus-$f" "tests/fuzz/corpus/$f" >"$log" 2>&1 ||
	{ tail -40 "$log"; echo "fuzz $f: FAILED (the input is in build/fuzz/; keep it in tests/fuzz/regressions/$f-NAME)"; exit 1; }
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
echo "fuzz $f: $runs executions in ${secs} s, peak RSS $rss MB"
