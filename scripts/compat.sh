#!/bin/sh
# `make compat`: bulkhead against the Docker and compose that Debian 12
# (bookworm), 13 (trixie) and sid ship. For each, a root built by
# debootstrap from Debian's mirror (cached in build/compat/SUITE until
# the package list changes) and, inside it, the end-to-end tests of the
# daemon, the flow log, self-healing and teams, and the demo, run against that
# root's own dockerd: started in namespaces of its own (network; mount,
# the root made / by pivot_root, since under a plain chroot runc's setns
# would put `docker exec` back in the host's root; PID, so that a test's
# `pkill dockerd` reaches that one alone), with its own data and exec
# roots and cgroup parent. The host's dockerd and nftables are never
# touched. One line per version: what ran and passed, or what failed.
#
# usage: scripts/compat.sh [SUITE...]        (default: bookworm trixie sid)
#        TESTS="tests/e2e/daemon.sh ..."     the tests to run (default: the
#                                            five above)
#        MIRROR=URL                          Debian's mirror
#        TESTS=scripts/capture-docker.sh     records each version's answers
#                                            as fixtures instead
# The log of each version is build/compat/SUITE.log.
set -eu
cd "$(dirname "$0")/.."
MIRROR=${MIRROR:-http://deb.debian.org/debian}
TESTS=${TESTS:-tests/e2e/daemon.sh tests/e2e/flowlog.sh tests/e2e/selfheal.sh tests/e2e/teams.sh scripts/demo.sh}
DIR=$PWD/build/compat

# --- inside the namespaces (the root pivoted to, the tree at /bulkhead) ----
if [ "${1:-}" = --inside ]; then
	root=$2
	shift 2
	mount --make-rprivate /
	mount --bind "$root" "$root"
	mkdir -p "$root/bulkhead"
	mount --bind "$PWD" "$root/bulkhead"
	mount -t proc proc "$root/proc"
	mount -t sysfs sysfs "$root/sys"
	mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup"
	mount --rbind /dev "$root/dev"
	mount -t tmpfs tmpfs "$root/run"
	mount -t tmpfs tmpfs "$root/tmp"
	mkdir -p "$root/.old"
	cd "$root"
	pivot_root . .old
	umount -l /.old
	rmdir /.old
	cd /bulkhead
	export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	ip link set lo up
	exec "$@"
fi

# What bulkhead negotiates with this dockerd (the daemon started for a
# moment with the demo's policy), and the versions: one line.
if [ "${1:-}" = --versions ]; then
	scripts/docker-up.sh
	d=$(docker version --format '{{.Server.Version}}')
	if docker compose version >/dev/null 2>&1; then
		c="docker compose $(docker compose version --short)"
	else
		c="docker-compose $(docker-compose version --short)"
	fi
	build/bulkhead run -p policies/shop.yaml --control /tmp/compat.ctl \
		--log /tmp/compat.jsonl >/tmp/compat.log 2>&1 &
	pid=$!
	n=0
	until grep -q "in sync (API" /tmp/compat.log || [ $n -ge 100 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	kill "$pid"
	wait "$pid" || true
	build/bulkhead flush
	api=$(sed -n 's/.*in sync (API \([0-9.]*\)).*/\1/p' /tmp/compat.log)
	echo "Docker $d (API ${api:-not negotiated}), $c"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "compat: needs root (debootstrap, namespaces, dockerd)" >&2
	exit 1
fi
[ $# -gt 0 ] || set -- bookworm trixie sid
scripts/install-deps.sh
make -s >/dev/null

# the packages of the libraries the binary links, as named here (a
# newer Debian may have renamed one, e.g. libcurl4t64: apt picks the
# package that provides the old name)
libs() {
	objdump -p build/bulkhead | awk '/NEEDED/ { print $2 }' | while read -r so; do
		f=$(ldd build/bulkhead | awk -v s="$so" '$1 == s { print $3 }')
		dpkg -S "$(realpath "$f")" 2>/dev/null || dpkg -S "$f"
	done | cut -d: -f1 | sort -u | grep -v '^libc6$' | tr '\n' ' '
}

# build/compat/SUITE: made again only when what it holds would change
make_root() {
	suite=$1 root=$DIR/$1
	want="$(scripts/install-deps.sh --list-run) / $(libs)"
	if [ -f "$root/.bulkhead-pkgs" ] && [ "$(cat "$root/.bulkhead-pkgs")" = "$want" ]; then
		return 0
	fi
	rm -rf "$root" "$root.new"
	mkdir -p "$DIR"
	t0=$(date +%s)
	blog=$DIR/$suite.debootstrap.log
	# the base alone: debootstrap's one dpkg run of --include cannot
	# order systemd's pre-dependency (which prometheus and logrotate
	# pull in); apt inside the root can
	debootstrap --variant=minbase "$suite" "$root.new" "$MIRROR" >"$blog" 2>&1 || {
		tail -5 "$blog"
		return 1
	}
	# no service starts inside the root while it is built
	printf '#!/bin/sh\nexit 101\n' >"$root.new/usr/sbin/policy-rc.d"
	chmod 755 "$root.new/usr/sbin/policy-rc.d"
	DEBIAN_FRONTEND=noninteractive chroot "$root.new" apt-get update -qq >>"$blog" 2>&1
	# since Debian 13, Docker's client is a package of its own
	cli=""
	chroot "$root.new" apt-cache show docker-cli >/dev/null 2>&1 && cli=docker-cli
	# shellcheck disable=SC2046
	DEBIAN_FRONTEND=noninteractive chroot "$root.new" apt-get install \
		-y -qq --no-install-recommends $(scripts/install-deps.sh --list-run) \
		$(libs) $cli >>"$blog" 2>&1 || {
		tail -5 "$blog"
		return 1
	}
	cp build/bulkhead "$root.new/tmp/bulkhead"
	if chroot "$root.new" ldd /tmp/bulkhead | grep "not found"; then
		echo "  $suite: the binary's libraries are not all there" >&2
		return 1
	fi
	rm -f "$root.new/tmp/bulkhead" "$root.new"/var/cache/apt/archives/*.deb
	# its own cgroup parent, next to the host's dockerd's
	mkdir -p "$root.new/etc/docker"
	printf '{ "cgroup-parent": "/bulkhead-compat-%s" }\n' "$suite" \
		>"$root.new/etc/docker/daemon.json"
	echo "$want" >"$root.new/.bulkhead-pkgs"
	mv "$root.new" "$root"
	echo "  $suite: root built by debootstrap in $(($(date +%s) - t0)) s ($(du -sm "$root" | cut -f1) MB)"
}

# runs CMD... inside SUITE's root, in namespaces of its own
inside() {
	root=$DIR/$1
	shift
	unshare --net --mount --pid --fork --kill-child \
		sh "$PWD/scripts/compat.sh" --inside "$root" "$@"
}

# the cgroups its dockerd made, once it is gone
cgroups_clean() {
	for d in /sys/fs/cgroup/*/bulkhead-compat-"$1" /sys/fs/cgroup/bulkhead-compat-"$1"; do
		[ -d "$d" ] || continue
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
}

# one version: its tests inside its root, one line said
run_suite() {
	suite=$1 log=$DIR/$1.log
	make_root "$suite" || {
		echo "$suite: FAILED: building its root (see $DIR/$suite.debootstrap.log)"
		return 1
	}
	# a fresh data root every run: nothing of the last one restarts
	rm -rf "$DIR/$suite/var/lib/docker"
	: >"$log"
	failed=""
	t0=$(date +%s)
	for t in $TESTS; do
		echo "=== $t" >>"$log"
		inside "$suite" sh "$t" >>"$log" 2>&1 || failed="$failed $t"
		cgroups_clean "$suite"
	done
	v=$(inside "$suite" sh scripts/compat.sh --versions 2>>"$log" | tail -1)
	cgroups_clean "$suite"
	secs=$(($(date +%s) - t0))
	if [ -z "$failed" ]; then
		echo "$suite: $v: passed:$(for t in $TESTS; do printf ' %s' "${t##*/}"; done) ($secs s)"
	else
		echo "$suite: $v: FAILED:$failed (see $log)"
		return 1
	fi
}

rc=0
for s in "$@"; do
	run_suite "$s" || rc=1
done
exit $rc
