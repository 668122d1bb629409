#!/bin/sh
# Regenerate a patch of patches/ from the prepared tree, after editing the
# upstream files it touches in build/src.  The message is kept.
#
#   scripts/refresh-patch.sh patches/NNNN-name.patch [NEW-UPSTREAM-FILE...]
#
# Name extra upstream files (paths relative to build/src) to make the patch
# touch them too.  Each upstream file belongs to one patch only, so the
# diff between the pristine base and build/src is exactly the patch.

set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
patch=$1
shift
[ -f "$patch" ] || { echo "refresh-patch: no such patch: $patch" >&2; exit 1; }

files=$( { sed -n 's|^+++ [^/]*/\([^[:space:]]*\).*|\1|p' "$patch";
           for f in "$@"; do echo "$f"; done; } | sort -u)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

# The message: everything up to the first diff.
sed -n '/^diff --git /q;/^--- a\//q;p' "$patch" > "$tmp"
for f in $files; do
    old="$top/build/base/$f"
    [ -f "$old" ] || old=/dev/null
    echo "diff --git a/$f b/$f" >> "$tmp"
    diff -u --label "a/$f" --label "b/$f" "$old" "$top/build/src/$f" \
        >> "$tmp" || [ $? = 1 ]
done
echo "-- " >> "$tmp"
echo "qemu-fph" >> "$tmp"
cp "$tmp" "$patch"
echo "refresh-patch: rewrote $patch ($(echo $files | wc -w) files)"
