#!/bin/sh
# The command line's contract: exit statuses (0 ok, 2 bad input), errors
# as FILE:LINE:COL on stderr, nothing on stdout when input is bad, and
# --help for every command.
set -eu
cd "$(dirname "$0")/../.."
B=${BULKHEAD:-./bulkhead}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

expect() { # status, then the command
	want=$1
	shift
	set +e
	"$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	set -e
	[ "$got" -eq "$want" ] || { cat "$tmp/err"; fail "$* exited $got, want $want"; }
}

expect 0 "$B" check -p policies/three-tier.yaml
expect 0 "$B" check -p policies/shop.yaml --inventory tests/fixtures/shop.json
for c in check plan trace apply diff flush run status reload; do
	expect 0 "$B" "$c" --help
	grep -q "usage: bulkhead $c" "$tmp/out" || fail "$c --help"
done
expect 0 "$B" --help
expect 2 "$B"
expect 0 "$B" --version
grep -qE '^bulkhead [0-9]+\.[0-9]+\.[0-9]+' "$tmp/out" || fail "--version: $(cat "$tmp/out")"

# --help, the manual's synopsis and bash completion name the same options
# for every command
opts_help() { "$B" "$1" --help | sed -n '/^usage:/,/^[^ u]/p' | grep -oE -- '(^| |\[)(-p|--[a-z][a-z-]*)' | tr -d ' [' | sort -u; }
opts_man() {
	sed -n "/^\.B bulkhead $1\$/,/^\.br\$/p;/^\.B bulkhead $1\$/,/^\.SH/{/^\.SH/q}" scripts/man/bulkhead.8 |
		sed 's/\\-/-/g' | grep -oE -- '(^| )(-p|--[a-z][a-z-]*)' | tr -d ' ' | sort -u
}
opts_comp() { bash -c '. scripts/completion/bulkhead.bash; _bulkhead_opts "$1"' _ "$1" | tr ' ' '\n' | grep -v -e '^--help$' -e '^--policy$' | sort -u; }
for c in check plan trace apply diff run status reload denials graph flush; do
	opts_help "$c" >"$tmp/h"
	opts_comp "$c" >"$tmp/c"
	opts_man "$c" >"$tmp/m"
	cmp -s "$tmp/h" "$tmp/c" || { diff "$tmp/h" "$tmp/c"; fail "$c: --help and bash completion disagree"; }
	cmp -s "$tmp/h" "$tmp/m" || { diff "$tmp/h" "$tmp/m"; fail "$c: --help and the manual's synopsis disagree"; }
	grep -q "^\.B $c\$" scripts/man/bulkhead.8 || fail "$c: no section in the manual"
done
# each command refuses every option it does not take (exit 2, the option
# named), and takes every option its --help names
all_cmds="check plan trace apply diff run status reload denials graph flush"
for c in $all_cmds; do opts_help "$c"; done | sort -u >"$tmp/all"
[ "$(wc -l <"$tmp/all")" -ge 20 ] || fail "too few options found in --help: $(cat "$tmp/all")"
refused=0
for c in $all_cmds; do
	opts_help "$c" >"$tmp/h"
	while read -r o; do
		if grep -qx -- "$o" "$tmp/h"; then
			set +e
			"$B" "$c" "$o" x </dev/null >/dev/null 2>"$tmp/err" &
			pid=$!
			sleep 0.05
			kill "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			set -e
			! grep -q "unknown option" "$tmp/err" || { cat "$tmp/err"; fail "$c refuses $o, which its --help names"; }
		else
			expect 2 "$B" "$c" "$o" x
			grep -q "^bulkhead $c: unknown option '$o'\$" "$tmp/err" || { cat "$tmp/err"; fail "$c $o: the option is not named"; }
			[ ! -s "$tmp/out" ] || fail "$c $o: output on stdout"
			refused=$((refused + 1))
		fi
	done <"$tmp/all"
done
expect 2 "$B" plan -p policies/three-tier.yaml --format
grep -q "^bulkhead plan: option '--format' needs a value\$" "$tmp/err" || fail "a missing value is not said"
echo "ok: every command refuses the options it does not take ($refused refusals checked) and takes those its --help names"

