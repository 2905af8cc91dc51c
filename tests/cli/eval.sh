#!/usr/bin/env bash
# The retrieval evaluation on a small generated corpus (scripts/eval-retrieval
# --quick): the table has every perturbation with the D2 baseline beside
# it, rigid copies are always found, the descriptor beats D2 on crops, and
# --copies groups one model saved to two files, --photo-relief makes a
# material task of relief from images, perturbations take strengths,
# subdivided and turned copies are found, and --surface asks for the
# material on another form.
# The full table (CGAL meshes, 63-scan corpus) runs under make bench.
. "$(dirname "$0")/lib.sh"

E=${REFSCAN_BUILD:?run through make test}/eval_retrieval
if [ ! -x "$E" ]; then
	not_ok "eval_retrieval is not built ($E)"
	finish
	exit 1
fi
if ! command -v jq >/dev/null; then
	not_ok "jq is needed to read the JSON output"
	finish
	exit 1
fi

run "$E" --json --gen --forms 3 --materials 3 --triangles 6000 --perturb rigid,crop,points
expect_rc 0 "quick evaluation runs"
row() { jq -r "select(.task == \"generated\" and .case == \"$1\") | .$2" "$out"; }
expect_eq "$(row rigid queries)" 9 "one rigid query per reference"
expect_eq "$(row rigid top1)" 1 "every rigid and scaled copy is found first"
for p in rigid crop points; do
	expect_grep "$out" "\"case\":\"$p\".*\"d2_top1\"" "$p has the D2 baseline beside it"
done
crop=$(row crop top1) d2=$(row crop d2_top1)
if awk -v a="$crop" -v b="$d2" 'BEGIN { exit !(a >= b + 0.2) }'; then
	ok "crops: descriptor $crop vs D2 $d2"
else
	not_ok "crops: descriptor $crop is not 0.2 above D2 $d2"
fi
expect_grep "$out" '"task":"material","case":"all \(surface\)"' "material retrieval row"

run "$E" --gen --forms 2 --materials 2 --triangles 4000 --perturb rigid
expect_rc 0 "text table"
expect_grep "$out" '^rigid +4 +top1 1\.000 .*\| D2: top1 ' "text row with the D2 column"
# --spacing-mm sizes each scan from its surface: a coarse spacing stays at
# the 20000-triangle floor, and the dump shows the references it made
run "$E" --gen --forms 1 --materials 2 --spacing-mm 5 --triangles 40000 --perturb rigid \
	--dump "$T/spacing.dump"
expect_rc 0 "a corpus sampled at a given spacing"
expect_eq "$(grep -c '^ref ' "$T/spacing.dump")" 2 "two references at that spacing"
# --copies: one model saved twice (turned, scaled, as STL) is one object;
# scans of other forms are not grouped with it
"$REFSCAN_BUILD/scangen" --library "$T/lib" --count 3 --seed 5 --triangles 4000 -q
first=$(cd "$T/lib" && ls *.ply *.obj *.stl 2>/dev/null | sort | head -n 1)
"$REFSCAN_BUILD/perturb" --rigid --scale 1.7 --seed 3 "$T/lib/$first" "$T/lib/zz-copy.stl"
run "$E" --json --copies --perturb rigid "$T/lib"
expect_rc 0 "an evaluation that groups copies"
expect_eq "$(jq -c 'select(has("copies")) | .copies' "$out")" "[[\"${first%.*}\",\"zz-copy\"]]" \
	"the turned, scaled STL copy is grouped with its model, nothing else is"
expect_eq "$(jq -r 'select(.case == "rigid") | .queries, .top1' "$out" | tr '\n' ' ')" "4 1 " \
	"every reference finds itself or its copy"
# --photo-relief: relief from images (here the generator's own colour
# textures, read back as height maps), each at two widths, on every form
mkdir -p "$T/photo"
"$REFSCAN_BUILD/scangen" -q --form tile --material knit --color texture --triangles 4000 \
	-o "$T/photo/knit.obj"
"$REFSCAN_BUILD/scangen" -q --form tile --material bark --color texture --triangles 4000 \
	-o "$T/photo/bark.obj"
run "$E" --json --gen --forms 2 --triangles 20000 --perturb rigid \
	--photo-relief "$T/photo/knit.png,$T/photo/bark.png" --dump "$T/photo.dump"
expect_rc 0 "a corpus with relief from images"
expect_eq "$(grep -c '^ref ' "$T/photo.dump")" 8 "2 forms x 2 images x 2 widths"
expect_eq "$(jq -r 'select(.task == "material") | .case' "$out" | tr '\n' ' ')" \
	"knit-40mm knit-100mm bark-40mm bark-100mm all (surface) all (object) " \
	"one material class per image and width"
expect_grep "$T/photo.dump" '^ref panel-bark-100mm ' "references are named form-image-width"
run "$E" --gen --forms 1 --photo-relief "$T/photo/missing.png" --perturb rigid
expect_rc 70 "a missing image fails the run"
expect_grep "$errf" "missing.png: cannot open" "and names the file"
run "$E" --gen --spacing-mm 0 --perturb rigid
expect_rc 64 "a spacing of 0 is a usage error"
run "$E" --perturb bogus --gen
expect_rc 64 "unknown perturbation is a usage error"
# strengths: one row per NAME:V, labelled so; a crop that keeps everything
# is the reference itself; view is one scanner position's part
run "$E" --json --gen --forms 2 --materials 2 --triangles 4000 \
	--perturb crop:1,crop:0.5,decimate:10,view
