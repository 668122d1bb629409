#!/bin/sh
# Show that fph-kvm-dirty-test catches a missing re-arm.  Builds the fork
# in a scratch tree (build/no-rearm) with ram_rearm_dirty_tracking()
# returning at once, and runs the write-once-after-request cases there
# RUNS times each: on KVM's dirty log they must fail, with the figures of
# what the destination lost; on the dirty ring they pass.  Needs KVM and
# ./configure; not part of make check.
#
#   prove-rearm.sh [RUNS]

set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
build="$repo/build"
scratch="$build/no-rearm"
runs=${1:-3}
# Same relative layout as the real build: ccache hits across the two.
export CCACHE_BASEDIR="$repo" CCACHE_NOHASHDIR=1
PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

[ -f "$build/qemu/config.status" ] ||
    { echo "prove-rearm: run ./configure first" >&2; exit 1; }

mkdir -p "$scratch/qemu"
[ -e "$scratch/base" ] || ln -s "$build/base" "$scratch/base"
[ -f "$scratch/src/VERSION" ] || cp -a "$build/base" "$scratch/src"
"$repo/scripts/overlay.sh" "$repo" "$scratch/src"
"$repo/scripts/apply-patches.sh" "$repo" "$scratch" > /dev/null

# The one change: the re-arm returns before it clears anything.
ram="$scratch/src/migration/ram.c"
mark='prove-rearm.sh: no re-arm'
if ! grep -q "$mark" "$ram"; then
    sed -i "/^void ram_rearm_dirty_tracking(void)\$/,/^}\$/ s|^    if (!ram_state) {\$|    if (true) { /* $mark */|" "$ram"
fi
[ "$(grep -c "$mark" "$ram")" = 1 ] ||
    { echo "prove-rearm: ram_rearm_dirty_tracking() not found" >&2; exit 1; }

if [ ! -f "$scratch/qemu/build.ninja" ]; then
    (cd "$scratch/qemu" && sh "$build/qemu/config.status") \
        > "$scratch/configure.log" 2>&1
fi
ninja -C "$scratch/qemu" qemu-system-x86_64 tests/qtest/fph-kvm-dirty-test \
    > "$scratch/build.log" 2>&1 ||
    { tail -20 "$scratch/build.log"; exit 1; }
"$repo/scripts/link-firmware.sh" "$scratch/qemu/qemu-bundle"

cd "$scratch/qemu"
failed=0
for tc in bitmap/dirty-log stock/dirty-log bitmap/dirty-ring \
            stock/dirty-ring; do
    i=0
    while [ "$i" -lt "$runs" ]; do
        i=$((i + 1))
        out=$(QTEST_QEMU_BINARY=./qemu-system-x86_64 \
              ./tests/qtest/fph-kvm-dirty-test --verbose \
              -p "/x86_64/fph-kvm-dirty/write-once-after-request/$tc" \
              2>&1) && result=pass || result=FAIL
        case "$out" in
        *"# SKIP"*) result=skip ;;
        esac
        why=$(echo "$out" | sed -n 's/^# \(destination: .*\)/\1/p;
                                     s/.*# \(SKIP.*\)/\1/p' | tail -1)
        echo "prove-rearm: $tc run $i: $result; ${why:-no figures}"
        case "$tc:$result" in
        *:skip) failed=1 ;;
        *dirty-log:pass) failed=1 ;;
        *dirty-ring:FAIL) failed=1 ;;
        esac
    done
done
if [ "$failed" = 1 ]; then
    echo "prove-rearm: the test did not tell the builds apart"
    exit 1
fi
echo "prove-rearm: without the re-arm the dirty log cases fail, as they must"
