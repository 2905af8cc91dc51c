#!/usr/bin/env bash
# Damage and hostile archives: a flipped byte in a volume is found and the
# affected scan named; a lost volume or a broken manifest is reported; a
# volume crafted with '../' and absolute entries, a manifest with escaping
# paths and a symlink in the destination never make extract write outside
# the destination.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive-lib.bash"

R=$REFSCAN_BIN
L=$T/lib
make_library "$L"
"$R" index --archive "$A" -q "$L" || not_ok "first index"
mkply "$L/stone/granite.ply" 40 31       # version 2: volume 2 holds only this scan
"$R" index --archive "$A" -q "$L" || not_ok "second index"
run "$R" verify --archive "$A" --all
expect_rc 0 "a sound archive verifies"
expect_grep "$out" "^verify: ok: 2 versions, 16 blobs" "verify summary"

# ---- flipped bytes ---------------------------------------------------
flip() { # flip FILE OFFSET
	python3 - "$1" "$2" <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read()); b[off] ^= 0x5a; open(p, 'wb').write(b)
PY
}
cp -a "$A" "$T/flip"
v2=$T/flip/volumes/00000002.tar.zst
# a byte in every KiB: the damage stays where it lands in a zstd stream,
# so this reaches the scan and its descriptor record whatever their order
# (digest order) and compressed sizes
for off in $(seq 100 1024 $(($(stat -c %s "$v2") - 100))); do flip "$v2" "$off"; done
run "$R" verify --archive "$T/flip"
expect_rc 65 "a flipped byte is damage"
expect_grep "$out" "^damaged volume volumes/00000002.tar.zst: " "the damaged volume is named"
expect_grep "$out" "^affected: version 2: lib/stone/granite.ply " "the affected scan is named"
expect_eq "$(grep '^affected:' "$out" | awk '{print $4}' | sort -u)" "lib/stone/granite.ply" "and only that scan"
expect_grep "$errf" "^refscan: error: the archive is damaged: 1 volume, 1 scan affected" "one error line"
run "$R" verify --archive "$T/flip" --json
expect_eq "$(jq -c '[.ok, [.damaged_volumes[].volume], [.affected[] | [.version, .path, .role, .volume]]]' "$out")" \
	'[false,[2],[[2,"lib/stone/granite.ply","scan",2],[2,"lib/stone/granite.ply","descriptors",2]]]' \
	"verify --json names volume, scan and its descriptors"
run "$R" verify --archive "$T/flip" --version 1
expect_rc 0 "version 1 does not use the damaged volume"
run "$R" extract --archive "$T/flip" --to "$T/x1"
expect_rc 1 "extract restores what it can"
expect_grep "$errf" "lib/stone/granite.ply: " "and names the scan it cannot restore"
expect_eq "$(test -e "$T/x1/lib/stone/granite.ply" && echo there || echo absent)" absent "no damaged file left behind"
expect_eq "$(cmp -s "$T/x1/lib/skin/hand01.ply" "$L/skin/hand01.ply" && echo same)" same "other scans restored"

# a byte flipped in the first volume's tar headers or data: always found
cp -a "$A" "$T/flip1"
flip "$T/flip1/volumes/00000001.tar.zst" 40
run "$R" verify --archive "$T/flip1" --all --json
expect_rc 65 "damage near the start of a volume"
expect_eq "$(jq -c '[.damaged_volumes[].volume]' "$out")" '[1]' "volume 1 named"
expect_eq "$(jq '[.affected[].path] | unique | length > 0' "$out")" true "affected scans listed"

# ---- a lost volume, a broken manifest, a damaged volume index --------
cp -a "$A" "$T/lost"
rm "$T/lost/volumes/00000002.tar.zst"
run "$R" verify --archive "$T/lost" --json
expect_eq "$(jq -c '[.ok, [.damaged_volumes[].volume], ([.affected[].path] | unique)]' "$out")" \
	'[false,[2],["lib/stone/granite.ply"]]' "a missing volume file"
cp -a "$A" "$T/badidx"
echo '{"format":"refscan-volume-index"' >"$T/badidx/volumes/00000002.idx.json"
run "$R" verify --archive "$T/badidx" --json
expect_eq "$(jq -c '[.ok, [.damaged_volumes[].volume], ([.affected[] | [.path, .problem]] | unique)]' "$out")" \
	'[false,[2],[["lib/stone/granite.ply","in no readable volume"]]]' "a broken volume index"
