#!/bin/sh
# Fetch Debian 12's own distro kernel for the stock guest.
#
#   stock-kernel.sh OUT_DIR
#
# Downloads the newest linux-image-6.1.0-*-amd64 package this machine's apt
# knows (apt-get update must have run; no archive host is named here) into
# OUT_DIR/stock/dl, unpacks it and leaves:
#
#   OUT_DIR/stock/vmlinuz            the kernel
#   OUT_DIR/stock/version            its release string (uname -r)
#   OUT_DIR/stock/config             its build configuration
#   OUT_DIR/stock/modules/*.ko       virtio-pci, virtio-balloon, virtio-blk
#                                    and their dependencies, uncompressed
#   OUT_DIR/stock/modules/load-order those modules in insmod order
#
# Running it again reuses the download and the unpacked tree.  Set
# FPH_STOCK_MODULES to a space-separated list of module names to load more
# than the default "virtio_pci virtio_balloon virtio_blk" (virtio-blk: the
# pagecache scenario's disk).

set -eu

die() {
    echo "stock-kernel: error: $*" >&2
    exit 1
}

[ $# -eq 1 ] || die "usage: stock-kernel.sh OUT_DIR"
out=$1/stock
wanted=${FPH_STOCK_MODULES:-virtio_pci virtio_balloon virtio_blk}

for tool in apt-cache apt-get dpkg-deb awk; do
    command -v "$tool" > /dev/null 2>&1 || die "$tool not found"
done

# linux-image-amd64 depends on exactly the current ABI's image, which is the
# newest one apt knows; fall back to searching the package names (sorted by
# version) when the metapackage is not known.
pkg=$(apt-cache depends linux-image-amd64 2> /dev/null |
      sed -n 's/^ *Depends: *\(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' |
      head -n 1)
if [ -z "$pkg" ]; then
    pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' |
          awk '{print $1}' | sort -V | tail -n 1)
fi
[ -n "$pkg" ] || die "apt knows no linux-image-6.1.0-*-amd64 package" \
    "(run apt-get update as root)"
echo "stock-kernel: package $pkg"

mkdir -p "$out/dl"
deb=$(ls "$out/dl/${pkg}_"*.deb 2> /dev/null | head -n 1 || true)
if [ -z "$deb" ]; then
    # apt-get download writes into the current directory: use a scratch
    # one, so an interrupted download never looks like a cached .deb.
    rm -rf "$out/dl/tmp"
    mkdir -p "$out/dl/tmp"
    (cd "$out/dl/tmp" && apt-get download "$pkg") \
        > "$out/dl/download.log" 2>&1 ||
        die "apt-get download $pkg failed; see $out/dl/download.log"
    mv "$out/dl/tmp/"*.deb "$out/dl/" ||
        die "apt-get download left no .deb (see $out/dl/download.log)"
    rmdir "$out/dl/tmp"
    deb=$(ls "$out/dl/${pkg}_"*.deb 2> /dev/null | head -n 1 || true)
    [ -n "$deb" ] || die "apt-get download left no .deb in $out/dl"
else
    echo "stock-kernel: using cached $(basename "$deb")"
fi

# Unpack once per .deb: the stamp names the file the tree came from.
tree=$out/pkg
if [ "$(cat "$tree.stamp" 2> /dev/null || true)" != "$(basename "$deb")" ]; then
    rm -rf "$tree" "$tree.stamp"
    mkdir -p "$tree"
    dpkg-deb -x "$deb" "$tree" || die "dpkg-deb -x $deb failed"
    basename "$deb" > "$tree.stamp"
fi