expect_rc 0 "perturbations at given strengths"
expect_eq "$(jq -r 'select(.task == "generated") | .case' "$out" | tr '\n' ' ')" \
	"crop:1 crop:0.5 decimate:10 view " "one row per strength, in the order asked"
expect_eq "$(jq -r 'select(.case == "crop:1") | .queries, .top1' "$out" | tr '\n' ' ')" "4 1 " \
	"a crop that keeps everything finds every reference"
expect_eq "$(jq -r 'select(.case == "view") | .queries' "$out")" 4 "every reference seen from one side"
# references are ranked with their views, as refscan index stores them,
# unless --no-views
run "$E" --gen --forms 1 --materials 2 --triangles 4000 --perturb view
expect_grep "$out" "^2 references, refscan-desc-[0-9]+, dimension [0-9]+, 8 views each, described in" \
	"references described with their 8 views"
run "$E" --gen --forms 1 --materials 2 --triangles 4000 --perturb view --no-views
expect_grep "$out" "^2 references, .*, 0 views each, described in" "--no-views: their own vectors only"
# --fine-always: the ranking without the noise rule, as the same run's peer;
# the queries and the D2 baseline are the same
run "$E" --json --gen --forms 2 --materials 2 --triangles 4000 --perturb noise-spacing:0.6
expect_rc 0 "noisy queries"
cp "$out" "$T/rule.json"
run "$E" --json --gen --forms 2 --materials 2 --triangles 4000 --perturb noise-spacing:0.6 --fine-always
expect_rc 0 "--fine-always"
expect_eq "$(jq -c 'select(.case == "noise-spacing:0.6") | [.queries, .d2_top1, .d2_map]' "$out")" \
	"$(jq -c 'select(.case == "noise-spacing:0.6") | [.queries, .d2_top1, .d2_map]' "$T/rule.json")" \
	"--fine-always ranks the same queries, D2 unchanged"
# a scanner's artefacts: holes, specks around the scan (left out by describe,
# so every reference is found), a cloud of graded density
run "$E" --json --gen --forms 2 --materials 2 --triangles 4000 \
	--perturb holes,outliers,outliers:0.03,density:3
expect_rc 0 "holes, specks and graded density"
expect_eq "$(jq -r 'select(.task == "generated") | .case' "$out" | tr '\n' ' ')" \
	"holes outliers outliers:0.03 density:3 " "their rows, in the order asked"
expect_eq "$(jq -r 'select(.case | startswith("outliers")) | .top1' "$out" | tr '\n' ' ')" "1 1 " \
	"a reference with specks around it finds itself"
# what tools do to files: subdivided (the same surface, 4x the triangles),
# smoothed, triangles wound either way or inside out, noise in point spacings
run "$E" --json --gen --forms 2 --materials 2 --triangles 4000 \
	--perturb subdivide,smooth,winding,winding:1,noise-spacing:0.2
expect_rc 0 "subdivision, smoothing, winding, noise in spacings"
expect_eq "$(jq -r 'select(.task == "generated") | .case' "$out" | tr '\n' ' ')" \
	"subdivide smooth winding winding:1 noise-spacing:0.2 " "their rows, in the order asked"
expect_eq "$(jq -r 'select(.case == "subdivide" or (.case | startswith("winding"))) | .top1' "$out" |
	tr '\n' ' ')" "1 1 1 " "a subdivided or turned copy finds its reference"
# the surface question: a perturbed scan finds its material on another form
run "$E" --json --gen --forms 2 --materials 2 --triangles 4000 --perturb rigid,crop --surface
expect_rc 0 "--surface runs"
expect_eq "$(jq -r 'select(.task == "generated") | .queries' "$out" | tr '\n' ' ')" "4 4 " \
	"every reference asks"
run "$E" --gen --forms 2 --materials 2 --triangles 4000 --perturb rigid --surface --verbose
expect_rc 0 "--surface --verbose"
if grep -q -- '-> ' "$out"; then
	# a miss names a reference of another material, never the query's own scan
	expect_eq "$(grep -- '-> ' "$out" | awk '{ split($2, a, "-"); split($4, b, "-");
		print (a[2] == b[2] || $2 == $4) ? "bad" : "ok" }' | sort -u)" "ok" \
		"a miss is another material"
fi
run "$E" --surface "$T/lib"
expect_rc 64 "--surface needs a generated corpus"
for bad in crop:1.5 crop:0 decimate:1 noise:x view:2 rigid:1 points: holes:1 outliers:0 density:0.5 \
	subdivide:4 subdivide:1.5 smooth:0 smooth:2.5 winding:0 winding:1.5 noise-spacing:0; do
	run "$E" --gen --forms 1 --materials 1 --perturb "$bad"
	expect_rc 64 "--perturb $bad is a usage error"
done
run "$E"
expect_rc 64 "no references is a usage error"
run "$E" "$T/nothing-here"
expect_rc 66 "a folder without scans"

finish
