#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Generate $OBJ/.config: upstream's live-update selftest fragments, then
# config/persistmem.config, resolved with olddefconfig. Every line of the
# merged fragments must survive, or this fails and names the dropped ones.
# The .config is only rewritten when its content changes, so an unchanged
# configuration never triggers a rebuild.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TREE=${TREE:-$ROOT/build/linux}
OBJ=${OBJ:-$ROOT/build/obj}
FRAG=$TREE/tools/testing/selftests/liveupdate

mkdir -p "$OBJ"
want=$OBJ/persistmem.fragment
cat "$FRAG/config.x86_64" "$FRAG/config" "$ROOT/config/persistmem.config" |
	grep -E '^(CONFIG_[A-Za-z0-9_]+=|# CONFIG_[A-Za-z0-9_]+ is not set)' |
	awk '!seen[$0]++' > "$want.new"

if [ -f "$OBJ/.config" ] && [ -f "$want" ] && cmp -s "$want" "$want.new"; then
	rm "$want.new"
	echo "kconfig: configuration unchanged"
	exit 0
fi

# The fragment is recorded only once olddefconfig succeeded, so a failed
# run (say, flex missing) is redone next time, not taken as configured.
rm -f "$want"
cp "$want.new" "$OBJ/.config"
make -s -C "$TREE" O="$OBJ" ARCH=x86_64 olddefconfig
mv "$want.new" "$want"

missing=0
while read -r line; do
	case "$line" in
	"# CONFIG_"*)
		opt=${line#\# }; opt=${opt%% *}
		if grep -q "^$opt=" "$OBJ/.config"; then
			echo "kconfig: $opt is set, fragment wants it off" >&2
			missing=1
		fi
		;;
	*)
		if ! grep -qx -- "$line" "$OBJ/.config"; then
			echo "kconfig: dropped by olddefconfig: $line (have: $(grep "^${line%%=*}=" "$OBJ/.config" || echo unset))" >&2
			missing=1
		fi
		;;
	esac
done < "$want"
if [ "$missing" != 0 ]; then
	rm -f "$want"
	echo "kconfig: requested options missing, see above" >&2
	exit 1
fi
echo "kconfig: $(wc -l < "$want") requested options all present"
