#!/bin/sh
# Lay qemu-fph's own files over the base tree as symbolic links, so an edit
# to one of them reaches the next build without re-running configure.
#
#   overlay.sh REPO SRC
#
# Our files must be new files: an upstream file is changed only through a
# patch in patches/, never by shadowing it.

set -eu

repo=$1
src=$2
list="$src/.qemu-fph-overlay"

cd "$repo"
new=$(mktemp)
trap 'rm -f "$new"' EXIT
if git rev-parse --git-dir >/dev/null 2>&1; then
    git ls-files --cached --others --exclude-standard -- \
        hw migration include tests/qtest qapi
else
    find hw migration include tests/qtest qapi -type f 2>/dev/null || true
fi | sort -u > "$new"

# Drop the links of files that are gone from the repository.
if [ -f "$list" ]; then
    comm -23 "$list" "$new" | while read -r f; do
        [ -L "$src/$f" ] && rm -f "$src/$f"
    done
fi

while read -r f; do
    [ -f "$repo/$f" ] || continue
    target="$src/$f"
    if [ -e "$target" ] && [ ! -L "$target" ]; then
        echo "overlay: $f exists in the base; change upstream files with a" \
            "patch in patches/, not by replacing them" >&2
        exit 1
    fi
    if [ "$(readlink "$target" 2>/dev/null)" != "$repo/$f" ]; then
        mkdir -p "$(dirname "$target")"
        ln -sfn "$repo/$f" "$target"
    fi
done < "$new"
cp "$new" "$list"
