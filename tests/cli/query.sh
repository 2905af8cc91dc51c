#!/usr/bin/env bash
# refscan query end to end on generated scans: index a small library,
# query with perturbed copies (rigid + scaled, noisy, decimated,
# point-sampled, cropped) and expect the original at rank 1; filters,
# weights on a constructed case, --explain, --extract byte-identical,
# the JSON shape, bad input and exit codes, an old version after newer
# commits, and reindex.
. "$(dirname "$0")/lib.sh"

R=$REFSCAN_BIN
G=$REFSCAN_BUILD/scangen
P=$REFSCAN_BUILD/perturb
for tool in "$G" "$P"; do
	if [ ! -x "$tool" ]; then
		echo "SKIP: $tool not built (make build-tests)"
		exit 0
	fi
done
A=$T/archive
L=$T/lib
S=$T/sculpts
mkdir -p "$S"

# ---- a library of 12 mixed scans (forms, materials, colour, formats) --
"$G" --library "$L" --count 12 --seed 3 --triangles 4000 -q || not_ok "scangen library"
run "$R" index --archive "$A" --json "$L"
expect_rc 0 "index the library"
expect_eq "$(jq -c '[.version, .added, (.failed|length)]' "$out")" '[1,12,0]' "12 scans in version 1"
M1=$A/versions/00000001.json
expect_eq "$(jq '[.entries[] | select(.descriptors.schema == "refscan-desc-7")] | length' "$M1")" 12 \
	"every entry has a descriptor of the current schema"
expect_eq "$(jq -r '.index.file + " " + .index.schema' "$M1")" "00000001.index refscan-index-1" \
	"the version names its search index"
expect_eq "$(jq -r '[.entries[] | select(.path | endswith("bark-blob.ply")) | .stats.descriptor.flags | index("colour") != null] | .[0]' "$M1")" \
	true "a vertex-coloured scan is described with its colour"

# ---- perturbed sculpts find their original at rank 1 -------------------
"$P" --rigid --scale 1.3 --seed 7 "$L/006-wood-limb.obj" "$S/limb-rigid.obj"
"$P" --rigid --scale 0.7 --seed 8 "$L/008-knit-panel.ply" "$S/knit-rigid.obj"
"$P" --noise 0.05 --seed 7 "$L/002-bark-blob.ply" "$S/blob-noisy.ply"
"$P" --decimate 2.5 "$L/001-skin-panel.stl" "$S/panel-decimated.ply"
"$P" --points 4000 --seed 7 "$L/003-fabric-trunk.obj" "$S/trunk-points.ply"
"$P" --crop 0.8 --seed 7 "$L/007-leather-tile.ply" "$S/tile-cropped.ply"
run "$R" query --archive "$A" --json -k 3 "$S/limb-rigid.obj" "$S/knit-rigid.obj" "$S/blob-noisy.ply" \
	"$S/panel-decimated.ply" "$S/trunk-points.ply" "$S/tile-cropped.ply"
expect_rc 0 "six sculpts answered in one run"
expect_eq "$(jq -r '.results[0].path' "$out" | tr '\n' ' ')" \
	"006-wood-limb.obj 008-knit-panel.ply 002-bark-blob.ply 001-skin-panel.stl 003-fabric-trunk.obj 007-leather-tile.ply " \
	"rank 1: rotated+scaled, rotated+scaled, noisy, decimated, point-sampled, cropped"
expect_eq "$(jq -s '[.[] | .results[0].score > .results[1].score] | all' "$out")" true \
	"rank 1 scores above rank 2"
# one scanner position: the side that faces it, the same bytes for the same seed
"$P" --view --seed 7 "$L/002-bark-blob.ply" "$S/blob-view.ply"
"$P" --view --seed 7 "$L/002-bark-blob.ply" "$S/blob-view-again.ply"
expect_eq "$(cmp -s "$S/blob-view.ply" "$S/blob-view-again.ply" && echo same)" same \
	"perturb --view is deterministic"
"$R" info --json "$L/002-bark-blob.ply" > "$T/whole.json"
"$R" info --json "$S/blob-view.ply" > "$T/view.json"
whole=$(jq -r '.faces' "$T/whole.json") seen=$(jq -r '.faces' "$T/view.json")
if [ "$seen" -gt $((whole * 3 / 10)) ] && [ "$seen" -lt $((whole * 6 / 10)) ]; then
	ok "one view of a closed blob keeps $seen of its $whole faces"
