#!/usr/bin/env bash
# The full retrieval table (scripts/eval-retrieval): CGAL meshes and the
# generated corpora, descriptor beside the D2 baseline of the same run.
# Prints the table; the figures go to REFSCAN_BENCH_JSON as
# {"rows": [...]} (one object per row of the table).
set -u
top=${REFSCAN_TOP:?run through make bench}
B=${REFSCAN_BUILD:?run through make bench}
lines=$(mktemp)
trap 'rm -f "$lines"' EXIT
"$top/scripts/eval-retrieval" --json "$B" >"$lines" || exit 1
jq -r '[.task, .case, .queries,
	(if .nn != null then "NN \(.nn*1000|round/1000) FT \(.first_tier*1000|round/1000) DCG \(.dcg*1000|round/1000) mAP \(.map*1000|round/1000) | D2 NN \(.d2_nn*1000|round/1000) mAP \(.d2_map*1000|round/1000)"
	 else "top1 \(.top1*1000|round/1000) top5 \(.top5*1000|round/1000) mAP \(.map*1000|round/1000) | D2 top1 \(.d2_top1*1000|round/1000) top5 \(.d2_top5*1000|round/1000) mAP \(.d2_map*1000|round/1000)" end)] | @tsv' \
	"$lines" | column -t -s $'\t'
if [ -n "${REFSCAN_BENCH_JSON:-}" ]; then
	jq -s '{rows: .}' "$lines" >"$REFSCAN_BENCH_JSON"
fi