cp -a "$A" "$T/badman"
sed -i 's/"blob":"/"blob":"zz/' "$T/badman/versions/00000001.json"
run "$R" verify --archive "$T/badman" --all --json
expect_rc 65 "a broken manifest is damage"
expect_grep "$out" '"problems":\[\{"version":1,' "the manifest is named"

# ---- a crafted volume: '../' and absolute entries ----------------------
C=$T/crafted
cp -a "$A" "$C"
mkdir -p "$T/craft" "$T/victim"
echo evil >"$T/craft/evil.txt"
mkdir -p "$T/craft/vol"
tar --zstd -xf "$C/volumes/00000002.tar.zst" -C "$T/craft/vol"
# GNU tar, hostile names first: one '../' name, one absolute name, then
# the real blob so that extract has to read past them
(cd "$T/craft" && tar -cf v.tar -P --transform 's,^,../,' evil.txt 2>/dev/null)
tar -rf "$T/craft/v.tar" -P --transform "s,.*,$T/victim/abs.txt," "$T/craft/evil.txt" 2>/dev/null
(cd "$T/craft/vol" && tar -rf ../v.tar $(find blobs -type f | sort) 2>/dev/null)
tar -tPf "$T/craft/v.tar" >"$T/craft/list"
expect_grep "$T/craft/list" '^\.\./evil\.txt$' "crafted volume holds a ../ entry"
expect_grep "$T/craft/list" "^$T/victim/abs.txt$" "and an absolute entry"
zstd -q -f "$T/craft/v.tar" -o "$C/volumes/00000002.tar.zst"
jq -c --arg sha "$(sha256sum "$C/volumes/00000002.tar.zst" | cut -c1-64)" \
	--argjson size "$(stat -c %s "$C/volumes/00000002.tar.zst")" '.sha256 = $sha | .size = $size' \
	"$C/volumes/00000002.idx.json" >"$T/craft/idx" && cp "$T/craft/idx" "$C/volumes/00000002.idx.json"
mkdir -p "$T/dest/deep"
run "$R" extract --archive "$C" --to "$T/dest/deep"
expect_rc 0 "extract restores the real scans from a crafted volume"
expect_grep "$errf" "entry 0 '\.\./evil\.txt' is not a blob; ignored" "the ../ entry is refused"
expect_grep "$errf" "'$T/victim/abs.txt' is not a blob; ignored" "the absolute entry is refused"
expect_eq "$(ls "$T/dest" | tr '\n' ' ')" "deep " "nothing written beside the destination"
expect_eq "$(ls -A "$T/victim" | wc -l)" 0 "nothing written at the absolute path"
expect_eq "$(cmp -s "$T/dest/deep/lib/stone/granite.ply" "$L/stone/granite.ply" && echo same)" same \
	"the real blob in the crafted volume restored byte-identical"
run "$R" verify --archive "$C" --json
expect_eq "$(jq -c '[.ok, .damaged_volumes[0].volume, (.damaged_volumes[0].error | test("unexpected entry"))]' "$out")" \
	'[false,2,true]' "verify reports the foreign entries"

# ---- a crafted manifest with escaping paths ---------------------------
M=$T/crafted-manifest
cp -a "$A" "$M"
for evil in ../escape.ply /tmp/abs.ply lib/../../up.ply; do
	jq -c --arg p "$evil" '.entries[0].path = $p' "$A/versions/00000002.json" >"$M/versions/00000002.json"
	run "$R" extract --archive "$M" --to "$T/dest2"
	expect_rc 65 "manifest with path '$evil' refused"
	expect_grep "$errf" "unsafe path" "says why for '$evil'"
done
expect_eq "$(test -e "$T/escape.ply" -o -e /tmp/abs.ply -o -e "$T/up.ply" && echo written || echo none)" none \
	"nothing written outside"

# ---- a symlink in the destination ------------------------------------
mkdir -p "$T/dest3" "$T/elsewhere"
ln -s "$T/elsewhere" "$T/dest3/lib"
run "$R" extract --archive "$A" --to "$T/dest3"
expect_rc 65 "extract refuses to write through a symlink"
expect_grep "$errf" "refused: .*symlink" "libarchive's secure-symlink check says so"
expect_eq "$(ls -A "$T/elsewhere" | wc -l)" 0 "nothing written through the symlink"
finish