else
	not_ok "one view of a closed blob keeps $seen of its $whole faces"
fi

# specks a scanner picked up around the scan are left out: the query is the scan
cp "$out" "$T/six.json"
"$P" --outliers 0.01 --seed 7 "$L/002-bark-blob.ply" "$S/blob-specks.ply"
"$R" info --json "$S/blob-specks.ply" > "$T/specks.json"
added=$(( $(jq -r '.faces' "$T/specks.json") - whole ))
run "$R" describe --json "$S/blob-specks.ply"
expect_eq "$(jq -r '.specks' "$out")" "$added" "describe counts the $added speck faces it left out"
run "$R" query --archive "$A" --json -k 1 "$S/blob-specks.ply"
expect_eq "$(jq -r '.results[0].path' "$out")" 002-bark-blob.ply "a scan with specks finds itself"
"$P" --holes 0.1 --seed 7 "$L/002-bark-blob.ply" "$S/blob-holes.ply"
run "$R" query --archive "$A" --json -k 1 "$S/blob-holes.ply"
expect_eq "$(jq -r '.results[0].path' "$out")" 002-bark-blob.ply "a scan with holes finds its reference"
run "$P" --graded 3 "$L/002-bark-blob.ply" "$S/graded.ply"
expect_rc 64 "perturb --graded needs --points"
"$P" --points 4000 --graded 10 --seed 7 "$L/003-fabric-trunk.obj" "$S/trunk-graded.ply"
"$R" info --json "$S/trunk-graded.ply" > "$T/graded.json"
expect_eq "$(jq -r '.faces' "$T/graded.json")" 0 "a graded cloud has no faces"
cp "$T/six.json" "$out"

# ---- JSON shape ----------------------------------------------------------
expect_eq "$(jq -s 'length' "$out")" 6 "one JSON line per sculpt"
expect_eq "$(jq -sc '[.[0] | keys_unsorted[]]' "$out")" \
	'["query","version","references","search","exact","colour","noise","candidates","notes","results"]' "sculpt keys"
q0=$(jq -sr '.[0].query' "$out")
expect_eq "$(jq -sr '.[0].noise' "$out")" "$("$R" describe --json "$q0" | jq -r .noise)" \
	"the sculpt's noise level is the one describe prints"
expect_eq "$(jq -sc '[.[0].results[0] | keys_unsorted[]]' "$out")" \
	'["rank","path","archive_path","id","score","match","distance","size_mm","format","meta","view"]' "result keys"
expect_eq "$(jq -s '[.[] | .results | length == 3 and (map(.rank) == [1,2,3])] | all' "$out")" true \
	"k results ranked 1..k"
expect_eq "$(jq -s '[.[].results[] | (.score >= 0 and .score <= 100) and .distance >= 0 and (.id | type) == "number"] | all' "$out")" \
	true "scores in 0..100, distances >= 0, numeric ids"
expect_eq "$(jq -s '[.[] | .results | (.[0].match <= .[1].match and .[1].match <= .[2].match)] | all' "$out")" \
	true "results sorted by match"
expect_eq "$(jq -s '[.[] | .results | (.[0].score >= .[1].score and .[1].score >= .[2].score)] | all' "$out")" \
	true "scores fall down the list"
expect_eq "$(jq -s '[.[] | .version] | unique' "$out" | jq -c .)" '[1]' "version reported"
expect_eq "$(jq -s -r '.[1].colour, ([.[1].notes[] | select(test("^the sculpt has no colour"))] | length)' "$out" | tr '\n' ' ')" "false 1 " \
	"a sculpt without colour: colour false and a note"
