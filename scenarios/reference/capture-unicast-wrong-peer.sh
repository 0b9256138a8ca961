#!/usr/bin/env bash
# Runs Debian 12's keepalived (2.2.7) on scenarios/fidelity/unicast-wrong-peer/ in network
# namespaces: unicast VRRP where director1's unicast_peer names an address nobody has, so its
# adverts never reach director2 (the kernel ARPs for the peer and drops them), while director2's
# reach director1. Produced keepalived-2.2-unicast-wrong-peer.log in this folder, with the
# ARP requests director1 sends. VRRP only (-P). Needs root, iproute2, keepalived, tcpdump.
#
# Safety: only namespaces named lvsd-scen-*, only addresses in 198.18.0.0/15, no route out,
# every process killed by the process group this script started, namespaces removed on exit.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
confs="$here/../fidelity/unicast-wrong-peer"
work="$(mktemp -d /tmp/lvsd-scen-capture.XXXXXX)"
out="${1:-$here/keepalived-2.2-unicast-wrong-peer.log}"
NS=(lvsd-scen-sw lvsd-scen-d1 lvsd-scen-d2)

source "$here/seed-netns.sh"
for h in d1 d2; do map "$confs/keepalived.conf.$h" > "$work/$h.conf"; done
setsid ip netns exec lvsd-scen-d1 tcpdump -l -n -i eth0 arp > "$work/d1-arp.txt" 2>/dev/null &
PGIDS+=("$!")


mark "start keepalived on director1, director2 3 s later"
D1=$(ka_group lvsd-scen-d1 d1 d1); PGIDS+=("$D1")
sleep 3
D2=$(ka_group lvsd-scen-d2 d2 d2); PGIDS+=("$D2")
sleep 17
mark "VIPs"
for h in d1 d2; do
    printf '    %s: %s\n' "$h" "$(ip -n "lvsd-scen-$h" -4 -o addr show dev eth0 | awk '{print $4}' | tr '\n' ' ')" | tee -a "$work/timeline"
done
mark "end"
kill -TERM -- "-$D1" "-$D2" 2>/dev/null || true
sleep 2

{
    echo "# keepalived $(keepalived -v 2>&1 | head -1) on Linux $(uname -r), scenarios/fidelity/unicast-wrong-peer"
    echo "# configs, addresses mapped 223.202.22.x -> 198.18.2.x. Produced by capture-unicast-wrong-peer.sh."
    echo
    echo "## timeline"; cat "$work/timeline"
    echo "## ARP on director1's eth0 (tcpdump, first 10 lines)"; head -10 "$work/d1-arp.txt" | sed 's/^[0-9:.]* //'
    echo; echo "## director1 (keepalived.conf.d1)"; cat "$work/d1.log"
    echo; echo "## director2 (keepalived.conf.d2)"; cat "$work/d2.log"
} >"$out"
echo "wrote $out"
