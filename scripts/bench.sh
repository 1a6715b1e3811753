#!/usr/bin/env bash
# Runs kaelix-bench's standard suite (a few minutes) and writes
# bench/results/<date>-<host>/ (report.md, results.json, claims.json,
# latency-*.png, hlog/*.hlog), then regenerates README.md's benchmark table from it.
#   scripts/bench.sh                 the suite, then the README
#   scripts/bench.sh --readme-only   regenerate the README from the newest report
# Environment: GO (go), BENCH_TAGS (build tags, if any), BENCH_SCALE
# (multiplies every step's duration; 1), BENCH_NOTE (the machine's state,
# recorded in the report: other jobs sharing it, for instance).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
mkdir -p bin
$GO build ${BENCH_TAGS:+-tags "$BENCH_TAGS"} -o bin/kaelix-bench ./cmd/kaelix-bench

if [ "${1:-}" = "--readme-only" ]; then
	dir=$(ls -d bench/results/*/ 2>/dev/null | sort | tail -n 1)
	dir=${dir%/}
	[ -n "$dir" ] || { echo "bench.sh: no report under bench/results" >&2; exit 1; }
else
	dir="bench/results/$(date +%Y-%m-%d)-$(hostname -s)"
	./bin/kaelix-bench suite --out "$dir" --scale "${BENCH_SCALE:-1}" ${BENCH_NOTE:+--note "$BENCH_NOTE"}
fi
./bin/kaelix-bench readme --in "$dir" --readme README.md
echo "bench.sh: report in $dir; README.md table regenerated"
