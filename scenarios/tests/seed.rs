//! Every scenario file under scenarios/seed/ loads, validates and says what the guide says.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lvs_scenarios::netns::AddressMap;
use lvs_scenarios::{FaultAction, Role, Scenario, VrrpState};

fn seed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("seed")
}

fn seed_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(seed_dir())
        .expect("scenarios/seed exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn load(name: &str) -> Scenario {
    let path = seed_dir().join(name);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_seed_scenario_loads_and_validates() {
    let files = seed_files();
    let names: Vec<String> = files
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "01-start.toml",
            "02-startup-logs.toml",
            "03-traffic-spread.toml",
            "04-realserver-down.toml",
            "05-realserver-back.toml",
            "06-backup-killed.toml",
            "07-master-killed.toml",
            "08-master-back.toml",
            "09-realserver-nic-down.toml",
            "10-master-wan-nic-down.toml",
        ]
    );
    for file in &files {
        let s = Scenario::load(file).unwrap_or_else(|e| panic!("{e}"));
        let stem = file.file_stem().unwrap_or_default().to_string_lossy();
        assert_eq!(s.name, stem, "{}: name matches the file", file.display());
        assert!(
            s.expect.invariants,
            "{}: invariants checked",
            file.display()
        );
        assert!(
            !s.expect.vip_owner.is_empty(),
            "{}: says who owns the VIP",
            file.display()
        );
        // The address map for the netns harness exists for each.
        let map =
            AddressMap::for_scenario(&s).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(
            map.map("223.202.22.114".parse().unwrap()),
            Some("198.18.2.114".parse().unwrap())
        );
    }
}

#[test]
fn seed_configs_are_the_seeds_byte_for_byte() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/seed");
    for name in ["keepalived.conf.master", "keepalived.conf.backup"] {
        let ours = std::fs::read(seed_dir().join(name)).expect("copied into scenarios/seed");
        let theirs = std::fs::read(fixtures.join(name)).expect("fixtures/seed copy");
        assert!(
            ours == theirs,
            "scenarios/seed/{name} differs from fixtures/seed/{name}"
        );
    }
    for file in seed_files() {
        let s = Scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
        for (host, d) in s.directors() {
            let expected = if host.name == "director1" {
                "keepalived.conf.master"
            } else {
                "keepalived.conf.backup"
            };
            assert_eq!(
                d.keepalived_conf.file_name,
                seed_dir().join(expected),
                "{}",
                file.display()
            );
            assert!(!d.keepalived_conf.inline);
            let text = std::fs::read_to_string(seed_dir().join(expected)).expect("readable");
            assert_eq!(d.keepalived_conf.text, text);
        }
    }
}

