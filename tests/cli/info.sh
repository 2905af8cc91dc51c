#!/usr/bin/env bash
# refscan info: text and JSON output, textures, partial failure, exit codes.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/scan/tex"
# an ascii PLY quad with colours and a texture comment
cat >"$T/scan/quad.ply" <<'PLY'
ply
format ascii 1.0
comment units mm
comment TextureFile tex/skin.png
element vertex 4
property float x
property float y
property float z
property uchar red
property uchar green
property uchar blue
element face 1
property list uchar int vertex_indices
end_header
0 0 0 255 0 0
10 0 0 0 255 0
10 5 0 0 0 255
0 5 2 255 255 255
4 0 1 2 3
PLY
printf 'not an image' >"$T/scan/tex/skin.png"
# an OBJ with a material library whose texture is missing
cat >"$T/scan/tri.obj" <<'OBJ'
mtllib tri.mtl
v 0 0 0
v 1 0 0
v 0 1 0
vt 0 0
vt 1 0
vt 0 1
usemtl skin
f 1/1 2/2 3/3
OBJ
printf 'newmtl skin\nKd 1 0.5 0.5\nmap_Kd missing.png\n' >"$T/scan/tri.mtl"
printf 'ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n1\n2\n' >"$T/scan/short.ply"

run "$REFSCAN_BIN" info "$T/scan/quad.ply"
expect_rc 0 "info reads an ascii PLY"
expect_grep "$out" "vertices +4" "text output counts vertices"
expect_grep "$out" "2 triangles \(1 polygons" "quad triangulated into 2 triangles"
expect_grep "$out" "colours +per vertex" "colours reported"
expect_grep "$out" "tex/skin.png \(found\)" "texture resolved relative to the scan"
expect_grep "$out" "10 x 5 x 2 mm" "size in millimetres"

run "$REFSCAN_BIN" info --json "$T/scan/quad.ply" "$T/scan/tri.obj"
expect_rc 0 "info --json on two good files"
expect_eq "$(wc -l <"$out")" 2 "one JSON line per file"
expect_eq "$(jq -r '.path' "$out" | head -1)" "$T/scan/quad.ply" "path key"
expect_eq "$(jq -c '[.ok, .error, .format, .vertices, .faces, .normals, .colors, .uvs]' "$out" | head -1)" \
	'[true,null,"ply",4,2,false,true,false]' "stable keys and values for the PLY"
expect_eq "$(jq -c '.bbox_min, .bbox_max' "$out" | head -2 | tr -d '\n')" '[0,0,0][10,5,2]' "bbox"
expect_eq "$(jq -c '[.format, .vertices, .faces, .uvs, .textures[0].exists]' "$out" | tail -1)" \
	'["obj",3,1,true,false]' "OBJ through its MTL: texture declared but missing"
expect_eq "$(jq -r '.warnings[0]' "$out" | tail -1)" "texture 'missing.png' not found" "missing texture is a warning"

run "$REFSCAN_BIN" info "$T/scan/quad.ply" "$T/scan/short.ply" "$T/scan/tri.obj"
expect_rc 1 "one bad file among good ones: partial failure"
expect_eq "$(wc -l <"$errf")" 1 "exactly one error line"
expect_grep "$errf" "^refscan: $T/scan/short.ply: (line [0-9]+|offset [0-9]+): " "error names the file and where"
expect_grep "$out" "tri.obj: obj" "files after the bad one are still reported"

run "$REFSCAN_BIN" info --json "$T/scan/short.ply"
expect_rc 65 "all files bad: data error"
expect_eq "$(jq -c '[.ok, .error.code]' "$out")" '[false,"format"]' "failed file in JSON"

run "$REFSCAN_BIN" info "$T/nope.ply"
expect_rc 66 "missing file"
expect_grep "$errf" "nope.ply: cannot open: No such file" "missing file named with strerror"

run "$REFSCAN_BIN" info
expect_rc 64 "no files is a usage error"
run "$REFSCAN_BIN" info --bogus x
expect_rc 64 "unknown option is a usage error"
run "$REFSCAN_BIN" info --help
expect_rc 0 "--help"
expect_grep "$out" "usage: refscan info" "help on stdout"
run "$REFSCAN_BIN" frobnicate
expect_rc 64 "unknown command"

run "$REFSCAN_BIN" info "$T/scan/quad.ply"
if "$REFSCAN_BIN" info "$T/scan/quad.ply" >/dev/full 2>"$T/fullerr"; then
	not_ok "write error to /dev/full not reported"
else
	ok "write error to /dev/full gives a non-zero exit"
fi
expect_grep "$T/fullerr" "cannot write to standard output" "write error message"
finish
