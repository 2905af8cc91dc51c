#!/usr/bin/env bash
# scangen: every form x material writes a readable, deterministic scan with
# the triangle count it reports; textures, library sidecars, usage errors.
. "$(dirname "$0")/lib.sh"

G=${REFSCAN_BUILD:?run through make test}/scangen
if [ ! -x "$G" ]; then
	not_ok "scangen is not built ($G)"
	finish
	exit 1
fi

forms=$("$G" --list | sed -n '/^forms:/,/^materials/p' | awk '/^  /{print $1}')
materials=$("$G" --list | sed -n '/^materials/,/^colour/p' | awk '/^  /{print $1}')
expect_eq "$(echo $forms | wc -w)" 7 "--list names 7 forms"
expect_eq "$(echo $materials | wc -w)" 9 "--list names 9 materials (with none)"

# Every pair, small, cycling through formats and colour modes; twice, to
# compare bytes.
fmts=(ply obj stl ply-ascii stl-ascii)
colors=(none vertex texture)
mkdir -p "$T/a" "$T/b"
i=0 n_pairs=0 n_same=0 n_read=0 n_counts=0 bad_gen=()
for f in $forms; do
	for m in $materials; do
		fmt=${fmts[$((i % 5))]} col=${colors[$((i / 5 % 3))]}
		case $fmt in stl*) col=none ;; esac
		ext=${fmt%-ascii}
		args=(--form "$f" --material "$m" --size-mm 40 --triangles 800 --texture-px 32 --seed $i
			--color "$col" --format "$fmt")
		if ! "$G" "${args[@]}" -o "$T/a/$f-$m.$ext" >"$T/a/$f-$m.log" 2>&1 ||
			! "$G" "${args[@]}" -o "$T/b/$f-$m.$ext" >/dev/null 2>&1; then
			bad_gen+=("$f-$m")
			i=$((i + 1))
			continue
		fi
		n_pairs=$((n_pairs + 1))
		same=1
		for x in "$T/a/$f-$m".*; do
			case $x in *.log) continue ;; esac
			cmp -s "$x" "$T/b/$(basename "$x")" || same=0
		done
		[ $same = 1 ] && n_same=$((n_same + 1))
		# "PATH: V vertices, F triangles, edge E mm"
		read -r v t < <(sed -E 's/.*: ([0-9]+) vertices, ([0-9]+) triangles.*/\1 \2/' "$T/a/$f-$m.log")
		if "$REFSCAN_BIN" info --json "$T/a/$f-$m.$ext" >"$T/info.json" 2>"$T/info.err"; then
			n_read=$((n_read + 1))
			got=$(jq -r '[.faces, .vertices, .units, (.textures | length)] | @tsv' "$T/info.json")
			read -r gf gv gu gt <<<"$got"
			want_v=$v want_u=mm want_t=0
			[ "$col" = texture ] && want_t=1
			case $fmt in stl*) want_v=$gv want_u=unknown ;; esac # STL welds, has no units
			if [ "$gf" = "$t" ] && [ "$gv" = "$want_v" ] && [ "$gu" = "$want_u" ] &&
				[ "$gt" = "$want_t" ] && [ $((t > 740 && t < 860)) = 1 ]; then
				n_counts=$((n_counts + 1))
			else
				echo "    $f-$m ($fmt, $col): info says faces $gf vertices $gv units $gu textures $gt;" \
					"scangen said $t triangles, $v vertices"
			fi
		else
			sed 's/^/    /' "$T/info.err" | head -3
		fi
		i=$((i + 1))
	done
done
expect_eq "${bad_gen[*]:-}" "" "scangen writes every form x material"
expect_eq "$n_pairs" 63 "63 form x material pairs generated"
expect_eq "$n_same" "$n_pairs" "same arguments give byte-identical files"
expect_eq "$n_read" "$n_pairs" "refscan info reads every generated scan"
expect_eq "$n_counts" "$n_pairs" "triangle/vertex counts, units and textures as scangen reported"

