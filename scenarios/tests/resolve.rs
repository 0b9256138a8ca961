//! What resolution produces: defaults, derived MACs, ordering, inline configs, the netns map.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lvs_scenarios::netns::AddressMap;
use lvs_scenarios::*;

const SMALL: &str = r#"
name = "small"
duration = "2m"

[[segment]]
name = "lan"

[[host]]
name = "d1"
role = "director"
interfaces = [{ name = "eth0", segment = "lan", ip = "10.0.0.2/24" }]
keepalived_conf_inline = """
vrrp_instance VI_1 {
    interface eth0
}
"""

[[host]]
name = "rs1"
role = "real_server"
interfaces = [
  { name = "eth0", segment = "lan", ip = "10.0.0.3/24" },
  { name = "eth1", segment = "lan", ip = "10.0.1.3/24", mac = "02:aa:bb:cc:dd:ee" },
]
[[host.service]]
port = 80

[[host]]
name = "c1"
role = "client"
interfaces = [{ name = "eth0", segment = "lan", ip = "10.0.0.9/24" }]
[host.workload]
target = "10.0.0.100:80"
concurrency = 3
think_time = "250ms"

[[fault]]
at = "1m"
kind = "heal"

[[fault]]
at = "30s"
kind = "link_loss"
host = "rs1"
iface = "eth1"
percent = 25.0

[[fault]]
at = "30s"
kind = "partition"
groups = [["d1"], ["rs1", "c1"]]
one_way = true

[[snapshot]]
at = "90s"

[[snapshot]]
at = "10s"
directors = ["d1"]
show = ["ip addr", "ipvsadm -L -n -c", "ip addr", "ipvsadm -L -n"]
"#;

fn small() -> Scenario {
    Scenario::from_str(SMALL, "base").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn defaults_fill_what_the_file_leaves_out() {
    let s = small();
    assert_eq!(s.seed, DEFAULT_SEED);
    assert_eq!(s.duration, Duration::from_secs(120));
    assert_eq!(s.source, PathBuf::from("<inline>"));
    let lan = &s.segments[0];
    assert_eq!(
        (lan.latency, lan.jitter, lan.loss),
        (DEFAULT_LATENCY, Duration::ZERO, 0.0)
    );
    let Role::RealServer(rs) = &s.hosts[1].role else {
        panic!("rs1 is a real server")
    };
    assert_eq!((rs.arp_ignore, rs.arp_announce), (0, 0));
    assert_eq!(
        rs.services,
        [Service {
            protocol: Transport::Tcp,
            port: 80,
            service_time: DEFAULT_SERVICE_TIME,
            capacity: DEFAULT_CAPACITY,
            response_size: DEFAULT_RESPONSE_SIZE
        }]
    );
    let Role::Client(c) = &s.hosts[2].role else {
        panic!("c1 is a client")
    };
    assert_eq!(
        c.workload,
        Workload {
            target: "10.0.0.100:80".parse().unwrap(),
            protocol: Transport::Tcp,
            timeout: DEFAULT_UDP_TIMEOUT,
            source_port: None,
            pattern: LoadPattern::Closed {
                concurrency: 3,
                think_time: Duration::from_millis(250)
            },
            request_size: DEFAULT_REQUEST_SIZE,
            start: Duration::ZERO,
            stop: Duration::from_secs(120),
        }
    );
    assert!(
        s.expect.invariants,
        "invariants are checked unless turned off"
    );
}

#[test]
fn macs_are_derived_per_host_and_interface_unless_given() {
    let s = small();
    let macs: Vec<String> = s
        .hosts
        .iter()
        .flat_map(|h| h.interfaces.iter().map(|i| i.mac.to_string()))
        .collect();
    assert_eq!(
        macs,
        [
            "02:4c:56:00:00:00",
            "02:4c:56:00:01:00",
            "02:aa:bb:cc:dd:ee",
            "02:4c:56:00:02:00"
        ]
    );
}

#[test]
fn inline_config_is_kept_verbatim_with_a_diagnostic_name() {
    let s = small();
    let (_, d) = s.directors().next().expect("one director");
    assert!(d.keepalived_conf.inline);
    assert_eq!(
        d.keepalived_conf.text,
        "vrrp_instance VI_1 {\n    interface eth0\n}\n"
    );
    assert_eq!(
        d.keepalived_conf.file_name,
        PathBuf::from("<inline>#host[d1].keepalived_conf_inline")
    );
}

#[test]
fn faults_and_snapshots_are_in_time_order_file_order_kept_on_ties() {
    let s = small();
    let rs1 = HostId(1);
    assert_eq!(
        s.faults,
        [
            Fault {
                at: Duration::from_secs(30),
                action: FaultAction::LinkLoss {
                    target: LinkTarget::Iface(IfaceRef {
                        host: rs1,
                        index: 1
                    }),
                    loss: 0.25
                },
            },
            Fault {
                at: Duration::from_secs(30),
                action: FaultAction::Partition {
                    groups: vec![vec![HostId(0)], vec![rs1, HostId(2)]],
                    one_way: true
                },
            },
            Fault {
                at: Duration::from_secs(60),
                action: FaultAction::Heal
            },
        ]
    );
    assert_eq!(
        s.snapshots,
        [
            // The file's order, each command once.
            Snapshot {
                at: Duration::from_secs(10),
                directors: vec![HostId(0)],
                show: vec![Show::Addresses, Show::Connections, Show::List],
            },
            // Nothing named: `ipvsadm -L -n`.
            Snapshot {
                at: Duration::from_secs(90),
                directors: vec![HostId(0)],
                show: vec![Show::List],
            },
        ]
    );
}

#[test]
fn keepalived_conf_paths_are_relative_to_the_scenario_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seed");
    let text = SMALL.replace(
        "keepalived_conf_inline = \"\"\"\nvrrp_instance VI_1 {\n    interface eth0\n}\n\"\"\"",
        "keepalived_conf = \"keepalived.conf.backup\"",
    );
    let s = Scenario::from_str(&text, &dir).unwrap_or_else(|e| panic!("{e}"));
    let (_, d) = s.directors().next().expect("one director");
    assert_eq!(
        d.keepalived_conf.file_name,
        dir.join("keepalived.conf.backup")
    );
    assert!(d.keepalived_conf.text.contains("router_id LVSBACKUP"));
}

