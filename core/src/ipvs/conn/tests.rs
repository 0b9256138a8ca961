//! Connection table tests.

use std::collections::BTreeMap;

use super::*;
use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, SynAck as SA, SynRecv as SR,
    TimeWait as TW,
};

fn key(c: &str, cport: u16) -> ConnKey {
    ConnKey {
        proto: 6,
        caddr: c.parse().unwrap(),
        cport,
        vaddr: "10.0.0.1".parse().unwrap(),
        vport: 80,
    }
}

fn conn(k: ConnKey, timeout: u32) -> NewConn {
    NewConn {
        key: k,
        template: false,
        dest: 7,
        flags: flags::INACTIVE | flags::NOOUTPUT,
        state: 0,
        timeout,
        control: None,
    }
}

#[test]
fn entry_is_compact() {
    assert_eq!(ConnTable::ENTRY_SIZE_V4, 48);
    assert_eq!(ConnTable::ENTRY_SIZE_V6, 72);
}

#[test]
fn nat_handshake_and_close_follow_tcp_states() {
    // Client SYN (in), server SYN+ACK (out), client ACK (in): kernel path
    // NONE -> SYN_RECV -> SYN_RECV -> ESTABLISHED.
    let t = Timeouts::default();
    let mut s = TcpState::None;
    let steps = [
        (TableDir::Input, TcpFlags::SYN, SR),
        (TableDir::Output, TcpFlags::SYN_ACK, SR),
        (TableDir::Input, TcpFlags::ACK, ES),
        (TableDir::Input, TcpFlags::FIN_ACK, CW),
        (TableDir::Output, TcpFlags::FIN_ACK, TW),
        (TableDir::Input, TcpFlags::ACK, TW),
    ];
    for (dir, f, want) in steps {
        s = tcp_next_state(s, dir, f, false);
        assert_eq!(s, want, "{dir:?} {f:?}");
    }
    assert_eq!(t.tcp[s as usize], 120);
}

#[test]
fn input_only_table_differs_on_fin_and_rst() {
    // DR: the client's FIN from ESTABLISHED goes to FIN_WAIT, not CLOSE_WAIT.
    assert_eq!(
        tcp_next_state(ES, TableDir::InputOnly, TcpFlags::FIN_ACK, false),
        FW
    );
    assert_eq!(
        tcp_next_state(ES, TableDir::Input, TcpFlags::FIN_ACK, false),
        CW
    );
    // RST on SYNACK: input keeps SYN_RECV, input-only closes.
    assert_eq!(
        tcp_next_state(SA, TableDir::Input, TcpFlags::RST, false),
        SR
    );
    assert_eq!(
        tcp_next_state(SA, TableDir::InputOnly, TcpFlags::RST, false),
        CL
    );
    // secure_tcp: a SYN on a fresh input-only connection goes to SYNACK.
    assert_eq!(
        tcp_next_state(TcpState::None, TableDir::InputOnly, TcpFlags::SYN, true),
        SA
    );
    // No flag at all: CLOSE.
    assert_eq!(
        tcp_next_state(ES, TableDir::Input, TcpFlags::default(), false),
        CL
    );
}

#[test]
fn set_timeouts_touches_only_three_values() {
    let mut t = Timeouts::default();
    t.set(7200, 0, 50);
    assert_eq!(t.get(), (7200, 120, 50));
    assert_eq!(t.tcp[TcpState::Close as usize], 10);
}

#[test]
fn insert_lookup_expire() {
    let mut ct = ConnTable::new(1);
    let k = key("192.0.2.7", 40001);
    let id = ct.insert(Instant::ZERO, conn(k, 10)).unwrap();
    assert_eq!(ct.lookup(&k), Some(id));
    assert_eq!(ct.lookup_template(&k), None);
    assert_eq!(
        ct.insert(Instant::ZERO, conn(k, 10)),
        Err(ConnError::Exists)
    );
    assert_eq!(ct.poll_timeout(), Some(Instant::from_secs(10)));
    let mut out = Vec::new();
    ct.handle_timeout(Instant::from_secs(9), &mut out);
    assert!(out.is_empty());
    ct.touch(id, Instant::from_secs(9));
    ct.handle_timeout(Instant::from_secs(10), &mut out);
    assert!(out.is_empty(), "touched at 9 s, lives until 19 s");
    assert_eq!(ct.poll_timeout(), Some(Instant::from_secs(19)));
    ct.handle_timeout(Instant::from_secs(19), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].conn.key, k);
    assert!(ct.is_empty());
    assert_eq!(ct.lookup(&k), None);
    assert_eq!(ct.poll_timeout(), None);
}

