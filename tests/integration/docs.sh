#!/bin/sh
# The documentation holds together: every relative link in README.md and
# docs/ resolves (the file, and the heading an anchor names), and every
# command they name in code exists (`bulkhead X --help` answers).
set -eu
cd "$(dirname "$0")/../.."
B=${BULKHEAD:-./bulkhead}
fail() { echo "FAIL: $*"; exit 1; }

# GitHub's anchor of each heading of a file
anchors() {
	grep -E '^#+ ' "$1" | sed -E 's/^#+ //' | tr 'A-Z' 'a-z' |
		sed -E 's/[^a-z0-9 _-]//g; s/ /-/g'
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
# inline links (file, link), one per line
for f in README.md docs/*.md; do
	grep -oE '\]\([^)]+\)' "$f" | sed -E "s|^\]\(|$f |; s|\)\$||"
done >"$tmp"
links=0
while read -r f l; do
	case "$l" in
	http://* | https://* | mailto:*) continue ;;
	esac
	path=${l%%#*}
	anchor=
	case "$l" in *'#'*) anchor=${l#*#} ;; esac
	target=$f
	if [ -n "$path" ]; then
		target=$(dirname "$f")/$path
		[ -e "$target" ] || fail "$f: link to $l: no such file"
	fi
	if [ -n "$anchor" ]; then
		anchors "$target" | grep -qx -- "$anchor" || fail "$f: link to $l: no heading #$anchor in $target"
	fi
	links=$((links + 1))
done <"$tmp"
[ "$links" -ge 20 ] || fail "only $links relative links found"

# commands named in code: `bulkhead X ...` in code spans and code blocks
cmds=$(awk '/^ *```/ { code = !code; next }
	code { if (match($0, /^ *(\$ )?bulkhead [a-z-]+/)) print substr($0, RSTART, RLENGTH); next }
	{ s = $0; while (match(s, /`bulkhead [a-z-]+/)) { print substr(s, RSTART + 1, RLENGTH - 1); s = substr(s, RSTART + RLENGTH) } }' \
	README.md docs/*.md | sed -E 's/^ *(\$ )?bulkhead //' | sort -u)
n=0
for c in $cmds; do
	case "$c" in
	--*) "$B" "$c" >/dev/null 2>&1 || fail "the docs name 'bulkhead $c', which fails" ;;
	*) "$B" "$c" --help >/dev/null 2>&1 || fail "the docs name 'bulkhead $c', which is no command" ;;
	esac
	n=$((n + 1))
done
[ "$n" -ge 10 ] || fail "only $n commands found in the docs: $cmds"
# the first policy's outputs on the front page are what the commands print
inv=tests/fixtures/three-tier.json
"$B" trace -p policies/first.yaml --inventory $inv nginx db 5432/tcp >"$tmp" 2>/dev/null || true
[ -s "$tmp" ] || fail "trace of policies/first.yaml printed nothing"
while IFS= read -r line; do
	grep -qxF -- "$line" README.md || fail "README.md's trace differs from what trace prints: $line"
done <"$tmp"
"$B" plan -p policies/first.yaml --inventory $inv >"$tmp" 2>/dev/null
sed -n '/^\$ bulkhead plan/,/^```/p' README.md | grep "$(printf '^\t')" | while IFS= read -r line; do
	grep -qxF -- "$line" "$tmp" || { echo "FAIL: README.md's plan is not what plan prints: $line"; exit 1; }
done
"$B" denials --log tests/fixtures/denied.jsonl --summary >"$tmp"
sed -n '/^\$ bulkhead denials/,/^```/p' README.md | grep -v '^\$\|^```' | while IFS= read -r line; do
	grep -qxF -- "$line" "$tmp" || { echo "FAIL: README.md's denials summary is not what denials prints: $line"; exit 1; }
done

# and the front page stays short
[ "$(wc -l <README.md)" -lt 250 ] || fail "README.md is $(wc -l <README.md) lines (under 250)"
echo "ok: docs: $links relative links resolve, the $n commands they name exist, README.md $(wc -l <README.md) lines"
