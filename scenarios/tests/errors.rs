//! One failing scenario per validation rule; the messages (file, line, column, key, reason)
//! are pinned in an insta snapshot so a change of wording is a reviewed change.

use lvs_scenarios::{Problem, Scenario, ScenarioError};

const BASE: &str = r#"name = "t"
duration = "60s"

[[segment]]
name = "wan"

[[segment]]
name = "net"

[[host]]
name = "gw"
role = "gateway"
interfaces = [
  { name = "eth0", segment = "wan", ip = "10.0.0.1/24" },
  { name = "eth1", segment = "net", ip = "10.9.0.1/24" },
]

[[host]]
name = "d1"
role = "director"
interfaces = [{ name = "eth0", segment = "wan", ip = "10.0.0.2/24" }]
keepalived_conf_inline = "vrrp_instance VI { }"

[[host]]
name = "rs1"
role = "real_server"
interfaces = [{ name = "eth0", segment = "wan", ip = "10.0.0.3/24" }]
gateway = "10.0.0.1"
vips_on_lo = ["10.0.0.100"]
arp_ignore = 1
arp_announce = 2
[[host.service]]
port = 80

[[host]]
name = "c1"
role = "client"
interfaces = [{ name = "eth0", segment = "net", ip = "10.9.0.2/24" }]
gateway = "10.9.0.1"
[host.workload]
target = "10.0.0.100:80"
rate = 10
"#;

