#!/usr/bin/env bash
# Usage: scripts/soak.sh [DURATION]   (default 10m; Go duration syntax)
#
# Builds cmd/kaelix-soak and runs it: real kaelixd, publisher, subscriber and
# queue-group processes on every ring kind and policy, randomly SIGKILLed,
# SIGSTOPped and restarted (kaelixd too), for DURATION; then the processes
# are stopped cleanly, every record is accounted for, and a table is printed:
# records, corrupt, duplicated, reordered, lost by policy, counted losses,
# unblocked claims, evictions, restart times, max latency. Exit status is
# non-zero on any corrupt, duplicated or reordered record or unaccounted loss.
# Logs (kaelixd.log, children.log) stay in the run directory it names.
# Extra arguments after DURATION go to kaelix-soak (e.g. --seed N). With
# --churn it runs the client churn soak instead: 50 processes attaching and
# detaching 1,000 times a minute over 64 topics x 4 partitions (--procs,
# --rate, --topics, --partitions scale it), then a table of kaelixd's RSS,
# descriptors, goroutines and region files at the start and the end, and
# of attaches, detaches, kills and stops; non-zero exit if any of those
# did not come back, a slot leaked or a subscriber received nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10m}
shift || true
bin=$(mktemp -d "${TMPDIR:-/tmp}/kaelix-soak-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/kaelix-soak" ./cmd/kaelix-soak
echo "soak: $duration on $(uname -srm), $(nproc) CPUs, go $(go env GOVERSION), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" >&2
"$bin/kaelix-soak" --duration "$duration" "$@"
