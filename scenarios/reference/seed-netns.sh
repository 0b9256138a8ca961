# Sourced by the capture-*.sh scripts: the seed cluster's directors in network namespaces.
# Expects `work` (a scratch folder) and `NS` (the namespaces to create, lvsd-scen-sw first)
# to be set. Ends what the caller records in PIDS / PGIDS and removes the namespaces and
# $work on exit. Writes the seed configs with their addresses mapped into 198.18.0.0/15 as
# lvs_scenarios::netns::AddressMap maps them (192.168.22.x -> 198.18.0.x, 223.202.22.x ->
# 198.18.2.x) to $work/master.conf and $work/backup.conf, and plugs director1 (lvsd-scen-d1)
# and director2 (lvsd-scen-d2) into the bridges br-wan and br-lan of lvsd-scen-sw.
PIDS=()   # processes started, ended by pid
PGIDS=()  # process groups started (setsid), ended as a group
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pg in "${PGIDS[@]}"; do kill -TERM -- "-$pg" 2>/dev/null || true; done
    sleep 1
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for pg in "${PGIDS[@]}"; do kill -KILL -- "-$pg" 2>/dev/null || true; done
    for ns in "${NS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

seed="$(cd "$(dirname "${BASH_SOURCE[0]}")/../seed" && pwd)"

t0=$(date +%s)
mark() { printf '%s +%03ds ==== %s\n' "$(date '+%H:%M:%S')" "$(( $(date +%s) - t0 ))" "$*" | tee -a "$work/timeline"; }

# Starts keepalived (VRRP only, foreground, -D) in namespace $1 on $work/$2.conf in its own
# process group, logging to $work/$3.log; prints its pid, which is the group's id.
ka_group() {
    setsid ip netns exec "$1" keepalived -P -n -l -D -R -f "$work/$2.conf" \
        -p "$work/$3.pid" -r "$work/$3-vrrp.pid" -c "$work/$3-check.pid" \
        >>"$work/$3.log" 2>&1 &
    echo $!
}

map() { sed -e 's/\b192\.168\.22\.\([0-9]\+\)\b/198.18.0.\1/g' -e 's/\b223\.202\.22\.\([0-9]\+\)\b/198.18.2.\1/g' "$1"; }
map "$seed/keepalived.conf.master" > "$work/master.conf"
map "$seed/keepalived.conf.backup" > "$work/backup.conf"

for ns in "${NS[@]}"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n lvsd-scen-sw link add br-wan type bridge
ip -n lvsd-scen-sw link add br-lan type bridge
ip -n lvsd-scen-sw link set br-wan up
ip -n lvsd-scen-sw link set br-lan up
plug() { # host-ns iface bridge address
    local peer="${1#lvsd-scen-}-$2"
    ip -n lvsd-scen-sw link add "$peer" type veth peer name "$2" netns "$1"
    ip -n lvsd-scen-sw link set "$peer" master "$3" up
    ip -n "$1" addr add "$4" dev "$2"
    ip -n "$1" link set "$2" up
}
plug lvsd-scen-d1 eth0 br-wan 198.18.2.114/24
plug lvsd-scen-d1 eth1 br-lan 198.18.0.114/24
plug lvsd-scen-d2 eth0 br-wan 198.18.2.115/24
plug lvsd-scen-d2 eth1 br-lan 198.18.0.115/24
