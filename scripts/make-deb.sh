#!/bin/sh
# Build the Debian binary package qemu-fph-system-x86 from the built binary.
#
#   make-deb.sh TOP BUILD
#
# Writes BUILD/deb/qemu-fph-system-x86_VERSION_ARCH.deb (and removes older
# ones) and prints its path as the last line.  VERSION is the base's Debian
# version without its epoch plus "+fph" and the number of commits of this
# repository, e.g. 7.2+dfsg-7+deb12u18+fph812: later commits give greater
# versions, and the base it was built on stays readable.  The package
# installs beside Debian's qemu-system-x86 (see scripts/install.sh for the
# paths) and depends on Debian's firmware packages instead of shipping
# copies.

set -eu

top=$1
build=$2
pkg=qemu-fph-system-x86
qemu="$build/qemu/qemu-system-x86_64"
out="$build/deb"
stage="$out/stage"

die() {
    echo "make-deb: error: $*" >&2
    exit 1
}

[ -x "$qemu" ] || die "$qemu is not built; run make first"

# The base's version: its Debian changelog when it came from a Debian
# source package, its VERSION file otherwise (an upstream tarball).
if [ -f "$build/base/debian/changelog" ]; then
    base_version=$(dpkg-parsechangelog -l "$build/base/debian/changelog" \
        -S Version)
else
    base_version=$(cat "$build/base/VERSION")
fi
base_version=${base_version#*:}
commits=$(git -C "$top" rev-list --count HEAD 2>/dev/null || echo 0)
commit=$(git -C "$top" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
version="$base_version+fph$commits"
arch=$(dpkg --print-architecture)

rm -rf "$stage"
mkdir -p "$stage/DEBIAN"
"$top/scripts/install.sh" install "$qemu" "$stage" /usr >/dev/null
# Debug symbols make the binary several times larger; Debian ships them
# apart (-dbgsym), and the build folder keeps the unstripped binary.
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
    "$stage/usr/lib/qemu-fph/bin/qemu-system-x86_64"

doc="$stage/usr/share/doc/$pkg"
mkdir -p "$doc"
{
    echo "qemu-fph $version: QEMU $(cat "$build/base/VERSION") from Debian's"
    echo "source package $base_version with qemu-fph's changes (commit"
    echo "$commit); the base's copyright and licence terms follow."
    echo
    if [ -f "$build/base/debian/copyright" ]; then
        cat "$build/base/debian/copyright"
    else
        cat "$build/base/COPYING"
    fi
} > "$doc/copyright"
gzip -9n < "$top/README.md" > "$doc/README.md.gz"

# Shared library dependencies as Debian computes them, from a scratch
# source tree (dpkg-shlibdeps wants debian/control).
shl="$out/shlibdeps"
rm -rf "$shl"
mkdir -p "$shl/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$pkg" "$pkg" \
    > "$shl/debian/control"
shlibs=$(cd "$shl" && dpkg-shlibdeps -O \
    "$stage/usr/lib/qemu-fph/bin/qemu-system-x86_64" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')
rm -rf "$shl"
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no library dependencies"

size=$(du -sk "$stage/usr" | cut -f1)
cat > "$stage/DEBIAN/control" <<EOF
Package: $pkg
Source: qemu-fph
Version: $version
Architecture: $arch
Maintainer: qemu-fph developers <devel@qemu-fph.invalid>
Installed-Size: $size
Depends: $shlibs, qemu-system-data (>= 1:7.2), seabios, ipxe-qemu
Suggests: libvirt-daemon-system, libvirt-clients
Section: otherosfs
Priority: optional
Homepage: https://www.qemu.org/
Description: QEMU 7.2 x86_64 with qemu-fph's free page bitmaps
 qemu-fph's qemu-system-x86_64, installed as qemu-fph-system-x86_64 so
 that it never replaces Debian's qemu-system-x86_64.  Its virtio-balloon
 lets the guest report all its free pages, which live migration then does
 not send, and migration skips the pages the balloon holds.
 .
 Built from $base_version and qemu-fph commit $commit.
EOF

rm -f "$out"/*.deb
deb="$out/${pkg}_${version}_$arch.deb"
dpkg-deb --root-owner-group -Zxz -z6 --build "$stage" "$deb" >/dev/null
rm -rf "$stage"
echo "make-deb: built $pkg $version"
echo "$deb"
