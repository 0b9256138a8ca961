#!/usr/bin/env bash
# Runs Debian 12's keepalived (2.2.7) on scenarios/fidelity/track-script/ in network namespaces:
# director1 (priority 100) tracks a vrrp_script (interval 1, fall 2, rise 2, weight -60) whose
# exit status this script sets; director2 (priority 80) tracks nothing. The script fails from
# +15 s to +30 s, so director1's priority drops to 40 and director2 takes over, then director1
# takes MASTER back. Produced keepalived-2.2-track-script.log in this folder. VRRP only (-P).
# Needs root, iproute2, keepalived.
#
# Safety: only namespaces named lvsd-scen-*, only addresses in 198.18.0.0/15, no route out,
# every process killed by the process group this script started, namespaces removed on exit.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
confs="$here/../fidelity/track-script"
work="$(mktemp -d /tmp/lvsd-scen-capture.XXXXXX)"
out="${1:-$here/keepalived-2.2-track-script.log}"
NS=(lvsd-scen-sw lvsd-scen-d1 lvsd-scen-d2)

source "$here/seed-netns.sh"
for h in d1 d2; do
    map "$confs/keepalived.conf.$h" | sed "s|/etc/keepalived/chk_web.sh|$work/chk_web.sh|" > "$work/$h.conf"
done
echo 0 > "$work/chk_status"
printf '#!/bin/sh\nexit $(cat %s/chk_status)\n' "$work" > "$work/chk_web.sh"
chmod 755 "$work/chk_web.sh"


mark "start keepalived on director1, director2 3 s later"
D1=$(ka_group lvsd-scen-d1 d1 d1); PGIDS+=("$D1")
sleep 3
D2=$(ka_group lvsd-scen-d2 d2 d2); PGIDS+=("$D2")
sleep 12
mark "chk_web starts failing (exit 1)"
echo 1 > "$work/chk_status"
sleep 15
mark "chk_web succeeds again (exit 0)"
echo 0 > "$work/chk_status"
sleep 15
mark "end"
kill -TERM -- "-$D1" "-$D2" 2>/dev/null || true
sleep 2

{
    echo "# keepalived $(keepalived -v 2>&1 | head -1) on Linux $(uname -r), scenarios/fidelity/track-script"
    echo "# configs, addresses mapped 223.202.22.x -> 198.18.2.x. Produced by capture-track-script.sh."
    echo
    echo "## timeline"; cat "$work/timeline"
    echo; echo "## director1 (keepalived.conf.d1)"; cat "$work/d1.log"
    echo; echo "## director2 (keepalived.conf.d2)"; cat "$work/d2.log"
} >"$out"
echo "wrote $out"
