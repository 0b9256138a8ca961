#!/bin/bash
# keepalived's health checkers against real sockets on Debian's kernel (the checkers need
# IPVS, which this host's kernel lacks): Debian's kernel boots under qemu (TCG) with
# build-initramfs.sh's image plus keepalived, runs checks-guest.sh on
# scenarios/fidelity/checks/keepalived.conf, and prints the timeline and keepalived's log.
#
#   run-checks.sh [--record]
#
# --record writes scenarios/reference/keepalived-2.2-checks.log (the capture
# tests/tests/fidelity.rs holds scenarios/fidelity/checks.toml to). Exits 77 (skipped) with
# the reason when the kernel, qemu or keepalived is missing. Needs: apt-get install
# qemu-system-x86 linux-image-amd64 busybox-static ipvsadm iproute2 cpio kmod keepalived.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
record=0
if [ "${1:-}" = --record ]; then record=1; fi

skip() { echo "run-checks.sh: skipped: $*" >&2; exit 77; }
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed"
[ -x /bin/busybox ] || skip "busybox-static is not installed"
command -v ipvsadm >/dev/null || skip "ipvsadm is not installed"
[ -x /usr/sbin/keepalived ] || skip "keepalived is not installed"
kver=""
for v in $(ls /lib/modules 2>/dev/null | sort -rV); do
    if [ -f "/boot/vmlinuz-$v" ] && [ -f "/lib/modules/$v/kernel/net/netfilter/ipvs/ip_vs.ko" ]; then
        kver="$v"
        break
    fi
done
[ -n "$kver" ] || skip "no kernel under /boot with IPVS modules under /lib/modules (linux-image-amd64)"

work="$(mktemp -d /tmp/lvsdt-kvm.XXXXXX)"
qpid=""
cleanup() {
    if [ -n "$qpid" ]; then kill "$qpid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
"$here/build-initramfs.sh" "$kver" "$work/base.cpio.gz" /usr/sbin/keepalived
# The guest mounts a tmpfs on /run: the config goes to /checks.
mkdir -p "$work/r/checks"
cp "$here/checks-guest.sh" "$work/r/run.sh"
cp "$repo/scenarios/fidelity/checks/keepalived.conf" "$work/r/checks/keepalived.conf"
(cd "$work/r" && printf 'run.sh\nchecks\nchecks/keepalived.conf\n' | cpio -o -H newc --quiet | gzip) >"$work/run.cpio.gz"
cat "$work/base.cpio.gz" "$work/run.cpio.gz" >"$work/initrd"
# Bounded: a guest that hangs is killed after 10 minutes.
timeout 600 qemu-system-x86_64 -accel tcg -m 512 -smp 1 -nographic -no-reboot -nic none \
    -kernel "/boot/vmlinuz-$kver" -initrd "$work/initrd" \
    -append "console=ttyS0 quiet panic=-1" </dev/null >"$work/console" 2>&1 &
qpid=$!
wait "$qpid" || true
qpid=""
tr -d '\r' <"$work/console" | sed -n 's/^@@ //p' >"$work/transcript"
grep -q '^end$' "$work/transcript" || {
    tail -40 "$work/console" >&2
    echo "run-checks.sh: the guest did not finish" >&2
    exit 1
}
{
    echo "# keepalived $(keepalived -v 2>&1 | head -1) -C on Linux $kver (qemu), scenarios/fidelity/checks/"
    echo "# keepalived.conf, real servers on the director's LAN (a bridge) and behind a router. Produced by"
    echo "# scripts/kernel-vm/run-checks.sh."
    echo
    echo "## timeline"
    sed -n '/^## director1/q;/ ==== /p' "$work/transcript"
    echo
    sed -n '/^## director1/,/^table$/p' "$work/transcript" | sed '/^table$/d'
} >"$work/capture.log"
cat "$work/capture.log"
if [ "$record" = 1 ]; then
    cp "$work/capture.log" "$repo/scenarios/reference/keepalived-2.2-checks.log"
fi
