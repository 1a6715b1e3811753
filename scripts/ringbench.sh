#!/usr/bin/env bash
# Runs the ringbuf benchmarks (cross-process ping-pong and throughput with
# their floors, in-process throughput, backing comparison) COUNT times
# interleaved, and writes bench/results/<date>-<host>-ringbuf.md with the
# medians and the ratios to the floors measured in the same run.
#   scripts/ringbench.sh [COUNT]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-5}
out=bench/results/$(date +%Y-%m-%d)-$(hostname -s)-ringbuf.md
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
cmd="go test -run='^\$' -bench='PingPong|ThroughputCrossProcess|Backing|OfferPoll' -benchmem -count=1 ./ringbuf"
for i in $(seq "$count"); do
	echo "round $i/$count" >&2
	eval "$cmd" | grep -E '^Benchmark' >>"$raw"
done
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "nan"} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2}}'; }
metric() { # name unit -> median of the value before unit
	grep -E "^$1-[0-9]+ " "$raw" | awk -v u="$2" '{for (i=2;i<=NF;i++) if ($i==u) print $(i-1)}' | median
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b==0 || a=="nan" || b=="nan") print "n/a"; else printf "%.2f", a/b }'; }
{
	echo "# ringbuf benchmarks, $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, kernel $(uname -r), $(go version | cut -d' ' -f3), hugepages $(cat /proc/sys/vm/nr_hugepages) x 2 MiB reserved."
	echo "Publisher and subscriber pinned to CPUs 0 and 1. Shared, noisy VM: compare ratios within this run only."
	echo
	echo "Command (run $count times, medians below): \`$cmd\`"
	echo
	echo "## Ping-pong round trip between two processes (ns, lower is better)"
	echo
	echo "BenchmarkPingPongInterleaved alternates blocks of 2000 round trips of each path between the same two processes (32-byte payloads, busy-spin), so every ratio compares blocks run moments apart; ratios are the median per-round ratio, then the median over runs."
	echo
	echo "| path | median RTT ns | ratio to floor |"
	echo "|---|---|---|"
	m=BenchmarkPingPongInterleaved
	echo "| raw shared-memory floor (one 8-byte word each way) | $(metric $m floor-ns/rtt) | 1.00 |"
	echo "| minimal record ring (header + payload + one state store; no recovery, no back-pressure) | $(metric $m record-floor-ns/rtt) | $(metric $m record-floor/floor) |"
	echo "| two Kaelix SPSC rings, Poll in place + Offer | $(metric $m spsc-poll-ns/rtt) | $(metric $m spsc-poll/floor) |"
	echo "| two Kaelix SPSC rings, copying Read + Offer | $(metric $m spsc-read-ns/rtt) | $(metric $m spsc-read/floor) |"
	echo
	floor=$(metric BenchmarkPingPong/floor ns/op); spsc=$(metric BenchmarkPingPong/spsc ns/op)
	echo "Separate benchmarks (BenchmarkPingPong, less reliable: the two run seconds apart): floor $floor ns, SPSC Read + Offer $spsc ns, ratio $(ratio "$spsc" "$floor")."
	echo
	echo "## Cross-process throughput (records/s, higher is better)"
	echo
	echo "| payload | copy floor | SPSC single | SPSC batch 32 | MPMC single | MPMC batch 32 | SPSC batch / floor |"
	echo "|---|---|---|---|---|---|---|"
	for s in 64 1024 4096; do
		f=$(metric "BenchmarkThroughputCrossProcess/copy-floor/${s}B" records/s)
		a=$(metric "BenchmarkThroughputCrossProcess/spsc/${s}B/batch1" records/s)
		b=$(metric "BenchmarkThroughputCrossProcess/spsc/${s}B/batch32" records/s)
		c=$(metric "BenchmarkThroughputCrossProcess/mpmc/${s}B/batch1" records/s)
		d=$(metric "BenchmarkThroughputCrossProcess/mpmc/${s}B/batch32" records/s)
		printf '| %s B | %.3g | %.3g | %.3g | %.3g | %.3g | %s |\n' "$s" "$f" "$a" "$b" "$c" "$d" "$(ratio "$b" "$f")"
	done
	echo
	echo "## Ring on a hugetlbfs region vs a tmpfs region (in process, records/s)"
	echo
	echo "| payload | tmpfs (4 KiB pages) | hugetlbfs (2 MiB pages) | ratio |"
	echo "|---|---|---|---|"
	for s in 64 4096; do
		t=$(metric "BenchmarkBacking/tmpfs/${s}B" records/s); h=$(metric "BenchmarkBacking/hugetlbfs/${s}B" records/s)
		printf '| %s B | %.3g | %.3g | %s |\n' "$s" "$t" "$h" "$(ratio "$h" "$t")"
	done
	echo
	echo "## Single goroutine Offer + Poll (hot-path cost, no contention)"
	echo
	echo "| kind | ns/op | allocs/op |"
	echo "|---|---|---|"
	for k in spsc mpmc; do
		echo "| $k | $(metric "BenchmarkOfferPoll/$k" ns/op) | $(metric "BenchmarkOfferPoll/$k" allocs/op) |"
	done
	echo
	echo "## Raw output"
	echo
	echo '```'
	cat "$raw"
	echo '```'
} >"$out"
echo "wrote $out" >&2
