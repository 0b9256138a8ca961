#!/usr/bin/env python3
"""Turns a scheduler trace (the format of fixtures/traces/*.trace, `lvsd schedule --help`)
into commands for the kernel guest of run-trace.sh, and writes the kernel's answers back.

  trace-vm.py guest TRACE              print the guest's /run.sh for TRACE
  trace-vm.py annotate TRACE KERNEL    rewrite TRACE's `# -> ` notes from KERNEL (a transcript)

Every command becomes the ipvsadm call it stands for; `edit` and `edit-service` are given in
full, as ipvsadm -e / -E reset what they are not given. Only TCP connections can be driven
(busybox nc), only dr and nat destinations are plumbed, and every address must lie in
198.18.0.0/15 or 2001:2::/48 (198.18.255.0/24 and 2001:2:0:ffff::/64 are the guest's links).
"""

import ipaddress
import re
import sys

NETS = [ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("2001:2::/48")]
LINKS = [ipaddress.ip_network("198.18.255.0/24"), ipaddress.ip_network("2001:2:0:ffff::/64")]
PROTO = {"tcp": "-t", "udp": "-u", "sctp": "--sctp-service"}
METHOD = {"dr": "-g", "nat": "-m"}
MAX_SLEEP = 120.0


class Bad(Exception):
    pass


def sockaddr(s):
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([0-9.]+):(\d+)", s)
    if not m:
        raise Bad(f"`{s}` is not ADDR:PORT")
    a = ipaddress.ip_address(m.group(1) or m.group(3))
    port = int(m.group(2) or m.group(4))
    if not any(a in n for n in NETS) or any(a in n for n in LINKS):
        raise Bad(f"{a} is outside 198.18.0.0/15 and 2001:2::/48 (or on the guest's links)")
    return a, port


def fmt(a, port):
    return f"[{a}]:{port}" if a.version == 6 else f"{a}:{port}"


def split_to(words):
    if "to" in words:
        i = words.index("to")
        return words[:i], sockaddr(words[i + 1])
    return words, None


def seconds(s):
    m = re.fullmatch(r"\+(\d+(?:\.\d+)?)(ms|s|m|h)?", s)
    if not m:
        raise Bad(f"time `{s}`: the guest only takes +N[ms|s|m|h]")
    scale = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]
    return float(m.group(1)) * scale


def service_args(words):
    """`PROTO VIP:PORT SCHED [flags F] [persistent S [netmask M]]` as ipvsadm options."""
    proto, addr, sched, *rest = words
    a, port = sockaddr(addr)
    opts = ["-s", sched]
    i = 0
    while i < len(rest):
        key, val = rest[i], rest[i + 1]
        if key == "flags":
            opts += ["-b", val]
        elif key == "persistent":
            opts += ["-p", val]
        elif key == "netmask":
            if a.version == 4 and val.isdigit():
                val = str(ipaddress.ip_network(f"0.0.0.0/{val}").netmask)
            opts += ["-M", val]
        else:
            raise Bad(f"unexpected `{key}` in service line")
        i += 2
    return proto, (a, port), opts