#[test]
fn topology_is_the_guides() {
    let s = load("01-start.toml");
    let addr = |host: &str, iface: &str| {
        s.host(host)
            .and_then(|h| h.interface(iface))
            .map(|i| i.addr.to_string())
            .unwrap_or_default()
    };
    assert_eq!(addr("director1", "eth0"), "223.202.22.114");
    assert_eq!(addr("director1", "eth1"), "192.168.22.114");
    assert_eq!(addr("director2", "eth0"), "223.202.22.115");
    assert_eq!(addr("director2", "eth1"), "192.168.22.115");
    assert_eq!(addr("web1", "eth0"), "223.202.22.116");
    assert_eq!(addr("web2", "eth0"), "223.202.22.117");
    assert_eq!(addr("gateway", "eth0"), "223.202.22.113");
    let Some(Role::RealServer(rs)) = s.host("web1").map(|h| &h.role) else {
        panic!("web1 is a real server")
    };
    assert_eq!(
        rs.vips_on_lo,
        ["223.202.22.118".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!((rs.arp_ignore, rs.arp_announce), (1, 2));
    let Some(Role::Director(d2)) = s.host("director2").map(|h| &h.role) else {
        panic!("director2 is a director")
    };
    assert_eq!(d2.start_at, Duration::from_secs(3));
}

#[test]
fn each_step_injects_the_guides_fault() {
    let kinds = |name: &str| -> Vec<String> {
        let s = load(name);
        s.faults
            .iter()
            .map(|f| {
                let host = |id: lvs_scenarios::HostId| {
                    s.host_by_id(id).map(|h| h.name.clone()).unwrap_or_default()
                };
                let what = match &f.action {
                    FaultAction::Stop { host: h } => format!("stop {}", host(*h)),
                    FaultAction::Restart { host: h } => format!("restart {}", host(*h)),
                    FaultAction::ServiceStop { host: h, port } => {
                        format!("service_stop {}:{port}", host(*h))
                    }
                    FaultAction::ServiceStart { host: h, port } => {
                        format!("service_start {}:{port}", host(*h))
                    }
                    FaultAction::NicDown { iface } => {
                        let i = s
                            .interface(*iface)
                            .map(|i| i.name.clone())
                            .unwrap_or_default();
                        format!("nic_down {}.{i}", host(iface.host))
                    }
                    other => format!("{other:?}"),
                };
                format!("{:?} {what}", f.at)
            })
            .collect()
    };
    assert!(kinds("01-start.toml").is_empty());
    assert!(kinds("02-startup-logs.toml").is_empty());
    assert!(kinds("03-traffic-spread.toml").is_empty());
    assert_eq!(
        kinds("04-realserver-down.toml"),
        ["30s service_stop web1:80"]
    );
    assert_eq!(
        kinds("05-realserver-back.toml"),
        ["30s service_stop web1:80", "60s service_start web1:80"]
    );
    assert_eq!(kinds("06-backup-killed.toml"), ["30s stop director2"]);
    assert_eq!(
        kinds("07-master-killed.toml"),
        [
            "30s stop director2",
            "50s restart director2",
            "80s stop director1"
        ]
    );
    assert_eq!(
        kinds("08-master-back.toml"),
        ["30s stop director1", "70s restart director1"]
    );
    assert_eq!(
        kinds("09-realserver-nic-down.toml"),
        ["45s nic_down web1.eth0", "45s nic_down web2.eth0"]
    );
    assert_eq!(
        kinds("10-master-wan-nic-down.toml"),
        ["30s nic_down director1.eth0"]
    );
}

#[test]
fn each_step_expects_the_guides_outcome() {
    let owner = |name: &str| {
        let s = load(name);
        let vip = "223.202.22.118".parse().unwrap();
        s.expect
            .vip_owner
            .get(&vip)
            .and_then(|id| s.host_by_id(*id))
            .map(|h| h.name.clone())
            .unwrap_or_default()
    };
    for (file, who) in [
        ("01-start.toml", "director1"),
        ("06-backup-killed.toml", "director1"),
        ("07-master-killed.toml", "director2"),
        ("08-master-back.toml", "director1"),
        ("10-master-wan-nic-down.toml", "director2"),
    ] {
        assert_eq!(owner(file), who, "{file}");
    }
    let s = load("04-realserver-down.toml");
    let d1 = s.host("director1").map(|h| h.id).unwrap();
    assert_eq!(
        s.expect.ipvs_destinations[&d1],
        ["223.202.22.117:80".parse().unwrap()]
    );
    let s = load("09-realserver-nic-down.toml");
    assert!(s.expect.ipvs_destinations.values().all(Vec::is_empty));
    let s = load("10-master-wan-nic-down.toml");
    let d1 = s.host("director1").map(|h| h.id).unwrap();
    assert_eq!(s.expect.vrrp_state[&d1], VrrpState::Fault);
    let s = load("03-traffic-spread.toml");
    let web1 = s.host("web1").map(|h| h.id).unwrap();
    assert_eq!(s.expect.share[&web1], (0.4, 0.6));
}

#[test]
fn each_step_has_its_reference_text() {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference");
    for file in seed_files() {
        let stem = file
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let nn = stem.get(..2).unwrap_or_default();
        let path = reference.join(format!("guide-step-{nn}.txt"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let first = text.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            format!("Reference for scenarios/seed/{stem}.toml"),
            "{}",
            path.display()
        );
        assert!(
            text.contains("== Where 2.2") || text.contains("== What 2.2"),
            "{}: says how 2.2 differs",
            path.display()
        );
    }
}
