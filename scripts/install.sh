#!/bin/sh
# Install or uninstall qemu-fph's qemu-system-x86_64.
#
#   install.sh install QEMU_BINARY DESTDIR PREFIX
#   install.sh uninstall DESTDIR PREFIX
#
# Layout (PREFIX=/usr/local by default, /usr in the .deb):
#   PREFIX/lib/qemu-fph/bin/qemu-system-x86_64   the binary
#   PREFIX/lib/qemu-fph/share/{qemu,seabios}     links to Debian's firmware
#   PREFIX/lib/qemu-fph/lib/ipxe/qemu            (qemu-system-data, seabios,
#                                                 ipxe-qemu)
#   PREFIX/bin/qemu-fph-system-x86_64            a link to the binary
#
# The binary is built with --prefix=/usr and finds its firmware relative to
# its own location (QEMU's relocatable install: /usr/share/seabios becomes
# BINDIR/../share/seabios), so the private tree under lib/qemu-fph works
# from any PREFIX.  It is not installed as PREFIX/bin/qemu-system-x86_64:
# /usr/local/bin comes before /usr/bin on PATH, and libvirt and every
# script that runs "qemu-system-x86_64" would silently get qemu-fph instead
# of Debian's; in the .deb, that path is qemu-system-x86's.

set -eu

die() {
    echo "install: error: $*" >&2
    exit 1
}

NAME=qemu-fph-system-x86_64

action=${1:-}
case "$action" in
install) [ $# = 4 ] || die "usage: install.sh install QEMU DESTDIR PREFIX"
    qemu=$2; destdir=$3; prefix=$4 ;;
uninstall) [ $# = 3 ] || die "usage: install.sh uninstall DESTDIR PREFIX"
    destdir=$2; prefix=$3 ;;
*) die "usage: install.sh install|uninstall ..." ;;
esac
case "$prefix" in /*) ;; *) die "PREFIX must be absolute, not '$prefix'" ;; esac
prefix=${prefix%/}
root="$destdir$prefix"
private="$root/lib/qemu-fph"

if [ "$action" = uninstall ]; then
    # Only what install made: the private tree and the link to it.
    if [ -L "$root/bin/$NAME" ]; then
        rm -f "$root/bin/$NAME"
    fi
    rm -rf "$private"
    echo "install: removed $root/bin/$NAME and $private"
    exit 0
fi

[ -x "$qemu" ] || die "$qemu is not built; run make first"
for dir in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
    [ -d "$dir" ] || echo "install: warning: $dir is missing" \
        "(apt-get install qemu-system-data seabios ipxe-qemu)" >&2
done
mkdir -p "$private/bin" "$private/share" "$private/lib/ipxe" "$root/bin"
install -m 0755 "$qemu" "$private/bin/qemu-system-x86_64"
ln -sfn /usr/share/qemu "$private/share/qemu"
ln -sfn /usr/share/seabios "$private/share/seabios"
ln -sfn /usr/lib/ipxe/qemu "$private/lib/ipxe/qemu"
# Relative, so that the link holds inside DESTDIR and after a move.
ln -sfn ../lib/qemu-fph/bin/qemu-system-x86_64 "$root/bin/$NAME"
echo "install: $root/bin/$NAME -> $private/bin/qemu-system-x86_64"
