#!/usr/bin/env bash
# The archive on real third-party files (../shared/data/conformance):
# every scan file is either stored or reported as failed, exactly the
# files tests/data/conformance-expected.tsv and -undescribable.tsv list
# fail, and everything stored extracts byte-identical.  Skipped when the data is absent.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive-lib.bash"

D=${REFSCAN_SHARED_DATA:-}/conformance
if [ -z "${REFSCAN_SHARED_DATA:-}" ] || [ ! -d "$D" ]; then
	echo "SKIP - ${REFSCAN_SHARED_DATA:-../shared/data}/conformance is absent"
	exit 0
fi
R=$REFSCAN_BIN
EXPECTED=$REFSCAN_TOP/tests/data/conformance-expected.tsv
# files that read but cannot be described fail too (refscan index describes every scan)
UNDESCRIBABLE=$REFSCAN_TOP/tests/data/conformance-undescribable.tsv

n_scans=$(find "$D" -type f | grep -ciE '\.(ply|obj|stl|off|coff|noff|stoff|4off|pcd|xyz|pts)$')
run "$R" index --archive "$A" --json "$D"
expect_rc 1 "conformance data: stored, with some files rejected"
n_added=$(jqv "$out" .added)
n_failed=$(jqv "$out" '.failed | length')
expect_eq "$((n_added + n_failed))" "$n_scans" "every scan file is stored or reported ($n_added + $n_failed)"
jq -r '.failed[].archive_path | sub("^conformance/"; "")' "$out" | sort >"$T/failed"
cat "$EXPECTED" "$UNDESCRIBABLE" | grep -v '^#' | cut -f1 | sort >"$T/expected"
expect_eq "$(diff "$T/failed" "$T/expected" && echo same)" same "exactly the expected files are rejected"
expect_eq "$(jq '[.failed[] | select(.error.message | length > 0)] | length' "$out")" "$n_failed" \
	"each rejection says why"
M=$A/versions/00000001.json
expect_eq "$(jq -r '[.entries[].path] | map(sub("^conformance/"; "")) | .[]' "$M" | sort | comm -12 - "$T/expected" | wc -l)" 0 \
	"no rejected file reaches the archive"

run "$R" verify --archive "$A" --all --quiet
expect_rc 0 "verify passes"
run "$R" extract --archive "$A" --to "$T/x" -q
expect_rc 0 "extract restores everything"
bad=0 n=0
while IFS= read -r p; do
	n=$((n + 1))
	cmp -s "$T/x/$p" "$D/${p#conformance/}" || { bad=$((bad + 1)); echo "    differs: $p"; }
done < <(jq -r '.entries[] | .path, (.files[] | select(.missing | not) | .path)' "$M" | sort -u)
expect_eq "$bad" 0 "all $n restored files byte-identical (cmp) to the originals"
run "$R" index --archive "$A" --json "$D"
expect_rc 2 "re-run: known failures, nothing to commit"
expect_eq "$(jq -c '[.committed, ([.failed[] | select(.known)] | length)]' "$out")" "[false,$n_failed]" \
	"unchanged broken files are not read again"
finish
