#!/usr/bin/env bash
# Colour comes from textures however the scan names them: an OBJ through
# its MTL, a PLY through `comment TextureFile`; the same surface gives the
# same colour block either way, and a scan without colour says so.
. "$(dirname "$0")/lib.sh"
G="$REFSCAN_BUILD/scangen"
args=(--form tile --material skin --size-mm 60 --triangles 20000 --seed 3)
"$G" "${args[@]}" --color texture --format ply -o "$T/tex.ply" >/dev/null
"$G" "${args[@]}" --color texture --format obj -o "$T/tex.obj" >/dev/null
"$G" "${args[@]}" --color none --format ply -o "$T/plain.ply" >/dev/null

run "$REFSCAN_BIN" describe --json "$T/tex.ply" "$T/tex.obj" "$T/plain.ply"
expect_rc 0 "describe three scans"
expect_eq "$(jq -r '.colour_fraction' "$out" | head -1)" 1 "PLY TextureFile texture colours the whole surface"
expect_eq "$(jq -r '.colour_fraction' "$out" | sed -n 2p)" 1 "OBJ map_Kd texture colours the whole surface"
expect_eq "$(jq -r '.flags | index("colour") != null' "$out" | tr '\n' ' ')" "true true false " "colour flag only where there is colour"
# OBJ stores positions as text, PLY as binary floats: equal to ~1e-6
close=$(jq -s '[.[0:2][] | .blocks[] | select(.name == "colour")] |
	(.[0].present and .[1].present and ((.[0].norm - .[1].norm) | fabs) < 1e-3)' "$out")
expect_eq "$close" true "same surface, same colour block through PLY or OBJ"
finish
