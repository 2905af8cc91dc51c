#!/usr/bin/env bash
# refscan index/log/diff/extract on a generated library: first index,
# unchanged re-run, change, add, delete, rename, touch, broken scans,
# sidecar metadata and units, every version extracted byte-identical,
# every volume listed by plain tar.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive-lib.bash"

R=$REFSCAN_BIN
L=$T/lib
make_library "$L"
snap() { rm -rf "$T/snap/$1"; mkdir -p "$T/snap/$1"; cp -a "$L" "$T/snap/$1/lib"; }

# ---- first index ----------------------------------------------------
run "$R" index --archive "$A" --json "$L"
expect_rc 0 "first index of a clean library"
expect_eq "$(jq -c '[.version, .committed, .added, .changed, .removed, .unchanged, (.failed|length)]' "$out")" \
	'[1,true,5,0,0,0,0]' "summary: version 1, 5 added"
expect_eq "$(jqv "$out" .new_blobs)" 14 "5 scans + 2 textures + 2 sidecars + 5 descriptors stored as 14 blobs"
snap 1
M1=$A/versions/00000001.json
expect_eq "$(jqv "$M1" '.format + " " + .format_version')" "refscan-manifest 1.1" "manifest names its format and version"
expect_eq "$(jqv "$M1" '[.entries[].path] | join(" ")')" \
	"lib/bark/oak.ply lib/fabric/weave.ply lib/skin/hand01.ply lib/skin/hand02.ply lib/stone/granite.ply" \
	"entries sorted by archive path"
expect_eq "$(jq -c '.entries[] | select(.path=="lib/skin/hand01.ply") | [.meta.material, .meta.subject, .meta.tags, .units, .units_source]' "$M1")" \
	'["skin","hand",["cast","left"],"mm","sidecar"]' "sidecar metadata stored with the entry"
expect_eq "$(jq -c '.entries[] | select(.path=="lib/skin/hand01.ply") | [.files[] | [.role, .path]]' "$M1")" \
	'[["texture","lib/skin/tex/hand01.png"],["sidecar","lib/skin/hand01.ply.meta.json"]]' "texture and sidecar recorded"
expect_eq "$(jq -c '[.entries[] | [.units, .units_source]]' "$M1")" \
	'[["in","sidecar"],["cm","file"],["mm","sidecar"],["mm","file"],["mm","default"]]' \
	"units: sidecar over file comment over default"
expect_eq "$(jq -c '.entries[] | select(.path=="lib/stone/granite.ply") | [.stats.vertices, .stats.faces, .size == (.size|floor), (.blob|length), .since, .descriptors.schema]' "$M1")" \
	'[256,450,true,64,1,"refscan-desc-7"]' "stats, blob digest, since, descriptors"
expect_eq "$(jq '[.entries[] | select(.descriptors) | .stats.descriptor.noise | numbers | select(. >= 0)] | length' "$M1")" \
	"$(jq '[.entries[] | select(.descriptors)] | length' "$M1")" "every description records its noise level"

