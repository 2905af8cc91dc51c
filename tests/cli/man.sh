#!/usr/bin/env bash
# The man page is generated from each command's --help: it must match.
. "$(dirname "$0")/lib.sh"
"$REFSCAN_TOP/scripts/gen-man" "$REFSCAN_BIN" "$T/refscan.1"
if cmp -s "$T/refscan.1" "$REFSCAN_TOP/docs/refscan.1"; then
	ok "docs/refscan.1 matches the commands' --help"
else
	not_ok "docs/refscan.1 is out of date: run scripts/gen-man ./refscan"
	diff "$REFSCAN_TOP/docs/refscan.1" "$T/refscan.1" | head -20
fi
for c in $("$REFSCAN_BIN" --help | sed -n 's/^  \([a-z]\+\) .*/\1/p'); do
	run "$REFSCAN_BIN" "$c" --help
	expect_rc 0 "$c --help exits 0"
	expect_grep "$out" "^usage: refscan $c" "$c --help prints its usage on stdout"
	run "$REFSCAN_BIN" "$c" --no-such-option
	expect_rc 64 "$c with an unknown option is a usage error"
done
if command -v man >/dev/null; then
	run man -l "$REFSCAN_TOP/docs/refscan.1"
	expect_rc 0 "man renders the page"
	expect_no_grep "$errf" "warning|error" "man renders without warnings"
fi
finish
