#!/usr/bin/env bash
# Scans that read fine but are too thin to describe (a point-only OBJ,
# an empty STL), in a library next to normal scans: stored in the
# version like any other scan (bytes, manifest entry, counted as added)
# without descriptors, warned about once by the run that stores them,
# never a search result; query, extract, verify, log, diff, reindex and
# prune handle them, and a scan that fails to read still fails.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive-lib.bash"

R=$REFSCAN_BIN
L=$T/lib
make_library "$L"
mkdir -p "$L/odd"
# five vertices and one face whose corners lie on a line: no area, so the
# five points are all there is, and a descriptor needs 16
printf 'v 0 0 0\nv 1 0 0\nv 2 0 0\nv 0 0 1\nv 1 1 1\nf 1 2 3\n' >"$L/odd/line.obj"
printf 'solid empty\nendsolid empty\n' >"$L/odd/empty.stl"
W_LINE="refscan: $L/odd/line.obj: warning: not searchable: 5 usable points, a descriptor needs 16"
W_EMPTY="refscan: $L/odd/empty.stl: warning: not searchable: 0 usable points, a descriptor needs 16"

# ---- index: stored, counted, warned once, exit 0 ----------------------
run "$R" index --archive "$A" --json "$L"
expect_rc 0 "scans too thin to describe are no failure"
expect_eq "$(jq -c '[.version, .committed, .added, (.failed|length), (.warnings|length)]' "$out")" \
	'[1,true,7,0,2]' "all 7 scans added, none failed, 2 warnings"
expect_eq "$(jq -c '.warnings[0]' "$out")" \
	"{\"path\":\"$L/odd/empty.stl\",\"archive_path\":\"lib/odd/empty.stl\",\"code\":\"undescribable\",\"message\":\"not searchable: 0 usable points, a descriptor needs 16\"}" \
	"JSON: the warning names the file, its archive path, a code and why"
expect_eq "$(jq -r '.warnings[1] | [.archive_path, .message] | @tsv' "$out")" \
	"$(printf 'lib/odd/line.obj\tnot searchable: 5 usable points, a descriptor needs 16')" "and the other one"
expect_eq "$(grep -cFx "$W_LINE" "$errf")" 1 "stderr: the warning for the point-only OBJ, exactly once"
expect_eq "$(grep -cFx "$W_EMPTY" "$errf")" 1 "stderr: the warning for the empty STL, exactly once"
expect_eq "$(wc -l <"$errf")" 2 "and nothing else on stderr"

M1=$A/versions/00000001.json
expect_eq "$(jqv "$M1" .format_version)" 1.1 "manifest format 1.1"
expect_eq "$(jq -c '.counts | [.entries, .added, .failed]' "$M1")" '[7,7,0]' "manifest counts: 7 entries, 7 added"
expect_eq "$(jq -c '.entries[] | select(.path=="lib/odd/line.obj") | [.format, .stats.vertices, .stats.faces, .since, .descriptors, .undescribable]' "$M1")" \
	'["obj",5,1,1,null,{"schema":"refscan-desc-7","reason":"5 usable points, a descriptor needs 16"}]' \
	"entry without descriptors, marked undescribable with its reason"
expect_eq "$(jq -c '[.entries[] | select(.undescribable) | .path]' "$M1")" '["lib/odd/empty.stl","lib/odd/line.obj"]' \
	"exactly the two thin scans are marked"
expect_eq "$(jq '[.entries[] | select(.descriptors.schema == "refscan-desc-7" and (has("undescribable") | not))] | length' "$M1")" 5 \
	"the 5 others have descriptors and no mark"
h=$(sha256sum "$L/odd/line.obj" | cut -c1-64)
expect_eq "$(jq -r '.entries[] | select(.path=="lib/odd/line.obj") | .blob' "$M1")" "$h" "the entry's blob is the file's sha-256"
expect_eq "$(jq --arg h "$h" '[.blobs[][0] | select(. == $h)] | length' "$A/volumes/00000001.idx.json")" 1 \
	"and its bytes are in the new volume"

# ---- query: references are the scans with descriptors -----------------
run "$R" query --archive "$A" --json -k 10 "$L/stone/granite.ply"
expect_rc 0 "query works beside thin scans"
expect_eq "$(jq -c '[.references, (.results | length), ([.results[].archive_path | select(startswith("lib/odd/"))] | length)]' "$out")" \
	'[5,5,0]' "5 references; the thin scans are never results"
expect_eq "$(jqv "$out" '.results[0].archive_path')" lib/stone/granite.ply "the scan itself ranks first"
expect_no_grep "$errf" "reindex|no descriptor" "no advice to reindex scans that cannot be described"
run "$R" query --archive "$A" "$L/stone/granite.ply"
expect_grep "$out" "version 1, 5 references" "text: 5 references"

# ---- extract, verify ------------------------------------------------
run "$R" extract --archive "$A" --to "$T/x" lib/odd
expect_rc 0 "extract the thin scans"
expect_eq "$(cmp "$T/x/lib/odd/line.obj" "$L/odd/line.obj" && cmp "$T/x/lib/odd/empty.stl" "$L/odd/empty.stl" && echo same)" \
	same "restored byte-identical"
run "$R" verify --archive "$A" --json
expect_rc 0 "verify passes"
expect_eq "$(jq -c '[.ok, .blobs_checked]' "$out")" '[true,16]' \
	"16 blobs checked: 7 scans, 2 textures, 2 sidecars, 5 descriptors"

