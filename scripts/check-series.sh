#!/bin/sh
# Build every prefix of patches/series in a scratch tree beside the real
# one (build/series-check): each patch must leave the fork buildable, so
# that a reviewer, or git bisect, can stop anywhere.  Slow the first time;
# ccache makes later runs quicker.
#
#   check-series.sh [REPO [BUILD]]

set -eu
repo=${1:-$(cd "$(dirname "$0")/.." && pwd)}
build=${2:-$repo/build}
scratch="$build/series-check"
# Same relative layout as the real build: ccache hits across the two.
export CCACHE_BASEDIR="$repo" CCACHE_NOHASHDIR=1
PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

[ -f "$build/qemu/config.status" ] ||
    { echo "check-series: run ./configure first" >&2; exit 1; }

mkdir -p "$scratch/repo/patches" "$scratch/qemu"
[ -e "$scratch/base" ] || ln -s "$build/base" "$scratch/base"
[ -f "$scratch/src/VERSION" ] || cp -a "$build/base" "$scratch/src"
"$repo/scripts/overlay.sh" "$repo" "$scratch/src"
if [ ! -f "$scratch/qemu/build.ninja" ]; then
    # The real build's configure line: it runs ../src/configure.
    (cd "$scratch/qemu" && sh "$build/qemu/config.status") \
        > "$scratch/configure.log" 2>&1
fi

all=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$repo/patches/series")
n=0
for p in $all; do
    n=$((n + 1))
    ln -sfn "$repo/patches/$p" "$scratch/repo/patches/$p"
    echo "$all" | head -n "$n" > "$scratch/repo/patches/series"
    "$repo/scripts/apply-patches.sh" "$scratch/repo" "$scratch" > /dev/null
    if ninja -C "$scratch/qemu" qemu-system-x86_64 \
            > "$scratch/build-$n.log" 2>&1; then
        echo "check-series: ok   $p"
    else
        echo "check-series: FAIL $p (see $scratch/build-$n.log)"
        grep -m 5 'error' "$scratch/build-$n.log" || true
        exit 1
    fi
done
echo "check-series: all $n prefixes build"