# noise (docs/search.md): the references whose noise level is unlike the
# sculpt's, beyond what the cleaner side's fine cues tolerate, do not
# compare their fine local radius with it; when they are a quarter of the
# archive or more the query says so.  The levels alone, from the
# manifest, give the most that can be unlike (the tolerance only keeps
# pairs): below a quarter there is no note, and a note never says more.
unlike_pct() { # unlike_pct LEVEL: % of the version's references of unlike levels
	jq --argjson q "$1" '[.entries[] | select(.descriptors) | .stats.descriptor.noise
		| [., 0.01] | max | [., ([$q, 0.01] | max)] | (max / min) > 4]
		| (map(select(.)) | length) * 100 / length | round' "$M1"
}
for i in 0 1 2 3 4 5; do
	lvl=$(jq -s ".[$i].noise" "$out")
	pct=$(unlike_pct "$lvl")
	note=$(jq -s -r ".[$i].notes[] | select(test(\"fine local radius is not compared\"))" "$out")
	said=$(sed -n 's/.* unlike that of \([0-9]*\)% of the references.*/\1/p' <<<"$note")
	if [ -z "$note" ] ||
		{ [ -n "$said" ] && [ "$said" -ge 25 ] && [ "$said" -le "$pct" ]; }; then
		ok "sculpt $i (noise $lvl, levels of $pct% unlike): ${said:+noted $said%}${said:-no note}"
	else
		not_ok "sculpt $i (noise $lvl, levels of $pct% unlike): note '$note'"
	fi
done
# (the tile is sampled every 5.6 mm: 2 mm of noise is 0.35 of that)
"$P" --noise 2 --seed 7 "$L/000-none-tile.ply" "$S/tile-rough.ply"
run "$R" query --archive "$A" -k 1 "$S/tile-rough.ply"
expect_grep "$out" "^  the sculpt's noise level \(0\.[0-9]+\) is unlike that of [0-9]+% of the references: their fine local radius is not compared$" \
	"a noisy sculpt is told whose fine radius it was not compared with"
run "$R" query --archive "$A" -k 1 "$S/knit-rigid.obj"
expect_grep "$errf" "knit-rigid.obj: no colour in the sculpt; ranking without the colour block" \
	"colourless sculpt noted on stderr"
expect_grep "$out" "^ +1 +[0-9.]+ +[0-9.]+ +[0-9.]+ +knit \[textile,panel,textured\] +008-knit-panel.ply$" \
	"table row: rank, score, match, size, material [tags], path"
# a cloud as sparse as a coarse mesh's vertices: its local geometry is not
# the mesh's, so it is left out (and said so); the scan is still found
"$P" --points 300 --seed 7 "$L/003-fabric-trunk.obj" "$S/trunk-sparse.ply"
run "$R" query --archive "$A" --json -k 3 "$S/trunk-sparse.ply"
expect_rc 0 "a sparse cloud is a valid sculpt"
expect_eq "$(jq -r '[.notes[] | select(test("too sparse for local geometry: local block dropped"))] | length' "$out")" 1 \
	"a sparse cloud: local block dropped, in the notes"
expect_eq "$(jq -r '.results[0].path' "$out")" 003-fabric-trunk.obj "a sparse cloud still finds its scan"
run "$R" query --archive "$A" -k 1 "$S/trunk-sparse.ply"
expect_grep "$errf" "trunk-sparse.ply: a point cloud too sparse for local geometry; ranking without the local block" \
	"a sparse cloud noted on stderr"
run "$R" query --archive "$A" --json --surface -k 1 "$S/trunk-sparse.ply"
expect_eq "$(jq -r '[.notes[] | select(test("local block"))] | length' "$out")" 0 \
	"no such note when the search does not use local geometry"

# ---- one side of a scan: found through the reference's views -------------
# what one scanner position sees of each library scan, turned: every one
# finds its scan, most through one of its views (JSON "view" > 0)
found=0 via_view=0
for f in "$L"/0*.ply "$L"/0*.obj "$L"/0*.stl; do
	b=$(basename "$f")
	"$P" --view --rigid --seed 1 "$f" "$T/side.ply" || not_ok "perturb --view $b"
	"$R" query --archive "$A" --json -k 1 "$T/side.ply" >"$T/side.json" 2>/dev/null
	[ "$(jq -r '.results[0].path' "$T/side.json")" = "$b" ] && found=$((found + 1))
	[ "$(jq -r '.results[0].view' "$T/side.json")" -gt 0 ] && via_view=$((via_view + 1))
