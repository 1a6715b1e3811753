#!/usr/bin/env bash
# Installs everything `make test` needs on a fresh machine. Idempotent.
#  - Go modules (go mod download)
#  - staticcheck (honnef.co/go/tools), pinned
#  - zsh and fish for the completion tests, unpacked into .cache/shells
#    (scripts/shells.sh; best effort, nothing installed on the host)
# It changes nothing else on the host.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
STATICCHECK_VERSION=v0.8.2
gobin="$($GO env GOPATH)/bin"

$GO mod download
if ! "$gobin/staticcheck" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
	$GO install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
fi

./scripts/shells.sh

# Huge pages are not reserved here: `make test` reserves them for its run
# only and gives them back (scripts/with-hugepages.sh).
