#!/bin/bash
# Replays scheduler traces against the real kernel: Debian's installed kernel (the one
# under /boot with its modules under /lib/modules, newest first) boots under qemu (TCG)
# with build-initramfs.sh's image, runs each trace as ipvsadm commands and TCP connections
# from a client namespace (trace-vm.py), and reports which destination each `conn` got.
#
#   run-trace.sh [--record] TRACE...
#
# Prints each trace's transcript (conn LINE CLIENT -> DEST, then `ipvsadm -L -n`). With
# --record it also writes it to fixtures/traces/kernel/NAME.txt and rewrites the trace's
# `# -> ` notes to the kernel's picks (then `cargo test -p lvs-core --lib traces` checks lvsd
# against them). Exits 77 (skipped) with the reason when the kernel or qemu is missing.
# Needs: apt-get install qemu-system-x86 linux-image-amd64 busybox-static ipvsadm iproute2
# cpio kmod. The guest has no network device; everything runs inside it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
record=0
if [ "${1:-}" = --record ]; then record=1; shift; fi
[ $# -ge 1 ] || { sed -n '2,14p' "$0"; exit 2; }

skip() { echo "run-trace.sh: skipped: $*" >&2; exit 77; }
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed"
[ -x /bin/busybox ] || skip "busybox-static is not installed"
command -v ipvsadm >/dev/null || skip "ipvsadm is not installed"
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
"$here/build-initramfs.sh" "$kver" "$work/base.cpio.gz"

for trace in "$@"; do
    name="$(basename "$trace" .trace)"
    mkdir -p "$work/$name"
    python3 "$here/trace-vm.py" guest "$trace" >"$work/$name/run.sh"
    (cd "$work/$name" && echo run.sh | cpio -o -H newc --quiet | gzip) >"$work/$name/run.cpio.gz"
    cat "$work/base.cpio.gz" "$work/$name/run.cpio.gz" >"$work/$name/initrd"
    # Bounded: a guest that hangs is killed after 10 minutes.
    timeout 600 qemu-system-x86_64 -accel tcg -m 256 -smp 1 -nographic -no-reboot -nic none \
        -kernel "/boot/vmlinuz-$kver" -initrd "$work/$name/initrd" \
        -append "console=ttyS0 quiet panic=-1" </dev/null >"$work/$name/console" 2>&1 &
    qpid=$!
    wait "$qpid" || true
    qpid=""
    tr -d '\r' <"$work/$name/console" | sed -n 's/^@@ //p' >"$work/$name/transcript"
    grep -q '^end$' "$work/$name/transcript" || {
        tail -40 "$work/$name/console" >&2
        echo "run-trace.sh: $trace: the guest did not finish" >&2
        exit 1
    }
    {
        echo "# Linux IPVS answering $(basename "$trace"), from scripts/kernel-vm/run-trace.sh"
        sed '/^end$/d' "$work/$name/transcript"
    } >"$work/$name/kernel.txt"
    cat "$work/$name/kernel.txt"
    if [ "$record" = 1 ]; then
        mkdir -p "$repo/fixtures/traces/kernel"
        cp "$work/$name/kernel.txt" "$repo/fixtures/traces/kernel/$name.txt"
        python3 "$here/trace-vm.py" annotate "$trace" "$repo/fixtures/traces/kernel/$name.txt"
    fi
done