#[test]
fn template_outlives_its_connections() {
    let mut ct = ConnTable::new(1);
    let tk = ConnKey {
        cport: 0,
        ..key("192.0.2.0", 0)
    };
    let t = ct
        .insert(
            Instant::ZERO,
            NewConn {
                template: true,
                flags: 0,
                ..conn(tk, 30)
            },
        )
        .unwrap();
    let c = ct
        .insert(
            Instant::ZERO,
            NewConn {
                control: Some(t),
                ..conn(key("192.0.2.7", 1), 100)
            },
        )
        .unwrap();
    assert_eq!(ct.get(t).unwrap().n_control, 1);
    assert_eq!(ct.get(c).unwrap().control, Some(t));
    let mut out = Vec::new();
    ct.handle_timeout(Instant::from_secs(30), &mut out);
    assert!(out.is_empty());
    assert_eq!(
        ct.get(t).unwrap().timeout,
        60,
        "expire_later re-arms for 60 s"
    );
    ct.handle_timeout(Instant::from_secs(100), &mut out);
    assert_eq!(out.len(), 1);
    assert!(!out[0].conn.template);
    assert_eq!(ct.get(t).unwrap().n_control, 0);
    ct.handle_timeout(Instant::from_secs(150), &mut out);
    assert_eq!(out.len(), 2);
    assert!(out[1].conn.template);
}

#[test]
fn invalidated_template_is_not_found_but_still_expires() {
    let mut ct = ConnTable::new(1);
    let tk = key("192.0.2.0", 0);
    let t = ct
        .insert(
            Instant::ZERO,
            NewConn {
                template: true,
                ..conn(tk, 30)
            },
        )
        .unwrap();
    ct.invalidate_template(t);
    assert_eq!(ct.lookup_template(&tk), None);
    let t2 = ct
        .insert(
            Instant::ZERO,
            NewConn {
                template: true,
                ..conn(tk, 30)
            },
        )
        .unwrap();
    assert_ne!(t, t2);
    let mut out = Vec::new();
    ct.handle_timeout(Instant::from_secs(30), &mut out);
    assert_eq!(out.len(), 2);
}

#[test]
fn many_entries_grow_and_stay_findable_v4_and_v6() {
    let mut ct = ConnTable::new(99);
    for p in 0..5000u16 {
        ct.insert(
            Instant::ZERO,
            conn(key("192.0.2.9", p), 5 + u32::from(p % 7)),
        )
        .unwrap();
        let k6 = ConnKey {
            caddr: "2001:db8::9".parse().unwrap(),
            vaddr: "2001:db8::1".parse().unwrap(),
            ..key("192.0.2.9", p)
        };
        ct.insert(Instant::ZERO, conn(k6, 5)).unwrap();
    }
    assert_eq!(ct.len(), 10_000);
    for p in (0..5000u16).step_by(97) {
        assert!(ct.lookup(&key("192.0.2.9", p)).is_some());
    }
    let mut out = Vec::new();
    ct.handle_timeout(Instant::from_secs(8), &mut out);
    let left = ct.len();
    assert!(left > 0 && left < 10_000);
    ct.handle_timeout(Instant::from_secs(11), &mut out);
    assert!(ct.is_empty());
    assert_eq!(out.len(), 10_000);
}

#[test]
fn batch_lookup_answers_like_single_lookups() {
    let mut ct = ConnTable::new(3);
    let mut keys = Vec::new();
    for p in 0..300u16 {
        let k = key(&format!("192.0.2.{}", p % 200), p);
        if p % 3 != 0 {
            ct.insert(Instant::ZERO, conn(k, 10)).unwrap();
        }
        keys.push(k);
    }
    keys.push(ConnKey {
        caddr: "2001:db8::1".parse().unwrap(),
        vaddr: "2001:db8::2".parse().unwrap(),
        ..keys[0]
    });
    ct.insert(Instant::ZERO, conn(keys[300], 10)).unwrap();
    let mut out = Vec::new();
    ct.lookup_batch(&keys, &mut out);
    let single: Vec<Option<ConnId>> = keys.iter().map(|k| ct.lookup(k)).collect();
    assert_eq!(out, single);
    assert_eq!(out.iter().filter(|x| x.is_some()).count(), 201);
}

