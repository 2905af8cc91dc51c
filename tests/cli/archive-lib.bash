# tests/cli/archive-lib.bash - helpers for the archive tests (sourced
# after lib.sh; not a test itself, hence not *.sh).

A="$T/archive"

# mkply PATH N SEED [TEXTURE] [UNITS]: an ascii PLY grid of N*N vertices
# and 2(N-1)^2 triangles with pseudo-random heights from SEED.
mkply() {
	mkdir -p "$(dirname "$1")"
	awk -v n="$2" -v seed="$3" -v tex="${4:-}" -v units="${5:-}" 'BEGIN {
		srand(seed); nv = n * n; nf = 2 * (n - 1) * (n - 1)
		print "ply"; print "format ascii 1.0"
		if (units != "") print "comment units " units
		if (tex != "") print "comment TextureFile " tex
		print "element vertex " nv
		print "property float x"; print "property float y"; print "property float z"
		print "element face " nf
		print "property list uchar int vertex_indices"; print "end_header"
		for (j = 0; j < n; j++) for (i = 0; i < n; i++) printf "%d %d %.4f\n", i, j, rand()
		for (j = 0; j < n - 1; j++) for (i = 0; i < n - 1; i++) {
			a = j * n + i
			printf "3 %d %d %d\n3 %d %d %d\n", a, a + 1, a + n, a + 1, a + n + 1, a + n
		}
	}' >"$1"
}

# mkbytes PATH KIB SEED: KIB KiB of pseudo-random bytes (a stand-in texture).
mkbytes() {
	mkdir -p "$(dirname "$1")"
	awk -v n="$2" -v seed="$3" 'BEGIN { srand(seed); for (i = 0; i < n * 64; i++) {
		s = ""; for (k = 0; k < 16; k++) s = s sprintf("%c", 32 + int(rand() * 90)); printf "%s", s } }' >"$1"
}

# make_library DIR: a small studio library with textures, sidecars and units.
make_library() {
	local d=$1
	mkply "$d/skin/hand01.ply" 12 1 tex/hand01.png mm
	mkbytes "$d/skin/tex/hand01.png" 64 11
	printf '{"material":"skin","subject":"hand","tags":["cast","left"],"units":"mm","scanner":"EinScan"}\n' \
		>"$d/skin/hand01.ply.meta.json"
	mkply "$d/skin/hand02.ply" 10 2 tex/hand02.png mm
	mkbytes "$d/skin/tex/hand02.png" 32 12
	mkply "$d/stone/granite.ply" 16 3
	mkply "$d/fabric/weave.ply" 8 4 "" cm
	mkply "$d/bark/oak.ply" 9 5
	printf '{"material":"bark","units":"in"}\n' >"$d/bark/oak.ply.meta.json"
}

# The scans of HEAD and their files, as "path" lines, sorted.
head_files() {
	"$REFSCAN_BIN" extract --archive "$1" --to "$T/hf.$$" -q >/dev/null 2>&1
	(cd "$T/hf.$$" && find . -type f | sed 's|^\./||' | sort)
	rm -rf "$T/hf.$$"
}

# same_tree GOT WANT: every file of GOT is byte-identical (cmp) to the
# same path in WANT, and both hold the same list of files.
same_tree() {
	local got=$1 want=$2 f
	[ "$(cd "$got" && find . -type f | sort)" = "$(cd "$want" && find . -type f | sort)" ] || return 1
	while IFS= read -r f; do
		cmp -s "$got/$f" "$want/$f" || return 1
	done < <(cd "$got" && find . -type f)
	return 0
}

# same_tree_quick GOT WANT: the same check in one process (diff compares
# bytes too), for the loops of the crash tests.
same_tree_quick() {
	diff -rq "$1" "$2" >/dev/null 2>&1
}

# jqv FILE FILTER: one raw jq value.
jqv() { jq -r "$2" "$1"; }