kernel=$(ls "$tree"/boot/vmlinuz-* 2> /dev/null | head -n 1 || true)
[ -n "$kernel" ] || die "no boot/vmlinuz-* in $deb"
release=${kernel##*/vmlinuz-}
moddir=$tree/lib/modules/$release
# The package ships no modules.dep (the postinst runs depmod on install), so
# generate it inside the unpacked tree, which is ours to write.
if [ ! -f "$moddir/modules.dep" ]; then
    depmod=$(command -v depmod || echo /sbin/depmod)
    [ -x "$depmod" ] || die "depmod not found (apt-get install kmod)"
    "$depmod" -b "$tree" "$release" || die "depmod -b $tree $release failed"
fi
[ -f "$moddir/modules.dep" ] || die "no modules.dep in $moddir"
config=$tree/boot/config-$release

cp "$kernel" "$out/vmlinuz"
cp "$config" "$out/config"
echo "$release" > "$out/version"
echo "stock-kernel: kernel $release ($(basename "$deb"))"

# Say how the virtio pieces are built: a module we must load, or built in.
for opt in VIRTIO VIRTIO_RING VIRTIO_PCI VIRTIO_PCI_LIB \
           VIRTIO_PCI_LIB_LEGACY VIRTIO_PCI_LEGACY VIRTIO_BALLOON VIRTIO_BLK; do
    val=$(sed -n "s/^CONFIG_$opt=\(.*\)$/\1/p" "$config")
    case $val in
    y) how="built in" ;;
    m) how="module" ;;
    '')
        if grep -q "^# CONFIG_$opt is not set" "$config"; then
            how="not set"
        else
            # e.g. VIRTIO_RING: 6.1 has no such option, virtio_ring.ko is
            # built with CONFIG_VIRTIO.
            how="no such option in this kernel"
        fi
        ;;
    *) how="$val" ;;
    esac
    echo "stock-kernel: CONFIG_$opt: $how"
done

# Resolve the wanted modules and their dependencies from modules.dep into
# insmod order (dependencies first).  modules.dep lists every module's full
# dependency closure, so a depth-first walk over each line gives a valid
# topological order.  Built-in modules have no line and need no loading.
order=$(awk -v wanted="$wanted" '
    function name(path,    n) {
        n = path
        sub(/.*\//, "", n)
        sub(/\.ko(\.(xz|zst|gz))?$/, "", n)
        gsub(/-/, "_", n)
        return n
    }
    function visit(m,    i, k, d) {
        if (m in done) {
            return
        }
        done[m] = 1
        k = split(deps[m], d, " ")
        for (i = k; i >= 1; i--) {
            visit(name(d[i]))
        }
        print file[m]
    }
    {
        sub(/:$/, "", $1)
        m = name($1)
        file[m] = $1
        rest = ""
        for (i = 2; i <= NF; i++) {
            rest = rest " " $i
        }
        deps[m] = rest
    }
    END {
        n = split(wanted, w, " ")
        for (i = 1; i <= n; i++) {
            m = w[i]
            gsub(/-/, "_", m)
            if (!(m in file)) {
                print "builtin:" m
                continue
            }
            visit(m)
        }
    }' "$moddir/modules.dep")

rm -rf "$out/modules"
mkdir -p "$out/modules"
: > "$out/modules/load-order"
for rel in $order; do
    case $rel in
    builtin:*)
        echo "stock-kernel: ${rel#builtin:}: no module (built in)"
        continue
        ;;
    esac
    src=$moddir/$rel
    base=${rel##*/}
    case $base in
    *.ko.xz)
        command -v xz > /dev/null 2>&1 ||
            die "xz not found (apt-get install xz-utils)"
        base=${base%.xz}
        xz -dc "$src" > "$out/modules/$base"
        ;;
    *.ko.zst)
        command -v zstd > /dev/null 2>&1 ||
            die "zstd not found (apt-get install zstd)"
        base=${base%.zst}
        zstd -qdc "$src" > "$out/modules/$base"
        ;;
    *.ko.gz)
        base=${base%.gz}
        gzip -dc "$src" > "$out/modules/$base"
        ;;
    *.ko)
        cp "$src" "$out/modules/$base"
        ;;
    *)
        die "unexpected module file $rel"
        ;;
    esac
    echo "$base" >> "$out/modules/load-order"
done
echo "stock-kernel: modules: $(tr '\n' ' ' < "$out/modules/load-order")"
echo "stock-kernel: done: $out/vmlinuz, $out/modules/"
