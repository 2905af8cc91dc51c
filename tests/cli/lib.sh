# tests/cli/lib.sh - helpers for command-line tests (sourced).
# Each test: run a command, check its exit status, stdout and stderr.
set -u
: "${REFSCAN_BIN:?run through make test}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
n_ok=0 n_fail=0
name=$(basename "$0" .sh)

ok() { n_ok=$((n_ok + 1)); echo "ok   - $*"; }
not_ok() { n_fail=$((n_fail + 1)); echo "FAIL - $*"; }

# run CMD...: sets $rc, $out (stdout file), $errf (stderr file)
run() {
	out=$T/out errf=$T/err
	"$@" >"$out" 2>"$errf"
	rc=$?
}

expect_rc() { # expect_rc WANT DESCRIPTION
	if [ "$rc" -eq "$1" ]; then ok "$2 (exit $rc)"; else
		not_ok "$2: exit $rc, want $1"; sed 's/^/    stderr: /' "$errf" | head -5; fi
}

expect_grep() { # expect_grep FILE REGEX DESCRIPTION
	if grep -Eq -- "$2" "$1"; then ok "$3"; else
		not_ok "$3: no /$2/ in $(basename "$1")"; sed 's/^/    /' "$1" | head -10; fi
}

expect_no_grep() {
	if grep -Eq -- "$2" "$1"; then not_ok "$3: found /$2/"; sed 's/^/    /' "$1" | head -5; else ok "$3"; fi
}

expect_eq() { # expect_eq GOT WANT DESCRIPTION
	if [ "$1" = "$2" ]; then ok "$3"; else not_ok "$3: got '$1', want '$2'"; fi
}

finish() {
	echo "$name: $n_ok passed, $n_fail failed"
	[ "$n_fail" -eq 0 ]
}
