#!/usr/bin/env bash
# refscan describe: text and JSON output, blocks and flags, absent colour
# and units, thread-count independence, partial failure, exit codes.
. "$(dirname "$0")/lib.sh"

G=${REFSCAN_BUILD:?run through make test}/scangen
if [ ! -x "$G" ]; then
	not_ok "scangen is not built ($G)"
	finish
	exit 1
fi
if ! command -v jq >/dev/null; then
	not_ok "jq is needed to read the JSON output"
	finish
	exit 1
fi

mkdir -p "$T/s"
"$G" -q --form blob --material knit --triangles 6000 --color vertex -o "$T/s/knit.ply" &&
"$G" -q --form torus --material stone --triangles 6000 --color texture --texture-px 64 \
	-o "$T/s/stone.obj" &&
"$G" -q --form limb --material bark --triangles 6000 -o "$T/s/bark.stl" ||
	not_ok "scangen failed"

# text output names every block and the relief bands
run "$REFSCAN_BIN" describe "$T/s/knit.ply"
expect_rc 0 "describe a generated PLY"
expect_grep "$out" '^.*knit\.ply: refscan-desc-7, [0-9]+ floats$' "header names the schema and length"
for b in shape local relief relief_mm colour size; do
	expect_grep "$out" "^  $b +[0-9]+ +[0-9]+ " "block $b listed"
done
expect_grep "$out" 'units +mm' "PLY units comment read"
expect_grep "$out" '^  noise +[0-9.e-]+, the curvedness it gives the fine local fits \(roughness below the resolution, [0-9.e-]+ spacings\)$' \
	"noise level printed"
expect_grep "$out" 'colour +on 100% of the surface' "vertex colours used"
expect_grep "$out" 'relief bands in millimetres' "mm bands printed when units are known"

# STL has neither colour nor units: both marked absent, never faked
run "$REFSCAN_BIN" describe "$T/s/bark.stl"
expect_rc 0 "describe an STL"
expect_grep "$out" '^  colour +[0-9]+ +[0-9]+ .*absent$' "colour block absent without colour"
expect_grep "$out" '^  relief_mm +[0-9]+ .*absent$' "relief_mm absent without units"
expect_grep "$out" 'units +unknown' "unknown units said"
run "$REFSCAN_BIN" describe --units mm "$T/s/bark.stl"
expect_rc 0 "--units for a file without units"
expect_grep "$out" 'units +mm' "--units mm applies"
run "$REFSCAN_BIN" describe --units parsec "$T/s/bark.stl"
expect_rc 64 "unknown --units is a usage error"

# JSON: one object per file, stable keys, the vector with the right length
run "$REFSCAN_BIN" describe --json "$T/s/knit.ply" "$T/s/stone.obj"
expect_rc 0 "describe --json two files"
expect_eq "$(wc -l <"$out")" 2 "one JSON line per file"
dim=$(jq -r 'select(.path | endswith("knit.ply")) | .dim' "$out")
len=$(jq -r 'select(.path | endswith("knit.ply")) | .vector | length' "$out")
expect_eq "$len" "$dim" "vector length equals dim"
expect_eq "$(jq -r 'select(.path | endswith("knit.ply")) | .schema' "$out")" refscan-desc-7 "schema key"
expect_eq "$(jq -r 'select(.path | endswith("stone.obj")) | .flags | index("colour") != null' "$out")" \
	true "texture decoded and used for colour"
expect_eq "$(jq -r 'select(.path | endswith("knit.ply")) | [.blocks[].name] | join(",")' "$out")" \
	shape,local,relief,relief_mm,colour,size "block names in vector order"
expect_eq "$(jq -r 'select(.path | endswith("knit.ply")) | .relief_mm | length' "$out")" 3 \
	"three mm bands"
off_sum=$(jq -r 'select(.path | endswith("knit.ply")) | [.blocks[].length] | add' "$out")
expect_eq "$((off_sum + 1))" "$dim" "block lengths and the carried noise level add up to dim"
expect_eq "$(jq -r 'select(.path | endswith("knit.ply"))
	| (.noise >= 0 and .noise <= .noise_spacings * 1.14185 + 1e-9 and ((.vector[-1] - .noise) | fabs) < 1e-6)' "$out")" true \
	"noise level at most the roughness over 2.5 spacings times sqrt(160 / (pi 2.5^2)), carried as the vector's last float"

# the vector does not depend on the number of threads
OMP_NUM_THREADS=1 "$REFSCAN_BIN" describe --json "$T/s/stone.obj" | jq -c .vector >"$T/v1"
OMP_NUM_THREADS=3 "$REFSCAN_BIN" describe --json "$T/s/stone.obj" | jq -c .vector >"$T/v3"
if cmp -s "$T/v1" "$T/v3" && [ -s "$T/v1" ]; then ok "same vector with 1 and 3 threads"; else
	not_ok "vector differs between 1 and 3 threads"; fi
# and the seed changes the sampling
"$REFSCAN_BIN" describe --json --seed 7 "$T/s/stone.obj" | jq -c .vector >"$T/v7"
if cmp -s "$T/v1" "$T/v7"; then not_ok "--seed has no effect"; else ok "--seed changes the samples"; fi

# a missing texture is a warning and colour is marked absent
mv "$T/s/stone.png" "$T/s/stone.moved"
run "$REFSCAN_BIN" describe --json "$T/s/stone.obj"
expect_rc 0 "missing texture is not an error"
expect_eq "$(jq -r '.flags | index("texture_missing") != null' "$out")" true "texture_missing flag"
expect_eq "$(jq -r '.blocks[] | select(.name == "colour") | .present' "$out")" false \
	"colour block absent when the texture is missing"
mv "$T/s/stone.moved" "$T/s/stone.png"

# failures: one bad file among good ones is exit 1, all bad is the sysexits code
printf 'solid nothing\nendsolid nothing\n' >"$T/s/empty.stl"
run "$REFSCAN_BIN" describe "$T/s/knit.ply" "$T/s/empty.stl"
expect_rc 1 "one of two files fails"
expect_grep "$errf" "^refscan: .*empty\.stl: " "the failing file is named on stderr"
run "$REFSCAN_BIN" describe --json "$T/s/empty.stl"
expect_rc 65 "a scan with nothing to describe is bad data"
expect_eq "$(jq -r '.ok' "$out")" false "ok false in JSON"
expect_eq "$(jq -r '.error.code' "$out")" undescribable "error code in JSON: readable, too thin to describe"
expect_eq "$(jq -r '.error.message' "$out")" "$T/s/empty.stl: 0 usable points, a descriptor needs 16" \
	"the message says why"
run "$REFSCAN_BIN" describe "$T/s/none.ply"
expect_rc 66 "missing file"
run "$REFSCAN_BIN" describe
expect_rc 64 "no file is a usage error"
expect_grep "$errf" '^usage: refscan describe' "usage on stderr"
run "$REFSCAN_BIN" describe --bogus "$T/s/knit.ply"
expect_rc 64 "unknown option"
run "$REFSCAN_BIN" describe --help
expect_rc 0 "--help"
expect_grep "$out" '^usage: refscan describe' "help on stdout"
run "$REFSCAN_BIN" describe --values "$T/s/knit.ply"
expect_rc 0 "--values"
expect_grep "$out" '^    -?[0-9]' "values printed under the blocks"

finish
