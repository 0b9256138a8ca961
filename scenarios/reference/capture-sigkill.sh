#!/usr/bin/env bash
# Runs Debian 12's keepalived (2.2.7) on the seed configs in network namespaces and SIGKILLs the
# master's whole process group (parent and VRRP child; killing only the parent makes the child
# exit cleanly through PR_SET_PDEATHSIG), then restarts it. Records what happens to the VIPs:
# the killed director keeps them (the addresses belong to the kernel), its kernel still answers
# ARP for them, and the restarted keepalived removes them at init ("(NAME) removing VIPs.")
# before it takes over again. A gateway namespace on the WAN segment shows which MAC it resolves
# the VIP to. VRRP only (-P): this kernel has no IPVS.
# Produced keepalived-2.2-sigkill.log in this folder. Needs root, iproute2, keepalived.
#
# Safety: only namespaces named lvsd-scen-*, only addresses in 198.18.0.0/15 (the seed's
# addresses mapped as lvs_scenarios::netns::AddressMap maps them: 192.168.22.x -> 198.18.0.x,
# 223.202.22.x -> 198.18.2.x), no route out, every process killed by the pid (process group)
# this script started, namespaces removed on exit.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d /tmp/lvsd-scen-capture.XXXXXX)"
out="${1:-$here/keepalived-2.2-sigkill.log}"
NS=(lvsd-scen-sw lvsd-scen-d1 lvsd-scen-d2 lvsd-scen-gw)

source "$here/seed-netns.sh"
note() { sed 's/^/    /' | tee -a "$work/timeline"; }
plug lvsd-scen-gw eth0 br-wan 198.18.2.1/24

macs() {
    for h in d1 d2; do
        printf '%s eth0 %s\n' "$h" "$(ip -n "lvsd-scen-$h" -br link show eth0 | awk '{print $3}')"
    done
}
vips() {
    for h in d1 d2; do
        printf '%s: %s\n' "$h" "$(ip -n "lvsd-scen-$h" -4 -o addr show | awk '{print $2 "=" $4}' | grep -v '^lo=' | tr '\n' ' ')"
    done
}
# The gateway's view: which MAC it has for the VIP after sending it one UDP datagram (which
# resolves the VIP if the cache has no entry; no flush: its cache as is).
gwview() {
    ip netns exec lvsd-scen-gw python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("198.18.2.118", 9))'
    sleep 0.5
    printf 'gateway neigh: %s\n' "$(ip -n lvsd-scen-gw neigh show 198.18.2.118)"
}


macs | note
mark "start keepalived on the master (d1), the backup (d2) 3 s later"
D1=$(ka_group lvsd-scen-d1 master d1); PGIDS+=("$D1")
sleep 3
D2=$(ka_group lvsd-scen-d2 backup d2); PGIDS+=("$D2")
sleep 20
vips | note; gwview | note
mark "SIGKILL the master's keepalived process group"
kill -KILL -- "-$D1"
sleep 1
vips | note; gwview | note
sleep 24
mark "24 s after the kill"
vips | note; gwview | note
ip -n lvsd-scen-gw neigh flush dev eth0
mark "gateway ARP cache flushed"
gwview | note
mark "restart keepalived on the master"
D1=$(ka_group lvsd-scen-d1 master d1); PGIDS+=("$D1")
sleep 1
mark "1 s after the restart"
vips | note
sleep 24
mark "25 s after the restart"
vips | note; gwview | note
mark "end"
kill -TERM -- "-$D1" "-$D2" 2>/dev/null || true
sleep 2

{
    echo "# keepalived $(keepalived -v 2>&1 | head -1) on Linux $(uname -r), seed configs, addresses mapped"
    echo "# 192.168.22.x -> 198.18.0.x, 223.202.22.x -> 198.18.2.x. Produced by capture-sigkill.sh."
    echo
    echo "## timeline"; cat "$work/timeline"
    echo; echo "## director1 (keepalived.conf.master)"; cat "$work/d1.log"
    echo; echo "## director2 (keepalived.conf.backup)"; cat "$work/d2.log"
} >"$out"
echo "wrote $out"