/// How a case changes the base scenario.
enum Edit {
    /// Replace the first occurrence of `.0` by `.1`.
    Replace(&'static str, &'static str),
    /// Append text at the end (new tables).
    Append(&'static str),
}

fn apply(edit: &Edit) -> String {
    match edit {
        Edit::Replace(old, new) => {
            assert!(BASE.contains(old), "the base scenario contains {old:?}");
            BASE.replacen(old, new, 1)
        }
        Edit::Append(extra) => format!("{BASE}{extra}"),
    }
}

fn load(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::from_str_named(text, "case.toml", "nowhere")
}

#[test]
fn the_base_scenario_is_valid() {
    let s = load(BASE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.hosts.len(), 4);
    assert_eq!(s.seed, lvs_scenarios::DEFAULT_SEED);
}

/// (rule, edit, expected problem variant's name)
fn cases() -> Vec<(&'static str, Edit, &'static str)> {
    use Edit::*;
    vec![
        ("bad duration", Replace("duration = \"60s\"", "duration = \"60\""), "Duration"),
        ("zero duration", Replace("duration = \"60s\"", "duration = \"0s\""), "ZeroDuration"),
        ("duplicate segment", Replace("name = \"net\"", "name = \"wan\""), "Duplicate"),
        ("segment loss out of range", Replace("name = \"net\"\n", "name = \"net\"\nloss_percent = 150.0\n"), "OutOfRange"),
        ("segment bad latency", Replace("name = \"net\"\n", "name = \"net\"\nlatency = \"fast\"\n"), "Duration"),
        ("duplicate host", Replace("name = \"c1\"", "name = \"rs1\""), "Duplicate"),
        ("host without interfaces", Replace("interfaces = [{ name = \"eth0\", segment = \"net\", ip = \"10.9.0.2/24\" }]\n", ""), "NoInterfaces"),
        ("duplicate interface", Replace("{ name = \"eth1\", segment = \"net\"", "{ name = \"eth0\", segment = \"net\""), "Duplicate"),
        ("unknown segment", Replace("segment = \"net\", ip = \"10.9.0.2/24\"", "segment = \"dmz\", ip = \"10.9.0.2/24\""), "UnknownSegment"),
        ("address without prefix", Replace("ip = \"10.0.0.3/24\"", "ip = \"10.0.0.3\""), "BadCidr"),
        ("prefix too long", Replace("ip = \"10.0.0.3/24\"", "ip = \"10.0.0.3/33\""), "BadCidr"),
        ("duplicate address", Replace("ip = \"10.0.0.3/24\"", "ip = \"10.0.0.2/24\""), "DuplicateAddress"),
        ("bad mac", Replace("ip = \"10.0.0.3/24\" }", "ip = \"10.0.0.3/24\", mac = \"02:00:00:00:00\" }"), "BadMac"),
        ("multicast mac", Replace("ip = \"10.0.0.3/24\" }", "ip = \"10.0.0.3/24\", mac = \"01:00:5e:00:00:01\" }"), "MulticastMac"),
        ("mac clashes with a derived one", Replace("ip = \"10.0.0.3/24\" }", "ip = \"10.0.0.3/24\", mac = \"02:4c:56:00:00:01\" }"), "DuplicateMac"),
        ("gateway off-link", Replace("gateway = \"10.0.0.1\"", "gateway = \"10.9.0.1\""), "GatewayOffLink"),
        ("gateway not an address", Replace("gateway = \"10.0.0.1\"", "gateway = \"fe80::1\""), "BadIp"),
        ("real-server key on a director", Replace("keepalived_conf_inline = \"vrrp_instance VI { }\"", "keepalived_conf_inline = \"x\"\narp_ignore = 1"), "WrongRoleKey"),
        ("director key on a client", Replace("gateway = \"10.9.0.1\"", "gateway = \"10.9.0.1\"\nkeepalived_conf = \"k.conf\""), "WrongRoleKey"),
        ("director without a config", Replace("keepalived_conf_inline = \"vrrp_instance VI { }\"\n", ""), "NeedOneOf"),
        ("director with two configs", Replace("keepalived_conf_inline = \"vrrp_instance VI { }\"", "keepalived_conf = \"k.conf\"\nkeepalived_conf_inline = \"x\""), "Conflict"),
        ("missing keepalived.conf file", Replace("keepalived_conf_inline = \"vrrp_instance VI { }\"", "keepalived_conf = \"missing.conf\""), "ConfRead"),
        ("director starts after the end", Replace("keepalived_conf_inline = \"vrrp_instance VI { }\"", "keepalived_conf_inline = \"x\"\nstart_at = \"2m\""), "AfterEnd"),
        ("bad ip6", Replace("ip = \"10.0.0.3/24\" }", "ip = \"10.0.0.3/24\", ip6 = \"2001:db8::3/129\" }"), "BadCidr"),
        ("ip6 given an IPv4 address", Replace("ip = \"10.0.0.3/24\" }", "ip = \"10.0.0.3/24\", ip6 = \"10.0.0.3/24\" }"), "BadCidr"),
        ("gateway6 off-link", Replace("gateway = \"10.0.0.1\"", "gateway = \"10.0.0.1\"\ngateway6 = \"2001:db8::1\""), "GatewayOffLink"),
        ("gateway6 not an IPv6 address", Replace("gateway = \"10.0.0.1\"", "gateway = \"10.0.0.1\"\ngateway6 = \"10.0.0.1\""), "BadIp"),
        ("udp over IPv6", Replace("target = \"10.0.0.100:80\"", "target = \"[2001:db8::100]:80\"\nprotocol = \"udp\""), "Unsupported"),
        ("bad vip on lo", Replace("vips_on_lo = [\"10.0.0.100\"]", "vips_on_lo = [\"10.0.0.300\"]"), "BadIp"),
        ("arp_ignore out of range", Replace("arp_ignore = 1", "arp_ignore = 5"), "OutOfRange"),
        ("unknown tunnel", Replace("arp_ignore = 1", "arp_ignore = 1\ntunnel = \"vxlan\""), "BadTunnel"),
        ("gue tunnel without a port", Replace("arp_ignore = 1", "arp_ignore = 1\ntunnel = \"gue\""), "BadTunnel"),
        ("gue tunnel on port 0", Replace("arp_ignore = 1", "arp_ignore = 1\ntunnel = \"gue:0\""), "BadTunnel"),
        ("tunnel on a director", Replace("keepalived_conf_inline = \"vrrp_instance VI { }\"", "keepalived_conf_inline = \"vrrp_instance VI { }\"\ntunnel = \"ipip\""), "WrongRoleKey"),
        ("arp_announce out of range", Replace("arp_announce = 2", "arp_announce = 3"), "OutOfRange"),
        ("duplicate service port", Replace("[[host.service]]\nport = 80\n", "[[host.service]]\nport = 80\n[[host.service]]\nport = 80\n"), "Duplicate"),
        ("zero capacity", Replace("port = 80\n", "port = 80\ncapacity = 0\n"), "OutOfRange"),
        ("client without workload", Replace("[host.workload]\ntarget = \"10.0.0.100:80\"\nrate = 10\n", ""), "Missing"),
        ("workload target without port", Replace("target = \"10.0.0.100:80\"", "target = \"10.0.0.100\""), "BadSocketAddr"),
        ("workload with rate and concurrency", Replace("rate = 10\n", "rate = 10\nconcurrency = 4\n"), "Conflict"),
        ("workload with neither", Replace("rate = 10\n", ""), "NeedOneOf"),
        ("workload rate zero", Replace("rate = 10\n", "rate = 0\n"), "OutOfRange"),
        ("think time on an open loop", Replace("rate = 10\n", "rate = 10\nthink_time = \"1s\"\n"), "OnlyWith"),
        ("workload stops before it starts", Replace("rate = 10\n", "rate = 10\nstart = \"30s\"\nstop = \"10s\"\n"), "StartAfterStop"),
        ("fault after the end", Append("\n[[fault]]\nat = \"61s\"\nkind = \"heal\"\n"), "AfterEnd"),
        ("fault with a bad time", Append("\n[[fault]]\nat = \"soon\"\nkind = \"heal\"\n"), "Duration"),
        ("fault on an unknown host", Append("\n[[fault]]\nat = \"30s\"\nkind = \"kill\"\nhost = \"d3\"\n"), "UnknownHost"),
        ("process fault on a client", Append("\n[[fault]]\nat = \"30s\"\nkind = \"stop\"\nhost = \"c1\"\n"), "WrongRole"),
        ("fault missing its host", Append("\n[[fault]]\nat = \"30s\"\nkind = \"pause\"\n"), "KindNeeds"),
        ("key not for the kind", Append("\n[[fault]]\nat = \"30s\"\nkind = \"kill\"\nhost = \"d1\"\npercent = 5.0\n"), "NotForKind"),
        ("nic_down on an unknown interface", Append("\n[[fault]]\nat = \"30s\"\nkind = \"nic_down\"\nhost = \"d1\"\niface = \"eth1\"\n"), "UnknownIface"),
        ("nic_up without iface", Append("\n[[fault]]\nat = \"30s\"\nkind = \"nic_up\"\nhost = \"d1\"\n"), "KindNeeds"),
        ("link_loss on segment and host", Append("\n[[fault]]\nat = \"30s\"\nkind = \"link_loss\"\nsegment = \"wan\"\nhost = \"d1\"\npercent = 5.0\n"), "Conflict"),
        ("link_loss on neither", Append("\n[[fault]]\nat = \"30s\"\nkind = \"link_loss\"\npercent = 5.0\n"), "NeedOneOf"),
        ("link_loss iface with a segment", Append("\n[[fault]]\nat = \"30s\"\nkind = \"link_loss\"\nsegment = \"wan\"\niface = \"eth0\"\npercent = 5.0\n"), "OnlyWith"),
        ("link_loss on an unknown segment", Append("\n[[fault]]\nat = \"30s\"\nkind = \"link_loss\"\nsegment = \"dmz\"\npercent = 5.0\n"), "UnknownSegment"),
        ("link_loss over 100 percent", Append("\n[[fault]]\nat = \"30s\"\nkind = \"link_loss\"\nsegment = \"wan\"\npercent = 101.0\n"), "OutOfRange"),
        ("latency with a bad duration", Append("\n[[fault]]\nat = \"30s\"\nkind = \"latency\"\nhost = \"d1\"\nlatency = \"slow\"\n"), "Duration"),
        ("partition with one group", Append("\n[[fault]]\nat = \"30s\"\nkind = \"partition\"\ngroups = [[\"d1\"], []]\n"), "PartitionGroups"),
        ("partition with a host twice", Append("\n[[fault]]\nat = \"30s\"\nkind = \"partition\"\ngroups = [[\"d1\"], [\"rs1\", \"d1\"]]\n"), "HostInTwoGroups"),
        ("one-way partition with three groups", Append("\n[[fault]]\nat = \"30s\"\nkind = \"partition\"\none_way = true\ngroups = [[\"d1\"], [\"rs1\"], [\"c1\"]]\n"), "OneWayGroups"),
        ("service_stop on a director", Append("\n[[fault]]\nat = \"30s\"\nkind = \"service_stop\"\nhost = \"d1\"\nport = 80\n"), "WrongRole"),
        ("service_start on an unknown port", Append("\n[[fault]]\nat = \"30s\"\nkind = \"service_start\"\nhost = \"rs1\"\nport = 443\n"), "UnknownPort"),
        ("clock_drift too large", Append("\n[[fault]]\nat = \"30s\"\nkind = \"clock_drift\"\nhost = \"d1\"\nppm = 200000.0\n"), "OutOfRange"),
        ("script_result for a script the config does not run", Append("\n[[fault]]\nat = \"30s\"\nkind = \"script_result\"\nhost = \"d1\"\nscript = \"/bin/true\"\nexit = 1\n"), "UnknownScript"),
        ("script_result on a real server", Append("\n[[fault]]\nat = \"30s\"\nkind = \"script_result\"\nhost = \"rs1\"\nscript = \"/bin/true\"\nexit = 1\n"), "WrongRole"),
        ("script_result without script", Append("\n[[fault]]\nat = \"30s\"\nkind = \"script_result\"\nhost = \"d1\"\nexit = 1\n"), "KindNeeds"),
        ("keepalived_conf a device", Replace("keepalived_conf_inline = \"vrrp_instance VI { }\"", "keepalived_conf = \"/dev/zero\""), "ConfRead"),
        ("process span backwards", Replace("keepalived_conf_inline = \"vrrp_instance VI { }\"", "keepalived_conf_inline = \"vrrp_instance VI { }\"\nprocess = { start = \"90ms..10ms\" }"), "BackwardsSpan"),
        ("process wake not a duration", Replace("keepalived_conf_inline = \"vrrp_instance VI { }\"", "keepalived_conf_inline = \"vrrp_instance VI { }\"\nprocess = { wake = \"1ms..soon\" }"), "Duration"),
        ("process of a client", Replace("role = \"client\"", "role = \"client\"\nprocess = { exit = \"1s\" }"), "WrongRoleKey"),
        ("snapshot after the end", Append("\n[[snapshot]]\nat = \"90s\"\n"), "AfterEnd"),
        ("snapshot of a real server", Append("\n[[snapshot]]\nat = \"30s\"\ndirectors = [\"rs1\"]\n"), "WrongRole"),
        ("snapshot of an unknown command", Append("\n[[snapshot]]\nat = \"30s\"\nshow = [\"ipvsadm -Ln\"]\n"), "BadShow"),
        ("vip_owner key not an address", Append("\n[expect]\nvip_owner = { \"vip\" = \"d1\" }\n"), "BadIp"),
        ("vip_owner not a director", Append("\n[expect]\nvip_owner = { \"10.0.0.100\" = \"rs1\" }\n"), "WrongRole"),
        ("vrrp_state unknown state", Append("\n[expect]\nvrrp_state = { d1 = \"PRIMARY\" }\n"), "BadState"),
        ("vrrp_state of an unknown host", Append("\n[expect]\nvrrp_state = { d9 = \"MASTER\" }\n"), "UnknownHost"),
        ("ipvs destination without port", Append("\n[expect]\nipvs_destinations = { d1 = [\"10.0.0.3\"] }\n"), "BadSocketAddr"),
        ("share of a director", Append("\n[expect]\nshare = { d1 = [0.4, 0.6] }\n"), "WrongRole"),
        ("share upside down", Append("\n[expect]\nshare = { rs1 = [0.6, 0.4] }\n"), "BadShare"),
        ("share with one bound", Append("\n[expect]\nshare = { rs1 = [0.5] }\n"), "BadShare"),
        ("failover_within zero", Append("\n[expect]\nfailover_within = \"0s\"\n"), "ZeroDuration"),
        ("converge_within bad", Append("\n[expect]\nconverge_within = \"20\"\n"), "Duration"),
        ("duration that would never finish", Replace("duration = \"60s\"", "duration = \"1000000h\""), "TooMuchWork"),
        ("workload that would never finish", Replace("rate = 10\n", "rate = 1e9\n"), "TooMuchWork"),
        ("closed loop that would never finish", Replace("rate = 10\n", "concurrency = 28000\n"), "TooMuchWork"),
        ("concurrency beyond the ephemeral ports", Replace("rate = 10\n", "concurrency = 100000\n"), "OutOfRange"),
        ("udp timeout on a tcp workload", Replace("rate = 10\n", "rate = 10\ntimeout = \"1s\"\n"), "OnlyWith"),
        ("source_port on a tcp workload", Replace("rate = 10\n", "rate = 10\nsource_port = 5353\n"), "OnlyWith"),
        ("source_port on an sctp workload", Replace("rate = 10\n", "rate = 10\nprotocol = \"sctp\"\nsource_port = 5353\n"), "OnlyWith"),
        ("sctp timeout zero", Replace("rate = 10\n", "rate = 10\nprotocol = \"sctp\"\ntimeout = \"0s\"\n"), "OutOfRange"),
        ("udp timeout zero", Replace("rate = 10\n", "rate = 10\nprotocol = \"udp\"\ntimeout = \"0s\"\n"), "OutOfRange"),
        ("udp source_port zero", Replace("rate = 10\n", "rate = 10\nprotocol = \"udp\"\nsource_port = 0\n"), "OutOfRange"),
        ("tcp request beyond one segment", Replace("rate = 10\n", "rate = 10\nrequest_size = 1461\n"), "OutOfRange"),
        ("empty tcp request", Replace("rate = 10\n", "rate = 10\nrequest_size = 0\n"), "OutOfRange"),
        ("udp request beyond one datagram", Replace("rate = 10\n", "rate = 10\nprotocol = \"udp\"\nrequest_size = 1473\n"), "OutOfRange"),
        ("udp request shorter than its id", Replace("rate = 10\n", "rate = 10\nprotocol = \"udp\"\nrequest_size = 7\n"), "OutOfRange"),
        ("sctp request of another size", Replace("rate = 10\n", "rate = 10\nprotocol = \"sctp\"\nrequest_size = 100\n"), "OutOfRange"),
        ("duplicate udp service port", Replace("[[host.service]]\nport = 80\n", "[[host.service]]\nport = 80\nprotocol = \"udp\"\n[[host.service]]\nport = 80\nprotocol = \"udp\"\n"), "Duplicate"),
    ]
}

fn variant(p: &Problem) -> &'static str {
    match p {
        Problem::Duration(_) => "Duration",
        Problem::ZeroDuration => "ZeroDuration",
        Problem::AfterEnd { .. } => "AfterEnd",
        Problem::Duplicate { .. } => "Duplicate",
        Problem::UnknownHost { .. } => "UnknownHost",
        Problem::UnknownSegment { .. } => "UnknownSegment",
        Problem::UnknownIface { .. } => "UnknownIface",
        Problem::BadCidr { .. } => "BadCidr",
        Problem::BadIp { .. } => "BadIp",
        Problem::BadSocketAddr { .. } => "BadSocketAddr",
        Problem::DuplicateAddress { .. } => "DuplicateAddress",
        Problem::BadMac { .. } => "BadMac",
        Problem::MulticastMac { .. } => "MulticastMac",
        Problem::DuplicateMac { .. } => "DuplicateMac",
        Problem::GatewayOffLink { .. } => "GatewayOffLink",
        Problem::WrongRoleKey { .. } => "WrongRoleKey",
        Problem::Missing { .. } => "Missing",
        Problem::Conflict { .. } => "Conflict",
        Problem::NeedOneOf { .. } => "NeedOneOf",
        Problem::OnlyWith { .. } => "OnlyWith",
        Problem::ConfRead { .. } => "ConfRead",
        Problem::OutOfRange { .. } => "OutOfRange",
        Problem::NoInterfaces => "NoInterfaces",
        Problem::NotForKind { .. } => "NotForKind",
        Problem::KindNeeds { .. } => "KindNeeds",
        Problem::WrongRole { .. } => "WrongRole",
        Problem::UnknownPort { .. } => "UnknownPort",
        Problem::PartitionGroups => "PartitionGroups",
        Problem::OneWayGroups => "OneWayGroups",
        Problem::HostInTwoGroups { .. } => "HostInTwoGroups",
        Problem::UnknownScript { .. } => "UnknownScript",
        Problem::BadState { .. } => "BadState",
        Problem::BadShare => "BadShare",
        Problem::BackwardsSpan { .. } => "BackwardsSpan",
        Problem::StartAfterStop { .. } => "StartAfterStop",
        Problem::TooMuchWork { .. } => "TooMuchWork",
        Problem::BadTunnel { .. } => "BadTunnel",
        Problem::BadShow { .. } => "BadShow",
        Problem::Unsupported { .. } => "Unsupported",
    }
}

