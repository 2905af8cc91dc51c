#!/usr/bin/env bash
# Crash safety under SIGKILL at random moments: each iteration changes the
# library, starts `refscan index` (or `refscan prune`), kills it with
# SIGKILL after a random delay, then checks that the archive verifies,
# that HEAD is the old or the next version, and that a normal run
# completes with HEAD byte-identical to the library and no leftovers.
# REFSCAN_KILL_ITERATIONS (default 30) and REFSCAN_KILL_SEED repeat a run.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive-lib.bash"

R=$REFSCAN_BIN
L=$T/lib
n_iter=${REFSCAN_KILL_ITERATIONS:-30}
seed=${REFSCAN_KILL_SEED:-$$}
RANDOM=$seed
echo "# seed $seed, $n_iter iterations"

now_ms() { date +%s%3N; }

# a scan with its own ~80 KB texture (compressible, so zstd has work)
add_scan() {
	mkply "$L/d$1/s$2.ply" 6 "$2" "t$2.png"
	head -c 60000 /dev/urandom | base64 -w 76 >"$L/d$1/t$2.png"
}

# no leftovers: tmp/ empty, one manifest per live version, two files per
# live volume
files_ok() {
	local a=$1 want
	want=$(jq -r '"\(.versions | length) \(.volumes | length * 2)"' "$a/HEAD")
	[ -z "$(ls -A "$a/tmp")" ] && [ "$(ls "$a/versions" | wc -l) $(ls "$a/volumes" | wc -l)" = "$want" ]
}

for i in 1 2 3 4 5 6; do add_scan 0 "$i"; done
"$R" index --archive "$A" -q --level 19 "$L" || not_ok "initial index"

# how long a typical commit takes, to spread the kills over it
next=100
add_scan 1 $((next++)); add_scan 1 $((next++))
t0=$(now_ms)
"$R" index --archive "$A" -q --level 19 "$L" || not_ok "calibration index"
span=$(($(now_ms) - t0 + 20))
echo "# a commit takes about $span ms"

bad=0
for it in $(seq 1 "$n_iter"); do
	kind=index
	[ $((it % 4)) -eq 0 ] && kind=prune
	if [ $kind = index ]; then
		add_scan $((it % 3)) $((next++))
		add_scan $((it % 3 + 1)) $((next++))
		mkply "$L/d0/s1.ply" 6 $((1000 + it)) t1.png
		if [ $((it % 3)) -eq 0 ]; then
			victim=$(find "$L" -name 's1[0-9][0-9].ply' | sort | head -1)
			[ -n "$victim" ] && rm -f "$victim" "$(dirname "$victim")/t$(basename "$victim" .ply | tr -d s).png"
		fi
		cmd=("$R" index --archive "$A" -q --level 19 "$L")
	else
		cmd=("$R" prune --archive "$A" --keep-last 2)
	fi
	read -r before before_versions < <(jq -r '"\(.version) \(.versions | tostring)"' "$A/HEAD")
	# a prune is quicker than a commit: kill it sooner
	if [ $kind = index ]; then delay=$((RANDOM % span)); else delay=$((RANDOM % 80)); fi
	"${cmd[@]}" >/dev/null 2>&1 &
	pid=$!
	sleep "$(printf '0.%03d' "$delay")"
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	killed_rc=$?

	after=$(jq -r .version "$A/HEAD")
	if ! "$R" verify --archive "$A" --all --quiet >"$T/v.out" 2>&1; then
		not_ok "iteration $it ($kind killed after $delay ms): verify fails"
		sed 's/^/    /' "$T/v.out" | head -5
		bad=$((bad + 1))
		continue
	fi
	if [ $kind = index ] && [ "$after" != "$before" ] && [ "$after" != $((before + 1)) ]; then
		not_ok "iteration $it: HEAD moved from $before to $after"
		bad=$((bad + 1))
	fi
	if [ $kind = prune ] && [ "$after" != "$before" ]; then
		not_ok "iteration $it: prune changed the current version"
		bad=$((bad + 1))
	fi
	# the interrupted work, done properly
	"${cmd[@]}" >/dev/null 2>"$T/rerun.err"
	rerun=$?
	rm -rf "$T/x"
	"$R" extract --archive "$A" --to "$T/x" -q >/dev/null 2>&1 || rerun=99
	# extract checks every blob's digest as it writes it
	if [ $rerun -ne 0 ] || ! same_tree_quick "$T/x/lib" "$L" || ! files_ok "$A"; then
		not_ok "iteration $it ($kind killed after $delay ms, exit $killed_rc): recovery failed (rerun exit $rerun)"
		sed 's/^/    /' "$T/rerun.err" | head -5
		bad=$((bad + 1))
	fi
	[ $kind = prune ] && [ "$(jq '.versions | length' "$A/HEAD")" -gt 2 ] && {
		not_ok "iteration $it: prune did not prune"
		bad=$((bad + 1))
	}
	echo "# $it: $kind killed after $delay ms (exit $killed_rc): version $before -> $after; versions $before_versions -> $(jq -c .versions "$A/HEAD")"
done
expect_eq "$bad" 0 "$n_iter kills at random moments: archive always verifies and recovers"
expect_eq "$(jq -r '.version' "$A/HEAD")" "$(($(jq -r '.versions[-1]' "$A/HEAD")))" "HEAD is the newest live version"
finish
