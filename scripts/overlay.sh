#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Put the project on top of the base tree in $BUILD/linux:
#   base (tag "base") -> one commit per patch in patches/series
#                     -> one commit per component in config/components/
#
# The commit chain is built in a scratch index (git apply --cached,
# update-index), never in the work tree, with fixed dates so identical
# input gives identical commits. The work tree is then moved to the result
# with "git reset --hard", which rewrites only the files whose content
# changed: unchanged files keep their mtimes and kbuild rebuilds only what
# an edit touched. Local edits made directly in $BUILD/linux are discarded.
#
# Every make target that builds runs this first, several times in one make
# test. So the commit chain is remembered with a fingerprint of everything
# it is made from (this script, split.sh, patches/, config/components/ and
# the files under the overlay roots, names, modes and contents): when the
# fingerprint matches, the branch still points at the chain built from it
# and the work tree has no edits, nothing is rebuilt. (Like the fixed dates,
# this assumes the same git and patch tools give the same chain.)
#
# A component file (config/components/NN-name) is a commit message after a
# header ended by a blank line: "Paths:" names the repository paths the
# component owns (none for a component made of hooks or Changes only), optional
# "Patches:" names plain diffs in patches/ that
# wire it into upstream files (Makefile, Kconfig, MAINTAINERS) in the same
# commit. Every file under the overlay roots belongs to exactly one
# component. Optional "Changes:" names diffs in patches/ that this commit
# makes to files of earlier components: the repository holds final
# versions only, and scripts/split.sh derives the earlier ones.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TREE=${TREE:-$ROOT/build/linux}
OVERLAY_ROOTS="arch drivers include kernel lib mm virt tools Documentation"
DATE="@1798761600 +0000"	# fixed, so commits are reproducible

die() { echo "overlay: $*" >&2; exit 1; }
# git on the project repository, not on the tree being built
pgit() { env -u GIT_DIR -u GIT_INDEX_FILE git -C "$ROOT" "$@"; }

git -C "$TREE" rev-parse -q --verify refs/tags/base >/dev/null ||
	die "$TREE has no base commit: run scripts/fetch-base.sh"

export GIT_DIR=$TREE/.git
IDX=$GIT_DIR/persistmem-overlay.index
STAMP=$GIT_DIR/persistmem-overlay.stamp
export GIT_INDEX_FILE=$IDX
export GIT_AUTHOR_NAME=${PERSISTMEM_AUTHOR_NAME:-persistmem developers}
export GIT_AUTHOR_EMAIL=${PERSISTMEM_AUTHOR_EMAIL:-persistmem@lists.invalid}
export GIT_COMMITTER_NAME=$GIT_AUTHOR_NAME GIT_COMMITTER_EMAIL=$GIT_AUTHOR_EMAIL
export GIT_AUTHOR_DATE=$DATE GIT_COMMITTER_DATE=$DATE

# The inputs' fingerprint: names, modes and contents, and who commits.
fingerprint() {
	local files

	# shellcheck disable=SC2086
	files=$(pgit ls-files --cached --others --exclude-standard -- $OVERLAY_ROOTS \
		patches config/components scripts/overlay.sh scripts/split.sh |
		while read -r f; do
			if [ -f "$ROOT/$f" ]; then
				echo "$f"
			fi
		done)
	(cd "$ROOT" && xargs -r -d '\n' stat -c '%a %n' <<< "$files" &&
		xargs -r -d '\n' sha1sum <<< "$files")
	git rev-parse base
	echo "$GIT_AUTHOR_NAME <$GIT_AUTHOR_EMAIL>"
}

fp=$(fingerprint | sha1sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && read -r stamp_fp stamp_head < "$STAMP" && [ "$stamp_fp" = "$fp" ] &&
   [ "$(git symbolic-ref -q --short HEAD)" = persistmem ] &&
   [ "$(git rev-parse HEAD)" = "$stamp_head" ] &&
   (unset GIT_INDEX_FILE; cd "$TREE" && git diff --quiet HEAD); then
	echo "overlay: up to date (inputs unchanged)"
	exit 0
fi
rm -f "$STAMP"

head=$(git rev-parse base)
git read-tree "$head"

commit() {	# commit <message file>
	local tree
	tree=$(git write-tree)
	head=$(git commit-tree "$tree" -p "$head" -F "$1")
}

# add_files <list> <dir>: put each "<mode>\t<path>" of <list>, read from
# <dir>/<path>, into the index at <path>.
add_files() {
	[ -s "$1" ] || return 0
	cut -f2 "$1" | (cd "$2" && git hash-object -w --no-filters --stdin-paths) |
		paste "$1" - | awk -F '\t' '{ printf "%s %s\t%s\n", $1, $3, $2 }' |
		git update-index --add --index-info
}

# 1. Patches to upstream files.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$IDX"' EXIT
npatches=0
if [ -f "$ROOT/patches/series" ]; then
	while read -r p _; do
		case "$p" in ''|'#'*) continue ;; esac
		f=$ROOT/patches/$p
		[ -f "$f" ] || die "patches/series names missing $p"
		git mailinfo "$tmp/msg" "$tmp/diff" < "$f" > "$tmp/info"
		subject=$(sed -n 's/^Subject: //p' "$tmp/info")
		[ -n "$subject" ] || die "$p: no Subject (use git format-patch)"
		author=$(sed -n 's/^Author: //p' "$tmp/info")
		email=$(sed -n 's/^Email: //p' "$tmp/info")
		{ echo "$subject"; echo; cat "$tmp/msg"; } > "$tmp/commitmsg"
		(cd "$TREE" && git apply --cached --whitespace=nowarn "$tmp/diff") ||
			die "patch $p does not apply"
		GIT_AUTHOR_NAME=${author:-$GIT_AUTHOR_NAME} GIT_AUTHOR_EMAIL=${email:-$GIT_AUTHOR_EMAIL} \
			commit "$tmp/commitmsg"
		npatches=$((npatches + 1))
	done < "$ROOT/patches/series"
