#!/usr/bin/env bash
# with-hugepages.sh CMD [ARG...] runs CMD (make test's suite) with 2 MiB
# huge pages reserved and hugetlbfs mounted, so that the hugepage tests run,
# then puts the host back as it found it: the pool to the size it had, and
# the mount (and its directory) removed if this script made them. It does
# so when CMD fails too, and on Ctrl-C, SIGTERM or SIGHUP. Exit status:
# CMD's (130 after an interrupt).
#
# Not root, or no writable /proc/sys/vm/nr_hugepages: CMD runs with nothing
# reserved; the hugepage tests use what the host has and say why they skip.
#
# Whatever CMD leaves in /dev/shm or the hugetlbfs mount that was not
# there before (a test that forgot to clean up, or a child it did not
# stop) is named, removed, and fails the run (exit 1 if CMD succeeded):
# make test must leave the host as it found it.
#
# KAELIX_TEST_HUGEPAGES (default 64) is the pool size to ensure; a larger
# pool is left as it is. KAELIX_HUGETLBFS_DIR (default /dev/hugepages) is
# where to mount hugetlbfs when the host has no hugetlbfs mount.
set -uo pipefail

nr=/proc/sys/vm/nr_hugepages
want=${KAELIX_TEST_HUGEPAGES:-64}
mnt=${KAELIX_HUGETLBFS_DIR:-/dev/hugepages}
say() { echo "with-hugepages: $*" >&2; }

(($#)) || { say "usage: with-hugepages.sh CMD [ARG...]"; exit 2; }
if [ "$(id -u)" != 0 ] || [ ! -w "$nr" ]; then
	say "not root: reserving nothing; the hugepage tests use the host's $(cat "$nr" 2>/dev/null || echo '?') pages and say when they skip"
	exec "$@"
fi

before=$(cat "$nr")
mounted=
made_dir=
status=0
hugetlb_dir=
hugetlb_before=
shm_before=$(ls -A /dev/shm 2>/dev/null | sort)
# left_behind DIR BEFORE: the entries of DIR not in BEFORE; each is named
# and removed, and the run fails.
left_behind() {
	local dir=$1 prior=$2 e
	[ -d "$dir" ] || return 0
	for e in $(comm -13 <(echo "$prior") <(ls -A "$dir" 2>/dev/null | sort)); do
		say "the run left $dir/$e behind (removed); a test does not clean up"
		rm -rf "${dir:?}/$e"
		[ "$status" = 0 ] && status=1
	done
}
restore() {
	trap '' INT TERM HUP
	left_behind /dev/shm "$shm_before"
	[ -n "$hugetlb_dir" ] && left_behind "$hugetlb_dir" "$hugetlb_before"
	if [ -n "$mounted" ]; then
		umount "$mnt" || say "could not unmount $mnt (still in use?); unmount it by hand"
		[ -n "$made_dir" ] && rmdir "$mnt" 2>/dev/null
	fi
	if [ "$(cat "$nr")" != "$before" ]; then
		echo "$before" >"$nr" 2>/dev/null
		local now
		now=$(cat "$nr")
		if [ "$now" = "$before" ]; then
			say "released: nr_hugepages back to $before"
		else
			say "nr_hugepages is $now, not $before as before the run: pages still in use (surplus) go back to the kernel when freed"
		fi
	fi
}
trap restore EXIT
trap 'exit 130' INT TERM HUP

if [ "$before" -lt "$want" ]; then
	echo "$want" >"$nr" 2>/dev/null || true
	say "reserved $(cat "$nr") x 2 MiB huge pages for the run (asked $want, the host had $before; released at the end)"
fi
if ! awk '$3 == "hugetlbfs" { found = 1 } END { exit !found }' /proc/self/mounts; then
	[ -d "$mnt" ] || { mkdir -p "$mnt" && made_dir=1; }
	if mount -t hugetlbfs -o pagesize=2M nodev "$mnt"; then
		mounted=1
		say "mounted hugetlbfs at $mnt for the run (unmounted at the end)"
	else
		say "could not mount hugetlbfs at $mnt; the hugepage tests will say they skip"
	fi
fi

hugetlb_dir=$(awk '$3 == "hugetlbfs" { print $2; exit }' /proc/self/mounts)
hugetlb_before=$( [ -n "$hugetlb_dir" ] && ls -A "$hugetlb_dir" 2>/dev/null | sort)

"$@"
status=$?
restore
trap - EXIT
exit "$status"
