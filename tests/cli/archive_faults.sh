#!/usr/bin/env bash
# Crash safety: REFSCAN_FAULT=<step> kills refscan (SIGKILL) at each step
# of a commit and of a prune.  Afterwards the archive must verify, HEAD
# must be exactly the old or the new version, and the next run must
# complete and leave no leftovers.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive-lib.bash"

R=$REFSCAN_BIN
L=$T/lib

# run a command that is expected to be killed, without the shell's
# "Killed" report
crash_run() {
	out=$T/out errf=$T/err
	"$@" >"$out" 2>"$errf" &
	wait $! 2>/dev/null
	rc=$?
}

# The files an archive should hold: HEAD's versions and volumes only.
expected_files() {
	{
		jq -r '(.versions[] | "versions/\(. | tostring | ("00000000" + .)[-8:]).json"),
		       (.volumes[] | "volumes/\(. | tostring | ("00000000" + .)[-8:]).tar.zst",
				     "volumes/\(. | tostring | ("00000000" + .)[-8:]).idx.json")' "$1/HEAD"
		# each version's search index file, named by its manifest
		for v in $(jq -r '.versions[] | tostring | ("00000000" + .)[-8:]' "$1/HEAD"); do
			jq -r '.index.file // empty | "versions/" + .' "$1/versions/$v.json"
		done
	} | sort
}
actual_files() {
	(cd "$1" && find versions volumes tmp -type f | sort)
}

# check_state ARCHIVE WANT_VERSION SNAPSHOT_DIR LABEL
check_state() {
	local a=$1 want=$2 snapdir=$3 what=$4
	run "$R" verify --archive "$a" --all --quiet
	expect_rc 0 "$what: verify --all passes"
	expect_eq "$(jq -r .version "$a/HEAD")" "$want" "$what: HEAD is version $want"
	rm -rf "$T/x"
	run "$R" extract --archive "$a" --to "$T/x" -q
	if [ "$rc" -eq 0 ] && same_tree "$T/x" "$snapdir"; then ok "$what: HEAD extracts byte-identical"
	else not_ok "$what: HEAD extract (exit $rc) differs"; fi
}

make_library "$L"
"$R" index --archive "$T/base" -q "$L" || not_ok "base index"
mkdir -p "$T/snap1" && cp -a "$L" "$T/snap1/lib"
# the change every faulted run tries to commit
mkply "$L/stone/granite.ply" 16 77
mkply "$L/metal/brass.ply" 7 78 tex.png
mkbytes "$L/metal/tex.png" 16 79
rm "$L/fabric/weave.ply"
mkdir -p "$L/broken" && printf 'ply\nbroken\n' >"$L/broken/bad.ply"
mkdir -p "$T/snap2" && cp -a "$L" "$T/snap2/lib" && rm -r "$T/snap2/lib/broken"

steps_before="volume-partial volume-written volume-synced volume-renamed volume-published index-written
	manifest-written manifest-renamed head-written"
steps_after="head-renamed committed failures-written failures-renamed statcache-written statcache-renamed"
for step in $steps_before $steps_after; do
	a=$T/a-$step
	cp -a "$T/base" "$a"
	REFSCAN_FAULT=$step crash_run "$R" index --archive "$a" -q "$L"
	expect_rc 137 "index killed at $step"
	case " $steps_after " in
	*" $step "*) check_state "$a" 2 "$T/snap2" "after a crash at $step" ;;
	*) check_state "$a" 1 "$T/snap1" "after a crash at $step" ;;
	esac
	run "$R" index --archive "$a" --json "$L"
	case " $steps_after " in
	*" $step "*) expect_rc 2 "$step: the next run completes (one broken scan, nothing left to commit)" ;;
	*) expect_rc 1 "$step: the next run completes (one broken scan)" ;;
	esac
	check_state "$a" 2 "$T/snap2" "$step: after the re-run"
	expect_eq "$(actual_files "$a")" "$(expected_files "$a")" "$step: leftovers cleaned, nothing else removed"
	expect_eq "$(jq -r '.failed | length' "$a/failures.json")" 1 "$step: failure cache holds the broken scan"
done

# ---- prune ------------------------------------------------------------
# version 2 leaves volume 1 partly used once version 1 is dropped
p=$T/p-base
cp -a "$T/a-committed" "$p"
for step in volume-partial volume-written volume-synced volume-renamed volume-published \
	prune-volumes-written head-written head-renamed prune-head-switched; do
	a=$T/p-$step
	cp -a "$p" "$a"
	REFSCAN_FAULT=$step crash_run "$R" prune --archive "$a" --keep-last 1
	expect_rc 137 "prune killed at $step"
	case $step in
	head-renamed | prune-head-switched) want='[2]' ;;
	*) want='[1,2]' ;;
	esac
	expect_eq "$(jq -c .versions "$a/HEAD")" "$want" "$step: versions are the old or the pruned set"
	check_state "$a" 2 "$T/snap2" "prune crash at $step"
	run "$R" prune --archive "$a" --keep-last 1 --json
	expect_rc 0 "$step: prune runs again"
	expect_eq "$(jq -c .versions "$a/HEAD")" '[2]' "$step: pruned"
	check_state "$a" 2 "$T/snap2" "$step: after the re-run"
	expect_eq "$(actual_files "$a")" "$(expected_files "$a")" "$step: no leftovers"
done
run "$R" prune --archive "$T/p-prune-volumes-written" --keep-last 1
expect_grep "$out" "^nothing to prune" "a second prune has nothing to do"
expect_eq "$(tar --zstd -tf "$T/p-head-written/volumes/00000003.tar.zst" | wc -l)" \
	"$(jq '.blobs | length' "$T/p-head-written/volumes/00000003.idx.json")" "rewritten volume lists with tar"

finish
