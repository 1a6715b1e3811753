#!/usr/bin/env bash
# Shows and reserves persistent hugepages per NUMA node, through sysfs
# (Documentation/admin-guide/mm/hugetlbpage.rst, "per node hugepages").
#
#   hugepages.sh status
#       one line per node and page size: total, free, surplus pages and the
#       nr_hugepages file that sizes the pool.
#   hugepages.sh reserve N [--size 2M|1G] [--node K]
#       makes every node (or node K) hold at least N pages of the size
#       (default 2M). Never shrinks a pool. Needs root. Exits 1, printing
#       asked vs got, when the kernel could not find enough free contiguous
#       memory (1G pages usually need the hugepagesz=1G hugepages=N boot
#       parameters).
#
# A kernel without NUMA has no node directories; both verbs then act on the
# global pools in /sys/kernel/mm/hugepages, shown as node 0.
# KAELIX_SYSFS (default /sys) points the script at a copy of sysfs, such as
# numa/testdata/two-socket-four-node/sys, for testing.
set -euo pipefail

prog=${0##*/}
sysfs=${KAELIX_SYSFS:-/sys}

die() {
	printf '%s: %s\n' "$prog" "$*" >&2
	exit 1
}

usage() {
	sed -n '2,19s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

# pool_dirs prints "NODE DIR" per node, ascending, DIR holding the node's
# hugepages-<K>kB directories; without NUMA, one line for the global pools.
pool_dirs() {
	local d
	if [[ ! -d $sysfs/devices/system/node ]]; then
		printf '0 %s\n' "$sysfs/kernel/mm/hugepages"
		return
	fi
	for d in "$sysfs"/devices/system/node/node[0-9]*; do
		[[ -d $d ]] && printf '%s %s\n' "${d##*/node}" "$d/hugepages"
	done | sort -n
}

# pool_sizes DIR prints the page sizes in kB of DIR's pools, ascending.
pool_sizes() {
	local pool kb
	for pool in "$1"/hugepages-*kB; do
		[[ -d $pool ]] || continue
		kb=${pool##*/hugepages-}
		printf '%s\n' "${kb%kB}"
	done | sort -n
}

# human KB prints a page size given in kB as 2M, 1G, 64K.
human() {
	local kb=$1
	if ((kb % 1048576 == 0)); then
		printf '%dG' $((kb / 1048576))
	elif ((kb % 1024 == 0)); then
		printf '%dM' $((kb / 1024))
	else
		printf '%dK' "$kb"
	fi
}

# read_count FILE prints the number in FILE, 0 when empty.
read_count() {
	local v
	v=$(<"$1")
	printf '%s' "${v:-0}"
}

cmd_status() {
	local node dir pool kb any=0
	printf '%-5s %-5s %8s %8s %8s  %s\n' node size total free surplus file
	while read -r node dir; do
		for kb in $(pool_sizes "$dir"); do
			pool=$dir/hugepages-${kb}kB
			any=1
			printf '%-5s %-5s %8s %8s %8s  %s\n' "$node" "$(human "$kb")" \
				"$(read_count "$pool/nr_hugepages")" "$(read_count "$pool/free_hugepages")" \
				"$(read_count "$pool/surplus_hugepages")" "$pool/nr_hugepages"
		done
	done < <(pool_dirs)
	((any)) || die "no hugepage pools under $sysfs (kernel without CONFIG_HUGETLBFS?)"
}

cmd_reserve() {
	local want="" size=2M only="" kb
	while (($#)); do
		case $1 in
		--size)
			(($# >= 2)) || die "--size needs 2M or 1G"
			size=$2
			shift 2
			;;
		--size=*)
			size=${1#--size=}
			shift
			;;
		--node)
			(($# >= 2)) || die "--node needs a node id"
			only=$2
			shift 2
			;;
		--node=*)
			only=${1#--node=}
			shift
			;;
		-h | --help) usage ;;
		-*) die "reserve: unknown option $1" ;;
		*)
			[[ -z $want ]] || die "reserve: one count only (got $want and $1)"
			want=$1
			shift
			;;
		esac
	done
	[[ $want =~ ^[0-9]+$ ]] || die "reserve: N must be a page count (a non-negative integer), got '${want}'"
	case $size in
	2M | 2m | 2048K | 2048kB) kb=2048 ;;
	1G | 1g | 1048576K | 1048576kB) kb=1048576 ;;
	*) die "reserve: --size must be 2M or 1G, got '$size'" ;;
	esac
	if [[ -n $only && ! $only =~ ^[0-9]+$ ]]; then
		die "reserve: --node must be a node id, got '$only'"
	fi
	if [[ $(id -u) -ne 0 ]]; then
		die "reserve: must run as root to write nr_hugepages (try: sudo $0 reserve $want --size $size${only:+ --node $only})"
	fi

	local node dir file have got nodes="" matched=0 short=0
	while read -r node dir; do
		nodes+="${nodes:+ }$node"
		[[ -z $only || $node == "$only" ]] || continue
		matched=1
		file=$dir/hugepages-${kb}kB/nr_hugepages
		if [[ ! -e $file ]]; then
			die "node $node has no $(human "$kb") pool ($file missing; the CPU or kernel lacks that page size)"
		fi
		have=$(read_count "$file")
		if ((have >= want)); then
			printf 'node %s: %s: have %s >= %s, unchanged\n' "$node" "$(human "$kb")" "$have" "$want"
			continue
		fi
		if ! printf '%s\n' "$want" >"$file"; then
			die "node $node: writing $want to $file failed"
		fi
		got=$(read_count "$file")
		if ((got < want)); then
			printf '%s: node %s: %s: asked %s, got %s (%s): not enough free contiguous memory on the node\n' \
				"$prog" "$node" "$(human "$kb")" "$want" "$got" "$file" >&2
			short=1
		else
			printf 'node %s: %s: %s -> %s pages\n' "$node" "$(human "$kb")" "$have" "$got"
		fi
	done < <(pool_dirs)
	((matched)) || die "reserve: no node $only (nodes: ${nodes:-none})"
	if ((short)); then
		die "reserve: the kernel gave fewer pages than asked; free memory, compact (echo 1 > /proc/sys/vm/compact_memory) and retry, or reserve at boot (hugepagesz=$(human "$kb") hugepages=N)"
	fi
}

(($#)) || usage
verb=$1
shift
case $verb in
status)
	(($# == 0)) || die "status takes no arguments"
	cmd_status
	;;
reserve) cmd_reserve "$@" ;;
-h | --help | help) usage ;;
*) die "unknown verb '$verb' (want status or reserve)" ;;
esac