# every volume is a plain pax tar + zstd
for v in "$A"/volumes/*.tar.zst; do
	n_tar=$(tar --zstd -tf "$v" | wc -l)
	n_idx=$(jq '.blobs | length' "${v%.tar.zst}.idx.json")
	expect_eq "$n_tar" "$n_idx" "tar --zstd -tf lists every blob of $(basename "$v")"
done
expect_eq "$(tar --zstd -tvf "$A/volumes/00000001.tar.zst" | awk '{print $2}' | sort -u)" "0/0" "fixed owner in tar headers"
expect_eq "$(tar --zstd -tf "$A/volumes/00000001.tar.zst" | grep -cvE '^blobs/([0-9a-f]{2})/\1[0-9a-f]{62}$')" 0 \
	"every tar entry is blobs/xx/<sha256>"
mkdir -p "$T/untar"
tar --zstd -xf "$A/volumes/00000001.tar.zst" -C "$T/untar"
h=$(sha256sum "$L/stone/granite.ply" | cut -c1-64)
expect_eq "$(sha256sum "$T/untar/blobs/${h:0:2}/$h" | cut -c1-64)" "$h" "plain tar extracts a blob named by its sha-256"

# ---- unchanged re-run: no new version --------------------------------
run "$R" index --archive "$A" --json "$L"
expect_rc 0 "unchanged re-run"
expect_eq "$(jq -c '[.version, .committed, .unchanged, .added, .new_blobs]' "$out")" '[1,false,5,0,0]' "no new version"
expect_eq "$(ls "$A/versions" | tr '\n' ' ')" "00000001.index 00000001.json " "still one manifest and its index"
run "$R" index --archive "$A" "$L"
expect_grep "$out" "^no changes; version 1 is current" "text summary for an unchanged tree"

# ---- the stat cache is only a cache --------------------------------
expect_eq "$(jq -r .version "$A/statcache.json")" 1 "stat cache written for HEAD"
cp "$A/statcache.json" "$T/statcache.v1"
echo 'not json' >"$A/statcache.json"
run "$R" index --archive "$A" --json "$L"
expect_eq "$(jq -c '[.committed, .unchanged]' "$out")" '[false,5]' "a damaged stat cache is ignored"
expect_eq "$(jq -r .version "$A/statcache.json")" 1 "and rewritten"

# ---- change one, add one, delete one, rename one, touch one ----------
mkply "$L/stone/granite.ply" 16 33
run "$R" index --archive "$A" --json "$L"
expect_eq "$(jq -c '[.version, .added, .changed, .removed, .unchanged, .new_blobs]' "$out")" '[2,0,1,0,4,2]' "change one file (scan + descriptor)"
snap 2
mkply "$L/metal/brass.ply" 7 6 "" mm
run "$R" index --archive "$A" --json "$L"
expect_eq "$(jq -c '[.version, .added, .changed, .removed, .new_blobs]' "$out")" '[3,1,0,0,2]' "add one file (scan + descriptor)"
snap 3
rm "$L/fabric/weave.ply"
run "$R" index --archive "$A" --json "$L"
expect_eq "$(jq -c '[.version, .added, .changed, .removed, .new_blobs, .volume]' "$out")" '[4,0,0,1,0,null]' "delete one file: no volume"
snap 4
mv "$L/metal/brass.ply" "$L/metal/brass-renamed.ply"
run "$R" index --archive "$A" --json "$L"
expect_eq "$(jq -c '[.version, .added, .removed, .new_blobs, .new_bytes]' "$out")" '[5,1,1,0,0]' "rename: no new bytes stored"
snap 5
touch -d '2001-02-03 04:05:06' "$L/bark/oak.ply"
run "$R" index --archive "$A" --json "$L"
expect_eq "$(jq -c '[.version, .touched, .changed, .new_blobs]' "$out")" '[6,1,0,0]' "touch: stats refreshed, no bytes"
run "$R" index --archive "$A" --json "$L"
expect_eq "$(jq -c '[.committed, .unchanged]' "$out")" '[false,5]' "touched file is unchanged afterwards"
mkbytes "$L/skin/tex/hand02.png" 32 99
run "$R" index --archive "$A" --json "$L"
expect_eq "$(jq -c '[.version, .changed, .new_blobs]' "$out")" '[7,1,1]' "a changed texture changes its scan"
snap 7
printf '{"material":"skin","subject":"hand","tags":["cast"],"units":"mm"}\n' >"$L/skin/hand01.ply.meta.json"
run "$R" index --archive "$A" --json "$L"
expect_eq "$(jq -c '[.version, .changed]' "$out")" '[8,1]' "a changed sidecar changes its scan"
snap 8

# ---- log, diff ------------------------------------------------------
run "$R" log --archive "$A"
expect_eq "$(wc -l <"$out")" 8 "log: one line per version"
expect_grep "$out" "^version 8 .*\(HEAD\)$" "log: newest first, HEAD marked"
run "$R" log --archive "$A" --json -n 2
expect_eq "$(jq -c '[.version, .head, .added, .changed, .removed]' "$out" | tr -d '\n')" \
	'[8,true,0,1,0][7,false,0,1,0]' "log --json -n 2"
run "$R" diff --archive "$A" 4 5
expect_eq "$(cat "$out" | tr '\t' ' ' | tr '\n' ';')" "A lib/metal/brass-renamed.ply;D lib/metal/brass.ply;" "diff: rename is D + A"
run "$R" diff --archive "$A" --json 1 HEAD
expect_eq "$(jq -c '[.from, .to, .added, .changed, .removed]' "$out")" \
	'[1,8,["lib/metal/brass-renamed.ply"],["lib/skin/hand01.ply","lib/skin/hand02.ply","lib/stone/granite.ply"],["lib/fabric/weave.ply"]]' \
	"diff --json across versions"
run "$R" diff --archive "$A" 1 nine
expect_rc 64 "diff with a malformed version"
run "$R" diff --archive "$A" 1 99
expect_rc 66 "diff with a version that does not exist"

# ---- extract every version byte-identical ----------------------------
for v in 1 2 3 4 5 7 8; do
	run "$R" extract --archive "$A" --version "$v" --to "$T/x/$v"
	if [ "$rc" -eq 0 ] && same_tree "$T/x/$v" "$T/snap/$v"; then
		ok "version $v extracted byte-identical (cmp) with its textures and sidecars"
	else
		not_ok "version $v extract (exit $rc) differs from the source at that time"
		diff -r "$T/x/$v" "$T/snap/$v" | head -5
	fi
done
run "$R" extract --archive "$A" --version 1 --to "$T/x/pat" --json 'lib/skin/*01.ply' lib/bark
expect_eq "$(jq -c '[.version, .scans, .files, (.failed|length)]' "$out")" '[1,2,5,0]' "extract by pattern and prefix"
expect_eq "$(cd "$T/x/pat" && find . -type f | sort | tr '\n' ' ')" \
	"./lib/bark/oak.ply ./lib/bark/oak.ply.meta.json ./lib/skin/hand01.ply ./lib/skin/hand01.ply.meta.json ./lib/skin/tex/hand01.png " \
	"only the matching scans and their files"
expect_eq "$(stat -c %Y "$T/x/5/lib/bark/oak.ply")" "$(stat -c %Y "$T/snap/5/lib/bark/oak.ply")" "modification time restored"
run "$R" extract --archive "$A" --to "$T/x/none" 'nothing/*'
expect_rc 66 "extract with no match"

# ---- broken scans -----------------------------------------------------
mkdir -p "$L/broken"
printf 'ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n1\n' >"$L/broken/bad.ply"
run "$R" index --archive "$A" --json "$L"
expect_rc 2 "only a broken scan is new: failures and nothing committed"
expect_eq "$(jq -c '[.committed, .version, (.failed|length), .failed[0].path, .failed[0].error.code, .failed[0].known]' "$out")" \
	"[false,8,1,\"$L/broken/bad.ply\",\"format\",false]" "failed scan reported with path and reason"
expect_grep "$errf" "^refscan: $L/broken/bad.ply: " "failure on stderr names the file"
run "$R" index --archive "$A" --json "$L"
expect_eq "$(jq -c '[.committed, .failed[0].known]' "$out")" '[false,true]' "unchanged broken scan not read again"
mkply "$L/new/one.ply" 5 7
cp "$L/skin/hand02.ply" "$T/hand02.good"
printf 'ply\nformat ascii 1.0\nelement vertex 99\n' >"$L/skin/hand02.ply"
run "$R" index --archive "$A" --json "$L"
expect_rc 1 "some scans failed, the rest committed"
expect_eq "$(jq -c '[.version, .added, .changed, (.failed|length)]' "$out")" '[9,1,0,2]' "the broken change is not a change"
expect_eq "$(jq -c '[.entries[] | select(.path=="lib/skin/hand02.ply") | .since] | length' "$A/versions/00000009.json")" 1 \
	"the good copy of a scan that broke stays in the new version"
expect_eq "$(jq -c '[.counts.failed, [.failed[].path]]' "$A/versions/00000009.json")" \
	'[2,["lib/broken/bad.ply","lib/skin/hand02.ply"]]' "failures recorded in the manifest"
mkply "$L/broken/bad.ply" 4 8
cp "$T/hand02.good" "$L/skin/hand02.ply"
run "$R" index --archive "$A" --json "$L"
expect_rc 0 "fixed scans are retried and stored"
expect_eq "$(jq -c '[.version, .added, .touched, (.failed|length)]' "$out")" '[10,1,1,0]' "retried when changed"

# ---- dry run writes nothing -----------------------------------------
mkply "$L/dry/run.ply" 4 9
before=$(cd "$A" && find . -type f -newer "$A/HEAD" | wc -l; cat HEAD)
run "$R" index --archive "$A" --dry-run --json "$L"
expect_eq "$(jq -c '[.dry_run, .committed, .version, .added]' "$out")" '[true,false,11,1]' "dry run reports the would-be version"
expect_eq "$(cd "$A" && find . -type f -newer "$A/HEAD" | wc -l; cat HEAD)" "$before" "dry run changed nothing"
run "$R" index --archive "$T/never" --dry-run --json "$L"
expect_eq "$(jq -c '[.committed, .added]' "$out")" '[false,8]' "dry run against a missing archive"
expect_eq "$(test -e "$T/never" && echo made || echo absent)" absent "dry run creates no archive"
rm -rf "$L/dry"

# ---- symlinks -----------------------------------------------------
mkply "$T/outside/far.ply" 4 10
mkdir -p "$L/links"
ln -s "$T/outside/far.ply" "$L/links/far.ply"
ln -s ../stone/granite.ply "$L/links/near.ply"
ln -s "$T/outside" "$L/links/dir"
run "$R" index --archive "$A" --json "$L"
expect_eq "$(jq -c '[.added, (.failed|length)]' "$out")" '[1,0]' "symlink inside the tree followed, outside not"
expect_grep "$errf" "links/far.ply: symlink leads outside the source tree" "escaping file symlink reported"
expect_grep "$errf" "links/dir: symlink to a directory not followed" "directory symlink reported"
run "$R" index --archive "$T/a-follow" --follow-symlinks --json "$L"
expect_eq "$(jq -c '[.added]' "$out")" '[10]' "--follow-symlinks follows them all"
rm -rf "$L/links"

# ---- a source that vanished is not "everything deleted" ---------------
mkdir -p "$T/empty/lib"
run "$R" index --archive "$A" --json "$T/empty/lib"
expect_rc 2 "an empty source with archived scans"
expect_eq "$(jq -c '[.committed, .removed, .failed[0].error.code]' "$out")" '[false,0,"notfound"]' "its scans are kept"
run "$R" index --archive "$A" --json "$T/nope"
expect_rc 66 "a missing source"

# ---- units default, progress, usage ----------------------------------
REFSCAN_DEFAULT_UNITS=in run "$R" index --archive "$T/a-units" -q "$L"
expect_eq "$(jq -r '.entries[] | select(.path=="lib/stone/granite.ply") | .units' "$T/a-units/versions/00000001.json")" in \
	"REFSCAN_DEFAULT_UNITS sets the default unit"
run "$R" index --archive "$T/a-units2" --units cm -q "$L"
expect_eq "$(jq -r '.entries[] | select(.path=="lib/stone/granite.ply") | .units' "$T/a-units2/versions/00000001.json")" cm \
	"--units sets the default unit"
REFSCAN_FORCE_TTY=1 REFSCAN_PROGRESS_DELAY=0 run "$R" index --archive "$T/a-tty" "$L"
expect_grep "$errf" "reading scans: [0-9]+/[0-9]+ files, [0-9.]+/[0-9.]+ MB, [0-9.]+ MB/s" "progress bar on a TTY"
expect_grep "$errf" $'\r(reading scans|writing volume): .*, done' "progress redrawn in place with carriage returns"
expect_grep "$errf" "writing volume: [0-9]+/[0-9]+ files" "a bar for writing the volume too"
REFSCAN_FORCE_TTY=1 REFSCAN_PROGRESS_DELAY=0 run "$R" index --archive "$T/a-tty2" --json "$L"
expect_no_grep "$errf" "reading scans" "no progress with --json"
run "$R" index --archive "$T/a-quiet" "$L"
expect_no_grep "$errf" "reading scans" "no progress when stderr is not a TTY"

run "$R" index --help
expect_rc 0 "index --help"
expect_grep "$out" "^usage: refscan index" "help on stdout"
run "$R" index --archive "$A"
expect_rc 64 "index without a source"
run "$R" index --bogus "$L"
expect_rc 64 "unknown option"
mkdir -p "$T/notarchive" && echo hi >"$T/notarchive/readme.txt"
run "$R" index --archive "$T/notarchive" "$L"
expect_rc 65 "refuses a directory that is not an archive"
expect_grep "$errf" "not a refscan archive" "says why"
run "$R" log --archive "$T/missing"
expect_rc 66 "log without an archive"
REFSCAN_ARCHIVE=$A run "$R" log -n 1
expect_grep "$out" "^version 11 " "REFSCAN_ARCHIVE names the archive"

# ---- scangen's library: PLY/OBJ/STL, MTL, textures, stem sidecars ----
if [ -x "$REFSCAN_BUILD/scangen" ]; then
	"$REFSCAN_BUILD/scangen" --library "$T/gen" --count 12 --seed 3 -q >/dev/null
	G=$T/a-gen
	run "$R" index --archive "$G" --json "$T/gen"
	expect_rc 0 "a generated library indexes cleanly"
	expect_eq "$(jq -c '[.added, (.failed|length)]' "$out")" '[12,0]' "all 12 generated scans stored"
	GM=$G/versions/00000001.json
	expect_eq "$(jq '[.entries[] | select(any(.files[]; .role == "sidecar"))] | length' "$GM")" 12 \
		"every scan has its <stem>.meta.json sidecar"
	expect_eq "$(jq '[.entries[] | select(.path | endswith(".obj")) | select(any(.files[]; .role == "mtl"))] | length' "$GM")" \
		"$(ls "$T/gen" | grep -c '\.obj$')" "every OBJ has its MTL"
	expect_eq "$(jq '[.entries[].files[] | select(.role == "texture" and (.missing | not))] | length' "$GM")" \
		"$(ls "$T/gen" | grep -c '\.png$')" "every texture stored"
	expect_eq "$(jq '[.entries[] | select(.meta.material == (.path | split("/")[1] | split("-")[1]))] | length' "$GM")" 12 \
		"sidecar material kept with each entry"
	expect_eq "$(jq '[.entries[] | select(.stats.faces == .meta.triangles and .units_source == "sidecar")] | length' "$GM")" 12 \
		"read triangle counts match what the generator wrote"
	run "$R" extract --archive "$G" --to "$T/x-gen" -q
	if [ "$rc" -eq 0 ] && same_tree "$T/x-gen/gen" "$T/gen"; then
		ok "generated library extracted byte-identical"
	else
		not_ok "generated library extract (exit $rc) differs"
	fi
	run "$R" index --archive "$G" --json "$T/gen"
	expect_eq "$(jq -c '[.committed, .unchanged]' "$out")" '[false,12]' "generated library: unchanged re-run"
	mv "$T/gen/000-none-tile.meta.json" "$T/gen/000-none-tile.ply.meta.json"
	run "$R" index --archive "$G" --json "$T/gen"
	expect_eq "$(jq -c '[.changed, .new_blobs]' "$out")" '[1,0]' "a renamed sidecar (<file>.meta.json wins) changes its scan"
else
	echo "SKIP - scangen not built: generated-library checks"
fi

# a stale stat cache (from an older version) never hides a change: the
# file is put back as it was at version 1, same bytes, inode and mtime
S=$T/a-stale
mkply "$T/st/lib/a.ply" 5 1
mkply "$T/st/lib/b.ply" 5 2
touch -d @1600000000 "$T/st/lib/a.ply"
cp "$T/st/lib/a.ply" "$T/a.v1"
"$R" index --archive "$S" -q "$T/st/lib"
cp "$S/statcache.json" "$T/statcache.v1"
mkply "$T/st/lib/a.ply" 5 3
"$R" index --archive "$S" -q "$T/st/lib"
expect_eq "$(jq -r .version "$S/statcache.json")" 2 "stat cache follows HEAD"
cat "$T/a.v1" >"$T/st/lib/a.ply" && touch -d @1600000000 "$T/st/lib/a.ply"
cp "$T/statcache.v1" "$S/statcache.json"
run "$R" index --archive "$S" --json "$T/st/lib"
expect_eq "$(jq -c '[.version, .changed, .unchanged, .new_blobs]' "$out")" '[3,1,1,0]' \
	"a stale stat cache is ignored: the change back to version 1 is seen"

# a newer major format is refused, a newer minor one read
cp -a "$A" "$T/future"
jq -c '.format_version = "2.0"' "$A/HEAD" >"$T/future/HEAD"
run "$R" log --archive "$T/future"
expect_rc 65 "HEAD of a newer major format refused"
expect_grep "$errf" "newer than this refscan reads" "with a clear message"
jq -c '.format_version = "1.9" | .future_key = 1' "$A/HEAD" >"$T/future/HEAD"
run "$R" log --archive "$T/future" -n 1
expect_rc 0 "a newer minor format is read"

finish
