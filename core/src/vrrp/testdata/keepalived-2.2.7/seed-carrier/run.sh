#!/bin/bash
# lvsd-fsm-* namespaces, 198.18.0.0/15 only, no host interfaces touched.
set -u
cleanup() {
  for r in m b; do
    if [ -f /tmp/fsm/$r.pid ]; then kill -TERM "$(cat /tmp/fsm/$r.pid)" 2>/dev/null; fi
  done
  sleep 1
  ip netns del lvsd-fsm-m 2>/dev/null; ip netns del lvsd-fsm-b 2>/dev/null
}
trap cleanup EXIT
ip netns add lvsd-fsm-m; ip netns add lvsd-fsm-b
for i in 0 1; do
  ip link add lvsdfm$i type veth peer name lvsdfb$i
  ip link set lvsdfm$i netns lvsd-fsm-m; ip link set lvsdfb$i netns lvsd-fsm-b
  ip -n lvsd-fsm-m link set lvsdfm$i name eth$i; ip -n lvsd-fsm-b link set lvsdfb$i name eth$i
done
ip -n lvsd-fsm-m addr add 198.18.22.114/24 dev eth0; ip -n lvsd-fsm-m addr add 198.19.22.114/24 dev eth1
ip -n lvsd-fsm-b addr add 198.18.22.115/24 dev eth0; ip -n lvsd-fsm-b addr add 198.19.22.115/24 dev eth1
for ns in lvsd-fsm-m lvsd-fsm-b; do for d in lo eth0 eth1; do ip -n $ns link set $d up; done; done
T0=$(date +%s.%N)
stamp() { python3 -u -c '
import sys,time
t0=float(sys.argv[1])
for l in sys.stdin: print("%8.3f %s" % (time.time()-t0, l), end="", flush=True)' "$T0"; }
for r in m b; do
  ip netns exec lvsd-fsm-$r keepalived -n -l -D -P -f /tmp/fsm/$r.conf -p /tmp/fsm/$r.pid -r /tmp/fsm/${r}_vrrp.pid 2>&1 | stamp > /tmp/fsm/$r.log &
done
sleep 12
echo "$(python3 -c "import time;print('%8.3f'%(time.time()-$T0))") LINK DOWN master eth0" >> /tmp/fsm/events.log
ip -n lvsd-fsm-m link set eth0 down
sleep 22
echo "$(python3 -c "import time;print('%8.3f'%(time.time()-$T0))") LINK UP master eth0" >> /tmp/fsm/events.log
ip -n lvsd-fsm-m link set eth0 up
sleep 20
echo "$(python3 -c "import time;print('%8.3f'%(time.time()-$T0))") SIGTERM master" >> /tmp/fsm/events.log
kill -TERM "$(cat /tmp/fsm/m.pid)"
sleep 3
