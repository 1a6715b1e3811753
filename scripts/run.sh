#!/usr/bin/env bash
# run.sh: Kaelix's main job, what `make run` runs.
#
# Starts kaelixd on a private temporary socket/state directory and a private
# region directory (--ephemeral: its regions are removed when it stops),
# creates topic host.telemetry, and starts two processes:
#   - a publisher sampling this host's /proc counters (CPU, memory, network,
#     disk) at 20 Hz and publishing each sample (kaelix-telemetry pub);
#   - a subscriber printing them live (kaelix-telemetry sub);
#   - a stream processor (kaelix-proc, configs/kaelix-proc.telemetry.toml)
#     turning the samples into one-second aggregates on host.telemetry.1s,
#     and a subscriber printing those (kaelix-telemetry agg).
# It prints the command that shows the topic and its rate from another
# terminal. Ctrl-C (or --duration / RUN_SECONDS running out) stops the
# publisher, the subscriber and then kaelixd, in that order, and checks
# that nothing is left behind in /dev/shm (or hugetlbfs) or in the socket
# directory.
#
# Usage: scripts/run.sh [--duration D]     D like 10, 10s, 2m; default: until Ctrl-C
# Environment:
#   RUN_SECONDS   same as --duration N (seconds)
#   KAELIX_BIN    directory holding kaelixd, kaelixctl, kaelix-telemetry and kaelix-proc
#                 (default: bin/ of the repository, built if missing)
#   TELEMETRY_HZ  sampling rate (default 20)
# Exit status: 0 after a clean stop; 1 if a process failed or something was
# left behind; 2 on bad usage.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${KAELIX_BIN:-$root/bin}
hz=${TELEMETRY_HZ:-20}
duration=${RUN_SECONDS:-}
topic=host.telemetry
agg_topic=host.telemetry.1s

