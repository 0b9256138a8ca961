//! What `lvsd status` prints: per VRRP instance its state, effective priority, advert
//! interval, the master's address and its last transition; with `--stats`, keepalived's
//! counters in the layout of its own stats file (`SIGUSR2` → `/tmp/keepalived.stats`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::IpAddr;
use std::time::SystemTime;

use lvs_core::director::Director;
use lvs_core::vrrp::stats::InstanceStats;
use lvs_core::vrrp::VrrpState;

/// One instance's last transition, as the daemon saw it.
#[derive(Clone, Debug)]
pub struct Transition {
    /// Wall-clock time.
    pub at: SystemTime,
    /// The state entered.
    pub state: VrrpState,
    /// The line the director logged about the instance just before (what made it change),
    /// when there was one.
    pub reason: Option<String>,
}

/// One instance, as reported.
#[derive(Clone, Debug, serde::Serialize)]
struct Row {
    name: String,
    interface: String,
    vrid: u8,
    state: String,
    priority: u8,
    base_priority: u8,
    advert_int_ms: u64,
    master: Option<IpAddr>,
    last_transition: Option<Last>,
}

#[derive(Clone, Debug, serde::Serialize)]
struct Last {
    unix_time: f64,
    state: String,
    reason: Option<String>,
}

fn rows(d: &Director, last: &BTreeMap<String, Transition>) -> Vec<Row> {
    let Some(vrrp) = d.vrrp() else {
        return Vec::new();
    };
    vrrp.instances()
        .iter()
        .map(|i| {
            let cfg = i.config();
            Row {
                name: i.name().to_string(),
                interface: cfg.iface.clone(),
                vrid: cfg.vrid,
                state: i.state().to_string(),
                priority: i.effective_priority(),
                base_priority: cfg.priority,
                advert_int_ms: i.master_adver_int().as_millis() as u64,
                master: match i.state() {
                    VrrpState::Master => Some(cfg.src_ip.unwrap_or(cfg.primary_ip)),
                    _ => i.master_addr(),
                },
                last_transition: last.get(i.name()).map(|t| Last {
                    unix_time: t
                        .at
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64()),
                    state: t.state.to_string(),
                    reason: t.reason.clone(),
                }),
            }
        })
        .collect()
}

/// `lvsd status` as text.
pub fn status_text(d: &Director, last: &BTreeMap<String, Transition>) -> String {
    let mut out = String::new();
    let rows = rows(d, last);
    if rows.is_empty() {
        out.push_str("no VRRP instances\n");
    }
    for r in rows {
        let master = r.master.map_or("unknown".to_string(), |m| m.to_string());
        let _ = writeln!(
            out,
            "{}: {} (interface {}, vrid {}) priority {} (configured {}), advert {:.2} s, master {master}",
            r.name,
            r.state,
            r.interface,
            r.vrid,
            r.priority,
            r.base_priority,
            r.advert_int_ms as f64 / 1000.0,
        );
        if let Some(l) = r.last_transition {
            let when = chrono::DateTime::from_timestamp(l.unix_time as i64, 0)
                .map(|t| {
                    t.with_timezone(&chrono::Local)
                        .format("%a %b %e %H:%M:%S %Y")
                        .to_string()
                })
                .unwrap_or_default();
            let _ = write!(out, "  last transition: {when} to {}", l.state);
            if let Some(reason) = l.reason {
                let _ = write!(out, " after: {reason}");
            }
            out.push('\n');
        }
    }
    out
}

/// `lvsd status --json`.
pub fn status_json(d: &Director, last: &BTreeMap<String, Transition>) -> String {
    let v = serde_json::json!({ "vrrp": rows(d, last) });
    format!("{v:#}\n")
}

/// `lvsd status --stats` as keepalived's stats file lays them out.
pub fn stats_text(d: &Director) -> String {
    let mut out = String::new();
    for s in d.stats().vrrp {
        out.push_str(&keepalived_stats(&s));
    }
    out
}

fn keepalived_stats(s: &InstanceStats) -> String {
    format!(
        "VRRP Instance: {}\n  Advertisements:\n    Received: {}\n    Sent: {}\n  Became master: {}\n  Released master: {}\n  Packet Errors:\n    Length: {}\n    TTL: {}\n    Invalid Type: {}\n    Advertisement Interval: {}\n    Address List: {}\n  Authentication Errors:\n    Invalid Type: {}\n    Type Mismatch: {}\n    Failure: {}\n  Priority Zero:\n    Received: {}\n    Sent: {}\n",
        s.name,
        s.advert_rcvd,
        s.advert_sent,
        s.become_master,
        s.release_master,
        s.packet_len_err,
        s.ip_ttl_err,
        s.invalid_type_rcvd,
        s.advert_interval_err,
        s.addr_list_err,
        s.invalid_authtype,
        s.authtype_mismatch,
        s.auth_failure,
        s.pri_zero_rcvd,
        s.pri_zero_sent,
    )
}

/// `lvsd status --stats --json`: the core's counters.
pub fn stats_json(d: &Director) -> String {
    let v = serde_json::json!({ "vrrp": d.stats().vrrp });
    format!("{v:#}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_laid_out_as_keepalived_writes_its_stats_file() {
        let s = InstanceStats {
            name: "VI_1".into(),
            advert_sent: 1,
            become_master: 1,
            ..Default::default()
        };
        // Written by keepalived 2.2.7 on SIGUSR2 for a master that had sent one advert.
        assert_eq!(
            keepalived_stats(&s),
            include_str!("testdata/keepalived.stats")
        );
    }
}