#[test]
fn the_seed_topology_maps_into_the_benchmark_range() {
    let s = Scenario::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("seed/01-start.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let map = AddressMap::for_scenario(&s).unwrap_or_else(|e| panic!("{e}"));
    let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    assert_eq!(
        map.subnets(),
        [
            (ip("192.168.22.0"), ip("198.18.0.0"), 24),
            (ip("203.0.113.0"), ip("198.18.1.0"), 24),
            (ip("223.202.22.0"), ip("198.18.2.0"), 24),
        ]
    );
    let (_, master) = s.directors().next().expect("director1");
    let rewritten = map.rewrite_text(&master.keepalived_conf.text);
    assert!(rewritten.contains("virtual_server 198.18.2.118 80"));
    assert!(rewritten.contains("real_server 198.18.2.116 80"));
    assert!(rewritten.contains("        198.18.0.118     ###"));
    assert!(
        rewritten.contains("nat_mask 255.255.255.240"),
        "netmasks are not addresses of the scenario"
    );
    assert!(rewritten.contains("smtp_server 127.0.0.1"));
    assert!(!rewritten.contains("223.202.22.") && !rewritten.contains("192.168.22."));
    // Every interface address maps, distinctly, and back.
    let mut seen = std::collections::BTreeSet::new();
    for h in &s.hosts {
        for i in &h.interfaces {
            let m = map.map(i.addr).expect("mapped");
            assert!(seen.insert(m));
            assert_eq!(map.unmap(m), Some(i.addr));
        }
    }
}

// `include` in a scenario's keepalived.conf: found relative to the including file, read once
// at load, and `@NAME` lines matched against the host's scenario name (its config id).
#[test]
fn includes_are_read_relative_to_the_including_file_with_the_host_as_config_id() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fidelity/include.toml");
    let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let priority = |host: &str| {
        let (_, d) = s.directors().find(|(h, _)| h.name == host).unwrap();
        let files: Vec<&str> = d.keepalived_conf.files.paths().collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(
            files[0].ends_with("fidelity/include/conf.d/vi_1.conf"),
            "{files:?}"
        );
        let parsed = d.keepalived_conf.parse();
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let c = parsed.config.unwrap();
        c.vrrp_instances[0].priority.as_ref().map(|p| p.value)
    };
    assert_eq!(priority("director1"), Some(150));
    assert_eq!(priority("director2"), Some(90));
}
