# Sourced by guest-init.sh as /run.sh (run-checks.sh appends it with keepalived.conf): the
# checkers of scenarios/fidelity/checks/keepalived.conf against two real servers, one on the
# director's LAN (lvsdt-n, 198.18.252.2/24, through a bridge) and one behind a router (lvsdt-f,
# 198.18.253.2, behind lvsdt-r), on a timeline of faults. Prints the timeline marks and
# keepalived's log; every line "@@ "-prefixed by out(). (Subnets, not guest-init.sh's /32
# peer routes: Linux drops the routes through a NIC that goes down and brings back only the
# subnet's, which is what a real server on the director's LAN keeps.)
$IP netns add lvsdt-n
$IP netns add lvsdt-r
$IP netns add lvsdt-f
$IP -n lvsdt-n link set lo up
$IP -n lvsdt-r link set lo up
$IP -n lvsdt-f link set lo up
# The director and the near server meet on a bridge (namespace lvsdt-b), as on a switched
# LAN: the near server's NIC going down does not take the director's carrier with it.
$IP netns add lvsdt-b
$IP -n lvsdt-b link set lo up
$IP -n lvsdt-b link add br0 type bridge
$IP -n lvsdt-b link set br0 up
$IP link add d-n type veth peer name b-d netns lvsdt-b
$IP -n lvsdt-n link add n0 type veth peer name b-n netns lvsdt-b
for p in b-d b-n; do $IP -n lvsdt-b link set "$p" master br0 up; done
$IP addr add 198.18.252.1/24 dev d-n
$IP link set d-n up
$IP -n lvsdt-n addr add 198.18.252.2/24 dev n0
$IP -n lvsdt-n link set n0 up
$IP link add d-r type veth peer name r0 netns lvsdt-r
$IP -n lvsdt-r link add r1 type veth peer name f0 netns lvsdt-f
$IP addr add 198.18.254.1/24 dev d-r
$IP link set d-r up
$IP -n lvsdt-r addr add 198.18.254.2/24 dev r0
$IP -n lvsdt-r addr add 198.18.253.1/24 dev r1
$IP -n lvsdt-r link set r0 up
$IP -n lvsdt-r link set r1 up
$IP -n lvsdt-f addr add 198.18.253.2/24 dev f0
$IP -n lvsdt-f link set f0 up
$IP netns exec lvsdt-r sysctl -qw net.ipv4.ip_forward=1
$IP route add 198.18.253.0/24 via 198.18.254.2 dev d-r
$IP -n lvsdt-f route add default via 198.18.253.1 dev f0
$IP -n lvsdt-r route add 198.18.252.0/24 via 198.18.254.1 dev r0

serve() { $IP netns exec "$1" nc -ll -p 80 -e /bin/cat </dev/null >/dev/null 2>&1 & echo $!; }
NEAR=$(serve lvsdt-n)
FAR=$(serve lvsdt-f)
t0=$(date +%s)
mark() { out "$(date +%H:%M:%S) +$(printf %03d $(( $(date +%s) - t0 )))s ==== $*"; }
mark "start keepalived -C on the director"
keepalived -C -n -l -D -f /checks/keepalived.conf -p /tmp/k.pid -c /tmp/kc.pid -r /tmp/kr.pid >/tmp/ka.log 2>&1 &
KA=$!
until_t() { while [ $(( $(date +%s) - t0 )) -lt "$1" ]; do sleep 0.2; done; }
until_t 12
mark "near: service stopped"
kill $NEAR
until_t 24
mark "near: service started"
NEAR=$(serve lvsdt-n)
until_t 36
mark "near: eth0 down"
$IP -n lvsdt-n link set n0 down
until_t 48
mark "near: eth0 up"
$IP -n lvsdt-n link set n0 up
until_t 60
mark "end"
kill $KA
sleep 2
out "## director1 (keepalived.conf)"
sed 's/^/@@ /' /tmp/ka.log
