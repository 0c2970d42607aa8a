#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Intermediate versions of overlay files, for a component split into a
# series of commits that each build.
#
# The repository holds every file in its final version only. A component
# (config/components/NN-name) whose commit changes files that earlier
# components own names the change in its header:
#
#   Changes: persist-alloc/06-kho.diff
#
# a unified diff (-p1) from the files as the earlier commits left them to
# the files as this commit leaves them. The version of a file after
# component k is its final version with the Changes of every later
# component taken back, last first.
#
#   split.sh stages OUT  write OUT/<k>/<path>: each changed file as it is
#                        after the k-th component (1-based), for overlay.sh
#   split.sh refresh     after an edit of a final file, rewrite every
#                        Changes diff from the stages it still gives (diffs
#                        that only apply with an offset or fuzz are made
#                        exact again); a diff that no longer applies at all
#                        must be fixed by hand
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

die() { echo "split: $*" >&2; exit 1; }

comps=()
for c in config/components/*; do
	[ -f "$c" ] && comps+=("$c")
done

changes_of() {	# changes_of <component file>: its Changes diffs
	sed '/^$/q' "$1" | sed -n 's/^Changes: *//p'
}

files_of() {	# files_of <diff>: the paths it changes
	sed -n 's|^+++ b/||p' "$1" | sed 's/\t.*//'
}

# stages <out> [fuzzy]: fuzzy tolerates offsets and fuzz, and says so.
stages() {
	local out=$1 fuzzy=${2:-} fz=0 work k d f msg
	[ -z "$fuzzy" ] || fz=2
	work=$(mktemp -d)
	for c in "${comps[@]}"; do
		for d in $(changes_of "$c"); do
			[ -f "patches/$d" ] || die "$c: Changes patches/$d missing"
			for f in $(files_of "patches/$d"); do
				[ -f "$f" ] || die "patches/$d changes $f, which does not exist"
				mkdir -p "$work/$(dirname "$f")"
				cp "$f" "$work/$f"
			done
		done
	done
	for ((k = ${#comps[@]}; k >= 1; k--)); do
		mkdir -p "$out/$k"
		cp -r "$work/." "$out/$k/"
		# Taken back last first within a component too.
		for d in $(changes_of "${comps[k - 1]}" | tac); do
			if ! msg=$(patch -R -p1 -d "$work" --no-backup-if-mismatch -r - \
				      -F $fz < "patches/$d" 2>&1); then
				die "patches/$d does not take back from the final files: fix it by hand
$msg"
			fi
			if grep -qE 'offset|fuzz' <<< "$msg"; then
				[ -n "$fuzzy" ] || die "patches/$d is stale: run scripts/split.sh refresh
$msg"
				echo "split: patches/$d taken back inexactly, rewritten" >&2
			fi
		done
	done
	rm -rf "$work"
}

refresh() {
	local out k d f
	out=$(mktemp -d)
	# shellcheck disable=SC2064
	trap "rm -rf '$out'" EXIT
	stages "$out" fuzzy
	for ((k = 2; k <= ${#comps[@]}; k++)); do
		for d in $(changes_of "${comps[k - 1]}"); do
			[ "$(changes_of "${comps[k - 1]}" | wc -l)" -eq 1 ] ||
				die "${comps[k - 1]}: refresh handles one Changes diff per component"
			for f in $(files_of "patches/$d"); do
				diff -up --label "a/$f" --label "b/$f" "$out/$((k - 1))/$f" "$out/$k/$f" || true
			done > "patches/$d.new"
			mv "patches/$d.new" "patches/$d"
		done
	done
}

case "${1:-}" in
stages)	[ -n "${2:-}" ] || die "usage: split.sh stages OUT"; stages "$2" ;;
refresh) refresh ;;
*)	die "usage: split.sh stages OUT | refresh" ;;
esac
