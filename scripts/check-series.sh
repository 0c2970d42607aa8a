#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make series: build every commit of the series on its own with the
# project's config, any warning (modpost's included) an error, then put the
# tree and the config back. Incremental: each step rebuilds what its commit
# changed. A commit that touches nothing the kernel build reads
# (Documentation/, MAINTAINERS, tools/testing/) leaves the tree its parent
# built and is not rebuilt; olddefconfig runs only when a Kconfig file
# changed since the last configured commit. Each commit counts as one test
# in $BUILD/results/series.counts for make test.
#
# What a commit must pass: every object compiles without a warning,
# vmlinux.o links (ld -r: duplicate definitions), objtool and modpost run
# on it, and it leaves no symbol undefined that the final link would not
# resolve. The last commit built, and any commit that changes how vmlinux
# is linked, is linked into vmlinux; for the others, the kallsyms links
# would mostly repeat that last check, three times over (about 5 s a
# commit). Instead, their undefined symbols are recorded and compared at
# the end with those of the last commit's vmlinux.o, whose link succeeded:
# a symbol undefined in an earlier commit and not in the last one is
# defined by an object only a later commit adds, so that commit would not
# have linked. What only the final link checks (orphan sections, the
# linker script's assertions) is checked for the last commit alone; a
# symbol that only a later commit's linker script would define is not
# caught, and no commit of the series changes a linker script.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TREE=${TREE:-$ROOT/build/linux}
BUILD=${BUILD:-$ROOT/build}
OBJ=${OBJ:-$BUILD/obj}
JOBS=${JOBS:-$(nproc)}
# SERIES_BASE=persistmem~3 checks only the last three commits.
SERIES_BASE=${SERIES_BASE:-base}
export PATH=/usr/lib/ccache:$PATH

[ -f "$OBJ/.config" ] || { echo "series: run make kernel first" >&2; exit 1; }
work=$(mktemp -d)
cp "$OBJ/.config" "$work/config"
restore() {
	git -C "$TREE" checkout -q persistmem
	cp "$work/config" "$OBJ/.config"
	make -s -C "$TREE" O="$OBJ" ARCH=x86_64 olddefconfig
	rm -rf "$work"
}
trap restore EXIT

# Does commit $1 change only files the kernel build never reads?
outside_build() {
	! git -C "$TREE" diff --name-only "$1^" "$1" |
		grep -qvE '^(Documentation/|MAINTAINERS$|tools/testing/)'
}

# Does commit $1 change how vmlinux is linked?
changes_link() {
	! git -C "$TREE" diff --quiet "$1^" "$1" -- '*.lds*' 'scripts/Makefile.vmlinux*' \
		scripts/link-vmlinux.sh scripts/kallsyms.c Makefile arch/x86/Makefile
}

# The strong symbols vmlinux.o leaves undefined, sorted.
undefined() {
	nm -u "$OBJ/vmlinux.o" | awk '$1 == "U" { print $2 }' | LC_ALL=C sort -u
}

commits=$(git -C "$TREE" rev-list --reverse "$SERIES_BASE"..persistmem)
last=
for c in $commits; do
	outside_build "$c" || last=$c
done

n=0
bad=0
configured=persistmem
all_start=$(date +%s)
declare -A subject_of
for c in $commits; do
	n=$((n + 1))
	subject=$(git -C "$TREE" log -1 --format=%s "$c")
	subject_of[$n]=$subject
	if outside_build "$c"; then
		echo "series: ok   $n $subject (no file of the kernel build)"
		continue
	fi
	start=$(date +%s)
	git -C "$TREE" checkout -q --detach "$c"
	if git -C "$TREE" diff --name-only "$configured" "$c" | grep -q 'Kconfig'; then
		cp "$work/config" "$OBJ/.config"
		make -s -C "$TREE" O="$OBJ" ARCH=x86_64 olddefconfig
		configured=$c
	fi
	target=modpost
	if [ "$c" = "$last" ] || changes_link "$c"; then
		target=vmlinux
	fi
	if make -s -C "$TREE" O="$OBJ" ARCH=x86_64 -j"$JOBS" $target > "$OBJ/series.log" 2>&1 &&
	   ! grep -qi "warning:" "$OBJ/series.log"; then
		if [ $target = modpost ]; then
			undefined > "$work/undef.$n"
			echo "series: ok   $n $subject ($(( $(date +%s) - start )) s, linked below)"
		else
			echo "series: ok   $n $subject ($(( $(date +%s) - start )) s, linked)"
		fi
	else
		echo "series: FAIL $n $subject"
		tail -20 "$OBJ/series.log"
		bad=$((bad + 1))
		[ "$c" != "$last" ] || last=
	fi
done

# The commits built without the final link against the last one that linked.
if [ -n "$last" ]; then
	undefined > "$work/undef.last"
	for i in $(seq 1 "$n"); do
		f=$work/undef.$i
		[ -e "$f" ] || continue
		missing=$(LC_ALL=C comm -23 "$f" "$work/undef.last" | head -5 | paste -sd ' ') ||
			true
		if [ -n "$missing" ]; then
			echo "series: FAIL $i ${subject_of[$i]}: would not link, undefined: $missing"
			bad=$((bad + 1))
		fi
	done
else
	echo "series: the last commit failed, so no earlier commit's link is checked"
fi

mkdir -p "$BUILD/results"
echo "$((n - bad)) $bad" > "$BUILD/results/series.counts"
echo "series: $((n - bad)) of $n commits build ($(( $(date +%s) - all_start )) s)"
[ "$bad" = 0 ]
