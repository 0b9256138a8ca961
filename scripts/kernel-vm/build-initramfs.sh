#!/bin/bash
# Builds the guest image for run-trace.sh: busybox-static, the IPVS modules (veth, bridge) of
# the installed Debian kernel in dependency order, ipvsadm and iproute2 with the libraries
# ldd lists, and guest-init.sh as /init. Usage: build-initramfs.sh KVER OUT.cpio.gz [BIN...]
# (each BIN copied in too, with its libraries: run-checks.sh adds keepalived).
# Needs: busybox-static ipvsadm iproute2 cpio kmod linux-image-amd64 (apt-get install).
set -euo pipefail
kver="$1"
out="$2"
shift 2
here="$(cd "$(dirname "$0")" && pwd)"
root="$(mktemp -d /tmp/lvsdt-initramfs.XXXXXX)"
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{bin,sbin,usr/sbin,proc,sys,dev,run,tmp,etc,lib/modules,lib64,var}
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
    # A link named busybox would make init loop (ELOOP); ip must be iproute2's (netns).
    case "$applet" in busybox | ip) continue ;; esac
    ln -s busybox "$root/bin/$applet"
done

# Modules, each after what it needs. crc32c-intel fails under TCG, harmlessly.
for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sed ip_vs_nq ip_vs_fo ip_vs_ovf \
    ip_vs_lblc ip_vs_lblcr ip_vs_dh ip_vs_sh ip_vs_mh veth bridge; do
    modprobe -S "$kver" --show-depends "$m" # one module a call: more names would be its options
done | awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++' >"$root/modules.order"
while read -r ko; do
    cp "$ko" "$root/lib/modules/"
done <"$root/modules.order"
sed -i 's#.*/#/lib/modules/#' "$root/modules.order"

copy_with_libs() {
    local bin="$1" dest="$2"
    cp "$bin" "$root$dest"
    ldd "$bin" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }' | while read -r lib; do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
}
copy_with_libs /usr/sbin/ipvsadm /usr/sbin/ipvsadm
copy_with_libs /sbin/ip /sbin/ip
for bin in "$@"; do
    mkdir -p "$root$(dirname "$bin")"
    copy_with_libs "$bin" "$bin"
done

cp "$here/guest-init.sh" "$root/init"
chmod +x "$root/init"
echo "$kver" >"$root/etc/kver"

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) >"$out"
