#!/bin/sh
# Build the test guest's initramfs.
#
#   initramfs.sh OUT_DIR KIND [MODULES_DIR]
#
# KIND is stock (Debian's kernel: its virtio modules go in /modules) or fph
# (our kernel, virtio built in; MODULES_DIR is optional).  Builds
# guest/tools/fph-guest.c statically into OUT_DIR/tools/ (again only when
# the source changed), assembles OUT_DIR/KIND/rootfs from busybox-static,
# guest/init and fph-guest, and writes OUT_DIR/KIND/initramfs.cpio.gz.
# MODULES_DIR defaults to OUT_DIR/stock/modules for stock (as
# guest/stock-kernel.sh leaves it).

set -eu

die() {
    echo "initramfs: error: $*" >&2
    exit 1
}

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    die "usage: initramfs.sh OUT_DIR KIND [MODULES_DIR]"
fi
out=$1
kind=$2
case $kind in
stock) modules=${3:-$out/stock/modules} ;;
fph) modules=${3:-} ;;
*) die "KIND must be stock or fph, not '$kind'" ;;
esac

guest=$(cd "$(dirname "$0")" && pwd)
src=$guest/tools/fph-guest.c
busybox=/bin/busybox
libc_a=$(gcc -print-file-name=libc.a 2> /dev/null || true)

# Everything comes from Debian packages: install what is missing when root,
# else say what to run.
missing=
installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2> /dev/null)" = \
      "install ok installed" ]
}
installed busybox-static || missing="$missing busybox-static"
command -v cpio > /dev/null 2>&1 || missing="$missing cpio"
command -v gzip > /dev/null 2>&1 || missing="$missing gzip"
command -v gcc > /dev/null 2>&1 || missing="$missing gcc"
[ -f "$libc_a" ] || missing="$missing libc6-dev"
if [ -n "$missing" ]; then
    line="apt-get install -y --no-install-recommends$missing"
    if [ "$(id -u)" -ne 0 ]; then
        die "missing packages; as root run: $line"
    fi
    echo "initramfs: $line"
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing ||
        die "$line failed"
    libc_a=$(gcc -print-file-name=libc.a)
fi
[ -x "$busybox" ] || die "$busybox missing although busybox-static is" \
    "installed"

# fph-guest, rebuilt only when its source (or the compile line) changed.
mkdir -p "$out/tools"
bin=$out/tools/fph-guest
cc_line="gcc -static -O2 -Wall -o $bin $src"
want=$( (echo "$cc_line"; cat "$src") | cksum)
if [ ! -x "$bin" ] || [ "$(cat "$bin.stamp" 2> /dev/null || true)" != "$want" ]
then
    echo "initramfs: building $bin"
    rm -f "$bin.stamp"
    $cc_line || die "building fph-guest failed"
    echo "$want" > "$bin.stamp"
fi

# The root file system, assembled afresh every time (it is small).
root=$out/$kind/rootfs
rm -rf "$root"
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/run" \
         "$root/tmp" "$root/root" "$root/etc"
ln -s bin "$root/sbin"
mkdir -p "$root/usr"
ln -s ../bin "$root/usr/bin"
ln -s ../bin "$root/usr/sbin"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
    case $applet in
    busybox|*/*) continue ;;
    esac
    ln -s busybox "$root/bin/$applet"
done
cp "$bin" "$root/bin/fph-guest"
cp "$guest/init" "$root/init"
chmod 755 "$root/init" "$root/bin/fph-guest"
echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
echo "root:x:0:" > "$root/etc/group"

if [ -n "$modules" ]; then
    [ -f "$modules/load-order" ] ||
        die "no $modules/load-order (run guest/stock-kernel.sh $out first)"
    mkdir -p "$root/modules"
    while read -r mod; do
        [ -n "$mod" ] || continue
        [ -f "$modules/$mod" ] || die "$modules/load-order names" \
            "$mod, which is not there"
        cp "$modules/$mod" "$root/modules/"
    done < "$modules/load-order"
    cp "$modules/load-order" "$root/modules/load-order"
fi

# One newc entry for a character device, written by hand so that building
# needs no mknod (and no root): the kernel opens /dev/console for /init
# before anything has mounted devtmpfs.
newc_hex() {
    printf '%08X' "$1"
}
newc_chardev() {
    name=$1
    namesize=$((${#name} + 1))
    printf '070701'
    newc_hex 1; newc_hex $((0020000 | 0600)); newc_hex 0; newc_hex 0
    newc_hex 1; newc_hex 0; newc_hex 0; newc_hex 0; newc_hex 0
    newc_hex "$2"; newc_hex "$3"; newc_hex "$namesize"; newc_hex 0
    printf '%s\0' "$name"
    # Header (110 bytes) plus name, padded to a multiple of 4.
    pad=$(( (4 - (110 + namesize) % 4) % 4 ))
    while [ "$pad" -gt 0 ]; do
        printf '\0'
        pad=$((pad - 1))
    done
}
newc_trailer() {
    printf '070701'
    # printf repeats its format for each argument: eleven zero fields.
    printf '%08X' 0 0 0 0 0 0 0 0 0 0 0
    newc_hex 11; newc_hex 0
    printf 'TRAILER!!!\0\0\0\0'
}

img=$out/$kind/initramfs.cpio.gz
# The kernel unpacks concatenated archives one after the other.
(
    cd "$root"
    find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet
    newc_chardev dev/console 5 1
    newc_chardev dev/null 1 3
    newc_chardev dev/ttyS0 4 64
    newc_trailer
) | gzip -9 -n > "$img.tmp" || die "writing $img failed"
mv "$img.tmp" "$img"
echo "initramfs: $img ($(wc -c < "$img") bytes," \
    "$(find "$root" | wc -l) files)"
