#!/usr/bin/env bash
# tests/bench/bench_ingest.sh - archive ingest speed, measured against GNU
# tar in the same run (make bench, through scripts/run-bench).
#
#  1. ingest: `refscan index` of >= 500 MB of generated scans (PLY, OBJ,
#     STL, binary and ascii, with textures, MTL files and sidecars) into a
#     new archive, against `tar --zstd -cf` of the same files.  Both read
#     from the page cache (the files are read once beforehand); the best
#     of REFSCAN_BENCH_REPEAT (default 3) runs of each counts.  refscan
#     also reads and validates every scan, hashes every file twice and
#     fsyncs what it writes; tar does none of that.  No descriptors.
#     Target: refscan's throughput >= 0.8x tar's.
#  2. re-index: `refscan index` of an unchanged tree of 10,000 scans.
#     Target: under 1 s.
#
# Inputs are generated with scangen into $REFSCAN_BENCH_DATA and kept.
# Figures: a table on stdout and one JSON object in $REFSCAN_BENCH_JSON.
set -u
B=${REFSCAN_BUILD:?run through make bench}
R=${REFSCAN_BIN:-$B/refscan}
SCANGEN=$B/scangen
DATA=${REFSCAN_BENCH_DATA:-$B/bench-data}
REPEAT=${REFSCAN_BENCH_REPEAT:-3}
INGEST_MB=${REFSCAN_BENCH_INGEST_MB:-500}
work=$(mktemp -d "${TMPDIR:-/tmp}/refscan-bench-ingest.XXXXXX")
trap 'rm -rf "$work"' EXIT

die() { echo "bench_ingest: $*" >&2; exit 1; }
[ -x "$R" ] || die "no refscan binary at $R"
[ -x "$SCANGEN" ] || die "no scangen at $SCANGEN (make $B/scangen)"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (b == "" || a < b) ? a : b }'; }

# ---- inputs -----------------------------------------------------------
lib=$DATA/ingest-lib
if [ ! -f "$lib/.complete" ]; then
	rm -rf "$lib"
	echo "generating >= $INGEST_MB MB of scans in $lib ..."
	"$SCANGEN" --library "$lib" --count 16 --triangles 400000 --seed 2024 -q >/dev/null ||
		die "scangen failed"
	touch "$lib/.complete"
fi
bytes=$(find "$lib" -type f ! -name .complete -printf '%s\n' | awk '{ s += $1 } END { print s }')
files=$(find "$lib" -type f ! -name .complete | wc -l)
[ "$bytes" -ge $((INGEST_MB * 1000000)) ] || die "only $bytes bytes generated"

