//! The JSON trace (`lvsd sim --json`) against its published schema, scenarios/trace.schema.json
//! (scenarios/TRACE.md): every event kind the scenarios below produce must validate, and a
//! trace bent out of shape must not.

use std::path::PathBuf;

use lvs_scenarios::judge::RunOptions;
use lvs_scenarios::Scenario;
mod common;
use serde_json::Value;

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(scenarios_dir().join("trace.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("the schema itself: {e}"))
}

fn trace(path: &str) -> Value {
    let s = Scenario::load(scenarios_dir().join(path)).unwrap_or_else(|e| panic!("{e}"));
    let (_, json) = common::run_traced(&s, &RunOptions::default()).unwrap();
    serde_json::from_str(&json).unwrap()
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .take(5)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

#[test]
fn traces_validate_against_the_schema() {
    let v = validator();
    let mut kinds = std::collections::BTreeSet::new();
    for path in [
        "seed/04-realserver-down.toml",
        "seed/10-master-wan-nic-down.toml",
        "fidelity/sigkill-restart.toml",
        "fidelity/track-script.toml",
        "nat/nat-failover.toml",
    ] {
        let doc = trace(path);
        let errs = errors(&v, &doc);
        assert!(errs.is_empty(), "{path}: {errs:#?}");
        assert_eq!(
            doc["scenario"],
            Value::from(Scenario::load(scenarios_dir().join(path)).unwrap().name,)
        );
        for e in doc["events"].as_array().unwrap() {
            let ev = &e["event"];
            let mut kind = ev["type"].as_str().unwrap().to_string();
            if let Some(k) = ev["kind"].as_str().filter(|_| kind == "fault") {
                kind = format!("fault:{k}");
            }
            kinds.insert(kind);
        }
    }
    // The scenarios above exercise these; a kind that stops appearing is a lost check.
    for k in [
        "log",
        "notify",
        "add_vip",
        "del_vip",
        "ipvs",
        "probe",
        "process",
        "service",
        "request",
        "fault:kill",
        "fault:restart",
        "fault:nic",
        "fault:service",
        "fault:stop",
        "fault:script",
        "gateway_arp",
    ] {
        assert!(kinds.contains(k), "no {k} event in {kinds:?}");
    }
}

// The master's WAN NIC goes down: the gateway's entry for the VIP starts at the master's
// MAC and moves to the backup's with its gratuitous ARP, each change naming its host.
#[test]
fn gateway_arp_events_follow_the_vip_to_its_holder() {
    let path = "seed/10-master-wan-nic-down.toml";
    let s = Scenario::load(scenarios_dir().join(path)).unwrap();
    let gateways: Vec<&str> = s
        .hosts
        .iter()
        .filter(|h| matches!(h.role, lvs_scenarios::Role::Gateway(_)))
        .map(|h| h.name.as_str())
        .collect();
    let doc = trace(path);
    // (gateway, address) -> the entry's (mac, owner) changes in order.
    type Changes = Vec<(String, Option<String>)>;
    let mut entries: std::collections::BTreeMap<(String, String), Changes> = Default::default();
    for e in doc["events"].as_array().unwrap() {
        let ev = &e["event"];
        if ev["type"] != "gateway_arp" {
            continue;
        }
        let gw = e["host"].as_str().unwrap().to_string();
        assert!(gateways.contains(&gw.as_str()), "{e}");
        entries
            .entry((gw, ev["ip"].as_str().unwrap().to_string()))
            .or_default()
            .push((
                ev["mac"].as_str().unwrap().to_string(),
                ev["owner"].as_str().map(String::from),
            ));
    }
    // Each event is a change of its entry, never a repeat.
    for (k, c) in &entries {
        assert!(c.windows(2).all(|w| w[0].0 != w[1].0), "{k:?}: {c:?}");
    }
    // The VIP's entry moved from one director to the other, each MAC named by its host.
    let directors: Vec<&str> = s
        .hosts
        .iter()
        .filter(|h| matches!(h.role, lvs_scenarios::Role::Director(_)))
        .map(|h| h.name.as_str())
        .collect();
    let moved = entries.iter().find(|(_, c)| {
        let owners: std::collections::BTreeSet<_> =
            c.iter().filter_map(|(_, o)| o.as_deref()).collect();
        owners.len() >= 2 && owners.iter().all(|o| directors.contains(o))
    });
    assert!(
        moved.is_some(),
        "no entry moved between directors: {entries:?}"
    );
}

#[test]
fn a_trace_out_of_shape_is_refused() {
    let v = validator();
    let doc = trace("seed/04-realserver-down.toml");
    let bend = |f: &dyn Fn(&mut Value)| {
        let mut d = doc.clone();
        f(&mut d);
        assert!(!errors(&v, &d).is_empty(), "accepted: {f:p}", f = f);
    };
    let first = |d: &mut Value, ty: &str| -> usize {
        d["events"]
            .as_array()
            .unwrap()
            .iter()
            .position(|e| e["event"]["type"] == ty)
            .unwrap()
    };
    bend(&|d| d["version"] = Value::from(1));
    bend(&|d| {
        let i = first(d, "notify");
        d["events"][i]["event"]["state"] = Value::from("Backup");
    });
    bend(&|d| {
        let i = first(d, "ipvs");
        d["events"][i]["event"]["change"] = Value::from("AddService");
    });
    bend(&|d| {
        let i = first(d, "request");
        d["events"][i]["event"]["record"]["outcome"] =
            serde_json::json!({"Ok": {"server": "web1"}});
    });
    bend(&|d| {
        let i = first(d, "fault");
        d["events"][i]["event"]["kind"] = Value::from("meteor");
    });
    bend(&|d| {
        let i = first(d, "gateway_arp");
        d["events"][i]["event"]["mac"] = Value::from("02-00-00-00-00-01");
    });
}
