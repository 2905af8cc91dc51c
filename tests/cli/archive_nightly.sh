#!/usr/bin/env bash
# scripts/refscan-nightly: logs, summary line, exit statuses, prune by
# age, verify, log rotation; refscan prune --keep-days and --keep-last.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive-lib.bash"

N=$REFSCAN_TOP/scripts/refscan-nightly
R=$REFSCAN_BIN
L=$T/lib
LOGS=$T/logs
export REFSCAN_BIN REFSCAN_NIGHTLY_LOG_DIR=$LOGS
make_library "$L"

run "$N" --archive "$A" "$L"
expect_rc 0 "first night"
expect_grep "$out" "^refscan-nightly: ok: version 1: 5 added, 0 changed, 0 removed, 0 unchanged, 0 failed, [0-9]+ new bytes \(exit 0; log $LOGS/nightly-[0-9-]+\.log\)$" \
	"one summary line on stdout"
log=$(ls "$LOGS"/nightly-*.log | tail -1)
expect_grep "$log" '^\{"version":1,"committed":true' "the log holds the JSON summary"
expect_grep "$log" "^# exit 0$" "and the exit status"
expect_eq "$(jq -r .added "${log%.log}.json")" 5 "summary JSON kept beside the log"

sleep 1 # a distinct log name
mkdir -p "$L/broken" && printf 'ply\nformat ascii 1.0\nelement vertex 2\n' >"$L/broken/bad.ply"
mkply "$L/new/one.ply" 5 40
run "$N" --archive "$A" "$L"
expect_rc 1 "a night with a broken scan: some failed, the rest committed"
expect_grep "$out" "^refscan-nightly: some scans failed: version 2: 1 added" "summary says so"
expect_grep "$errf" "^refscan-nightly: refscan: $L/broken/bad.ply: " "the failure is repeated on stderr"
sleep 1
run "$N" --archive "$A" "$L"
expect_rc 2 "the next night: the known failure, nothing committed"

# busy: another writer holds the lock
flock "$A/lock" sleep 2 &
holder=$!
for _ in $(seq 50); do flock -n "$A/lock" true 2>/dev/null || break; sleep 0.05; done
sleep 1
run "$N" --archive "$A" "$L"
expect_rc 75 "archive busy: the night is skipped with 75"
expect_grep "$out" "archive busy" "and says why"
wait "$holder"

run "$N" --archive "$A"
expect_rc 64 "no source is a usage error"
run "$N" --archive "$A" --keep-logs x "$L"
expect_rc 64 "bad --keep-logs"
REFSCAN_BIN=/nonexistent/refscan run "$N" --archive "$A" "$L"
expect_rc 70 "missing refscan binary"

# old logs are rotated away, new ones stay
touch -d '100 days ago' "$LOGS/nightly-20000101-000000.log"
rm -f "$L/broken/bad.ply"
sleep 1
run "$N" --archive "$A" --keep-logs 30 --verify "$L"
expect_rc 0 "a clean night with --verify"
expect_eq "$(test -e "$LOGS/nightly-20000101-000000.log" && echo kept || echo gone)" gone "logs older than --keep-logs removed"
expect_eq "$(ls "$LOGS"/nightly-*.log | wc -l)" 5 "recent logs kept"
expect_grep "$(ls "$LOGS"/nightly-*.log | tail -1)" "^# .* verify --quiet" "verify ran"

# a scan too thin to describe is stored: an ok night, counted in the summary
mkdir -p "$L/odd" && printf 'solid empty\nendsolid empty\n' >"$L/odd/empty.stl"
sleep 1
run "$N" --archive "$A" "$L"
expect_rc 0 "a night with a scan too thin to describe"
expect_grep "$out" "^refscan-nightly: ok: version [0-9]+: 1 added, 0 changed, 0 removed, [0-9]+ unchanged, 0 failed, 1 not searchable, [0-9]+ new bytes " \
	"the summary counts it as not searchable"
expect_grep "$(ls "$LOGS"/nightly-*.log | tail -1)" "^refscan: $L/odd/empty\.stl: warning: not searchable: 0 usable points, a descriptor needs 16$" \
	"the warning is in the log"
expect_eq "$(wc -c <"$errf")" 0 "nothing on stderr on an ok night"
rm -r "$L/odd"

# ---- prune by age (REFSCAN_NOW fixes the clock) -----------------------
P=$T/aged
day=86400
t0=1700000000
for d in 0 10 20 30; do
	mkply "$L/aged/day$d.ply" 4 $((50 + d))
	REFSCAN_NOW=$((t0 + d * day)) "$R" index --archive "$P" -q "$L" || not_ok "index on day $d"
done
expect_eq "$(jq -c .versions "$P/HEAD")" '[1,2,3,4]' "four versions, ten days apart"
REFSCAN_NOW=$((t0 + 31 * day)) run "$R" prune --archive "$P" --keep-days 15 --dry-run --json
expect_eq "$(jq -c '[.dry_run, .versions_dropped, .versions_kept]' "$out")" '[true,2,2]' "dry run: two versions older than 15 days"
expect_eq "$(jq -c .versions "$P/HEAD")" '[1,2,3,4]' "dry run changed nothing"
REFSCAN_NOW=$((t0 + 31 * day)) run "$R" prune --archive "$P" --keep-days 15 --json
expect_rc 0 "prune --keep-days"
expect_eq "$(jq -c .versions "$P/HEAD")" '[3,4]' "versions of the last 15 days kept"
run "$R" extract --archive "$P" --version 1 --to "$T/x"
expect_rc 66 "a pruned version is gone"
run "$R" verify --archive "$P" --all --quiet
expect_rc 0 "the pruned archive verifies"
REFSCAN_NOW=$((t0 + 100 * day)) run "$R" prune --archive "$P" --keep-days 15
expect_eq "$(jq -c .versions "$P/HEAD")" '[4]' "HEAD is always kept"
rm -rf "$T/x"
run "$R" extract --archive "$P" --to "$T/x" -q
if [ "$rc" -eq 0 ] && same_tree "$T/x/lib" "$L"; then ok "HEAD intact after pruning every older version"
else not_ok "HEAD after prune (exit $rc)"; fi
run "$R" prune --archive "$P" --keep-last 0
expect_rc 64 "--keep-last 0 is refused"
run "$R" prune --archive "$P"
expect_rc 64 "prune needs a rule"
finish
