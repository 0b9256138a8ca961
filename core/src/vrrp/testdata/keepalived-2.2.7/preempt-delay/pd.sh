#!/bin/bash
# lvsd-fsm-* namespaces, 198.18.0.0/15 only.
set -u
cleanup() {
  for r in A B; do
    if [ -f /tmp/fsm/$r.pid ]; then kill -TERM "$(cat /tmp/fsm/$r.pid)" 2>/dev/null; fi
  done
  sleep 2
  for n in A B sw; do ip netns del lvsd-fsm-$n 2>/dev/null; done
}
trap cleanup EXIT
rm -f /tmp/fsm/A.pid /tmp/fsm/B.pid
for n in A B sw; do ip netns add lvsd-fsm-$n; done
ip -n lvsd-fsm-sw link add br0 type bridge; ip -n lvsd-fsm-sw link set br0 up
for r in A B; do
  ip link add lvsdg$r type veth peer name lvsdq$r
  ip link set lvsdg$r netns lvsd-fsm-$r; ip -n lvsd-fsm-$r link set lvsdg$r name eth0
  ip link set lvsdq$r netns lvsd-fsm-sw; ip -n lvsd-fsm-sw link set lvsdq$r master br0; ip -n lvsd-fsm-sw link set lvsdq$r up
done
ip -n lvsd-fsm-A addr add 198.18.22.114/24 dev eth0; ip -n lvsd-fsm-B addr add 198.18.22.115/24 dev eth0
for ns in lvsd-fsm-A lvsd-fsm-B; do for d in lo eth0; do ip -n $ns link set $d up; done; done
sleep 1
T0=$(date +%s.%N)
now() { python3 -c "import time;print('%8.3f'%(time.time()-$T0))"; }
for r in A B; do
  ip netns exec lvsd-fsm-$r keepalived -n -l -D -P -f /tmp/fsm/$r.conf -p /tmp/fsm/$r.pid -r /tmp/fsm/${r}_vrrp.pid 2>&1 | python3 -u -c '
import sys,time
t0=float(sys.argv[1])
for l in sys.stdin: print("%8.3f %s" % (time.time()-t0, l), end="", flush=True)' "$T0" > /tmp/fsm/$r.log &
done
sleep 8
echo "$(now) script fails" >> /tmp/fsm/events.log; touch /tmp/fsm/fail
sleep 12
echo "$(now) script ok" >> /tmp/fsm/events.log; rm -f /tmp/fsm/fail
sleep 18