fi

# 2. Overlay components.
cd "$ROOT"
: > "$tmp/owned"
"$ROOT/scripts/split.sh" stages "$tmp/stages"
ncomp=0
for c in config/components/*; do
	[ -f "$c" ] || continue
	hdr=$(sed '/^$/q' "$c")
	paths=$(sed -n 's/^Paths: *//p' <<< "$hdr")
	hooks=$(sed -n 's/^Patches: *//p' <<< "$hdr")
	changes=$(sed -n 's/^Changes: *//p' <<< "$hdr")
	[ -n "$paths$hooks$changes" ] ||
		die "$c: header must have 'Paths: <path>...', 'Patches: <diff>...' or 'Changes: <diff>...'"
	for d in $changes; do
		sed -n 's|^+++ b/||p' "patches/$d" | sed 's/\t.*//' | while read -r f; do
			grep -qxF "$f" "$tmp/owned" ||
				die "$c: patches/$d changes $f, which no earlier component owns"
		done
	done
	sed '1,/^$/d' "$c" > "$tmp/commitmsg"
	for h in $hooks; do
		[ -f "patches/$h" ] || die "$c: patch patches/$h missing"
		(cd "$TREE" && git apply --cached --whitespace=nowarn "$ROOT/patches/$h") ||
			die "$c: patch $h does not apply"
	done
	# Tracked and new (not ignored) files, never build output; one git
	# process hashes them and one adds them (each loads the whole index).
	: > "$tmp/files"
	for p in $paths; do
		[ -e "$p" ] || die "$c: path $p does not exist"
		# The fingerprint covers the roots only.
		[[ " $OVERLAY_ROOTS " = *" ${p%%/*} "* ]] ||
			die "$c: path $p is outside the overlay roots ($OVERLAY_ROOTS)"
		pgit ls-files --cached --others --exclude-standard -- "$p" | while read -r f; do
			[ -f "$f" ] || continue
			mode=100644
			[ -x "$f" ] && mode=100755
			printf '%s\t%s\n' "$mode" "$f" >> "$tmp/files"
		done
	done
	add_files "$tmp/files" "$ROOT"
	cut -f2 "$tmp/files" >> "$tmp/owned"
	ncomp=$((ncomp + 1))
	# Files that later components change, as they are after this one.
	if [ -d "$tmp/stages/$ncomp" ]; then
		(cd "$tmp/stages/$ncomp" && find . -type f | sed 's|^\./||') | while read -r f; do
			grep -qxF "$f" "$tmp/owned" || continue
			printf '100644\t%s\n' "$f"
		done > "$tmp/files"
		add_files "$tmp/files" "$tmp/stages/$ncomp"
	fi
	commit "$tmp/commitmsg"
done

# Every overlay file must belong to exactly one component.
# shellcheck disable=SC2086
pgit ls-files --cached --others --exclude-standard -- $OVERLAY_ROOTS | sort > "$tmp/all"
sort "$tmp/owned" | uniq -d > "$tmp/dup"
[ -s "$tmp/dup" ] && die "files in more than one component: $(tr '\n' ' ' < "$tmp/dup")"
sort -u "$tmp/owned" | comm -23 "$tmp/all" - > "$tmp/orphans"
[ -s "$tmp/orphans" ] && die "files in no component (config/components/): $(tr '\n' ' ' < "$tmp/orphans")"

# 3. Move the work tree, touching only what changed.

# Remember the chain, unless an input changed while it was being built.
stamp() {
	if [ "$(cd "$ROOT" && fingerprint | sha1sum | cut -d' ' -f1)" = "$fp" ]; then
		echo "$fp $head" > "$STAMP"
	fi
}
unset GIT_INDEX_FILE
cd "$TREE"
old=$(git rev-parse HEAD)
# Edits made directly in the tree (a throw-away experiment) are discarded too.
if [ "$old" = "$head" ] && [ "$(git symbolic-ref -q --short HEAD)" = persistmem ] &&
   git diff --quiet HEAD; then
	stamp
	echo "overlay: up to date ($npatches patches, $ncomp components)"
	exit 0
fi
changed=$(git diff --name-only "$old" "$head" | wc -l)
[ "$(git symbolic-ref -q --short HEAD)" = persistmem ] || git checkout -q -B persistmem
git reset -q --hard "$head"
stamp
echo "overlay: $npatches patches, $ncomp components; $changed files changed"