done
expect_eq "$found" 12 "one scanner position of each of the 12 scans finds it"
expect_eq "$([ "$via_view" -ge 8 ] && echo most)" most "most of them through a view ($via_view of 12)"
"$P" --view --rigid --seed 1 "$L/002-bark-blob.ply" "$T/side.ply"
run "$R" query --archive "$A" --explain -k 1 "$T/side.ply"
expect_grep "$out" "; as seen from view [1-8] \\(along -?[0-9.]+ -?[0-9.]+ -?[0-9.]+\\)$" \
	"explain says which view matched"
run "$R" query --archive "$A" --json --explain -k 1 "$L/002-bark-blob.ply"
expect_eq "$(jq -r '.results[0] | [.path, .view, .score] | @tsv' "$out")" "$(printf '002-bark-blob.ply\t0\t100')" \
	"the whole scan matches its own whole (view 0), score 100"

# ---- --explain -----------------------------------------------------------
run "$R" query --archive "$A" --json --explain -k 2 "$S/blob-noisy.ply"
expect_eq "$(jq -c '.results[0].blocks | keys_unsorted' "$out")" \
	'["shape","local","relief","relief_mm","colour","size"]' "per-block distances for every block"
expect_eq "$(jq '[.results[] | (([.blocks[].distance] | add) - .distance | fabs) < 1e-4 * (1 + .distance)] | all' "$out")" \
	true "block distances add up to the distance"
# what each match rests on: cues of the descriptor, at least one, at most
# half of the seven (a sculpt with units and colour has all seven)
expect_eq "$(jq '[.results[] | (.matched_on | length >= 1 and length <= 3) and
	(.matched_on - ["shape","local-fine","local-coarse","local-pairs","relief","relief_mm","colour","size"] == [])] | all' "$out")" \
	true "matched_on names the cues the match rests on"
run "$R" query --archive "$A" --explain -k 1 "$S/knit-rigid.obj"
expect_grep "$out" "shape [0-9.]+ \([0-9]+\) local [0-9.]+ \([0-9]+\) relief .*colour off .*closest by [a-z_]+; matched on [a-z_-]+" \
	"text explain names each block, the dropped colour, the closest block and the cues matched on"
expect_no_grep "$out" "matched on .*colour" "a colourless sculpt is never matched on colour"

# ---- filters ---------------------------------------------------------------
run "$R" query --archive "$A" --json -k 3 --where material=skin "$S/blob-noisy.ply"
expect_rc 0 "--where material=skin"
expect_eq "$(jq -c '[.results[].meta.material] | unique' "$out")" '["skin"]' "only skin references"
expect_eq "$(jq '.results | length' "$out")" 2 "both skin scans, no more"
run "$R" query --archive "$A" --json -k 12 --where tags=textile "$S/blob-noisy.ply"
expect_eq "$(jq -c '[.results[].meta.tags | index("textile") != null] | unique' "$out")" '[true]' \
	"a list value matches when one element does"
run "$R" query --archive "$A" --json -k 12 --where material=skin --where form=torus "$S/blob-noisy.ply"
expect_eq "$(jq -r '[.results[].path] | join(" ")' "$out")" "010-skin-torus.obj" "two filters AND"
run "$R" query --archive "$A" --json -k 12 --size-mm 100:200 "$S/blob-noisy.ply"
expect_eq "$(jq '[.results[].size_mm | . >= 100 and . <= 200] | all' "$out")" true "--size-mm keeps 100..200 mm"
n_in=$(jq '.results | length' "$out")
expect_eq "$([ "$n_in" -ge 1 ] && [ "$n_in" -lt 12 ] && echo yes)" yes "--size-mm drops some but not all"
run "$R" query --archive "$A" --json -k 12 --size-mm :60 "$S/blob-noisy.ply"
expect_eq "$(jq '[.results[].size_mm <= 60] | all' "$out")" true "--size-mm with an open lower end"
run "$R" query --archive "$A" --where material=unobtainium "$S/blob-noisy.ply"
expect_rc 0 "a filter nothing matches is an answer, not an error"
expect_grep "$out" "no reference matches the filters" "and says so"