#[test]
fn every_validation_rule_names_file_line_key_and_reason() {
    let mut report = String::new();
    for (rule, edit, expected) in cases() {
        let err = match load(&apply(&edit)) {
            Ok(_) => panic!("{rule}: accepted"),
            Err(e) => e,
        };
        let got = err
            .problem()
            .map(variant)
            .unwrap_or("not a validation error");
        assert_eq!(got, expected, "{rule}: {err}");
        assert!(err.to_string().starts_with("case.toml:"), "{rule}: {err}");
        report.push_str(&format!("{rule}\n    {err}\n"));
    }
    insta::assert_snapshot!(report);
}

#[test]
fn toml_errors_keep_line_and_column() {
    let err = load(&BASE.replace("rate = 10", "rate = = 10")).unwrap_err();
    assert!(matches!(err, ScenarioError::Parse { .. }));
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn unknown_keys_and_kinds_are_toml_errors_with_position() {
    let typo = load(&BASE.replace("arp_announce = 2", "arp_anounce = 2")).unwrap_err();
    let kind = load(&format!(
        "{BASE}\n[[fault]]\nat = \"1s\"\nkind = \"explode\"\n"
    ))
    .unwrap_err();
    let role = load(&BASE.replace("role = \"client\"", "role = \"browser\"")).unwrap_err();
    insta::assert_snapshot!(format!("{typo}\n---\n{kind}\n---\n{role}"));
}

#[test]
fn load_names_the_missing_file() {
    let err = Scenario::load("does/not/exist.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "does/not/exist.toml: cannot read the scenario: No such file or directory (os error 2)"
    );
}

proptest::proptest! {
    /// Untrusted text never panics the loader: any cut or splice of a valid file gives a valid
    /// scenario or an error that names the file.
    #[test]
    fn mangled_files_never_panic(start in 0usize..BASE.len(), len in 0usize..40, insert in "[a-z0-9_=\"\\[\\]{}., \n/:-]{0,12}") {
        let mut text: String = BASE.chars().take(start).collect();
        text.push_str(&insert);
        text.extend(BASE.chars().skip(start + len));
        match load(&text) {
            Ok(s) => proptest::prop_assert!(!s.duration.is_zero()),
            Err(e) => proptest::prop_assert!(e.to_string().starts_with("case.toml"), "{}", e),
        }
    }
}
