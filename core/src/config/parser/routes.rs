//! `static_routes` / `virtual_routes` and `static_rules` / `virtual_rules` lines, read as
//! keepalived 2.2.7 reads them (vrrp_iproute.c `alloc_route`, vrrp_iprule.c `alloc_rule`).
//!
//! lvsd installs no routes or rules (the parsers say so once per block); it checks each line
//! as keepalived does and logs what keepalived logs. What depends on the host is left out:
//! whether a `dev` exists, and the names `/etc/iproute2` gives tables, protocols, scopes and
//! realms. A route with `encap` is not checked past that word.

use super::Builder;
use crate::config::lexer::Word;
use crate::config::tree::{Block, Node};

/// lib/rttables.c's route types.
const RTN_TYPES: &[&str] = &[
    "local",
    "nat",
    "broadcast",
    "brd",
    "anycast",
    "multicast",
    "prohibit",
    "unreachable",
    "blackhole",
    "xresolve",
    "unicast",
    "throw",
];

/// Route options taking one value lvsd does not check (host names, or numbers the kernel
/// checks).
const ROUTE_VALUE: &[&str] = &[
    "tos",
    "dsfield",
    "table",
    "protocol",
    "scope",
    "metric",
    "priority",
    "preference",
    "dev",
    "oif",
    "hoplimit",
    "window",
    "realms",
    "initcwnd",
    "initrwnd",
    "features",
    "quickack",
    "pref",
    "ttl-propagate",
    "fastopen_no_cookie",
    "expires",
    "vrf",
];
/// Route options taking a value that may be preceded by `lock`.
const ROUTE_LOCKED: &[&str] = &[
    "mtu",
    "advmss",
    "rtt",
    "rttvar",
    "reordering",
    "cwnd",
    "ssthresh",
    "rto_min",
    "congctl",
];
/// Route options without a value.
const ROUTE_FLAGS: &[&str] = &["onlink", "prepend", "append", "add", "inet", "inet6"];

/// Rule options taking one value lvsd does not check.
const RULE_VALUE: &[&str] = &[
    "tos",
    "dsfield",
    "fwmark",
    "realms",
    "suppress_prefixlength",
    "sup_pl",
    "suppress_ifgroup",
    "sup_group",
    "dev",
    "iif",
    "oif",
    "tunnel-id",
    "uidrange",
    "protocol",
    "ipproto",
    "sport",
    "dport",
];

/// Why a line was given up, after keepalived's line for it.
struct Refused;

