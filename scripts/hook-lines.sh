#!/bin/sh
# Lines each patch of patches/series adds to and removes from upstream
# files, and the total: the size of qemu-fph's hooks, which should only
# fall (docs/contributing.rst).
#
#   hook-lines.sh [REPO]

set -eu
repo=${1:-$(cd "$(dirname "$0")/.." && pwd)}

sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$repo/patches/series" |
while read -r p; do
    awk -v name="$p" '
        /^\+\+\+ / || /^--- / { next }
        /^diff --git / { files++ }
        /^\+/ { added++ }
        /^---$/ || /^-- $/ { next }
        /^-/ { removed++ }
        END { printf "%-60s %3d %4d %4d\n", name, files, added, removed }
    ' "$repo/patches/$p"
done | awk '
    BEGIN { printf "%-60s %3s %4s %4s\n", "patch", "files", "+", "-" }
    { print; files += $2; added += $3; removed += $4 }
    END { printf "%-60s %3d %4d %4d\n", "total", files, added, removed }
'