complete_words() { # the words typed so far: what completion offers
	bash -c '. scripts/completion/bulkhead.bash; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _bulkhead; printf "%s\n" "${COMPREPLY[@]}"' _ "$@"
}
[ "$(complete_words bulkhead pl)" = plan ] || fail "completion of a command"
[ "$(complete_words bulkhead plan --form)" = --format ] || fail "completion of an option"
[ "$(complete_words bulkhead plan --format "" | sort | paste -sd,)" = json,nft ] || fail "completion of --format"
complete_words bulkhead check -p policies/sh | grep -qx policies/shop.yaml || fail "completion of a policy file"
expect 2 "$B" frobnicate
# without --inventory, the live Docker API: unreachable is a runtime
# failure that names the socket; a DOCKER_HOST that is not unix:// is
# bad input
expect 1 "$B" plan -p policies/shop.yaml --docker "$tmp/no-docker.sock"
grep -q "docker at $tmp/no-docker.sock: " "$tmp/err" || fail "plan without inventory or Docker"
expect 2 env DOCKER_HOST=tcp://127.0.0.1:2375 "$B" plan -p policies/shop.yaml
grep -q "only unix:// sockets" "$tmp/err" || fail "DOCKER_HOST=tcp://"
expect 1 "$B" status --control "$tmp/no-daemon.sock"
grep -q "cannot reach the daemon at $tmp/no-daemon.sock" "$tmp/err" || fail "status without a daemon"
expect 2 "$B" run -p policies/shop.yaml --resync 0
expect 2 "$B" run -p policies/shop.yaml --dns-min-ttl 0
expect 2 "$B" run -p policies/shop.yaml --dns-min-ttl 600 --dns-max-ttl 60
grep -q "dns-min-ttl exceeds --dns-max-ttl" "$tmp/err" || fail "min above max"
expect 2 "$B" plan -p tests/fixtures/policy-all-kinds.yaml --inventory tests/fixtures/all-kinds.json --resolve --dns 'not a server'
grep -q "^bulkhead: --dns 'not a server': .*want ADDR\[:PORT\]" "$tmp/err" || { cat "$tmp/err"; fail "--dns error"; }
expect 2 "$B" run -p "$tmp/missing.yaml" --docker "$tmp/no-docker.sock" --control "$tmp/ctl"

printf 'version: 1\nservices:\n  a:\n    match: {name: a}\n    egress:\n      - to: b\n        ports: [99999/tcp]\n' >"$tmp/bad.yaml"
expect 2 "$B" plan -p "$tmp/bad.yaml" --inventory tests/fixtures/shop.json
[ ! -s "$tmp/out" ] || fail "plan printed a ruleset for a bad policy"
grep -qx "$tmp/bad.yaml:6:13: error: unknown peer 'b' (not a service, world, host, cidr or fqdn)" "$tmp/err" || { cat "$tmp/err"; fail "peer error"; }
grep -qx "$tmp/bad.yaml:7:17: error: port '99999/tcp' is out of range (1-65535)" "$tmp/err" || fail "port error"
expect 2 "$B" check -p "$tmp/bad.yaml"

head -c 5000 tests/fixtures/three-tier.json >"$tmp/trunc.json"
expect 2 "$B" plan -p policies/three-tier.yaml --inventory "$tmp/trunc.json"
grep -q "^$tmp/trunc.json:[0-9]*:[0-9]*: error: container #1" "$tmp/err" || { cat "$tmp/err"; fail "truncated inventory"; }

# two services matching one container: exit 2, both named
printf 'version: 1\nservices:\n  a:\n    match: {name: nginx}\n  b:\n    match: {image: "bulkhead-test/nginx:*"}\n' >"$tmp/two.yaml"
expect 2 "$B" check -p "$tmp/two.yaml" --inventory tests/fixtures/three-tier.json
grep -q "container 'nginx' matches both service 'a' (line 3) and service 'b' (line 5)" "$tmp/err" || fail "conflict"

# trace: exit 0 for allowed and for denied
expect 0 "$B" trace -p policies/three-tier.yaml --inventory tests/fixtures/three-tier.json nginx backend 8080/tcp
grep -q "^allowed nginx -> backend 8080/tcp" "$tmp/out" || fail "trace allowed"
expect 0 "$B" trace -p policies/three-tier.yaml --inventory tests/fixtures/three-tier.json nginx db 5432/tcp
grep -q "^denied nginx -> db 5432/tcp" "$tmp/out" || fail "trace denied"
expect 2 "$B" trace -p policies/three-tier.yaml --inventory tests/fixtures/three-tier.json nobody db 5432/tcp

# the same input gives the same bytes
"$B" plan -p policies/shop.yaml --inventory tests/fixtures/shop.json >"$tmp/a" 2>/dev/null
"$B" plan -p policies/shop.yaml --inventory tests/fixtures/shop.json >"$tmp/b" 2>/dev/null
cmp -s "$tmp/a" "$tmp/b" || fail "plan is not deterministic"
# the denied-flow log read back (a fixture: no root, no daemon)
D=tests/fixtures/denied.jsonl
expect 0 "$B" denials --log "$D"
[ "$(grep -c ' denied ' "$tmp/out")" -eq 5 ] || fail "denials: 5 flow records (the summary record left out)"
grep -q "^2026-11-22T16:01:02.123Z denied  *nginx (nginx) 172.28.5.2  *db (db) 172.28.5.4  *5432/tcp  *no-edge$" "$tmp/out" ||
	fail "denials line"