# ---- unchanged re-runs: no version, no second warning -----------------
run "$R" index --archive "$A" --json "$L"
expect_rc 0 "unchanged re-run"
expect_eq "$(jq -c '[.committed, .version, .unchanged, (.warnings|length)]' "$out")" '[false,1,7,0]' \
	"nothing committed, nothing warned: the scans were reported when stored"
expect_eq "$(wc -c <"$errf")" 0 "stderr is empty"
rm "$A/statcache.json"
run "$R" index --archive "$A" --json "$L"
expect_eq "$(jq -c '[.committed, .unchanged, (.warnings|length)]' "$out")" '[false,7,0]' \
	"the same from the full manifest: not described again"
run "$R" index --archive "$A" "$L"
expect_grep "$out" "^no changes; version 1 is current: 0 added, 0 changed, 0 removed, 7 unchanged, 0 failed$" \
	"text summary"
expect_eq "$(wc -c <"$errf")" 0 "and no warning"

# ---- a changed thin scan is stored again and warned about again ------
printf 'v 0 0 0\nv 1 0 0\nv 2 0 0\n' >"$L/odd/line.obj"
run "$R" index --archive "$A" --json "$L"
expect_rc 0 "a changed thin scan"
expect_eq "$(jq -c '[.version, .changed, (.warnings | map(.message))]' "$out")" \
	'[2,1,["not searchable: 3 usable points, a descriptor needs 16"]]' "stored as a change, one new warning"
expect_eq "$(wc -l <"$errf")" 1 "one line on stderr"

# ---- log, diff ---------------------------------------------------------
run "$R" log --archive "$A" --json
expect_eq "$(jq -sc 'map([.version, .entries, .added, .changed, .failed])' "$out")" '[[2,7,0,1,0],[1,7,7,0,0]]' \
	"log counts them like any scan"
run "$R" diff --archive "$A" 1 2
expect_eq "$(cat "$out")" "$(printf 'M\tlib/odd/line.obj')" "diff shows the change"

# ---- a scan that fails to read still fails ----------------------------
printf 'v 0 0 0\nf 1 2 3\n' >"$L/odd/broken.obj"
run "$R" index --archive "$A" --json "$L"
expect_rc 2 "a broken scan is a failure, as before"
expect_eq "$(jq -c '[.committed, (.failed | map(.archive_path)), (.warnings|length)]' "$out")" \
	'[false,["lib/odd/broken.obj"],0]' "reported as failed, not as a warning"
expect_no_grep "$errf" "warning" "no warning for it"
rm "$L/odd/broken.obj"

# ---- reindex ------------------------------------------------------------
run "$R" reindex --archive "$A" --json
expect_rc 0 "reindex with current descriptors"
expect_eq "$(jq -c '[.committed, .described, .warnings]' "$out")" '[false,0,[]]' \
	"nothing to do: the thin scans are current too"
# as a refscan with a newer descriptor schema sees this archive (sed, not
# jq: jq would round the nanosecond mtimes and every scan would look touched)
H=$A/versions/00000002.json
sed 's/"schema":"refscan-desc-7"/"schema":"refscan-desc-0"/g' "$H" >"$T/m.json" && cp "$T/m.json" "$H"
expect_eq "$(jq '[.entries[] | (.descriptors // .undescribable).schema | select(. == "refscan-desc-0")] | length' "$H")" 7 \
	"every entry now has an older schema"
run "$R" reindex --archive "$A" --json
expect_rc 0 "reindex after a schema change"
expect_eq "$(jq -c '[.version, .committed, .described, .failed, (.warnings | map(.path))]' "$out")" \
	'[3,true,7,0,["lib/odd/empty.stl","lib/odd/line.obj"]]' "all described again; the thin ones warned about"
expect_eq "$(grep -c ': warning: not searchable: ' "$errf")" 2 "two warnings on stderr"
M3=$A/versions/00000003.json
expect_eq "$(jq -c '[.entries[] | select(.undescribable.schema == "refscan-desc-7") | .path]' "$M3")" \
	'["lib/odd/empty.stl","lib/odd/line.obj"]' "marked with the current schema"
run "$R" query --archive "$A" --json -k 10 "$L/stone/granite.ply"
expect_eq "$(jq -c '[.version, .references]' "$out")" '[3,5]' "the reindexed version answers with 5 references"
run "$R" index --archive "$A" --json "$L"
expect_eq "$(jq -c '[.committed, (.warnings|length)]' "$out")" '[false,0]' "index after reindex: nothing to do"

# ---- prune ---------------------------------------------------------------
run "$R" prune --archive "$A" --keep-last 1
expect_rc 0 "prune to the last version"
run "$R" verify --archive "$A" --all --quiet
expect_rc 0 "the pruned archive verifies"
rm -rf "$T/x"
run "$R" extract --archive "$A" --to "$T/x" -q
if [ "$rc" -eq 0 ] && same_tree "$T/x/lib" "$L"; then ok "HEAD extracts byte-identical to the library"
else not_ok "extract after prune (exit $rc)"; fi

# ---- an archive of thin scans only -----------------------------------
mkdir -p "$T/only"
cp "$L/odd/empty.stl" "$T/only/"
run "$R" index --archive "$T/a2" "$T/only"
expect_rc 0 "an archive of one thin scan"
run "$R" query --archive "$T/a2" "$L/stone/granite.ply"
expect_rc 66 "query: nothing to search"
expect_grep "$errf" "version 1 has nothing to search: its 1 scan cannot be described" "and says why"
run "$R" reindex --archive "$T/a2" --json
expect_eq "$(jq -c '[.committed, .described]' "$out")" '[false,0]' "reindex has nothing to do"
finish