#[test]
fn mixed_family_key_is_refused() {
    let mut ct = ConnTable::new(1);
    let k = ConnKey {
        vaddr: "2001:db8::1".parse().unwrap(),
        ..key("192.0.2.1", 1)
    };
    assert_eq!(
        ct.insert(Instant::ZERO, conn(k, 1)),
        Err(ConnError::MixedFamily)
    );
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, u32),
    Touch(u8),
    Remove(u8),
    Advance(u64),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        (0u8..24, 1u32..30).prop_map(|(k, t)| Op::Insert(k, t)),
        (0u8..24).prop_map(Op::Touch),
        (0u8..24).prop_map(Op::Remove),
        (0u64..20_000).prop_map(Op::Advance),
    ]
}

fn model_key(k: u8) -> ConnKey {
    if matches!(k % 3, 0) {
        ConnKey {
            caddr: format!("2001:db8::{k}").parse().unwrap(),
            vaddr: "2001:db8::1".parse().unwrap(),
            ..key("192.0.2.1", u16::from(k))
        }
    } else {
        key(&format!("192.0.2.{k}"), u16::from(k) % 4)
    }
}

proptest::proptest! {
    /// The slab, chains and lazy expiry index agree with a plain map of deadlines.
    #[test]
    fn table_matches_a_map_of_deadlines(ops in proptest::collection::vec(op(), 1..120)) {
        let mut ct = ConnTable::new(5);
        let mut model: BTreeMap<u8, (u64, u32)> = BTreeMap::new();
        let mut now = Instant::ZERO;
        let mut out = Vec::new();
        for o in ops {
            match o {
                Op::Insert(k, t) => {
                    let r = ct.insert(now, conn(model_key(k), t));
                    proptest::prop_assert_eq!(r.is_ok(), !model.contains_key(&k));
                    if r.is_ok() {
                        model.insert(k, (now.as_nanos() + u64::from(t) * 1_000_000_000, t));
                    }
                }
                Op::Touch(k) => {
                    if let Some(id) = ct.lookup(&model_key(k)) {
                        ct.touch(id, now);
                        let e = model.get_mut(&k).unwrap();
                        e.0 = now.as_nanos() + u64::from(e.1) * 1_000_000_000;
                    }
                }
                Op::Remove(k) => {
                    let got = ct.lookup(&model_key(k)).and_then(|id| ct.remove(id));
                    proptest::prop_assert_eq!(got.is_some(), model.remove(&k).is_some());
                }
                Op::Advance(ms) => {
                    now += Duration::from_millis(ms);
                    out.clear();
                    ct.handle_timeout(now, &mut out);
                    let mut gone: Vec<ConnKey> = out.iter().map(|x| x.conn.key).collect();
                    gone.sort();
                    let mut want: Vec<ConnKey> = model
                        .iter()
                        .filter(|(_, (d, _))| *d <= now.as_nanos())
                        .map(|(k, _)| model_key(*k))
                        .collect();
                    want.sort();
                    model.retain(|_, (d, _)| *d > now.as_nanos());
                    proptest::prop_assert_eq!(gone, want);
                }
            }
            proptest::prop_assert_eq!(ct.len(), model.len());
            for k in 0u8..24 {
                proptest::prop_assert_eq!(ct.lookup(&model_key(k)).is_some(), model.contains_key(&k));
            }
            // The wakeup is never later than the earliest deadline; an early one (a
            // timer pushed back, an entry removed: one per bucket they left behind)
            // finds nothing due and moves the wakeup strictly later, so the calls reach
            // the deadline itself.
            let next = model.values().map(|(d, _)| *d).min().map(Instant::from_nanos);
            if let Some(n) = next {
                let mut wake = ct.poll_timeout();
                let mut last = None;
                while let Some(t) = wake.filter(|t| *t < n) {
                    proptest::prop_assert!(
                        last.is_none_or(|l| t > l),
                        "no progress towards {:?}: woken at {:?} again",
                        n,
                        t
                    );
                    last = Some(t);
                    out.clear();
                    ct.handle_timeout(t.max(now), &mut out);
                    proptest::prop_assert!(out.is_empty(), "expired early at {:?}", t);
                    wake = ct.poll_timeout();
                }
                proptest::prop_assert_eq!(wake, Some(n));
            }
        }
    }
}