expect 0 "$B" denials --log "$D" --json --service backend
[ "$(wc -l <"$tmp/out")" -eq 3 ] || fail "denials --service backend: either end"
expect 0 "$B" denials --log "$D" --since 2026-11-22T16:03:00Z --json
[ "$(wc -l <"$tmp/out")" -eq 2 ] || fail "denials --since ISO"
expect 2 "$B" denials --log "$D" --since yesterday
expect 1 "$B" denials --log "$tmp/none.jsonl"
expect 0 "$B" denials --log "$D" --summary
grep -q "^ *2  nginx  *db  *5432/tcp  *no-edge  *2026-11-22T16:01:02.123Z 2026-11-22T16:01:03.500Z$" "$tmp/out" ||
	fail "denials --summary"
expect 0 "$B" denials --log "$D" --suggest -p policies/three-tier.yaml
grep -q "^# stray matches no service" "$tmp/out" || fail "suggest: the unmatched container"
grep -q "^      - to: { cidr: \[\"198.51.100.7/32\"\] }$" "$tmp/out" || fail "suggest: a world address"
cp "$tmp/out" "$tmp/suggested.yaml"
expect 0 "$B" check -p "$tmp/suggested.yaml"
# the suggested policy allows exactly the denied flows
expect 0 "$B" trace -p "$tmp/suggested.yaml" --inventory tests/fixtures/three-tier.json nginx db 5432/tcp
grep -q "^allowed" "$tmp/out" || fail "suggested policy: nginx -> db:5432"
expect 0 "$B" trace -p "$tmp/suggested.yaml" --inventory tests/fixtures/three-tier.json nginx db 5433/tcp
grep -q "^denied" "$tmp/out" || fail "suggested policy allows more than asked"
expect 0 "$B" trace -p "$tmp/suggested.yaml" --inventory tests/fixtures/three-tier.json backend 198.51.100.7 443/tcp
grep -q "^allowed" "$tmp/out" || fail "suggested policy: backend -> 198.51.100.7:443"

# a damaged log: each unreadable line named FILE:LINE on stderr, counted
# by --summary, the rest read, exit 0
{ head -2 "$D"; printf '{"ts":"2026-11-22T16:0\n\n{"no":"verdict"}\n'; sed -n '3,$p' "$D"; } >"$tmp/damaged.jsonl"
expect 0 "$B" denials --log "$tmp/damaged.jsonl"
[ "$(grep -c ' denied ' "$tmp/out")" -eq 5 ] || fail "denials of a damaged log: not the 5 records"
for n in 3 4 5; do
	grep -qx "$tmp/damaged.jsonl:$n: warning: not a flow record, skipped" "$tmp/err" || { cat "$tmp/err"; fail "line $n of the damaged log is not named"; }
done
[ "$(wc -l <"$tmp/err")" -eq 3 ] || { cat "$tmp/err"; fail "warnings for lines that are records"; }
expect 0 "$B" flows --log "$tmp/damaged.jsonl" --summary
grep -q "^3 unreadable lines skipped" "$tmp/out" || { cat "$tmp/out"; fail "flows --summary does not count the unreadable lines"; }
cp "$tmp/damaged.jsonl" "$tmp/rot.jsonl.1"
head -1 "$D" >"$tmp/rot.jsonl"
expect 0 "$B" denials --log "$tmp/rot.jsonl" --json
grep -qx "$tmp/rot.jsonl.1:4: warning: not a flow record, skipped" "$tmp/err" || { cat "$tmp/err"; fail "a rotated file's damaged line is not named by its file"; }

# --follow: records appended later, and the file rotated under it
head -1 "$D" >"$tmp/live.jsonl"
"$B" denials --log "$tmp/live.jsonl" --follow --json >"$tmp/followed" 2>&1 &
follower=$!
sleep 0.5
sed -n 3p "$D" >>"$tmp/live.jsonl"
sleep 0.5
mv "$tmp/live.jsonl" "$tmp/live.jsonl.1"
sed -n 5p "$D" >"$tmp/live.jsonl"
sleep 0.7
kill "$follower"
wait "$follower" 2>/dev/null || true
[ "$(wc -l <"$tmp/followed")" -eq 3 ] || { cat "$tmp/followed"; fail "denials --follow: want 3 records"; }
grep -q '"port":9999' "$tmp/followed" && grep -q '"198.51.100.7"' "$tmp/followed" || fail "denials --follow missed one"

# the graph, rendered by Graphviz
expect 0 "$B" graph -p policies/three-tier.yaml --inventory tests/fixtures/three-tier.json --denials "$D"
grep -q '^  "nginx" -> "backend" \[label="8080/tcp, 8125/udp"\];$' "$tmp/out" || fail "graph: an allowed edge"
grep -q '^  "nginx" -> "db" \[color=red.*label="5432/tcp (2 denied)"\];$' "$tmp/out" || fail "graph: a denied pair"
grep -q '"container stray" -> "backend"' "$tmp/out" || fail "graph: the unmatched container"
grep -q '"nginx" \[label="nginx\\n1 container"\]' "$tmp/out" || fail "graph: container counts"
dot -Tsvg "$tmp/out" >"$tmp/g.svg" || fail "dot cannot render the graph"
grep -q "<svg" "$tmp/g.svg" || fail "dot made no svg"
echo "ok: cli"
