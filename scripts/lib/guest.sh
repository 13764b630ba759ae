# Builds the test guest: Debian's cloud kernel and an initramfs of
# busybox-static, the virtio modules (blk, net, fs) and tests/guest/. Cached outside the
# repository (VUISO_GUEST_CACHE, default /var/cache/dpdk-vuiso/guest); the
# initramfs is rebuilt when tests/guest/ changes. Sourced by test.sh and
# demo.sh; sets VUISO_GUEST_KERNEL and VUISO_GUEST_INITRD.

build_guest() {
    local cache=${VUISO_GUEST_CACHE:-/var/cache/dpdk-vuiso/guest}
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    mkdir -p "$cache" || return 1
    if [ ! -f "$cache/vmlinuz" ] || [ ! -d "$cache/pkgs/bin" ]; then
        echo "== fetching the guest kernel and busybox (apt-get download)"
        local dl="$cache/dl"
        rm -rf "$dl" "$cache/pkgs" && mkdir -p "$dl" "$cache/pkgs" || return 1
        local kpkg
        kpkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' |
            awk '{print $1}' | sort -V | tail -1)
        [ -n "$kpkg" ] || { echo "no linux-image-6.1.0-*-cloud-amd64 in apt" >&2; return 1; }
        (cd "$dl" && apt-get download -q "$kpkg" busybox-static >/dev/null 2>&1) || {
            echo "apt-get download $kpkg busybox-static failed" >&2
            return 1
        }
        for d in "$dl"/*.deb; do dpkg -x "$d" "$cache/pkgs" || return 1; done
        cp "$cache"/pkgs/boot/vmlinuz-* "$cache/vmlinuz" || return 1
        rm -rf "$dl"
    fi
    local modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
        virtio_blk failover net_failover virtio_net fuse virtiofs"
    local sum
    sum=$( (cd "$root/tests/guest" && find . -type f | sort | xargs sha1sum && echo $modules) |
        sha1sum | cut -c1-12)
    local initrd="$cache/initramfs-$sum.gz"
    if [ ! -f "$initrd" ]; then
        local t="$cache/root.tmp"
        rm -rf "$t" && mkdir -p "$t"/{bin,proc,sys,dev,tmp,lib/modules} || return 1
        cp "$cache/pkgs/bin/busybox" "$t/bin/busybox"
        for m in $modules; do
            local f
            f=$(find "$cache/pkgs/lib/modules" -name "$m.ko*" | head -1)
            [ -n "$f" ] || { echo "module $m not found" >&2; return 1; }
            case $f in
            *.xz) xz -dc "$f" >"$t/lib/modules/$m.ko" ;;
            *) cp "$f" "$t/lib/modules/$m.ko" ;;
            esac
        done
        cp "$root/tests/guest/init" "$t/init"
        cp -r "$root/tests/guest/jobs" "$t/jobs"
        (set -o pipefail && cd "$t" && find . | cpio -o -H newc --quiet | gzip -1 >"$initrd.tmp") || return 1
        mv "$initrd.tmp" "$initrd" && rm -rf "$t"
    fi
    export VUISO_GUEST_KERNEL="$cache/vmlinuz" VUISO_GUEST_INITRD="$initrd"
}
