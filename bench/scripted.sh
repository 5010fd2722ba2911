#!/bin/sh
# bench/daemon.sh --scripted: the daemon against a scripted Docker API
# (bench/scale_docker.py: N containers running, every answer at once) in
# a network namespace of its own (nothing of the host's ruleset is
# touched), so that what is timed is bulkhead's own cost. At each size:
#   starts  200 probes one after another (connect; start once the
#           connect's answers were read; stop once the start's were):
#           bulkhead's own part of connect to committed (from the last
#           answer read to the commit), median and p99, and the whole
#           (which adds the scripted API's answers: a few ms for the
#           network object of 10,000);
#   burst   200 connects at once, then their starts: the median and the
#           worst wait from a connect read to its elements committed
#           (a queue of 200 ahead of the last);
# and the daemon's RSS with N running, after its starts. The sizes take
# turns, ROUNDS times (a busy machine moves them alike), and each figure
# is the median of its rounds. Prints the ratios to the first size.
#
# usage: bench/scripted.sh [SIZE...]   (default: 10 1000 10000; STARTS=200,
#        ROUNDS=3)
set -eu
cd "$(dirname "$0")/.."
B=$PWD/${BUILD:-build}/bulkhead
STARTS=${STARTS:-200}
ROUNDS=${ROUNDS:-3}
[ $# -gt 0 ] || set -- 10 1000 10000
tmp=$(mktemp -d)
pid="" fake=""
cleanup() {
	set +e
	[ -z "$pid" ] || kill "$pid" 2>/dev/null
	[ -z "$fake" ] || kill "$fake" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
st() { "$B" status --control "$tmp/ctl" --json; }

# one phase at size $1: the fake and a fresh daemon, CMD ($2 $STARTS) run
phase() {
	rm -f "$tmp/cmd" "$tmp/cmd.done" "$tmp/docker.sock"
	# emptied now: the job below opens it in its own time, and the grep
	# for "in sync" must not find the last phase's daemon's
	: >"$tmp/daemon.log"
	python3 bench/scale_docker.py "$tmp/docker.sock" "$1" "$tmp/cmd" &
	fake=$!
	i=0
	until [ -S "$tmp/docker.sock" ]; do
		i=$((i + 1)); [ $i -lt 100 ] || { echo "the scripted Docker did not start" >&2; exit 1; }
		sleep 0.1
	done
	unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$B" run \
		-p bench/daemon-policy.yaml --docker "$tmp/docker.sock" \
		--control "$tmp/ctl" --log "$tmp/flows.jsonl" >"$tmp/daemon.log" 2>&1 &
	pid=$!
	i=0
	until grep -q "in sync" "$tmp/daemon.log"; do
		i=$((i + 1)); [ $i -lt 1200 ] || { cat "$tmp/daemon.log" >&2; exit 1; }
		sleep 0.1
	done
	echo "$2 $STARTS" >"$tmp/cmd"
	i=0
	until [ -e "$tmp/cmd.done" ] && [ "$(st | jq '.connect_to_commit.n // 0')" -ge "$STARTS" ]; do
		i=$((i + 1)); [ $i -lt 600 ] || { echo "not every probe was placed" >&2; tail "$tmp/daemon.log" >&2; exit 1; }
		sleep 0.1
	done
	[ "$(st | jq .errors)" -eq 0 ] || { echo "the daemon counted errors" >&2; tail "$tmp/daemon.log" >&2; exit 1; }
	st | jq -r '"\(.connect_to_commit | "\(.own_median_us | floor) \(.own_p99_us | floor) \(.median_us | floor) \(.p99_us | floor)") \(.rss_kb)"'
	kill "$pid"
	wait "$pid" || true
	kill "$fake"
	wait "$fake" 2>/dev/null || true
	pid="" fake=""
}

printf '%-10s %10s %10s %10s %10s %12s %12s %10s\n' containers own_med_us own_p99_us conn_med_us conn_p99_us burst_med_us burst_p99_us rss_kb
sizes="$*"
r=0
while [ $r -lt "$ROUNDS" ]; do
	r=$((r + 1))
	for n in $sizes; do
		# shellcheck disable=SC2046
		set -- $(phase "$n" starts)
		o_med=$1 o_p99=$2 c_med=$3 c_p99=$4 rss=$5
		# shellcheck disable=SC2046
		set -- $(phase "$n" burst)
		echo "$n $o_med $o_p99 $c_med $c_p99 $3 $4 $rss" >>"$tmp/raw"
	done
done
# each column's median over the rounds, the sizes in the order given
for n in $sizes; do
	awk -v n="$n" '$1 == n' "$tmp/raw" | awk '
		{ for (i = 2; i <= 8; i++) v[i, NR] = $i; rows = NR }
		END {
			printf "%-10s", $1
			for (i = 2; i <= 8; i++) {
				k = 0
				for (j = 1; j <= rows; j++) a[++k] = v[i, j]
				for (x = 1; x <= k; x++)
					for (y = x + 1; y <= k; y++)
						if (a[y] < a[x]) { t = a[x]; a[x] = a[y]; a[y] = t }
				printf i < 6 ? " %10s" : i < 8 ? " %12s" : " %10s", a[int((k + 1) / 2)]
			}
			printf "\n"
		}'
done | tee "$tmp/rows"
awk 'function r(a, b) { return b > 0 ? sprintf("%.2fx", a / b) : "-" }
	NR == 1 { first = $1; om = $2; op = $3; cm = $4; bm = $6; bp = $7 }
	NR > 1 { printf "ratio %s/%s containers: own median %s (target: within 1.5x), own p99 %s, connect to commit median %s; burst median %s, p99 %s\n", $1, first, r($2, om), r($3, op), r($4, cm), r($6, bm), r($7, bp) }' "$tmp/rows"