def guest(path):
    lines = open(path).read().splitlines()
    vips, rips, clients, ports = {}, {}, {}, {}
    body = []
    services = {}  # (addr, port) -> proto
    dests = {}  # ((vip), (rip)) -> dict
    current = None
    slept = 0.0
    for n, raw in enumerate(lines, 1):
        code = raw.split("#", 1)[0].split()
        if not code:
            continue
        cmd, args = code[0], code[1:]
        try:
            if cmd in ("service", "edit-service"):
                proto, key, opts = service_args(args)
                if proto not in PROTO:
                    raise Bad(f"unknown protocol {proto}")
                vips[key[0]] = 1
                verb = "-A" if cmd == "service" else "-E"
                services.setdefault(key, proto)
                body.append(f"run {n} ipvsadm {verb} {PROTO[proto]} {fmt(*key)} {' '.join(opts)}")
                current = key
            elif cmd in ("dest", "edit"):
                rest, to = split_to(args[1:])
                svc = to or current
                rip = sockaddr(args[0])
                rips[rip[0]] = 1
                ports[rip[1]] = 1
                old = dests.get((svc, rip)) if cmd == "edit" else None
                d = dict(old or {"weight": "1", "method": "dr", "uthreshold": "0", "lthreshold": "0"})
                for i in range(0, len(rest), 2):
                    d[rest[i]] = rest[i + 1]
                if d["method"] not in METHOD:
                    raise Bad(f"method {d['method']} is not plumbed in the guest (dr, nat)")
                dests[(svc, rip)] = d
                verb = "-a" if cmd == "dest" else "-e"
                body.append(
                    f"run {n} ipvsadm {verb} {PROTO[services[svc]]} {fmt(*svc)} -r {fmt(*rip)}"
                    f" {METHOD[d['method']]} -w {d['weight']} -x {d['uthreshold']} -y {d['lthreshold']}"
                )
            elif cmd == "del":
                rest, to = split_to(args[1:])
                svc = to or current
                rip = sockaddr(args[0])
                dests.pop((svc, rip), None)
                body.append(f"run {n} ipvsadm -d {PROTO[services[svc]]} {fmt(*svc)} -r {fmt(*rip)}")
            elif cmd == "conn":
                rest, to = split_to(args[1:])
                svc = to or current
                if services[svc] != "tcp":
                    raise Bad("the guest drives TCP connections only")
                c = sockaddr(args[0])
                clients[c[0]] = 1
                close = " close" if rest == ["close"] else ""
                body.append(f"conn {n} {c[0]} {c[1]} {svc[0]} {svc[1]}{close}")
            elif cmd == "time":
                s = seconds(args[0])
                slept += s
                if slept > MAX_SLEEP:
                    raise Bad(f"more than {MAX_SLEEP:.0f} s of `time` in all: too slow under TCG")
                body.append(f"sleep {s:g}")
            elif cmd == "set":
                body.append(f"run {n} ipvsadm --set {' '.join(args)}")
            else:
                raise Bad(f"unknown command `{cmd}`")
        except (Bad, KeyError, IndexError, ValueError) as e:
            sys.exit(f"{path}:{n}: {e or 'no service for this line'}")
    head = [f"vip {a}" for a in vips] + [f"rip {a}" for a in rips]
    head += [f"client {a}" for a in clients] + [f"listen {p}" for p in ports]
    head.append("sleep 1")  # listeners up, IPv6 addresses settled
    print("\n".join(head + body))


def annotate(path, kernel_path):
    answers, kernel = {}, None
    for line in open(kernel_path).read().splitlines():
        m = re.match(r"conn (\d+) \S+ -> (\S+)", line)
        if m:
            answers[int(m.group(1))] = m.group(2)
        elif line.startswith("kernel "):
            kernel = line.split()[1]
        elif line.startswith("error "):
            sys.exit(f"{kernel_path}: the guest refused a command: {line}")
    if kernel is None:
        sys.exit(f"{kernel_path}: no kernel line (did the guest run?)")
    lines = open(path).read().splitlines()
    for n in answers:
        code = lines[n - 1].split("#", 1)[0].rstrip()
        lines[n - 1] = f"{code:<32} # -> {answers[n]}"
    rel = kernel_path.split("fixtures/traces/")[-1]
    stamp = (
        f"# kernel-recorded: every `-> ` note is the pick of Linux {kernel} under qemu"
        f" (scripts/kernel-vm/run-trace.sh --record; transcript {rel})"
    )
    if lines and lines[0].startswith("# kernel-recorded:"):
        lines[0] = stamp
    else:
        # The stamp becomes line 1: the transcript's line numbers move down with the trace.
        lines.insert(0, stamp)
        text = open(kernel_path).read()
        text = re.sub(r"^(conn|error) (\d+)", lambda m: f"{m.group(1)} {int(m.group(2)) + 1}", text, flags=re.M)
        open(kernel_path, "w").write(text)
    open(path, "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "guest":
        guest(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "annotate":
        annotate(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