while [ $# -gt 0 ]; do
	case "$1" in
	--duration) duration=${2:-}; shift 2 || { echo "run.sh: --duration needs a value" >&2; exit 2; } ;;
	--duration=*) duration=${1#*=}; shift ;;
	-h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
done
if [ -n "$duration" ]; then
	if ! [[ $duration =~ ^[0-9]+(\.[0-9]+)?[smh]?$ ]]; then
		echo "run.sh: --duration $duration: want e.g. 10, 10s or 2m" >&2
		exit 2
	fi
	[[ $duration =~ [smh]$ ]] || duration=${duration}s
fi

if [ ! -x "$bin/kaelixd" ] || [ ! -x "$bin/kaelixctl" ] || [ ! -x "$bin/kaelix-telemetry" ] || [ ! -x "$bin/kaelix-proc" ]; then
	echo "run.sh: building into $bin"
	(cd "$root" && ${GO:-go} build -o "$bin/" ./cmd/...) || exit 1
fi

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/kaelix-run.XXXXXX") || exit 1
sock=$run_dir/kaelixd.sock
shm_name=kaelix-run-$$-${run_dir##*.}
ctl=("$bin/kaelixctl" --socket "$sock")

# Children run in their own sessions (setsid), so Ctrl-C reaches only this
# script, which then stops them in order: clients first, the daemon last.
detach=()
command -v setsid >/dev/null && detach=(setsid)

pids=()     # every child, in start order
daemon_pid=
status=0
stopping=

hugetlbfs_mounts() { awk '$3 == "hugetlbfs" { print $2 }' /proc/mounts 2>/dev/null; }

cleanup() {
	[ -n "$stopping" ] && return
	stopping=1
	trap '' INT TERM HUP
	echo
	if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
		echo "== kaelixctl topics list (before stopping) =="
		"${ctl[@]}" topics list || true
	fi
	echo "== stopping =="
	# Clients first (newest first), then the daemon; each gets SIGTERM and
	# is waited for; SIGKILL after 10 s.
	local i pid
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		pid=${pids[i]}
		kill -TERM "$pid" 2>/dev/null || continue
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	# kaelixd --ephemeral removes its regions and its /dev/shm directory; a
	# hugetlbfs base directory may stay behind empty: remove it (rmdir only
	# removes empty directories).
	local m left=
	for m in $(hugetlbfs_mounts); do rmdir "$m/$shm_name" 2>/dev/null; done
	for m in /dev/shm $(hugetlbfs_mounts); do
		if [ -e "$m/$shm_name" ]; then
			left+=" $m/$shm_name"
		fi
	done
	if [ -n "$left" ] || [ "$status" != 0 ]; then
		echo "== kaelixd log =="
		cat "$run_dir/kaelixd.log" 2>/dev/null
	fi
	rm -rf "$run_dir"
	if [ -n "$left" ]; then
		echo "run.sh: left behind:$left" >&2
		status=1
	else
		echo "stopped; nothing left in /dev/shm/$shm_name or $run_dir"
	fi
	exit "$status"
}
trap cleanup EXIT
trap cleanup INT TERM HUP
# A closed output pipe (`make run | head`) must not kill this script before
# it stopped its children: writes then fail with EPIPE instead.
trap '' PIPE

fail() { echo "run.sh: $*" >&2; status=1; exit 1; }

daemon_args=(--socket "$sock" --shm-dir "$shm_name" --ephemeral)
# A kaelixd with an HTTP listener (health, metrics) takes a free loopback
# port rather than the default, so `make run` never collides with another.
if "$bin/kaelixd" --help 2>&1 | grep -q -- '--http-port'; then
	daemon_args+=(--http-port 0)
fi
"${detach[@]}" "$bin/kaelixd" "${daemon_args[@]}" 2>"$run_dir/kaelixd.log" &
daemon_pid=$!
pids+=("$daemon_pid")
for _ in $(seq 100); do
	"${ctl[@]}" daemon status >/dev/null 2>&1 && break
	kill -0 "$daemon_pid" 2>/dev/null || fail "kaelixd exited at start"
	sleep 0.1
done
"${ctl[@]}" daemon status >/dev/null || fail "kaelixd did not come up on $sock"
"${ctl[@]}" topics create "$topic" --if-not-exists || fail "could not create $topic"

telemetry=("$bin/kaelix-telemetry" --socket "$sock" --topic "$topic")
# The subscriber serves its publish-to-receive latency histogram
# (kaelix_telemetry_receive_latency_seconds) on a free loopback port; it
# prints the address as its second line.
"${detach[@]}" "${telemetry[@]}" sub --metrics-addr "${KAELIX_TELEMETRY_METRICS:-127.0.0.1:0}" &
pids+=($!)
# The processor and its printer attach before the publisher starts, so
# the first second's aggregate covers the first samples.
"${ctl[@]}" topics create "$agg_topic" --if-not-exists >/dev/null || fail "could not create $agg_topic"
"${detach[@]}" "$bin/kaelix-proc" --socket "$sock" --log-level warn run --config "$root/configs/kaelix-proc.telemetry.toml" >/dev/null &
pids+=($!)
"${detach[@]}" "$bin/kaelix-telemetry" --socket "$sock" --topic "$agg_topic" agg &
pids+=($!)
"${detach[@]}" "${telemetry[@]}" pub --hz "$hz" &
pids+=($!)

cat <<EOF
== Kaelix is running ==
  kaelixd      pid $daemon_pid, socket $sock
  regions      /dev/shm/$shm_name (or hugetlbfs), removed on exit
  publisher    kaelix-telemetry pub: /proc samples at $hz Hz -> $topic
  subscriber   kaelix-telemetry sub: prints them below (latency histogram at the metrics address it prints)
  processor    kaelix-proc: window over $topic -> $agg_topic, one aggregate a second (lines starting "1s")
In another terminal:
  $bin/kaelixctl --socket $sock topics list
  $bin/kaelixctl --socket $sock sub $topic --count 3 --format json
${duration:+Stopping by itself after $duration.  }Ctrl-C stops everything.

EOF

if [ -n "$duration" ]; then
	sleep "$duration" &
	wait $! 2>/dev/null
else
	# Until Ctrl-C, or until any child exits (which is a failure).
	wait -n "${pids[@]}"
fi
for pid in "${pids[@]}"; do
	kill -0 "$pid" 2>/dev/null || { echo "run.sh: a process (pid $pid) exited early" >&2; status=1; }
done
exit "$status"
