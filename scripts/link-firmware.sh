#!/bin/sh
# The +dfsg base ships no firmware, and a binary run from the build folder
# looks for it under its qemu-bundle only.  Link the firmware of Debian's
# seabios, ipxe-qemu and qemu-system-data packages in there, so the binary
# runs in place with no -L option.
#
#   link-firmware.sh BUNDLE

set -eu

bundle=$1
for dir in /usr/share/seabios /usr/lib/ipxe/qemu /usr/share/qemu; do
    [ -d "$dir" ] || continue
    mkdir -p "$bundle$dir"
    for f in "$dir"/*; do
        name=$(basename "$f")
        # What the build installs itself (keymaps, trace events) wins.
        [ -e "$bundle$dir/$name" ] && [ ! -L "$bundle$dir/$name" ] && continue
        [ -L "$bundle$dir/$name" ] && [ -e "$bundle$dir/$name" ] && continue
        ln -sfn "$f" "$bundle$dir/$name"
    done
done
