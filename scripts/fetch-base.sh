#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Fetch the pinned base tree, Debian's linux-source-7.3, and unpack it into
# $BUILD/linux as a git repository with one base commit.
#
# The .deb is downloaded with apt-get through a private apt configuration
# (own sources, lists and cache under ~/.cache/persistmem/apt) whose mirror
# URI is read from the machine's own Debian apt sources, so the system's apt
# state is left alone and no host name is written into the repository.
#
# Overrides:
#   PERSISTMEM_BASE_TARBALL  use this linux-source tarball (.tar.xz/.tar.gz/
#                            .tar) instead of downloading the package
#   PERSISTMEM_CACHE         cache directory (default ~/.cache/persistmem)
#   PERSISTMEM_SUITE         apt suite (default trixie-backports)
set -euo pipefail

BUILD=${BUILD:-$(cd "$(dirname "$0")/.." && pwd)/build}
CACHE=${PERSISTMEM_CACHE:-$HOME/.cache/persistmem}
SUITE=${PERSISTMEM_SUITE:-trixie-backports}
PKG=linux-source-7.3
WANT_VERSION=7
WANT_PATCHLEVEL=3
TREE=$BUILD/linux

die() { echo "fetch-base: $*" >&2; exit 1; }
say() { echo "fetch-base: $*"; }

if [ -f "$TREE/.persistmem-base" ] && git -C "$TREE" rev-parse -q --verify refs/tags/base >/dev/null; then
	say "base already unpacked: $(cat "$TREE/.persistmem-base")"
	exit 0
fi

# Read the first Debian mirror URI from the machine's apt sources, in
# either deb822 (.sources) or one-line (.list) format.
mirror_uri() {
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk '
			/^Types:/ { deb = ($0 ~ /[[:space:]]deb([[:space:]]|$)/) }
			/^URIs:/ && deb { for (i = 2; i <= NF; i++) if ($i ~ /debian\/?$/) { print $i; exit } }
		' "$f")
		[ -n "$uri" ] && { echo "$uri"; return; }
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\// && $i ~ /debian\/?$/) { print $i; exit } }' "$f")
		[ -n "$uri" ] && { echo "$uri"; return; }
	done
}

download_deb() {
	local apt=$CACHE/apt uri keyring opts deb
	deb=$(ls "$CACHE"/debs/${PKG}_*.deb 2>/dev/null | sort -V | tail -1 || true)
	if [ -n "$deb" ]; then
		echo "$deb"
		return
	fi
	uri=$(mirror_uri)
	[ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources*; set PERSISTMEM_BASE_TARBALL"
	keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	[ -f "$keyring" ] || die "$keyring missing (apt-get install debian-archive-keyring)"
	mkdir -p "$apt"/lists/partial "$apt"/cache/archives/partial "$apt"/sources.list.d \
		"$apt"/preferences.d "$CACHE"/debs
	: > "$apt"/sources.list
	cat > "$apt"/sources.list.d/persistmem.sources <<-SRC
	Types: deb
	URIs: $uri
	Suites: $SUITE
	Components: main
	Signed-By: $keyring
	SRC
	opts=(-o Dir::Etc::SourceList="$apt"/sources.list
	      -o Dir::Etc::SourceParts="$apt"/sources.list.d
	      -o Dir::Etc::PreferencesParts="$apt"/preferences.d
	      -o Dir::State::Lists="$apt"/lists
	      -o Dir::Cache="$apt"/cache
	      -o Dir::State::status=/dev/null
	      -o APT::Get::List-Cleanup=0
	      -o APT::Sandbox::User=root)
	say "apt-get update ($SUITE from the machine's Debian mirror)" >&2
	apt-get -q "${opts[@]}" update >&2 || die "apt-get update of the private $SUITE source failed"
	(cd "$CACHE"/debs && apt-get -q "${opts[@]}" download "$PKG" >&2) ||
		die "apt-get download $PKG failed"
	ls "$CACHE"/debs/${PKG}_*.deb | sort -V | tail -1
}

# Extract the kernel tarball shipped in the .deb into $CACHE.
tarball_from_deb() {
	local deb=$1 out=$CACHE/src
	local stamp=$out/$(basename "$deb").tarball
	if [ -f "$stamp" ] && [ -f "$(cat "$stamp")" ]; then
		cat "$stamp"
		return
	fi
	rm -rf "$out" && mkdir -p "$out"
	dpkg-deb --fsys-tarfile "$deb" | tar -C "$out" -x --wildcards './usr/src/linux-source-*.tar.*' ||
		die "no kernel tarball in $deb"
	local tb
	tb=$(ls "$out"/usr/src/linux-source-*.tar.* | head -1)
	echo "$tb" > "$stamp"
	echo "$tb"
}

if [ -n "${PERSISTMEM_BASE_TARBALL:-}" ]; then
	TARBALL=$PERSISTMEM_BASE_TARBALL
	[ -f "$TARBALL" ] || die "PERSISTMEM_BASE_TARBALL=$TARBALL does not exist"
	ORIGIN="tarball $(basename "$TARBALL")"
else
	DEB=$(download_deb)
	TARBALL=$(tarball_from_deb "$DEB")
	ORIGIN="$(basename "$DEB")"
fi

say "unpacking $TARBALL"
rm -rf "$TREE" "$TREE.tmp"
mkdir -p "$TREE.tmp"
tar -C "$TREE.tmp" -xf "$TARBALL"
# The Debian tarball has one top-level directory (linux-source-7.3).
top=$(find "$TREE.tmp" -mindepth 1 -maxdepth 1)
[ "$(echo "$top" | wc -l)" = 1 ] && [ -f "$top/Makefile" ] || die "unexpected tarball layout"
mv "$top" "$TREE"
rmdir "$TREE.tmp"

ver=$(sed -n 's/^VERSION = //p' "$TREE/Makefile")
pl=$(sed -n 's/^PATCHLEVEL = //p' "$TREE/Makefile")
sl=$(sed -n 's/^SUBLEVEL = //p' "$TREE/Makefile")
[ "$ver" = "$WANT_VERSION" ] && [ "$pl" = "$WANT_PATCHLEVEL" ] ||
	die "base Makefile says $ver.$pl, want $WANT_VERSION.$WANT_PATCHLEVEL"

say "creating base commit (Linux $ver.$pl.$sl)"
cd "$TREE"
git init -q -b base-tree
git config user.name "persistmem"
git config user.email "persistmem@localhost"
git config core.autocrlf false
git config gc.auto 0
git add -A -f .
git commit -q -m "Linux $ver.$pl.$sl ($ORIGIN)"
git tag base
echo "Linux $ver.$pl.$sl from $ORIGIN" > .persistmem-base
echo "/.persistmem-base" >> .git/info/exclude
say "base ready: $(cat .persistmem-base)"
