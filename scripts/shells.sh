#!/usr/bin/env bash
# Fetches zsh and fish for the completion tests of cmd/kaelixctl
# (TestCompletionZsh, TestCompletionFish) without installing anything on
# the host: `apt-get download` puts the Debian packages in a cache
# directory, `dpkg-deb -x` unpacks them there, and a wrapper per shell
# (DIR/bin/zsh, DIR/bin/fish) points the unpacked binary at its own
# libraries, functions and data. Nothing is written outside DIR: no
# dpkg -i, no root needed, the host's /usr and dpkg database untouched.
#
# DIR is $KAELIX_SHELLS, default .cache/shells in the repository
# (gitignored); the tests look there too. Best effort: without apt-get or
# a network it says why and exits 0, and the two tests skip with the
# reason. Idempotent: a shell whose wrapper already runs is kept.
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${KAELIX_SHELLS:-$PWD/.cache/shells}
mkdir -p "$dir" && dir=$(cd "$dir" && pwd)
root=$dir/root

if "$dir/bin/zsh" -c 'autoload -U compinit' 2>/dev/null && "$dir/bin/fish" -c 'complete -C "ech"' >/dev/null 2>&1; then
	echo "shells.sh: zsh and fish ready in $dir"
	exit 0
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
	echo "shells.sh: no apt-get/dpkg-deb on this host; the zsh and fish completion tests will skip" >&2
	exit 0
fi

# fish links libpcre2-32, which a host without fish usually lacks; the
# other libraries (libc, libstdc++, libtinfo, libcap) are in every Debian base.
pkgs=(zsh zsh-common fish fish-common libpcre2-32-0)
mkdir -p "$dir/debs"
if ! (cd "$dir/debs" && apt-get download "${pkgs[@]}" >"$dir/download.log" 2>&1); then
	echo "shells.sh: apt-get download ${pkgs[*]} failed (no network or no package lists?); the zsh and fish completion tests will skip:" >&2
	tail -n 3 "$dir/download.log" >&2
	exit 0
fi
rm -rf "$root" && mkdir -p "$root"
for deb in "$dir"/debs/*.deb; do
	dpkg-deb -x "$deb" "$root" || { echo "shells.sh: dpkg-deb -x $deb failed" >&2; exit 0; }
done
# fish finds its share/ files relative to its binary when PREFIX/share/fish
# and PREFIX/etc/fish both exist (PREFIX=root/usr); the package puts etc at root/etc.
ln -sfn ../etc "$root/usr/etc"

mkdir -p "$dir/bin" "$dir/zdotdir"
zmod=$(ls -d "$root"/usr/lib/*/zsh/* 2>/dev/null | head -n 1)
libdir=$(dirname "$(ls "$root"/usr/lib/*/libpcre2-32.so.0 2>/dev/null | head -n 1)")
# zsh takes module_path from no environment variable, so the wrapper's
# ZDOTDIR/.zshenv points module_path and fpath at the unpacked tree.
cat >"$dir/zdotdir/.zshenv" <<ZSHENV
module_path=($zmod)
fpath=($root/usr/share/zsh/functions/**/*(/N) \$fpath)
ZSHENV
cat >"$dir/bin/zsh" <<WRAP
#!/bin/sh
# Runs the zsh unpacked by scripts/shells.sh.
ZDOTDIR="$dir/zdotdir" exec "$root/bin/zsh" "\$@"
WRAP
cat >"$dir/bin/fish" <<WRAP
#!/bin/sh
# Runs the fish unpacked by scripts/shells.sh.
LD_LIBRARY_PATH="$libdir\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$root/usr/bin/fish" "\$@"
WRAP
chmod +x "$dir/bin/zsh" "$dir/bin/fish"

for sh in zsh fish; do
	if "$dir/bin/$sh" -c 'echo ok' >/dev/null 2>&1; then
		echo "shells.sh: $sh ready: $dir/bin/$sh"
	else
		echo "shells.sh: the unpacked $sh does not run; its completion test will skip" >&2
	fi
done
exit 0
