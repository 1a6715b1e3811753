#!/usr/bin/env bash
# Installs everything `make test` needs on a fresh machine. Idempotent.
#  - Go modules (go mod download)
#  - staticcheck (honnef.co/go/tools), pinned
#  - as root: reserves a few 2 MiB hugepages and mounts hugetlbfs at
#    /dev/hugepages when the host has none, so the hugepage tests run.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
STATICCHECK_VERSION=v0.8.2
gobin="$($GO env GOPATH)/bin"

$GO mod download
if ! "$gobin/staticcheck" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
	$GO install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
fi

if [ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/nr_hugepages ]; then
	want=${KAELIX_TEST_HUGEPAGES:-64}
	have=$(cat /proc/sys/vm/nr_hugepages)
	if [ "$have" -lt "$want" ]; then
		echo "$want" > /proc/sys/vm/nr_hugepages || true
		echo "setup: reserved $(cat /proc/sys/vm/nr_hugepages) x 2 MiB hugepages (asked $want)"
	fi
	if ! grep -q ' hugetlbfs ' /proc/self/mounts; then
		mkdir -p /dev/hugepages
		mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages || echo "setup: could not mount hugetlbfs"
	fi
else
	echo "setup: not root: hugepages not reserved; hugepage tests will say they are skipped"
fi
