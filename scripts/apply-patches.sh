#!/bin/sh
# Apply patches/series to BUILD/src, the hooks of qemu-fph into upstream
# files.  When the series or a patch changed since the last run, the files
# the old series touched are first restored from the pristine base, so the
# series always applies to clean upstream files.
#
#   apply-patches.sh REPO BUILD

set -eu

repo=$1
build=$2
src="$build/src"
pristine="$build/base"
applied="$build/patches.applied"
stamp="$build/patches.stamp"
series="$repo/patches/series"

die() {
    echo "apply-patches: error: $*" >&2
    exit 1
}

patch_list() {
    [ -f "$series" ] || return 0
    sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$series"
}

want=$( (cat "$series" 2>/dev/null; patch_list | while read -r p; do
    cat "$repo/patches/$p"; done) | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$applied" ]
then
    exit 0
fi

# Restore what the old series touched and what the new one will touch (a
# hand edit in build/src that was never turned into a patch is dropped).
{
    [ -f "$applied" ] && cat "$applied"
    patch_list | while read -r p; do
        [ -f "$repo/patches/$p" ] &&
            sed -n 's|^+++ [^/]*/\([^[:space:]]*\).*|\1|p' "$repo/patches/$p"
    done
} | sort -u | while read -r f; do
    if [ -f "$pristine/$f" ]; then
        cp "$pristine/$f" "$src/$f"
    else
        rm -f "$src/$f"
    fi
done
rm -f "$stamp"
: > "$applied"

patch_list | while read -r p; do
    file="$repo/patches/$p"
    [ -f "$file" ] || die "patches/series names $p, which does not exist"
    # Record what the patch touches before applying it, so a failure
    # half-way can still be undone by the next run.
    sed -n 's|^+++ [^/]*/\([^[:space:]]*\).*|\1|p' "$file" >> "$applied"
    rej="$build/rejects/$p.rej"
    mkdir -p "$build/rejects"
    rm -f "$rej"
    if ! out=$(cd "$src" && patch -p1 --forward --batch \
            --no-backup-if-mismatch -r "$rej" < "$file" 2>&1); then
        echo "apply-patches: patch $p does not apply to the base:" >&2
        echo "$out" | sed 's/^/    /' >&2
        if [ -s "$rej" ]; then
            echo "Rejected hunks ($rej):" >&2
            sed 's/^/    /' "$rej" >&2
        fi
        echo "Refresh the patch against build/src (docs/contributing.rst)," \
            "then run make again." >&2
        exit 1
    fi
    echo "apply-patches: applied $p"
done
sort -u -o "$applied" "$applied"
echo "$want" > "$stamp"