many=$DATA/reindex-10k
if [ ! -f "$many/.complete" ]; then
	rm -rf "$many"
	mkdir -p "$many"
	echo "generating a tree of 10,000 scans in $many ..."
	"$SCANGEN" --library "$many/seed" --count 20 --triangles 400 --seed 77 -q >/dev/null ||
		die "scangen failed"
	for d in $(seq -w 0 499); do
		mkdir -p "$many/tree/d$d"
		cp "$many"/seed/*.ply "$many"/seed/*.obj "$many"/seed/*.stl "$many"/seed/*.mtl \
			"$many"/seed/*.meta.json "$many/tree/d$d/" 2>/dev/null
		cp "$many"/seed/*.png "$many/tree/d$d/" 2>/dev/null
	done
	touch "$many/.complete"
fi
n_many=$(find "$many/tree" -type f \( -name '*.ply' -o -name '*.obj' -o -name '*.stl' \) | wc -l)

# ---- 1. ingest vs tar -------------------------------------------------
cat "$lib"/* >/dev/null # both start from the page cache
# timed RESULT_PREFIX CMD...: wall and CPU (user + sys, children included)
timed() {
	local pre=$1
	shift
	/usr/bin/time -f "%e %U %S" -o "$work/time" "$@" || return 1
	read -r wall usr sys <"$work/time"
	eval "${pre}_wall=$wall ${pre}_cpu=$(awk -v u="$usr" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')"
}
best_tar="" best_ref="" tar_cpu="" ref_cpu="" tar_size=0 vol_size=0
for i in $(seq 1 "$REPEAT"); do
	rm -f "$work/lib.tar.zst"
	timed t tar --zstd -cf "$work/lib.tar.zst" -C "$DATA" ingest-lib || die "tar failed"
	best_tar=$(min "$t_wall" "$best_tar")
	tar_cpu=$(min "$t_cpu" "$tar_cpu")
	tar_size=$(stat -c %s "$work/lib.tar.zst")
	rm -rf "$work/archive"
	timed r sh -c '"$0" index --archive "$1" --json "$2" >"$3"' "$R" "$work/archive" "$lib" "$work/ingest.json" ||
		die "refscan index failed: $(cat "$work/ingest.json")"
	best_ref=$(min "$r_wall" "$best_ref")
	ref_cpu=$(min "$r_cpu" "$ref_cpu")
	vol_size=$(stat -c %s "$work/archive/volumes/00000001.tar.zst")
done
stored=$(jq .added "$work/ingest.json")
[ "$stored" -eq "$(jq '.entries | length' "$work/archive/versions/00000001.json")" ] || die "manifest mismatch"
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
tar_mbs=$(awk -v b="$bytes" -v t="$best_tar" 'BEGIN { printf "%.1f", b / 1e6 / t }')
ref_mbs=$(awk -v b="$bytes" -v t="$best_ref" 'BEGIN { printf "%.1f", b / 1e6 / t }')
ratio=$(awk -v a="$best_tar" -v b="$best_ref" 'BEGIN { printf "%.2f", a / b }')
ratio_ok=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.8) ? "true" : "false" }')
cpu_ratio=$(awk -v a="$tar_cpu" -v b="$ref_cpu" 'BEGIN { printf "%.2f", a / b }')

# ---- 2. unchanged re-index of 10,000 scans ------------------------------
rm -rf "$work/many"
"$R" index --archive "$work/many" -q "$many/tree" >/dev/null 2>&1
[ "$(jq '.entries | length' "$work/many/versions/00000001.json")" -eq "$n_many" ] ||
	die "first index of the 10,000-scan tree did not store every scan"
best_re=""
for i in 1 2 3; do
	t0=$(now)
	"$R" index --archive "$work/many" --json "$many/tree" >"$work/re.json" || die "re-index failed"
	t1=$(now)
	best_re=$(min "$(secs "$t0" "$t1")" "$best_re")
done
[ "$(jq -c '[.committed, .unchanged]' "$work/re.json")" = "[false,$n_many]" ] || die "re-index was not a no-op"
re_ok=$(awk -v t="$best_re" 'BEGIN { print (t < 1.0) ? "true" : "false" }')

load=$(cut -d' ' -f1 /proc/loadavg)
echo
printf '%-44s %12s %12s %12s\n' "ingest ($files files, $mb MB)" "seconds" "MB/s" "CPU s"
printf '%-44s %12s %12s %12s\n' "tar --zstd -cf" "$best_tar" "$tar_mbs" "$tar_cpu"
printf '%-44s %12s %12s %12s\n' "refscan index (read, validate, hash, fsync)" "$best_ref" "$ref_mbs" "$ref_cpu"
printf '%-44s %12s   (target >= 0.80: %s)\n' "throughput ratio refscan/tar (wall)" "$ratio" "$ratio_ok"
printf '%-44s %12s\n' "CPU-time ratio tar/refscan" "$cpu_ratio"
printf '%-44s %12s %12s\n' "compressed bytes: tar / refscan volume" "$tar_size" "$vol_size"
printf '%-44s %12s        (target < 1 s: %s)\n' "re-index unchanged tree of $n_many scans" "$best_re" "$re_ok"
printf '%-44s %12s\n' "load average during the run" "$load"

json=$(jq -n --argjson bytes "$bytes" --argjson files "$files" --argjson scans "$stored" \
	--argjson tar_s "$best_tar" --argjson refscan_s "$best_ref" \
	--argjson tar_mb_s "$tar_mbs" --argjson refscan_mb_s "$ref_mbs" --argjson ratio "$ratio" \
	--argjson ratio_ok "$ratio_ok" --argjson tar_bytes "$tar_size" --argjson volume_bytes "$vol_size" \
	--argjson reindex_files "$n_many" --argjson reindex_s "$best_re" --argjson reindex_ok "$re_ok" \
	--argjson load "$load" --argjson repeat "$REPEAT" \
	--argjson tar_cpu "$tar_cpu" --argjson refscan_cpu "$ref_cpu" --argjson cpu_ratio "$cpu_ratio" \
	'{ingest: {bytes: $bytes, files: $files, scans: $scans, repeat: $repeat,
	   tar_s: $tar_s, refscan_s: $refscan_s, tar_mb_s: $tar_mb_s, refscan_mb_s: $refscan_mb_s,
	   ratio: $ratio, target_ratio: 0.8, ratio_ok: $ratio_ok,
	   tar_cpu_s: $tar_cpu, refscan_cpu_s: $refscan_cpu, cpu_ratio: $cpu_ratio,
	   tar_zst_bytes: $tar_bytes, volume_bytes: $volume_bytes},
	  reindex: {scans: $reindex_files, seconds: $reindex_s, target_s: 1.0, ok: $reindex_ok},
	  load_average: $load}')
if [ -n "${REFSCAN_BENCH_JSON:-}" ]; then echo "$json" >"$REFSCAN_BENCH_JSON"; else echo "$json"; fi
