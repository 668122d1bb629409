#!/bin/sh
# Build the qemu-fph guest kernel: Debian's Linux 6.1 source with the patch
# series in guest/linux/ (the guest half of the free page bitmap), configured
# as tinyconfig + guest/linux/fph.config, into OUT_DIR/bzImage-fph.
#
# usage: guest/fph-kernel.sh OUT_DIR
#
# OUT_DIR/src holds the patched source and the build; it is extracted again
# when the patches (or the source package) change, reconfigured when the
# config fragment changes, and otherwise only `make` runs.  Uses ccache when
# installed.  As root, installs the packages it is missing with apt-get.
#
# Copyright (c) 2026 The qemu-fph authors
# SPDX-License-Identifier: GPL-2.0-or-later

set -eu

me=fph-kernel.sh
die() { echo "$me: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUT_DIR"

here=$(cd "$(dirname "$0")" && pwd)
guest_linux=$here/linux
tarball=/usr/src/linux-source-6.1.tar.xz
deb_packages="build-essential bc bison flex libelf-dev libssl-dev cpio xz-utils linux-source-6.1"

PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export PATH
LC_ALL=C
export LC_ALL

check_deps() {
    missing=
    for p in $deb_packages; do
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        case "$status" in
        *" installed") ;;
        *) missing="$missing $p" ;;
        esac
    done
    [ -z "$missing" ] && [ -f "$tarball" ] && return 0
    line="apt-get install -y --no-install-recommends $(echo $deb_packages)"
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "$me: missing build packages:$missing" >&2
        echo "Install them (as root) with:" >&2
        echo "  apt-get update && $line" >&2
        exit 1
    fi
    echo "$me: installing missing packages:$missing"
    apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $line -qq >/dev/null ||
        die "apt-get install failed; run: $line"
    [ -f "$tarball" ] || die "$tarball is missing after installing linux-source-6.1"
}

if command -v dpkg-query >/dev/null; then
    check_deps
else
    [ -f "$tarball" ] || die "$tarball not found (Debian's linux-source-6.1)"
fi

mkdir -p "$1"
out=$(cd "$1" && pwd)
src=$out/src
start=$(date +%s)

# What the patched tree depends on: the source package and the patches.
[ -f "$guest_linux/series" ] || die "$guest_linux/series not found"
patches=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$guest_linux/series")
for p in $patches; do
    [ -f "$guest_linux/$p" ] || die "patch $p listed in series not found"
done
src_stamp=$({
    ls -l --time-style=+%s "$tarball" | awk '{ print $5, $6 }'
    cat "$guest_linux/series"
    for p in $patches; do
        sha256sum < "$guest_linux/$p"
    done
} | sha256sum | cut -d' ' -f1)

if [ "$(cat "$src/.fph-src-stamp" 2>/dev/null || true)" != "$src_stamp" ]; then
    echo "$me: extracting $tarball into $src"
    rm -rf "$src" "$out/src.tmp"
    mkdir -p "$out/src.tmp"
    tar -xJf "$tarball" -C "$out/src.tmp"
    mv "$out/src.tmp/linux-source-6.1" "$src"
    rmdir "$out/src.tmp"
    for p in $patches; do
        echo "$me: applying $p"
        patch -d "$src" -p1 --batch --forward --quiet < "$guest_linux/$p" ||
            die "patch $p does not apply"
    done
    echo "$src_stamp" > "$src/.fph-src-stamp"
fi

if command -v ccache >/dev/null; then
    cc="ccache gcc"
    with=" and ccache"
    # A fresh tree's headers are newer than the build's start, which
    # otherwise makes ccache preprocess every file to look for a hit.
    : "${CCACHE_SLOPPINESS:=include_file_mtime,include_file_ctime}"
    export CCACHE_SLOPPINESS
else
    cc=gcc
    with=
fi
jobs=$(nproc 2>/dev/null || echo 2)
mk() {
    make -C "$src" -s ARCH=x86_64 CC="$cc" HOSTCC="$cc" "$@"
}

# Configuration: tinyconfig, then the fragment, then olddefconfig.
fragment=$guest_linux/fph.config
cfg_stamp=$( { echo "$src_stamp"; sha256sum < "$fragment"; echo "$cc"; } |
            sha256sum | cut -d' ' -f1)
if [ "$(cat "$src/.fph-config-stamp" 2>/dev/null || true)" != "$cfg_stamp" ] ||
   [ ! -f "$src/.config" ]; then
    echo "$me: configuring (tinyconfig + $(basename "$fragment"))"
    mk tinyconfig >/dev/null
    (cd "$src" && scripts/kconfig/merge_config.sh -m -O "$src" "$src/.config" \
        "$fragment") >/dev/null
    mk olddefconfig
    # Every setting of the fragment must have survived olddefconfig.
    bad=
    while IFS= read -r line; do
        case "$line" in
        CONFIG_*=*) grep -qx -- "$line" "$src/.config" || bad="$bad ${line%%=*}" ;;
        "# CONFIG_"*" is not set")
            sym=${line#\# }; sym=${sym%% *}
            grep -q "^$sym=" "$src/.config" && bad="$bad $sym" ;;
        esac
    done < "$fragment"
    [ -z "$bad" ] || die "not set as fph.config asks, check dependencies:$bad"
    echo "$cfg_stamp" > "$src/.fph-config-stamp"
fi

echo "$me: building bzImage with -j$jobs$with"
mk -j"$jobs" bzImage
cp "$src/arch/x86/boot/bzImage" "$out/bzImage-fph.tmp"
mv "$out/bzImage-fph.tmp" "$out/bzImage-fph"
end=$(date +%s)
echo "$me: $out/bzImage-fph ($(wc -c < "$out/bzImage-fph") bytes), built in $((end - start)) s"
