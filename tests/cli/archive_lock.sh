#!/usr/bin/env bash
# One writer at a time: a second index (or prune) exits at once with 75
# and a clear message unless --wait; readers never take the lock.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive-lib.bash"

R=$REFSCAN_BIN
L=$T/lib
make_library "$L"
"$R" index --archive "$A" -q "$L" || not_ok "first index"
mkply "$L/new/one.ply" 6 21

# hold the writer lock with flock(1): the same flock(2) refscan uses
flock "$A/lock" sleep 3 &
holder=$!
for _ in $(seq 50); do
	flock -n "$A/lock" true 2>/dev/null || break
	sleep 0.05
done
t0=$(date +%s%N)
run "$R" index --archive "$A" "$L"
t1=$(date +%s%N)
expect_rc 75 "a second writer exits with 75"
expect_grep "$errf" "^refscan: .*archive is locked by another writer.*try again later or pass --wait" "clear message"
expect_eq "$(( (t1 - t0) / 1000000 < 1000 ))" 1 "it exits at once"
run "$R" index --archive "$A" --json "$L"
expect_eq "$(jq -c '[.committed, .error.code]' "$out")" '[false,"busy"]' "--json says busy"
run "$R" prune --archive "$A" --keep-last 1
expect_rc 75 "prune is a writer too"
run "$R" log --archive "$A"
expect_rc 0 "log reads while a writer holds the lock"
run "$R" verify --archive "$A" --quiet
expect_rc 0 "verify reads while a writer holds the lock"
run "$R" extract --archive "$A" --to "$T/x" -q
expect_rc 0 "extract reads while a writer holds the lock"
run "$R" index --archive "$A" --dry-run "$L"
expect_rc 0 "a dry run takes no lock"
t0=$(date +%s%N)
run "$R" index --archive "$A" --wait --json "$L"
t1=$(date +%s%N)
expect_rc 0 "--wait waits for the lock, then commits"
expect_eq "$(jq -c '[.version, .added]' "$out")" '[2,1]' "the waiting writer committed version 2"
wait "$holder"

# two real indexers at once
mkply "$L/new/two.ply" 6 22
"$R" index --archive "$A" -q --wait "$L" &
first=$!
"$R" index --archive "$A" -q "$L" 2>"$T/second.err"
second=$?
wait "$first"
first_rc=$?
if [ $second -eq 75 ]; then
	# the pid is written just after the lock is taken: it may not be there yet
	expect_grep "$T/second.err" "locked by another writer( \(pid [0-9]+\))?; try again later" \
		"two concurrent indexers: the loser exits with 75 and says why"
else
	expect_eq "$second" 0 "two concurrent indexers: the second ran after the first"
fi
expect_eq "$first_rc" 0 "two concurrent indexers: the first commits"
run "$R" verify --archive "$A" --all --quiet
expect_rc 0 "archive intact after concurrent writers"
expect_eq "$(jq -c .versions "$A/HEAD")" '[1,2,3]' "exactly one new version for one change"
finish