# ---- weights: a constructed case ------------------------------------------
# Library: a smooth tile (same shape as the sculpt) and a knitted blob
# (same relief).  Shape alone picks the tile, relief alone the blob.
W=$T/weights
mkdir -p "$W/lib"
o="--triangles 12000 --size-mm 40 -q"
"$G" --form tile --material none --seed 5 $o -o "$W/lib/tile-smooth.ply"
"$G" --form blob --material knit --seed 6 $o -o "$W/lib/blob-knit.ply"
"$G" --form torus --material bark --seed 8 $o -o "$W/lib/torus-bark.ply"
"$G" --form tile --material knit --seed 9 $o -o "$W/tile-knit.ply"
# and a scan that cannot be described (one point repeated): it is stored
# without descriptors, with a warning, and never found
printf 'ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n1 1 1\n1 1 1\n1 1 1\n3 0 1 2\n' \
	>"$W/lib/tiny.ply"
run "$R" index --archive "$W/archive" --json "$W/lib"
expect_rc 0 "a scan that cannot be described is stored, not failed"
expect_eq "$(jq -c '[.added, (.failed | length), (.warnings | map(.path | sub(".*/"; "")))]' "$out")" '[4,0,["tiny.ply"]]' \
	"four scans added, a warning for the tiny one"
expect_grep "$errf" "tiny\.ply: warning: not searchable: 3 usable points, a descriptor needs 16$" "the warning says why"
run "$R" query --archive "$W/archive" --json -k 1 --weights shape=1,local=0,relief=0,size=0 "$W/tile-knit.ply"
expect_eq "$(jq -r '.results[0].path' "$out")" "tile-smooth.ply" "shape weight only: the tile wins"
run "$R" query --archive "$W/archive" --json -k 1 --weights shape=0,local=0,relief=1,size=0 "$W/tile-knit.ply"
expect_eq "$(jq -r '.results[0].path' "$out")" "blob-knit.ply" "relief weight only: the knitted blob wins"
run "$R" query --archive "$W/archive" --json -k 10 "$W/tile-knit.ply"
expect_eq "$(jq -c '[.references, (.results | map(.path) | sort)]' "$out")" \
	'[3,["blob-knit.ply","tile-smooth.ply","torus-bark.ply"]]' "three references: the tiny scan is never a result"
run "$R" query --archive "$W/archive" --weights shape=0,local=0,relief=0,relief_mm=0,colour=0,size=0 "$W/tile-knit.ply"
expect_rc 64 "every weight 0 is a usage error"
run "$R" query --archive "$W/archive" --weights bogus=1 "$W/tile-knit.ply"
expect_rc 64 "an unknown block is a usage error"
expect_grep "$errf" "unknown block 'bogus'" "and names it"

# ---- --surface: the same relief on another form ---------------------------
# four materials on two forms each; a panel of each material must find its
# material first when the form is left out
AS=$T/surface-archive
mkdir -p "$T/surf" "$T/surfq"
for m in knit hammered bark stone; do
	for f in tile blob; do
		"$G" -q --form $f --material $m --size-mm 80 --triangles 60000 --seed 5 \
			-o "$T/surf/$m-$f.ply" || not_ok "scangen $m $f"
	done
	"$G" -q --form panel --material $m --size-mm 70 --triangles 60000 --seed 9 \
		-o "$T/surfq/$m-panel.ply" || not_ok "scangen $m panel"
done
run "$R" index --archive "$AS" "$T/surf"
expect_rc 0 "index eight surfaces"
run "$R" query --archive "$AS" --surface --json -k 2 "$T/surfq/knit-panel.ply" \
	"$T/surfq/hammered-panel.ply" "$T/surfq/bark-panel.ply" "$T/surfq/stone-panel.ply"
expect_rc 0 "four surface sculpts answered"
expect_eq "$(jq -r '.results[0].path | split("-")[0]' "$out" | tr '\n' ' ')" "knit hammered bark stone " \
	"--surface: each panel finds its material on another form first"
expect_eq "$(jq -r '.search' "$out" | sort -u)" "surface" "JSON says the search was for a surface"
run "$R" query --archive "$AS" -k 1 --surface "$T/surfq/knit-panel.ply"
expect_grep "$out" "surface texture on any form" "the header says the search was for a surface"
run "$R" query --archive "$AS" --json -k 1 "$T/surfq/knit-panel.ply"
expect_eq "$(jq -r '.search' "$out")" "object" "without --surface the search is for the object"

# ---- --extract: byte-identical under DIR/<rank>-<name>/ -----------------
run "$R" query --archive "$A" -k 2 --extract "$T/x" "$S/knit-rigid.obj"
expect_rc 0 "--extract"
for f in 008-knit-panel.ply 008-knit-panel.png 008-knit-panel.meta.json; do
	expect_eq "$(cmp -s "$T/x/1-008-knit-panel/$f" "$L/$f" && echo same)" same "extracted $f is byte-identical"
