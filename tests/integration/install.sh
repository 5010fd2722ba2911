#!/bin/sh
# `make install` with PREFIX and DESTDIR: the binary, the systemd unit with
# its paths filled in (and systemd-analyze content with it, where present),
# the manual page, bash completion, the example policies, a logrotate
# snippet (which logrotate takes, and rotates with), and a default
# policy that a reinstall keeps.
set -eu
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

make -s install DESTDIR="$tmp/root" PREFIX=/usr >/dev/null
unit=$tmp/root/usr/lib/systemd/system/bulkhead.service
[ -x "$tmp/root/usr/sbin/bulkhead" ] || fail "no binary in sbin"
grep -qx "ExecStart=/usr/sbin/bulkhead run -p /etc/bulkhead/policy.yaml" "$unit" || fail "unit ExecStart"
grep -qx "Type=notify" "$unit" || fail "unit type"
grep -qx "CPUWeight=1000" "$unit" || fail "unit CPU weight (docs/operations.md, bench/daemon.sh)"
! grep -q "@" "$unit" || fail "unit placeholders left"
[ -f "$tmp/root/usr/share/bulkhead/policies/three-tier.yaml" ] || fail "example policies"
[ -f "$tmp/root/usr/share/man/man8/bulkhead.8" ] || fail "manual page"
grep -q '^complete -F _bulkhead bulkhead$' "$tmp/root/usr/share/bash-completion/completions/bulkhead" || fail "bash completion"
lr=$tmp/root/etc/logrotate.d/bulkhead
grep -q '^/var/log/bulkhead/flows.jsonl {$' "$lr" || fail "no logrotate snippet for the flow log"
# logrotate reads it, and rotates a log of ours with it
if command -v logrotate >/dev/null 2>&1; then
	mkdir "$tmp/lr"
	echo '{"verdict":"denied"}' >"$tmp/lr/flows.jsonl"
	sed -e "s|/var/log/bulkhead|$tmp/lr|" -e "s|create 0640 root root|create 0640|" "$lr" >"$tmp/lr.conf"
	logrotate -f -s "$tmp/lr.state" "$tmp/lr.conf" || fail "logrotate refused the snippet"
	[ -f "$tmp/lr/flows.jsonl" ] && [ ! -s "$tmp/lr/flows.jsonl" ] || fail "logrotate did not start a new log"
	ls "$tmp/lr" | grep -q '^flows.jsonl-[0-9]\{8\}$' || fail "logrotate kept no dated file: $(ls "$tmp/lr")"
else
	fail "logrotate is not installed (scripts/install-deps.sh installs it)"
fi
# the manual renders without warnings, where a formatter is installed
if command -v groff >/dev/null 2>&1; then
	w=$(groff -man -Tutf8 -ww -z "$tmp/root/usr/share/man/man8/bulkhead.8" 2>&1)
	[ -z "$w" ] || { echo "$w"; fail "the manual page has formatting warnings"; }
fi
"$tmp/root/usr/sbin/bulkhead" check -p "$tmp/root/etc/bulkhead/policy.yaml" >/dev/null || fail "default policy"
echo "# mine" >>"$tmp/root/etc/bulkhead/policy.yaml"
make -s install DESTDIR="$tmp/root" PREFIX=/usr >/dev/null
grep -q "^# mine" "$tmp/root/etc/bulkhead/policy.yaml" || fail "reinstall overwrote the operator's policy"

# installed where it runs, systemd's own checker reads the unit
if command -v systemd-analyze >/dev/null 2>&1; then
	make -s install PREFIX="$tmp/p" SYSCONFDIR="$tmp/p/etc" >/dev/null
	systemd-analyze verify "$tmp/p/lib/systemd/system/bulkhead.service" || fail "systemd-analyze verify"
fi
echo "ok: install: binary, unit, manual, completion, policies; the operator's policy survives a reinstall"
