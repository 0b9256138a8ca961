#!/usr/bin/env bash
# Capture real VRRP adverts, gratuitous ARPs and unsolicited neighbour advertisements from Debian's
# keepalived (2.2.x) into fixtures/vrrp/*.pcap, for core/tests/vrrp_interop.rs.
#
# For each config fixtures/vrrp/NAME.conf listed below:
#   - two namespaces lvsd-cap-a (keepalived) and lvsd-cap-b (tcpdump) joined by one veth pair
#     cap-a0 <-> cap-b0, no link to the host; fixed MACs and addresses so the bytes are stable:
#       cap-a0: 52:54:00:18:00:0a, 198.18.0.10/24, fe80::a/64
#       cap-b0: 52:54:00:18:00:0b, 198.18.0.11/24, fe80::b/64
#   - tcpdump in lvsd-cap-b writes NAME.pcap (VRRP, ARP and ICMPv6 neighbour adverts only);
#   - keepalived runs in lvsd-cap-a from a temporary copy of the config, becomes MASTER, sends its
#     GARP/NA bursts (at the transition and garp_master_delay = 5 s later) and adverts; then it is
#     stopped with SIGTERM (by pid), which makes it send its priority-0 advert;
#   - keepalived's log goes to NAME.keepalived.log;
#   - everything is torn down (also on error / Ctrl-C, via the EXIT trap).
#
# Usage: sudo scripts/capture-vrrp.sh [NAME...]   (default: all six captures)
# Needs: iproute2, keepalived, tcpdump (apt-get install -y keepalived tcpdump).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/fixtures/vrrp"
NS_A=lvsd-cap-a
NS_B=lvsd-cap-b
# How long keepalived runs: long enough for the first master transition (<= 3 * advert_int + skew),
# both GARP bursts (5 s apart) and a handful of adverts.
RUN_SECS=${RUN_SECS:-10}

TMP="$(mktemp -d /tmp/lvsd-cap.XXXXXX)"
KA_PID=""
TD_PID=""

log() { echo "capture-vrrp: $*" >&2; }

# Stop a process we started, by pid, and wait (bounded) for it to exit.
stop_pid() {
    local pid=$1 sig=$2 i
    [ -n "$pid" ] || return 0
    kill -"$sig" "$pid" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    log "pid $pid did not exit after SIG$sig, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

teardown() {
    stop_pid "$KA_PID" TERM
    KA_PID=""
    stop_pid "$TD_PID" INT
    TD_PID=""
    ip netns del "$NS_A" 2>/dev/null || true
    ip netns del "$NS_B" 2>/dev/null || true
}

cleanup() {
    teardown
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

setup() {
    teardown
    ip netns add "$NS_A"
    ip netns add "$NS_B"
    ip -n "$NS_A" link add cap-a0 type veth peer name cap-b0 netns "$NS_B"
    ip -n "$NS_A" link set cap-a0 address 52:54:00:18:00:0a addrgenmode none
    ip -n "$NS_B" link set cap-b0 address 52:54:00:18:00:0b addrgenmode none
    ip -n "$NS_A" addr add 198.18.0.10/24 dev cap-a0
    ip -n "$NS_B" addr add 198.18.0.11/24 dev cap-b0
    ip -n "$NS_A" -6 addr add fe80::a/64 dev cap-a0 nodad
    ip -n "$NS_B" -6 addr add fe80::b/64 dev cap-b0 nodad
    ip -n "$NS_A" link set lo up
    ip -n "$NS_B" link set lo up
    ip -n "$NS_A" link set cap-a0 up
    ip -n "$NS_B" link set cap-b0 up
}

capture() {
    local name=$1 conf="$OUT/$1.conf" pcap="$OUT/$1.pcap" i
    [ -f "$conf" ] || { log "no config $conf"; return 1; }
    log "== $name"
    setup

    # Only what keepalived sends: VRRP (IP protocol 112), ARP, ICMPv6 neighbour adverts (type 136).
    ip netns exec "$NS_B" tcpdump -i cap-b0 -U -s 0 -Z root -w "$pcap" \
        'ip proto 112 or ip6 proto 112 or arp or (icmp6 and ip6[40] == 136)' 2>"$TMP/$name.tcpdump.log" &
    TD_PID=$!
    for i in $(seq 1 50); do
        grep -q "listening on" "$TMP/$name.tcpdump.log" 2>/dev/null && break
        sleep 0.1
    done

    cp "$conf" "$TMP/$name.conf"
    ip netns exec "$NS_A" keepalived -n -l -D -P -f "$TMP/$name.conf" \
        -p "$TMP/$name.pid" -r "$TMP/$name.vrrp.pid" -c "$TMP/$name.check.pid" -b "$TMP/$name.bfd.pid" \
        >"$TMP/$name.keepalived.log" 2>&1 &
    KA_PID=$!
    sleep "$RUN_SECS"

    # SIGTERM: keepalived sends a priority-0 advert before it exits.
    stop_pid "$KA_PID" TERM
    KA_PID=""
    sleep 0.5
    stop_pid "$TD_PID" INT
    TD_PID=""
    # keepalived's own log of the run (wording reference for lvsd's log events).
    sed "s|$TMP/||g" "$TMP/$name.keepalived.log" >"$OUT/$name.keepalived.log"
    grep -vE "Sending (gratuitous ARP|unsolicited Neighbour)" "$OUT/$name.keepalived.log" | sed "s/^/  /" | head -40 >&2 || true
    log "$(tcpdump -r "$pcap" 2>/dev/null | wc -l) packets in $pcap"
    teardown
}

command -v keepalived >/dev/null || { log "keepalived not installed"; exit 1; }
command -v tcpdump >/dev/null || { log "tcpdump not installed"; exit 1; }
log "$(keepalived --version 2>&1 | head -1)"

if [ $# -eq 0 ]; then
    set -- v2-pass v3-ipv4 v3-ipv4-unicast v3-ipv4-unicast-old v3-ipv6 v2-vmac
fi
for name in "$@"; do
    capture "$name"
done
