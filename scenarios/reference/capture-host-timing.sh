#!/usr/bin/env bash
# How long a real keepalived 2.2.7 takes: from exec to its first advert, its adverts against
# their nominal times, from SIGTERM to its priority-0 advert and to its exit, and the two
# behaviours that follow from them:
#   part A: two directors with the same priority, both BACKUP, started together (RUNS times):
#           whoever's Master_Down_Interval runs out first usually wins alone;
#   part B: one master with garp_master_refresh 5 (a multiple of advert_int 1): when its
#           refresh GARPs go out;
#   part C: one director alone, started SOLO times: exec to its first advert, unbiased by a
#           competitor (part A only shows the faster of two).
# The wire is read with tcpdump on the segment's bridge (-tt: microseconds); the exec, SIGTERM
# and exit moments are taken by this script (date +%s.%N; exit = the process became a zombie,
# polled every 2 ms). Produced keepalived-2.2-host-timing.log in this folder; configs in
# scenarios/fidelity/host-timing/. Needs root, iproute2, keepalived, tcpdump.
#
# Safety: only namespaces named lvsd-scen-*, only addresses in 198.18.0.0/15, no route out,
# every process killed by the pid (process group) this script started, namespaces removed on
# exit.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
confs="$here/../fidelity/host-timing"
work="$(mktemp -d /tmp/lvsd-scen-capture.XXXXXX)"
out="${2:-$here/keepalived-2.2-host-timing.log}"
RUNS="${1:-30}"
SOLO="${SOLO:-20}"
NS=(lvsd-scen-sw lvsd-scen-d1 lvsd-scen-d2)

source "$here/seed-netns.sh"
map "$confs/keepalived.conf.equal" > "$work/equal.conf"
map "$confs/keepalived.conf.refresh" > "$work/refresh.conf"

now() { date +%s.%N; }
zombie_or_gone() { [ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
# Waits (bounded: 10 s) until every pid given has exited; prints "pid exit-time" per pid.
wait_exits() {
    local left=("$@") deadline=$(( $(date +%s) + 10 ))
    while [ "${#left[@]}" -gt 0 ] && [ "$(date +%s)" -lt "$deadline" ]; do
        local still=()
        for p in "${left[@]}"; do
            if zombie_or_gone "$p"; then echo "$p $(now)"; else still+=("$p"); fi
        done
        left=("${still[@]+"${still[@]}"}")
        sleep 0.002
    done
}
sniff() { # file: tcpdump on br-wan until killed
    setsid ip netns exec lvsd-scen-sw tcpdump -tt -l -n -i br-wan 'vrrp or arp' >"$1" 2>/dev/null &
    echo $!
}
ka() { # ns conf log: keepalived -P in its own process group; prints its pid
    setsid ip netns exec "$1" keepalived -P -n -l -D -R -f "$2" \
        -p "$work/$3.pid" -r "$work/$3-vrrp.pid" -c "$work/$3-check.pid" >"$work/$3.log" 2>&1 &
    echo $!
}
section() { printf '\n## %s\n' "$*"; }

{
    echo "# keepalived $(keepalived -v 2>&1 | head -1) on Linux $(uname -r), addresses mapped"
    echo "# 223.202.22.x -> 198.18.2.x; d1 = director1 = 198.18.2.114, d2 = director2 = 198.18.2.115."
    echo "# Produced by capture-host-timing.sh. Times are Unix seconds."
} >"$out"

for run in $(seq 1 "$RUNS"); do
    S=$(sniff "$work/wire.txt"); PGIDS+=("$S")
    sleep 0.5
    # Alternate who is started first, so neither is favoured by the launch order.
    if [ $((run % 2)) = 1 ]; then order=(d1 d2); else order=(d2 d1); fi
    declare -A pid=() exec_at=()
    for h in "${order[@]}"; do
        exec_at[$h]=$(now); pid[$h]=$(ka "lvsd-scen-$h" "$work/equal.conf" "$h"); PGIDS+=("${pid[$h]}")
    done
    sleep 6
    term_at=$(now)
    kill -TERM -- "-${pid[d1]}" "-${pid[d2]}"
    exits=$(wait_exits "${pid[d1]}" "${pid[d2]}")
    sleep 0.3
    kill -TERM -- "-$S"; sleep 0.2
    {
        section "run $run"
        for h in d1 d2; do echo "exec $h ${exec_at[$h]}"; done
        echo "sigterm ${term_at}"
        for h in d1 d2; do echo "exit $h $(awk -v p="${pid[$h]}" '$1 == p {print $2}' <<<"$exits")"; done
        echo "### wire"; cat "$work/wire.txt"
        for h in d1 d2; do
            echo "### log $h"
            grep -E ': \(VI_1\)|Stopped' "$work/$h.log" || true
        done
    } >>"$out"
    unset pid exec_at
done

# Part B: garp_master_refresh.
S=$(sniff "$work/wire.txt"); PGIDS+=("$S")
sleep 0.5
exec_at=$(now); P=$(ka lvsd-scen-d1 "$work/refresh.conf" d1); PGIDS+=("$P")
sleep 32
term_at=$(now)
kill -TERM -- "-$P"
exits=$(wait_exits "$P")
sleep 0.3
kill -TERM -- "-$S"; sleep 0.2
{
    section "refresh"
    echo "exec d1 $exec_at"
    echo "sigterm $term_at"
    echo "exit d1 $(awk '{print $2}' <<<"$exits")"
    echo "### wire"; cat "$work/wire.txt"
    echo "### log d1"; grep -E ': \(VI_1\)|Stopped' "$work/d1.log" || true
} >>"$out"
# Part C: a lone director, exec to first advert.
for run in $(seq 1 "$SOLO"); do
    S=$(sniff "$work/wire.txt"); PGIDS+=("$S")
    sleep 0.5
    exec_at=$(now); P=$(ka lvsd-scen-d1 "$work/equal.conf" d1); PGIDS+=("$P")
    sleep 4.5
    term_at=$(now)
    kill -TERM -- "-$P"
    exits=$(wait_exits "$P")
    sleep 0.3
    kill -TERM -- "-$S"; sleep 0.2
    {
        section "solo $run"
        echo "exec d1 $exec_at"
        echo "sigterm $term_at"
        echo "exit d1 $(awk '{print $2}' <<<"$exits")"
        echo "### wire"; grep -v ARP "$work/wire.txt"
        echo "### log d1"; grep -E ': \(VI_1\)|Stopped' "$work/d1.log" || true
    } >>"$out"
done
echo "wrote $out"