done
expect_eq "$(ls "$T/x" | wc -l)" 2 "one directory per match"
run "$R" query --archive "$A" -k 1 --extract "$T/x2" "$S/limb-rigid.obj" "$S/blob-noisy.ply"
expect_eq "$(cd "$T/x2" && find . -name '*.obj' -o -name '*.ply' | sort | tr '\n' ' ')" \
	"./blob-noisy/1-002-bark-blob/002-bark-blob.ply ./limb-rigid/1-006-wood-limb/006-wood-limb.obj " \
	"several sculpts: DIR/<sculpt>/<rank>-<name>/"
expect_eq "$(cmp -s "$T/x2/limb-rigid/1-006-wood-limb/006-wood-limb.mtl" "$L/006-wood-limb.mtl" && echo same)" same \
	"the MTL comes along"

# ---- --sheet: a PNG of each sculpt and its matches -------------------------
png_size() { # width x height from the PNG header
	echo "$(od -An -tu1 -j16 -N8 "$1" | awk '{print ($1*16777216+$2*65536+$3*256+$4) "x" ($5*16777216+$6*65536+$7*256+$8)}')"
}
mkdir -p "$T/sheettmp"
TMPDIR=$T/sheettmp run "$R" query --archive "$A" -k 3 --sheet "$T/sheet.png" "$S/limb-rigid.obj" "$S/blob-view.ply"
expect_rc 0 "--sheet"
expect_eq "$(head -c 8 "$T/sheet.png" | od -An -tx1 | tr -d ' ')" 89504e470d0a1a0a "the sheet is a PNG"
# 4 columns (sculpt + 3 matches) x 2 rows of 256-pixel cells
expect_eq "$(png_size "$T/sheet.png")" "$((4 * 264 + 8))x$((2 * 272 + 8))" "a row per sculpt, a column per match"
expect_grep "$errf" "drew 2 sculpts and their matches into $T/sheet.png\$" "says where the sheet went"
expect_eq "$(ls -A "$T/sheettmp" | wc -l)" 0 "the restored scans are removed"
# a sculpt that cannot be read gets no row; the others are drawn
run "$R" query --archive "$A" -k 2 --sheet "$T/sheet1.png" "$S/no-such.ply" "$S/knit-rigid.obj"
expect_rc 1 "--sheet with one bad sculpt"
expect_eq "$(png_size "$T/sheet1.png")" "$((3 * 264 + 8))x$((272 + 8))" "only the answered sculpt has a row"
run "$R" query --archive "$A" --json -k 1 --sheet "$T/sheet2.png" "$S/knit-rigid.obj"
expect_rc 0 "--sheet with --json"
expect_eq "$(jq -r '.results[0].path' "$out")" 008-knit-panel.ply "JSON unchanged beside a sheet"
expect_eq "$(wc -c < "$errf")" 0 "--json: nothing on stderr"
# matches that cannot be restored (their volume damaged) are crossed out
cp -r "$A" "$T/damaged"
for vol in "$T/damaged"/volumes/*.tar.zst; do
	size=$(stat -c %s "$vol")
	for ((o = 100; o < size; o += 16384)); do
		printf '\xa5' | dd of="$vol" bs=1 seek=$o conv=notrunc status=none
	done
done
run "$R" query --archive "$T/damaged" -k 2 --sheet "$T/sheet3.png" "$S/knit-rigid.obj"
expect_rc 1 "--sheet when the matches' volume is damaged"
# (a damaged tar header loses the entry, damaged data fails its digest)
expect_grep "$errf" "008-knit-panel.ply: (cannot restore: volume 00000001 is damaged|missing from volume 00000001)" \
	"names the match it could not restore"
expect_grep "$errf" "some could not be drawn \\(crossed out\\)" "says some were crossed out"
expect_eq "$(png_size "$T/sheet3.png")" "$((3 * 264 + 8))x$((272 + 8))" "the sheet is still drawn"
run "$R" query --archive "$A" -k 1 --sheet "$T/no-dir/sheet.png" "$S/knit-rigid.obj"
expect_rc 74 "--sheet into a missing directory"
expect_grep "$errf" "$T/no-dir/sheet.png" "the error names the sheet"

# ---- an approximate (IVF) index: batched search, exact re-rank --------------
# REFSCAN_EXACT_MAX lowers the size above which the index is approximate
"$G" --library "$T/lib24" --count 24 --seed 3 --triangles 4000 -q || not_ok "scangen library of 24"
REFSCAN_EXACT_MAX=8 "$R" index -q --archive "$T/ann" "$T/lib24" 2>/dev/null || not_ok "index with an IVF index"
expect_eq "$(tail -c 52 "$T/ann/versions/00000001.index" | head -c 4 | od -An -tu4 | tr -d ' ')" 2 \
	"the index file holds an approximate index (kind 2)"
sculpts=("$S/limb-rigid.obj" "$S/knit-rigid.obj" "$S/blob-noisy.ply" "$S/panel-decimated.ply" \
	"$S/trunk-points.ply" "$S/tile-cropped.ply")
run "$R" query --archive "$T/ann" --json -k 3 "${sculpts[@]}"
expect_rc 0 "six sculpts through the IVF index"
cp "$out" "$T/ann.json"
expect_eq "$(jq -s '[.[].exact] | unique' "$T/ann.json" | jq -c .)" '[false]' "answered by the index, not a scan"
run "$R" query --archive "$T/ann" -k 20 --sheet "$T/sheet20.png" "$S/knit-rigid.obj"
expect_rc 0 "--sheet with 20 matches"
expect_eq "$(png_size "$T/sheet20.png")" "$((17 * 264 + 8))x$((272 + 8))" "a sheet shows the first 16 matches"
run "$R" query --archive "$T/ann" --json -k 3 --exact "${sculpts[@]}"
expect_eq "$(jq -c '[.results[0].path]' "$T/ann.json" | tr '\n' ' ')" "$(jq -c '[.results[0].path]' "$out" | tr '\n' ' ')" \
	"rank 1 through the index equals the exact scan's"
expect_eq "$(jq -r '.results[0].path' "$T/ann.json" | tr '\n' ' ')" \
	"006-wood-limb.obj 008-knit-panel.ply 002-bark-blob.ply 001-skin-panel.stl 003-fabric-trunk.obj 007-leather-tile.ply " \
	"and finds every original"
run "$R" query --archive "$T/ann" --json -k 3 --where material=skin "$S/blob-noisy.ply"
expect_eq "$(jq -c '[.results[].meta.material] | unique' "$out")" '["skin"]' "filtered through the index"
expect_eq "$(jq '.results | length' "$out")" 3 "a selective filter still gets k results (exact fallback)"

# ---- bad input ---------------------------------------------------------------
: >"$S/empty.obj"
printf 'this is not a scan\n' >"$S/garbage.ply"
run "$R" query --archive "$A" "$S/empty.obj"
expect_rc 65 "an empty sculpt is bad data"
expect_grep "$errf" "^refscan: .*empty\.obj: " "the error names the file"
expect_eq "$(grep -c . "$errf")" 1 "in one line"
run "$R" query --archive "$A" "$S/missing.obj"
expect_rc 66 "a missing sculpt"
expect_grep "$errf" "missing\.obj: .*(No such file|not found)" "names the file and the reason"
run "$R" query --archive "$A" --json -k 1 "$S/garbage.ply" "$S/blob-noisy.ply" "$S/missing.obj"
expect_rc 1 "one good sculpt among bad ones: partial"
expect_eq "$(jq -r 'if .error then "error:" + .error.code else .results[0].path end' "$out" | tr '\n' ' ')" \
	"error:format 002-bark-blob.ply error:notfound " "JSON: one line per sculpt, errors in place"
if [ "$(id -u)" != 0 ]; then
	cp "$S/blob-noisy.ply" "$S/locked.ply" && chmod 000 "$S/locked.ply"
	run "$R" query --archive "$A" "$S/locked.ply"
	expect_rc 66 "an unreadable sculpt"
	expect_grep "$errf" "locked\.ply: .*Permission denied" "names the reason"
fi
run "$R" query --archive "$T/nowhere" "$S/blob-noisy.ply"
expect_rc 66 "no archive"
expect_grep "$errf" "run 'refscan index --archive .*nowhere SRC' first" "hint: index first"
run "$R" query --archive "$A" --version 9 "$S/blob-noisy.ply"
expect_rc 66 "unknown version"
expect_grep "$errf" "live versions are 1\.\.1 .*refscan log" "hint: the live versions"
run "$R" query --archive "$A" -k 0 "$S/blob-noisy.ply"
expect_rc 64 "-k 0 is a usage error"
run "$R" query --archive "$A" --size-mm 9:1 "$S/blob-noisy.ply"
expect_rc 64 "--size-mm MIN > MAX is a usage error"
run "$R" query --archive "$A"
expect_rc 64 "no sculpt"
run "$R" query --help
expect_rc 0 "--help"
expect_grep "$out" "^usage: refscan query" "usage on stdout"

# ---- an old version after newer commits ------------------------------------
cp "$L/002-bark-blob.ply" "$L/zz-copy-of-blob.ply"
rm "$L/006-wood-limb.obj"
run "$R" index --archive "$A" --json "$L"
expect_eq "$(jq -c '[.version, .added, .removed]' "$out")" '[2,1,1]' "version 2 adds a copy, removes the limb"
expect_eq "$(jq '.new_blobs' "$out")" 0 "the copy and its descriptor are deduplicated"
run "$R" query --archive "$A" --json -k 2 "$S/blob-noisy.ply"
expect_eq "$(jq -r '[.version, (.results | map(.path) | sort | join(" "))] | @tsv' "$out")" \
	"$(printf '2\t002-bark-blob.ply zz-copy-of-blob.ply')" "HEAD: both copies match"
id2=$(jq -r '.results[] | select(.path == "002-bark-blob.ply") | .id' "$out")
run "$R" query --archive "$A" --json -k 1 --version 1 "$S/limb-rigid.obj"
expect_eq "$(jq -r '[.version, .results[0].path] | @tsv' "$out")" "$(printf '1\t006-wood-limb.obj')" \
	"version 1 still finds the removed limb"
run "$R" query --archive "$A" --json -k 1 --version 1 "$S/blob-noisy.ply"
expect_eq "$(jq -r '.results[0].id' "$out")" "$id2" "the same path has the same id in versions 1 and 2"
run "$R" query --archive "$A" --json -k 1 --version HEAD~1 "$S/blob-noisy.ply"
expect_eq "$(jq -r '.version' "$out")" 1 "--version HEAD~1"

# ---- reindex -------------------------------------------------------------
run "$R" reindex --archive "$A" --json
expect_rc 0 "reindex with current descriptors"
expect_eq "$(jq -c '[.version, .committed, .described]' "$out")" '[2,false,0]' "nothing to do"
# an archive whose descriptors use an older schema (as a new refscan sees it)
H=$A/versions/00000002.json
jq -c '.entries[].descriptors.schema = "refscan-desc-0"' "$H" >"$T/m.json" && cp "$T/m.json" "$H"
run "$R" reindex --archive "$A" --json
expect_rc 0 "reindex after a schema change"
expect_eq "$(jq -c '[.version, .committed, .described, .failed]' "$out")" '[3,true,12,0]' \
	"every scan described again into version 3"
M3=$A/versions/00000003.json
expect_eq "$(jq '[.entries[] | select(.descriptors.schema == "refscan-desc-7")] | length' "$M3")" 12 \
	"version 3 holds current descriptors"
expect_eq "$(jq -c '[.entries[] | [.path, .blob]]' "$M3")" "$(jq -c '[.entries[] | [.path, .blob]]' "$H")" \
	"the scans are unchanged"
run "$R" query --archive "$A" --json -k 1 "$S/trunk-points.ply"
expect_eq "$(jq -r '[.version, .results[0].path] | @tsv' "$out")" "$(printf '3\t003-fabric-trunk.obj')" \
	"the reindexed version answers"
run "$R" reindex --archive "$A" --force -q
expect_rc 0 "reindex --force"
expect_eq "$(jq -r .version "$A/HEAD")" 4 "--force commits a new version"
expect_eq "$(jq '.counts.changed' "$A/versions/00000004.json")" 0 "with the same descriptors (deterministic)"
run "$R" verify --archive "$A" --all --quiet
expect_rc 0 "the archive verifies after reindex"

finish
