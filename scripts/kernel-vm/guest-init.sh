#!/bin/sh
# /init of the guest built by build-initramfs.sh; runs /run.sh (written by trace-vm.py and
# appended to the image by run-trace.sh), then powers off. The guest has no network device:
# the director is the guest's own namespace, the client and the real servers are the
# namespaces lvsdt-c and lvsdt-s inside it, joined by veth pairs:
#   lvsdt-c c0 198.18.255.2 <-> d-c 198.18.255.1  director  d-s 198.18.255.5 <-> s0 198.18.255.6 lvsdt-s
#   lvsdt-c c1 198.18.255.10 <-> s1 198.18.255.9 (replies of direct routing, from the VIP)
# Every line of the result starts with "@@ " so the host can pick it out of the console.
export PATH=/bin:/sbin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs run /run
mount -t tmpfs tmp /tmp
while read -r ko; do insmod "$ko" 2>/dev/null || echo "insmod $ko failed"; done </modules.order

out() { echo "@@ $*"; }
# run LINE CMD...: a control command; its refusal is part of the result.
run() {
    line=$1
    shift
    msg=$("$@" 2>&1) || out "error $line: $(echo $msg)"
}
IP=/sbin/ip

$IP link set lo up
$IP netns add lvsdt-c
$IP netns add lvsdt-s
$IP -n lvsdt-c link set lo up
$IP -n lvsdt-s link set lo up
$IP link add d-c type veth peer name c0 netns lvsdt-c
$IP link add d-s type veth peer name s0 netns lvsdt-s
$IP -n lvsdt-s link add s1 type veth peer name c1 netns lvsdt-c
# addr NS DEV V4 V6: the plumbing addresses of one end (2001:2:0:ffff::/64 for IPv6).
addr() {
    $IP ${1:+-n $1} addr add "$3/32" dev "$2"
    $IP ${1:+-n $1} addr add "2001:2:0:ffff::$4/128" dev "$2" nodad
    $IP ${1:+-n $1} link set "$2" up
}
addr "" d-c 198.18.255.1 1
addr "" d-s 198.18.255.5 5
addr lvsdt-c c0 198.18.255.2 2
addr lvsdt-c c1 198.18.255.10 a
addr lvsdt-s s0 198.18.255.6 6
addr lvsdt-s s1 198.18.255.9 9
# peer NS DEV V4 V6: a route to the other end of DEV.
peer() {
    $IP ${1:+-n $1} route add "$3/32" dev "$2"
    $IP ${1:+-n $1} -6 route add "2001:2:0:ffff::$4/128" dev "$2"
}
peer lvsdt-c c0 198.18.255.1 1
peer lvsdt-s s0 198.18.255.5 5
peer lvsdt-s s1 198.18.255.10 a
$IP -n lvsdt-s route add default via 198.18.255.5 dev s0
$IP -n lvsdt-s -6 route add default via 2001:2:0:ffff::5 dev s0
$IP -n lvsdt-s route add default via 198.18.255.10 dev s1 table 100
$IP -n lvsdt-s -6 route add default via 2001:2:0:ffff::a dev s1 table 100
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.ipv6.conf.all.forwarding=1

v6() { case "$1" in *:*) echo -6 ;; esac; }
plen() { case "$1" in *:*) echo 128 ;; *) echo 32 ;; esac; }
# A virtual address: local on the director, and on the servers' lo for direct routing;
# replies from it leave the servers straight to the client (table 100).
vip() {
    $IP addr add "$1/$(plen "$1")" dev lo nodad 2>/dev/null || $IP addr add "$1/$(plen "$1")" dev lo
    $IP -n lvsdt-s addr add "$1/$(plen "$1")" dev lo
    $IP -n lvsdt-s $(v6 "$1") rule add from "$1" lookup 100
}
# A real server address, on the servers' side of the director.
rip() {
    $IP -n lvsdt-s addr add "$1/$(plen "$1")" dev s0 nodad 2>/dev/null ||
        $IP -n lvsdt-s addr add "$1/$(plen "$1")" dev s0
    $IP $(v6 "$1") route add "$1/$(plen "$1")" dev d-s
}
# A client address, on the client's side.
client() {
    $IP -n lvsdt-c addr add "$1/$(plen "$1")" dev c0 nodad 2>/dev/null ||
        $IP -n lvsdt-c addr add "$1/$(plen "$1")" dev c0
    $IP $(v6 "$1") route add "$1/$(plen "$1")" dev d-c
}
# A server on PORT of every real server address: echoes until the client closes.
listen() {
    $IP netns exec lvsdt-s nc -ll -p "$1" -e /bin/cat </dev/null >/dev/null 2>&1 &
}
# The connection entry of CLIENT:PORT in `ipvsadm -L -n -c`: "STATE DEST".
entry() { ipvsadm -L -n -c | awk -v c="$1" '$4 == c { s = $3 " " $6 } END { print s }'; }
hold=/tmp/hold
mkfifo $hold
sleep 1000000 >$hold &
# conn LINE CLIENT PORT VIP VPORT [close]: a TCP connection from CLIENT:PORT, which stays
# ESTABLISHED (its stdin never ends) or, with close, shuts down at once. Prints the
# destination IPVS bound it to, or none. busybox nc cannot bind its port: the client
# namespace's port range is narrowed to that one port instead.
conn() {
    line=$1 ca=$2 cp=$3 va=$4 vp=$5 mode=$6
    case "$ca" in *:*) cs="[$ca]:$cp" ;; *) cs="$ca:$cp" ;; esac
    case "$va" in *:*) gw=2001:2:0:ffff::1 ;; *) gw=198.18.255.1 ;; esac
    $IP -n lvsdt-c $(v6 "$va") route replace "$va/$(plen "$va")" via $gw dev c0 src "$ca"
    $IP netns exec lvsdt-c sh -c "echo $cp $cp >/proc/sys/net/ipv4/ip_local_port_range"
    if [ "$mode" = close ]; then
        timeout 5 $IP netns exec lvsdt-c nc -p "$cp" "$va" "$vp" </dev/null >/dev/null 2>&1
        e=$(entry "$cs")
    else
        $IP netns exec lvsdt-c nc -p "$cp" "$va" "$vp" <$hold >/dev/null 2>&1 &
        pid=$!
        i=0
        while [ $i -lt 250 ]; do
            e=$(entry "$cs")
            case "$e" in ESTABLISHED*) break ;; esac
            kill -0 $pid 2>/dev/null || break
            usleep 20000
            i=$((i + 1))
        done
    fi
    dest=${e#* }
    [ -n "$e" ] || dest=none
    out "conn $line $cs -> $dest${e:+ (${e%% *})}"
}

out "kernel $(uname -r) $(cat /proc/version)"
. /run.sh
out "table"
ipvsadm -L -n | sed 's/^/@@ | /'
out "end"
poweroff -f
