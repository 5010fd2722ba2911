#!/bin/sh
# Runs a command in a cgroup of its own at a CPU weight, as the unit's
# CPUWeight= does under systemd (scripts/systemd/bulkhead.service.in), so
# that the benchmarks time the daemon as it is shipped on a host whose
# PID 1 is not systemd too.
#
# WEIGHT is cgroup v2's cpu.weight (1 to 10000, 100 for every other
# group by default); on cgroup v1 it is written as cpu.shares,
# WEIGHT * 1024 / 100, which is what systemd writes there.
#
# usage: bench/weighted.sh NAME WEIGHT CMD [ARG...]   exec's CMD in it
#        bench/weighted.sh --remove NAME              once CMD is gone
set -eu

dir() { # the cgroup's directory, and the file its weight goes in
	if [ -f /sys/fs/cgroup/cpu/cpu.shares ]; then
		echo "/sys/fs/cgroup/cpu/$1 cpu.shares"
	elif grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
		echo "/sys/fs/cgroup/$1 cpu.weight"
	else
		echo "bench/weighted.sh: no cgroup cpu controller here" >&2
		exit 1
	fi
}

if [ "${1:-}" = --remove ]; then
	d=$(dir "$2")
	cg=${d% *}
	[ ! -d "$cg" ] || rmdir "$cg"
	exit 0
fi
[ $# -ge 3 ] || { echo "usage: bench/weighted.sh NAME WEIGHT CMD [ARG...]" >&2; exit 2; }
name=$1 weight=$2
shift 2
d=$(dir "$name")
cg=${d% *} file=${d#* }
if [ "$file" = cpu.weight ]; then
	grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control ||
		echo +cpu >/sys/fs/cgroup/cgroup.subtree_control
else
	weight=$((weight * 1024 / 100))
fi
mkdir -p "$cg"
echo "$weight" >"$cg/$file"
echo $$ >"$cg/cgroup.procs"
exec "$@"
