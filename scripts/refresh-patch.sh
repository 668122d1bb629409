#!/bin/sh
# Regenerate a patch of patches/ from the prepared tree, after editing the
# upstream files it touches in build/src.  The message is kept.
#
#   scripts/refresh-patch.sh patches/NNNN-name.patch [UPSTREAM-FILE...]
#
# Name upstream files (paths relative to build/src) to make the patch touch
# them too.  The patch becomes the difference between the base with the
# earlier patches of the series applied and build/src, so a file may be
# touched by several patches, but only the last of them can be refreshed
# from build/src (a later one would leak into it).

set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
patch=$1
shift
name=$(basename "$patch")
series="$top/patches/series"
[ -f "$patch" ] || { echo "refresh-patch: no such patch: $patch" >&2; exit 1; }

die() {
    echo "refresh-patch: $*" >&2
    exit 1
}

files_of() {
    sed -n 's|^+++ [^/]*/\([^[:space:]]*\).*|\1|p' "$1"
}

# Print the parts of patch $1 that touch files listed in $2.
hunks_for() {
    awk -v list="$2" '
        BEGIN { while ((getline f < list) > 0) want[f] = 1 }
        /^diff --git / { keep = 0; f = substr($4, 3);
                         keep = (f in want) }
        keep { print }' "$1"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{ files_of "$patch"; for f in "$@"; do echo "$f"; done; } | sort -u \
    > "$tmp/files"

mkdir "$tmp/base"
while read -r f; do
    if [ -f "$top/build/base/$f" ]; then
        mkdir -p "$tmp/base/$(dirname "$f")"
        cp "$top/build/base/$f" "$tmp/base/$f"
    fi
done < "$tmp/files"

seen=no
for p in $(sed -e 's/#.*//' "$series"); do
    if [ "$p" = "$name" ]; then
        seen=yes
        continue
    fi
    hunks_for "$top/patches/$p" "$tmp/files" > "$tmp/hunks"
    [ -s "$tmp/hunks" ] || continue
    if [ $seen = yes ]; then
        die "$p, later in the series, touches the same files; refresh it" \
            "instead, or fold this change into it"
    fi
    (cd "$tmp/base" && patch -s -p1 --batch < "$tmp/hunks") ||
        die "cannot rebuild the base of $name from the earlier patches"
done
[ $seen = yes ] || die "$name is not in patches/series"

sed -n '/^diff --git /q;/^--- a\//q;p' "$patch" > "$tmp/new"
while read -r f; do
    old="$tmp/base/$f"
    [ -f "$old" ] || old=/dev/null
    echo "diff --git a/$f b/$f" >> "$tmp/new"
    diff -u --label "a/$f" --label "b/$f" "$old" "$top/build/src/$f" \
        >> "$tmp/new" || [ $? = 1 ]
done < "$tmp/files"
echo "-- " >> "$tmp/new"
echo "qemu-fph" >> "$tmp/new"
cp "$tmp/new" "$patch"
echo "refresh-patch: rewrote $patch ($(wc -l < "$tmp/files") files)"