# texture mode: OBJ + MTL + PNG beside it, PLY with a TextureFile comment
run "$G" --form box --material wood --color texture --texture-px 64 --triangles 2000 -o "$T/tex/box.obj"
expect_rc 74 "output into a missing folder is an I/O error"
expect_grep "$errf" "scangen: $T/tex/box\\.(obj|mtl): cannot create: No such file or directory" "error names the path and strerror"
mkdir -p "$T/tex"
run "$G" --form box --material wood --color texture --texture-px 64 --triangles 2000 -o "$T/tex/box.obj"
expect_rc 0 "textured OBJ"
expect_grep "$T/tex/box.obj" "^mtllib box.mtl$" "OBJ names its MTL"
expect_grep "$T/tex/box.obj" "^# units mm$" "OBJ says mm"
expect_grep "$T/tex/box.mtl" "^map_Kd box.png$" "MTL names the texture"
expect_eq "$(head -c 8 "$T/tex/box.png" | od -An -tx1 | tr -d ' \n')" 89504e470d0a1a0a "texture is a PNG"
run "$G" --form limb --material skin --color texture --texture-px 64 --triangles 2000 -o "$T/tex/limb.ply"
expect_rc 0 "textured PLY"
expect_grep "$T/tex/limb.ply" "^comment TextureFile limb.png" "PLY names the texture"
expect_grep "$T/tex/limb.ply" "^comment units mm" "PLY says mm"
run "$REFSCAN_BIN" info --json "$T/tex/limb.ply"
expect_eq "$(jq -c '[.uvs, .textures[0].exists]' "$out")" "[true,true]" "PLY UVs and texture found by info"

# a library: varied scans, each with a .meta.json sidecar; deterministic
run "$G" --library "$T/lib1" --count 12 --seed 5 --triangles 1200 -q
expect_rc 0 "library of 12"
"$G" --library "$T/lib2" --count 12 --seed 5 --triangles 1200 -q
expect_eq "$(ls "$T/lib1"/*.meta.json | wc -l)" 12 "one sidecar per scan"
if diff -r "$T/lib1" "$T/lib2" >/dev/null; then ok "library is deterministic"; else not_ok "library differs between runs"; fi
bad_meta=0
for j in "$T/lib1"/*.meta.json; do
	base=${j%.meta.json}
	ls "$base".ply "$base".obj "$base".stl >/dev/null 2>&1 || true
	scan=$(ls "$base".ply "$base".obj "$base".stl 2>/dev/null | head -1)
	m=$(jq -r '.material' "$j")
	if [ -z "$scan" ] || [ "$(jq -r '.units' "$j")" != mm ] ||
		! jq -e --arg m "$m" '.tags | index($m)' "$j" >/dev/null ||
		! case "$(basename "$base")" in *-"$m"-"$(jq -r .form "$j")") true ;; *) false ;; esac; then
		bad_meta=$((bad_meta + 1))
		echo "    bad sidecar $j"
	fi
done
expect_eq "$bad_meta" 0 "sidecars name material, form, units mm and tags"
expect_eq "$(jq -s 'map(.format) | unique | length' "$T/lib1"/*.meta.json)" 5 "library uses all five formats"

# relief from an image: the scan's own colour texture read back as heights
mkdir -p "$T/hm"
run "$G" -q --form tile --material knit --color texture --triangles 4000 -o "$T/hm/knit.obj"
expect_rc 0 "a texture to use as a height map"
run "$G" --form blob --heightmap "$T/hm/knit.png" --heightmap-mm 20 --triangles 8000 \
	-o "$T/hm/blob.ply"
expect_rc 0 "relief from a height map"
expect_grep "$out" "blob.ply: [0-9]+ vertices" "the scan is written"
run "$G" --heightmap "$T/hm/none.png" -o "$T/hm/x.ply"
expect_rc 66 "a missing height map"
expect_grep "$errf" "none.png: cannot open" "is named"
run "$G" --heightmap "$T/hm/knit.png" --heightmap-mm 0 -o "$T/hm/x.ply"
expect_rc 64 "a height map width of 0 is a usage error"

# usage
run "$G" --material velvet -o "$T/x.ply"
expect_rc 64 "unknown material is a usage error"
expect_grep "$errf" "unknown material 'velvet'" "usage error names the value"
run "$G" --form tile
expect_rc 64 "no output file"
run "$G" -o "$T/x.xyz"
expect_rc 64 "unknown extension without --format"
run "$G" --triangles 3 -o "$T/x.ply"
expect_rc 64 "too few triangles"
run "$G" --help
expect_rc 0 "--help"
expect_grep "$out" "^usage: scangen" "help on stdout"

finish
