#!/bin/bash
# lvsd-fsm-* namespaces joined by bridges in lvsd-fsm-sw; 198.18.0.0/15 only.
set -u
cleanup() {
  for r in m b; do
    if [ -f /tmp/fsm/$r.pid ]; then kill -TERM "$(cat /tmp/fsm/$r.pid)" 2>/dev/null; fi
  done
  sleep 2
  for n in m b sw; do ip netns del lvsd-fsm-$n 2>/dev/null; done
}
trap cleanup EXIT
rm -f /tmp/fsm/m.pid /tmp/fsm/b.pid
for n in m b sw; do ip netns add lvsd-fsm-$n; done
for i in 0 1; do
  ip -n lvsd-fsm-sw link add br$i type bridge
  ip -n lvsd-fsm-sw link set br$i up
  for r in m b; do
    ip link add lvsdf$r$i type veth peer name lvsdfp$r$i
    ip link set lvsdf$r$i netns lvsd-fsm-$r; ip -n lvsd-fsm-$r link set lvsdf$r$i name eth$i
    ip link set lvsdfp$r$i netns lvsd-fsm-sw
    ip -n lvsd-fsm-sw link set lvsdfp$r$i master br$i
    ip -n lvsd-fsm-sw link set lvsdfp$r$i up
  done
done
ip -n lvsd-fsm-m addr add 198.18.22.114/24 dev eth0; ip -n lvsd-fsm-m addr add 198.19.22.114/24 dev eth1
ip -n lvsd-fsm-b addr add 198.18.22.115/24 dev eth0; ip -n lvsd-fsm-b addr add 198.19.22.115/24 dev eth1
for ns in lvsd-fsm-m lvsd-fsm-b; do for d in lo eth0 eth1; do ip -n $ns link set $d up; done; done
sleep 1
T0=$(date +%s.%N)
now() { python3 -c "import time;print('%8.3f'%(time.time()-$T0))"; }
for r in m b; do
  ip netns exec lvsd-fsm-$r keepalived -n -l -D -P -f /tmp/fsm/$r.conf -p /tmp/fsm/$r.pid -r /tmp/fsm/${r}_vrrp.pid 2>&1 | python3 -u -c '
import sys,time
t0=float(sys.argv[1])
for l in sys.stdin: print("%8.3f %s" % (time.time()-t0, l), end="", flush=True)' "$T0" > /tmp/fsm/$r.log &
done
sleep 20
echo "$(now) PARTITION" >> /tmp/fsm/events.log
ip -n lvsd-fsm-sw link set lvsdfpb0 nomaster; ip -n lvsd-fsm-sw link set lvsdfpb1 nomaster
sleep 25
echo "$(now) HEAL" >> /tmp/fsm/events.log
ip -n lvsd-fsm-sw link set lvsdfpb0 master br0; ip -n lvsd-fsm-sw link set lvsdfpb1 master br1
sleep 10
echo "$(now) SIGKILL master" >> /tmp/fsm/events.log
kill -KILL "$(cat /tmp/fsm/m.pid)"; kill -KILL "$(cat /tmp/fsm/m_vrrp.pid)"
sleep 20
