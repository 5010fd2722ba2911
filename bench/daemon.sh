#!/bin/sh
# The daemon against a real dockerd (design §6, issue "The daemon"): with
# N containers running, 200 containers are started one after another and
# the daemon's own clock gives the time from each start event read to
# its elements committed (median, p99; zero when the elements were in
# before the start event was read, which the "early" column counts:
# Docker sends a container's network connect while it creates the
# process, and bulkhead places it then). Also the time from that connect
# event read to commit, bulkhead's own part of it (from Docker's last
# answer to commit), and the daemon's RSS once steady. Prints the ratios
# between the sizes.
#
# With --scripted, the daemon runs against a scripted Docker API
# (bench/scale_docker.py, answering at once) in a network namespace of
# its own, so that what is timed is bulkhead's own cost without Docker's:
# the same 200 starts one after another, then a burst of 200 connects at
# once (the last one's wait is the burst's cost), at each size.
#
# The daemon runs in a cgroup of its own at CPU weight 1000, as the
# unit's CPUWeight= puts it (bench/weighted.sh): on a host whose cores
# Docker keeps busy while it starts containers, that weight is what has
# the kernel run the daemon as soon as an event wakes it. WEIGHTS="100
# 1000" runs it at each in turn at every size, on the same containers
# (100 is every other group's). RT=PRIO runs it at SCHED_FIFO priority
# PRIO as well (its threads reset to the normal policy), as the unit's
# opt-in drop-in does (docs/operations.md).
#
# usage: bench/daemon.sh [SIZE...]   (default: 10 1000; STARTS=200;
#        WEIGHTS=1000; RT=)
#        bench/daemon.sh --scripted [SIZE...]   (default: 10 1000 10000)
# Needs root; starts dockerd when none runs; removes what it started.
set -eu
cd "$(dirname "$0")/.."
B=$PWD/${BUILD:-build}/bulkhead
STARTS=${STARTS:-200}
WEIGHTS=${WEIGHTS:-1000}
RUN_AS=""
[ -z "${RT:-}" ] || RUN_AS="chrt --fifo --reset-on-fork $RT"
if [ "$(id -u)" -ne 0 ]; then
	echo "bench/daemon.sh: needs root (dockerd, nftables)" >&2
	exit 1
fi
if [ "${1:-}" = --scripted ]; then
	shift
	[ $# -gt 0 ] || set -- 10 1000 10000
	exec sh bench/scripted.sh "$@"
fi
SIZES=${*:-10 1000}
scripts/docker-up.sh
scripts/test-image.sh >/dev/null
IMG=bulkhead-test/busybox:latest
tmp=$(mktemp -d)
pid=""
# in a subshell: its set +e must not outlive it (it runs first, too)
cleanup() (
	set +e
	[ -z "$pid" ] || { kill "$pid"; wait "$pid"; } 2>/dev/null
	sh bench/weighted.sh --remove bulkhead-bench
	# dockerd 20.10.24, as Debian 12 ships it, can deadlock while
	# containers on one network go at once (moby/moby#42545): say so
	# rather than hang
	docker ps -aq --filter name=bench- | timeout 600 xargs -r -n 25 -P 4 docker rm -f >/dev/null 2>&1
	[ $? -ne 124 ] || echo "bench/daemon.sh: dockerd stopped answering while it removed the bench's containers; restart it (moby/moby#42545)" >&2
	docker network rm bench1 bench2 >/dev/null 2>&1
	"$B" flush
	rm -rf "$tmp"
)
trap cleanup EXIT
cleanup
tmp=$(mktemp -d)
# (one that the last run's cleanup failed to remove is taken as it is)
for k in 1 2; do
	docker network inspect bench$k >/dev/null 2>&1 ||
		docker network create --subnet 10.20$k.0.0/16 bench$k >/dev/null
done

cp bench/daemon-policy.yaml "$tmp/policy.yaml"

running=0
grow_to() { # background containers, spread over services and networks
	[ "$1" -gt "$running" ] || return 0
	seq $((running + 1)) "$1" | xargs -P 8 -I{} sh -c '
		i={}; set -- web app db; shift $((i % 3)); net=bench$((i % 2 + 1))
		docker run -d --name "bench-$1-$i" --network "$net" --log-driver none \
			--stop-signal SIGKILL '"$IMG"' sleep 1000000 >/dev/null'
	running=$1
}
st() { "$B" status --control "$tmp/ctl" --json; }

printf '%-10s %6s %10s %10s %8s %12s %12s %10s %10s %9s\n' containers weight start_med start_p99 early conn_med_us conn_p99_us own_med own_p99 rss_kb
for n in $SIZES; do
	grow_to "$n"
	for w in $WEIGHTS; do
		: >"$tmp/daemon-$n.log" # there when grep first looks (the job opens it later)
		sh bench/weighted.sh bulkhead-bench "$w" $RUN_AS "$B" run -p "$tmp/policy.yaml" \
			--control "$tmp/ctl" >"$tmp/daemon-$n.log" 2>&1 &
		pid=$!
		i=0
		until grep -q "in sync" "$tmp/daemon-$n.log"; do
			i=$((i + 1)); [ $i -lt 300 ] || { cat "$tmp/daemon-$n.log"; exit 1; }
			sleep 0.2
		done
		k=1
		while [ $k -le "$STARTS" ]; do
			docker run -d --name "bench-probe-$k" --network bench$((k % 2 + 1)) --log-driver none \
				--stop-signal SIGKILL "$IMG" sleep 1000000 >/dev/null
			docker rm -f "bench-probe-$k" >/dev/null
			k=$((k + 1))
		done
		i=0
		until [ "$(st | jq '.start_to_commit.n // 0')" -ge "$STARTS" ]; do
			i=$((i + 1)); [ $i -lt 150 ] || { echo "not every start was placed" >&2; cat "$tmp/daemon-$n.log" >&2; exit 1; }
			sleep 0.2
		done
		"$B" diff -p "$tmp/policy.yaml" --exit-code >/dev/null || { echo "the kernel is not exact after the starts" >&2; exit 1; }
		st | jq -r --arg n "$n" --arg w "$w" '[$n, $w, (.start_to_commit | (.median_us, .p99_us | floor), "\(.placed_before_start)/\(.n)"),
			(.connect_to_commit | .median_us, .p99_us, .own_median_us, .own_p99_us | floor), .rss_kb] | @tsv' |
			awk '{ printf "%-10s %6s %10s %10s %8s %12s %12s %10s %10s %9s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }' | tee -a "$tmp/rows"
		[ "$(st | jq .errors)" -eq 0 ] || { echo "the daemon counted errors" >&2; cat "$tmp/daemon-$n.log" >&2; exit 1; }
		kill "$pid"
		wait "$pid" || true
		pid=""
	done
done
# each weight's last size against its first
awk 'function r(a, b) { return b > 0 ? sprintf("%.2fx", a / b) : (a > 0 ? "inf" : "1.00x (both 0)") }
	!($2 in first) { first[$2] = $1; s[$2] = $3; c[$2] = $6; o[$2] = $8; order[++k] = $2 }
	{ last[$2] = $0 }
	END { for (i = 1; i <= k; i++) { w = order[i]; split(last[w], f, " ")
		if (f[1] != first[w]) printf "ratio %s/%s containers, weight %s: start-to-commit median %s, connect-to-commit median %s, own median %s (target: within 2x, under 2000 us; own within 1.3x, p99 under 2000 us)\n", f[1], first[w], w, r(f[3], s[w]), r(f[6], c[w]), r(f[8], o[w]) } }' "$tmp/rows"
