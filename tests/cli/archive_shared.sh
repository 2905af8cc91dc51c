#!/usr/bin/env bash
# The archive on real third-party files (../shared/data/conformance):
# every scan file is either stored or reported as failed, exactly the
# files tests/data/conformance-expected.tsv lists fail, exactly those
# -undescribable.tsv lists are stored without descriptors (one warning
# each, out of the search index), and everything stored extracts
# byte-identical.  Skipped when the data is absent.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive-lib.bash"

D=${REFSCAN_SHARED_DATA:-}/conformance
if [ -z "${REFSCAN_SHARED_DATA:-}" ] || [ ! -d "$D" ]; then
	echo "SKIP - ${REFSCAN_SHARED_DATA:-../shared/data}/conformance is absent"
	exit 0
fi
R=$REFSCAN_BIN
EXPECTED=$REFSCAN_TOP/tests/data/conformance-expected.tsv
# files that read but cannot be described: stored without descriptors
UNDESCRIBABLE=$REFSCAN_TOP/tests/data/conformance-undescribable.tsv

n_scans=$(find "$D" -type f | grep -ciE '\.(ply|obj|stl|off|coff|noff|stoff|4off|pcd|xyz|pts)$')
run "$R" index --archive "$A" --json "$D"
expect_rc 1 "conformance data: stored, with some files rejected"
n_added=$(jqv "$out" .added)
n_failed=$(jqv "$out" '.failed | length')
expect_eq "$((n_added + n_failed))" "$n_scans" "every scan file is stored or reported ($n_added + $n_failed)"
jq -r '.failed[].archive_path | sub("^conformance/"; "")' "$out" | sort >"$T/failed"
grep -v '^#' "$EXPECTED" | cut -f1 | sort >"$T/expected"
expect_eq "$(diff "$T/failed" "$T/expected" && echo same)" same "exactly the expected files are rejected"
expect_eq "$(jq '[.failed[] | select(.error.message | length > 0)] | length' "$out")" "$n_failed" \
	"each rejection says why"
M=$A/versions/00000001.json
expect_eq "$(jq -r '[.entries[].path] | map(sub("^conformance/"; "")) | .[]' "$M" | sort | comm -12 - "$T/expected" | wc -l)" 0 \
	"no rejected file reaches the archive"

# the undescribable ones: stored, one warning each saying why, no descriptors
grep -v '^#' "$UNDESCRIBABLE" | awk -F '\t' '{ print $1 "\tnot searchable: " $3 ", a descriptor needs 16" }' | sort >"$T/undesc"
n_undesc=$(wc -l <"$T/undesc")
jq -r '.warnings[] | [(.archive_path | sub("^conformance/"; "")), .message] | @tsv' "$out" | sort >"$T/warned"
expect_eq "$(diff "$T/warned" "$T/undesc" && echo same)" same "exactly the $n_undesc undescribable files are warned about, with their point counts"
expect_eq "$(jq '[.warnings[] | select(.code == "undescribable")] | length' "$out")" "$n_undesc" "each with the code undescribable"
expect_eq "$(grep -c ': warning: not searchable: ' "$errf")" "$n_undesc" "one warning line each on stderr"
jq -r '.entries[] | select(.undescribable) | [(.path | sub("^conformance/"; "")), "not searchable: " + .undescribable.reason] | @tsv' "$M" |
	sort >"$T/marked"
expect_eq "$(diff "$T/marked" "$T/undesc" && echo same)" same "they are in the manifest, marked undescribable"
expect_eq "$(jq '[.entries[] | select(.undescribable) | select(.descriptors != null)] | length' "$M")" 0 \
	"without descriptors"
n_desc=$(jq '[.entries[] | select(.descriptors)] | length' "$M")
expect_eq "$n_desc" "$((n_added - n_undesc))" "every other stored scan has descriptors ($n_desc)"

# and they are not in the search index
sculpt=$(jq -r '.entries[] | select(.descriptors) | .source' "$M" | head -1)
run "$R" query --archive "$A" --json -k 10000 "$sculpt"
expect_eq "$(jqv "$out" .references)" "$n_desc" "the search index holds the $n_desc scans with descriptors"
jq -r '.results[].archive_path | sub("^conformance/"; "")' "$out" | sort >"$T/found"
expect_eq "$(wc -l <"$T/found")" "$n_desc" "a query for all of them returns each"
expect_eq "$(cut -f1 "$T/undesc" | comm -12 - "$T/found" | wc -l)" 0 "and none of the undescribable ones"

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
expect_eq "$(cut -f1 "$T/undesc" | while IFS= read -r p; do cmp -s "$T/x/conformance/$p" "$D/$p" && echo same; done | wc -l)" \
	"$n_undesc" "the $n_undesc undescribable ones among them"
run "$R" index --archive "$A" --json "$D"
expect_rc 2 "re-run: known failures, nothing to commit"
expect_eq "$(jq -c '[.committed, ([.failed[] | select(.known)] | length), (.warnings | length)]' "$out")" "[false,$n_failed,0]" \
	"unchanged broken files are not read again, stored undescribable ones not warned about again"
finish
