#!/usr/bin/env bash
# refscan info: texture sizes read from PNG/JPEG headers, for textures
# written by scangen (through image_write_png) and for unreadable ones.
. "$(dirname "$0")/lib.sh"

gen="$REFSCAN_BUILD/scangen"
if [ ! -x "$gen" ]; then
	echo "textures: skipped: $gen not built"
	exit 0
fi
mkdir -p "$T/s"
run "$gen" -q --color texture --texture-px 64 --triangles 200 -o "$T/s/tile.ply"
expect_rc 0 "scangen writes a textured PLY"
run "$gen" -q --color texture --texture-px 48 --triangles 200 -o "$T/s/slab.obj"
expect_rc 0 "scangen writes a textured OBJ"

run "$REFSCAN_BIN" info "$T/s/tile.ply"
expect_rc 0 "info on the textured PLY"
expect_grep "$out" "texture +.*tile\.png \(found\) 64x64$" "texture size in text output"

run "$REFSCAN_BIN" info --json "$T/s/slab.obj"
expect_rc 0 "info --json on the textured OBJ"
expect_eq "$(jq -c '.textures[0] | [.exists, .width, .height]' "$out")" '[true,48,48]' \
	"texture width and height in JSON"

# a texture that exists but is not an image: still found, no size
printf 'not an image' >"$T/s/tile.png"
run "$REFSCAN_BIN" info "$T/s/tile.ply"
expect_rc 0 "an unreadable texture does not fail the scan"
expect_grep "$out" "tile\.png \(found\) not a readable PNG/JPEG" "unreadable texture said so"
run "$REFSCAN_BIN" info --json "$T/s/tile.ply"
expect_eq "$(jq -c '.textures[0] | [.exists, .width, .height]' "$out")" '[true,null,null]' \
	"unreadable texture has null sizes"
finish
