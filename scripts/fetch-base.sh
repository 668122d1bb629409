#!/bin/sh
# Unpack the QEMU 7.2 base into BUILD/base.
#
#   fetch-base.sh BUILD [BASE [VERSION]]
#
# Without BASE, Debian's 'qemu' source package is fetched with apt-get source
# through a private apt state in BUILD/apt whose deb-src entries are derived
# from this machine's own apt sources: nothing under /etc is changed and no
# archive host is named here.  BASE may be a .dsc, an unpacked tree or an
# upstream qemu-7.2.x.tar.xz.

set -eu

build=$1
base=${2:-}
version=${3:-}
dest="$build/base"

die() {
    echo "fetch-base: error: $*" >&2
    exit 1
}

unpack_dsc() {
    rm -rf "$dest"
    echo "fetch-base: unpacking $(basename "$1") (with Debian's patches)"
    dpkg-source -x "$1" "$dest" > "$build/dpkg-source.log" 2>&1 ||
        die "dpkg-source -x $1 failed; see $build/dpkg-source.log"
}

# Write deb-src twins of the machine's deb entries into $1.
derive_sources() {
    out=$1
    mkdir -p "$out"
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f" \
            > "$out/$(basename "$f" .list)-src.list"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        sed 's/^Types:.*/Types: deb-src/' "$f" > "$out/$(basename "$f")"
    done
    grep -qs . "$out"/* || die "no apt sources found under /etc/apt"
}

fetch_with_apt() {
    apt="$build/apt"
    rm -rf "$apt"
    mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/prefs"
    derive_sources "$apt/sources.list.d"
    set -- -o Dir::Etc::SourceList=/dev/null \
        -o Dir::Etc::SourceParts="$apt/sources.list.d" \
        -o Dir::Etc::Preferences=/dev/null \
        -o Dir::Etc::PreferencesParts="$apt/prefs" \
        -o Dir::State="$apt" -o Dir::State::Lists="$apt/lists" \
        -o Dir::State::status=/var/lib/dpkg/status \
        -o Dir::Cache="$apt" -o Dir::Cache::archives="$apt/archives" \
        -o APT::Sandbox::User=root
    echo "fetch-base: reading the machine's apt sources (deb-src)"
    apt-get "$@" -qq update > "$build/apt-update.log" 2>&1 ||
        die "apt-get update in a private state failed; see $build/apt-update.log"
    if [ -z "$version" ]; then
        # The newest 7.2 version among those offered (a machine may list
        # several suites; QEMU 7.2 is Debian 12's).
        for v in $(apt-cache "$@" showsrc qemu 2>/dev/null |
                   sed -n 's/^Version: //p' | grep '^1:7\.2'); do
            if [ -z "$version" ] || dpkg --compare-versions "$v" gt "$version"
            then
                version=$v
            fi
        done
        [ -n "$version" ] || die "the machine's apt sources offer no QEMU 7.2
source package (qemu 1:7.2+dfsg-*, Debian 12).  On another distribution,
download a QEMU 7.2 source yourself and pass --base=PATH."
    fi
    echo "fetch-base: fetching Debian source package qemu $version"
    mkdir -p "$build/dl"
    (cd "$build/dl" &&
        apt-get "$@" -qq source --download-only "qemu=$version" \
            > "$build/apt-source.log" 2>&1) ||
        die "apt-get source qemu=$version failed; see $build/apt-source.log"
    dsc=$(ls "$build/dl"/qemu_*.dsc | grep -F "_${version#*:}.dsc" | head -n 1)
    [ -n "$dsc" ] || die "no .dsc for $version in $build/dl"
    echo "$version" > "$build/base.debian-version"
    unpack_dsc "$dsc"
}

if [ -z "$base" ]; then
    fetch_with_apt
elif [ -d "$base" ]; then
    [ -f "$base/VERSION" ] && [ -f "$base/configure" ] ||
        die "$base is not a QEMU source tree (no VERSION or configure)"
    echo "fetch-base: copying $base"
    rm -rf "$dest"
    cp -a "$base" "$dest"
    rm -rf "$dest/build"
else
    [ -f "$base" ] || die "no such file or directory: $base"
    case "$base" in
    *.dsc) unpack_dsc "$base" ;;
    *.tar.xz|*.tar.bz2|*.tar.gz|*.tgz)
        rm -rf "$dest" "$build/untar"
        mkdir -p "$build/untar"
        echo "fetch-base: unpacking $(basename "$base")"
        tar -xf "$base" -C "$build/untar" || die "cannot unpack $base"
        set -- "$build/untar"/*
        [ $# = 1 ] && [ -d "$1" ] || die "$base does not hold one top folder"
        mv "$1" "$dest"
        rmdir "$build/untar"
        ;;
    *) die "--base takes a .dsc, a source tree or a .tar.xz, not $base" ;;
    esac
fi
[ -f "$dest/VERSION" ] || die "the base has no VERSION file"