impl Builder<'_> {
    /// The value after `words[*i]`, moving `i` onto it.
    fn next_word<'w>(&mut self, words: &'w [Word], i: &mut usize) -> Result<&'w Word, Refused> {
        *i += 1;
        match words.get(*i) {
            Some(w) => Ok(w),
            None => {
                let kw = &words[*i - 1];
                self.s
                    .error(&kw.span, format!("'{}' needs a value", kw.text));
                Err(Refused)
            }
        }
    }

    /// keepalived's `parse_ipaddress`: true when `w` is an address (with a prefix length
    /// when `prefix`; a bad one is logged and the full length used).
    fn route_address(&mut self, w: &Word, prefix: bool) -> bool {
        let (addr, len) = match w.text.split_once('/').filter(|_| prefix) {
            Some((a, l)) => (a, Some(l)),
            None => (w.text.as_str(), None),
        };
        let v6 = addr.contains(':');
        let max = if v6 { 128 } else { 32 };
        if let Some(l) = len {
            let l_word = Word {
                text: l.to_string(),
                span: w.span.clone(),
                quoted: false,
            };
            if self.ka_unsigned(&l_word, 0, max).is_none() {
                self.s.warn_as_keepalived(
                    &w.span,
                    format!(
                        "Invalid address prefix len {l} for address {} - using {max}",
                        w.text
                    ),
                );
            }
        }
        let ok = if v6 {
            addr.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            addr.parse::<std::net::Ipv4Addr>().is_ok()
        };
        if !ok {
            self.s.warn_as_keepalived(
                &w.span,
                format!("VRRP parsed invalid IP {}. skipping IP...", w.text),
            );
        }
        ok
    }

    /// keepalived's `parse_route`: `default` / `any` / `all` (and the old `default6`) or an
    /// address with an optional prefix length; the family when it names one.
    fn route_destination(&mut self, w: &Word) -> Option<Option<bool>> {
        match w.text.as_str() {
            "default" | "any" | "all" => Some(None),
            "default6" => Some(Some(true)),
            _ => self
                .route_address(w, true)
                .then(|| Some(w.text.contains(':'))),
        }
    }

    /// A `static_routes` / `virtual_routes` / `static_rules` / `virtual_rules` block
    /// (`track_group` only in the static ones).
    pub(super) fn routes_or_rules(&mut self, node: &Node, is_static: bool) {
        let Some(b) = &node.block else { return };
        if node.keyword().text.ends_with("_routes") {
            self.route_block(b, is_static);
        } else {
            self.rule_block(b, is_static);
        }
    }

    fn route_block(&mut self, b: &Block, is_static: bool) {
        for n in &b.nodes {
            // A line keepalived refuses was logged where it was found.
            let _ = self.route_line(&n.words, is_static);
        }
    }

    fn route_line(&mut self, words: &[Word], is_static: bool) -> Result<(), Refused> {
        let mut dest: Option<&Word> = None;
        let mut dev = false;
        let mut no_track = false;
        let mut or_route = false;
        let mut nexthop = false;
        let mut i = 0;
        while let Some(w) = words.get(i) {
            let t = w.text.as_str();
            if ROUTE_FLAGS.contains(&t) {
            } else if t == "no_track" {
                no_track = true;
            } else if t == "dev" || t == "oif" {
                self.next_word(words, &mut i)?;
                dev = true;
            } else if ROUTE_VALUE.contains(&t) || (is_static && t == "track_group") {
                self.next_word(words, &mut i)?;
            } else if ROUTE_LOCKED.contains(&t) {
                if self.next_word(words, &mut i)?.text == "lock" {
                    self.next_word(words, &mut i)?;
                }
            } else if t == "src" || t == "via" || t == "gw" {
                if t == "gw" {
                    self.s.warn_as_keepalived(
                        &w.span,
                        "\"gw\" for routes is deprecated. Please use \"via\"",
                    );
                }
                let mut a = self.next_word(words, &mut i)?;
                if t != "src" && (a.text == "inet" || a.text == "inet6") {
                    a = self.next_word(words, &mut i)?;
                }
                if !self.route_address(a, false) {
                    let what = if t == "src" { "src" } else { "via" };
                    self.s.warn_as_keepalived(
                        &a.span,
                        format!("invalid route {what} address {}", a.text),
                    );
                    return Err(Refused);
                }
            } else if t == "from" {
                let a = self.next_word(words, &mut i)?;
                match self.route_destination(a) {
                    None => {
                        self.s.warn_as_keepalived(
                            &a.span,
                            format!("invalid route from address {}", a.text),
                        );
                        return Err(Refused);
                    }
                    Some(Some(true)) => {}
                    Some(_) => {
                        self.s.warn_as_keepalived(
                            &a.span,
                            format!("route from address only supported with IPv6 ({})", a.text),
                        );
                        return Err(Refused);
                    }
                }
            } else if t == "as" {
                if self.next_word(words, &mut i)?.text == "to" {
                    self.next_word(words, &mut i)?;
                }
                self.s
                    .warn_as_keepalived(&w.span, "\"as to\" for MPLS only - ignoring");
            } else if t == "encap" {
                // Encapsulations have a grammar of their own; lvsd checks no further.
                return Ok(());
            } else if t == "or" {
                self.s.warn_as_keepalived(
                    &w.span,
                    "\"or\" for routes is deprecated. Please use \"nexthop\"",
                );
                if or_route {
                    self.s.warn_as_keepalived(
                        &w.span,
                        "\"or\" route already specified - ignoring subsequent",
                    );
                    i += 2;
                    continue;
                }
                let a = self.next_word(words, &mut i)?;
                if !self.route_address(a, false) {
                    self.s
                        .warn_as_keepalived(&a.span, format!("Invalid \"or\" address {}", a.text));
                    return Err(Refused);
                }
                or_route = true;
            } else if t == "nexthop" {
                if or_route {
                    self.s
                        .warn_as_keepalived(&w.span, "Cannot specify nexthops with \"or\" route");
                } else {
                    nexthop = true;
                }
                break;
            } else {
                let mut d = w;
                if d.text == "to" {
                    d = self.next_word(words, &mut i)?;
                }
                if RTN_TYPES.contains(&d.text.as_str()) {
                    d = self.next_word(words, &mut i)?;
                }
                if self.route_destination(d).is_none() {
                    self.s
                        .warn_as_keepalived(&d.span, format!("unknown route keyword {}", d.text));
                    return Err(Refused);
                }
                dest = Some(d);
            }
            i += 1;
        }
        if !nexthop {
            if let Some(w) = words.get(i) {
                self.s.warn_as_keepalived(
                    &w.span,
                    format!("Route has trailing nonsense - {}", w.text),
                );
                return Err(Refused);
            }
        }
        let Some(dest) = dest else {
            if let Some(w) = words.first() {
                self.s
                    .warn_as_keepalived(&w.span, "Route must have a destination");
            }
            return Err(Refused);
        };
        if !no_track && !dev {
            self.s.warn_as_keepalived(
                &dest.span,
                format!(
                    "Warning - cannot track route {} with no interface specified, not tracking",
                    dest.text
                ),
            );
        }
        Ok(())
    }

    fn rule_block(&mut self, b: &Block, is_static: bool) {
        for n in &b.nodes {
            // A line keepalived refuses was logged where it was found.
            let _ = self.rule_line(&n.words, is_static);
        }
    }

    fn rule_line(&mut self, words: &[Word], is_static: bool) -> Result<(), Refused> {
        let mut ipv6: Option<bool> = None;
        let mut preference = false;
        let mut action = false;
        let mut i = 0;
        let several = "Cannot specify more than one of table/nop/goto/blackhole/prohibit/unreachable for rule";
        while let Some(w) = words.get(i) {
            let t = w.text.as_str();
            match t {
                "inet" => ipv6 = Some(false),
                "inet6" => ipv6 = Some(true),
                "not" => {}
                "no_track" => {}
                "from" | "to" => {
                    let a = self.next_word(words, &mut i)?;
                    match self.route_destination(a) {
                        Some(f) => ipv6 = ipv6.or(f),
                        None => {
                            self.s.warn_as_keepalived(
                                &a.span,
                                format!("Invalid rule {t} address {}", a.text),
                            );
                            return Err(Refused);
                        }
                    }
                }
                "table" | "lookup" => {
                    let v = self.next_word(words, &mut i)?;
                    if v.text == "0" {
                        self.s.warn_as_keepalived(&v.span, "Table 0 is not valid");
                        return Err(Refused);
                    }
                    if action {
                        self.s.warn_as_keepalived(&w.span, several);
                        return Err(Refused);
                    }
                    action = true;
                }
                "preference" | "order" | "priority" => {
                    let v = self.next_word(words, &mut i)?;
                    if self.ka_unsigned(v, 0, u32::MAX).is_none() {
                        self.s.warn_as_keepalived(
                            &v.span,
                            format!("Invalid rule preference {t} specified"),
                        );
                        return Err(Refused);
                    }
                    preference = true;
                }
                _ if RULE_VALUE.contains(&t) || (is_static && t == "track_group") => {
                    self.next_word(words, &mut i)?;
                }
                _ => {
                    let mut a = w;
                    if a.text == "type" {
                        a = self.next_word(words, &mut i)?;
                    }
                    match a.text.as_str() {
                        "goto" => {
                            self.next_word(words, &mut i)?;
                        }
                        "nop" | "l3mdev" | "blackhole" | "unreachable" | "prohibit" => {}
                        k if RTN_TYPES.contains(&k) => {
                            self.s.warn_as_keepalived(
                                &a.span,
                                format!("Invalid rule action {}", a.text),
                            );
                            return Err(Refused);
                        }
                        _ => {
                            self.s.warn_as_keepalived(
                                &a.span,
                                format!("Unknown rule option {}", a.text),
                            );
                            return Err(Refused);
                        }
                    }
                    if action {
                        self.s.warn_as_keepalived(
                            &a.span,
                            "Cannot specify more than one of table/nop/goto/blackhole/prohibit/unreachable/l3mdev for rule",
                        );
                        return Err(Refused);
                    }
                    action = true;
                }
            }
            i += 1;
        }
        let Some(first) = words.first() else {
            return Err(Refused);
        };
        if !action {
            self.s
                .warn_as_keepalived(&first.span, "No action specified for rule - ignoring");
            return Err(Refused);
        }
        if !preference {
            let next = if ipv6 == Some(true) {
                &mut self.rule_preferences.ipv6
            } else {
                &mut self.rule_preferences.ipv4
            };
            let pref = *next;
            *next = next.saturating_sub(1);
            self.s.warn_as_keepalived(
                &first.span,
                format!("Rule has no preference specified - setting to {pref}. This is probably not what you want."),
            );
        }
        Ok(())
    }
}
