#!/usr/bin/env bash
# Runs Debian 12's keepalived (2.2.7) on the seed configs in network namespaces and walks the
# guide's VRRP steps (1-2 start, 6 backup stopped, 7 backup back + master stopped, 8 master
# back, 10 master's WAN NIC down), so its real log lines can be set beside the guide's 1.1.15
# excerpts. VRRP only (-P): without the ip_vs module keepalived's checker child exits FATAL
# ("IPVS: Can't initialize ipvs") and takes the daemon down, so steps 3-5 and 9 are not here.
# Produced keepalived-2.2-walkthrough.log in this folder. Needs root, iproute2, python3, keepalived.
#
# Safety: only namespaces named lvsd-scen-*, only addresses in 198.18.0.0/15 (the seed's
# addresses mapped as lvs_scenarios::netns::AddressMap maps them: 192.168.22.x -> 198.18.0.x,
# 223.202.22.x -> 198.18.2.x), no route out, every process killed by the pid this script
# started, namespaces removed on exit.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d /tmp/lvsd-scen-capture.XXXXXX)"
out="${1:-$here/keepalived-2.2-walkthrough.log}"
NS=(lvsd-scen-sw lvsd-scen-d1 lvsd-scen-d2)

source "$here/seed-netns.sh"

ka() { # ns conf tag -> starts keepalived in the foreground, prints its pid
    ip netns exec "$1" keepalived -P -n -l -D -R -f "$work/$2.conf" \
        -p "$work/$3.pid" -r "$work/$3-vrrp.pid" -c "$work/$3-check.pid" \
        >>"$work/$3.log" 2>&1 &
    echo $!
}

mark "steps 1-2: start keepalived on the master (d1), the backup (d2) 3 s later"
D1=$(ka lvsd-scen-d1 master d1); PIDS+=("$D1")
sleep 3
D2=$(ka lvsd-scen-d2 backup d2); PIDS+=("$D2")
sleep 25
mark "step 6: pkill keepalived (SIGTERM) on the backup"
kill -TERM "$D2"; wait "$D2" 2>/dev/null || true
sleep 8
mark "step 7: restart keepalived on the backup"
D2=$(ka lvsd-scen-d2 backup d2); PIDS+=("$D2")
sleep 12
mark "step 7: pkill keepalived (SIGTERM) on the master"
kill -TERM "$D1"; wait "$D1" 2>/dev/null || true
sleep 12
mark "step 8: restart keepalived on the master"
D1=$(ka lvsd-scen-d1 master d1); PIDS+=("$D1")
sleep 20
mark "step 10: eth0 down on the master"
ip -n lvsd-scen-d1 link set eth0 down
sleep 25
mark "end"
kill -TERM "$D1" "$D2" 2>/dev/null || true
sleep 2

{
    echo "# keepalived $(keepalived -v 2>&1 | head -1) on Linux $(uname -r), seed configs, addresses mapped"
    echo "# 192.168.22.x -> 198.18.0.x, 223.202.22.x -> 198.18.2.x. Produced by capture-keepalived-2.2.sh."
    echo
    echo "## timeline"; cat "$work/timeline"
    echo; echo "## director1 (keepalived.conf.master)"; cat "$work/d1.log"
    echo; echo "## director2 (keepalived.conf.backup)"; cat "$work/d2.log"
} >"$out"
echo "wrote $out"
