//! From the statement tree to the typed [`Config`], keyword by keyword, as keepalived 2.2 reads it.
//!
//! Unknown keywords are warnings and are skipped (no keyword keepalived does not know has a
//! block: the tree reads what follows at the same level, as keepalived does). Keywords that
//! keepalived 2.2 knows but lvsd does not model are kept verbatim in the `other` lists.
//!
//! One file per block, as keepalived has one parser per subsystem: `global` (global_defs),
//! `vrrp` (vrrp_script, vrrp_sync_group, vrrp_instance), `virtual_server` (virtual_server_group,
//! virtual_server, real_server), `check` (the checkers); this one holds the builder, the
//! argument readers they share and the top level.

mod check;
mod global;
mod routes;
mod virtual_server;
mod vrrp;

use std::net::IpAddr;
use std::str::FromStr;

use super::diagnostic::{Logged, Part, Span, Spanned};
use super::lexer::{Sources, Word};
use super::model::*;
use super::tree::{Block, Node};

const ROOT: &[&str] = &[
    "global_defs",
    "vrrp_script",
    "vrrp_sync_group",
    "vrrp_instance",
    "virtual_server",
    "virtual_server_group",
];
const ROOT_OTHER: &[&str] = &[
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "track_group",
    "garp_group",
    "linkbeat_interfaces",
    "vrrp_track_process",
    "vrrp_track_file",
    "track_file",
    "interface_up_down_delays",
    "SSL",
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "use_pid_dir",
    "instance",
    "child_wait_time",
    "linkbeat_use_polling",
    "bfd_instance",
];

/// Numbers accepted as integers in a given range (keepalived's `read_unsigned_strvec` and friends).
trait Int: Copy + TryFrom<i64> {}

/// "Other" keywords lvsd honours from the words it keeps: `preempt` (the default anyway) and
/// `unicast_fault_no_peer` (an instance without peers held in FAULT).
const HONOURED_OTHERS: &[&str] = &["preempt", "unicast_fault_no_peer"];

impl Int for u8 {}
impl Int for u16 {}
impl Int for u32 {}
impl Int for i32 {}

/// vrrp_iprule.c RULE_START_PRIORITY: a rule without a preference takes the next one down.
const RULE_START_PRIORITY: u32 = 16384;

/// What the next rule without a preference gets, per family (keepalived counts over the
/// whole file, static and virtual rules alike).
#[derive(Debug)]
struct RulePreferences {
    ipv4: u32,
    ipv6: u32,
}

impl Default for RulePreferences {
    fn default() -> Self {
        RulePreferences {
            ipv4: RULE_START_PRIORITY,
            ipv6: RULE_START_PRIORITY,
        }
    }
}

/// Builds the model, reporting into the shared [`Sources`].
pub struct Builder<'a> {
    s: &'a mut Sources,
    /// The preferences keepalived gives rules written without one.
    rule_preferences: RulePreferences,
}

fn joined(words: &[Word]) -> Option<Spanned<String>> {
    let first = words.first()?;
    let last = words.last()?;
    let text = words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let mut span = first.span.clone();
    if last.span.line == first.span.line && last.span.file == first.span.file {
        span.len = (last.span.col + last.span.len).saturating_sub(first.span.col);
    }
    Some(Spanned::new(text, span))
}

fn spanned(w: &Word) -> Spanned<String> {
    Spanned::new(w.text.clone(), w.span.clone())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            if let Some(c) = cur.get_mut(j + 1) {
                *c = sub.min(del).min(ins);
            }
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

/// Parse keepalived's decimal seconds (`5`, `0.5`, up to 6 decimals) into microseconds.
pub fn parse_secs(text: &str) -> Option<Secs> {
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 6
    {
        return None;
    }
    let whole: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut micros = whole.checked_mul(1_000_000)?;
    let mut scale = 100_000;
    for c in frac.chars() {
        micros = micros.checked_add(u64::from(c.to_digit(10)?) * scale)?;
        scale /= 10;
    }
    Some(Secs { micros })
}

impl<'a> Builder<'a> {
    /// A builder reporting into `s`.
    pub fn new(s: &'a mut Sources) -> Self {
        Builder {
            s,
            rule_preferences: RulePreferences::default(),
        }
    }

    fn unknown(&mut self, node: &Node, context: &str, known: &[&[&str]]) {
        let kw = node.keyword();
        let mut msg = format!("unknown keyword '{}' in {context}", kw.text);
        if context == "TCP_CHECK" && kw.text == "nb_get_retry" {
            msg.push_str(
                " (keepalived 2.2 accepts nb_get_retry only in HTTP_GET/SSL_GET; use 'retry')",
            );
        } else {
            let best = known
                .iter()
                .flat_map(|l| l.iter())
                .map(|k| (levenshtein(&kw.text, k), *k))
                .filter(|(d, k)| *d <= 2 && *d < k.len() / 2 + 1)
                .min();
            if let Some((_, k)) = best {
                msg.push_str(&format!(" (did you mean '{k}'?)"));
            }
        }
        msg.push_str("; ignored");
        let logged = Logged::AtLine(format!("Unknown keyword '{}'", kw.text));
        self.s.warn_logged(&kw.span, msg, logged);
    }

    /// Handle a keyword keepalived knows but lvsd does not model as a field; true if it was
    /// one. It is kept (for `--json`, the dumps and the few the director reads from here,
    /// [`HONOURED_OTHERS`]) and, unless honoured, warned about, never silently dropped: the
    /// simulator and the daemon run as if it were not there.
    fn other(&mut self, node: &Node, others: &[&str], into: &mut Vec<Spanned<String>>) -> bool {
        let kw = node.keyword();
        if !others.contains(&kw.text.as_str()) {
            return false;
        }
        if kw.text == "strict_mode" {
            self.s.warn(
                &kw.span,
                "'strict_mode' is valid keepalived: its configuration checks apply, but for its run-time rules (accept mode, adverts, GARPs) lvsd does not honour it; ignored",
            );
        } else if !HONOURED_OTHERS.contains(&kw.text.as_str()) {
            self.s.warn(
                &kw.span,
                format!(
                    "'{}' is valid keepalived but lvsd does not honour it; ignored",
                    kw.text
                ),
            );
        }
        if let Some(j) = joined(&node.words) {
            into.push(j);
        }
        true
    }

    fn arg<'n>(&mut self, node: &'n Node, i: usize) -> Option<&'n Word> {
        let w = node.words.get(i);
        if w.is_none() {
            let kw = node.keyword();
            self.s
                .error(&kw.span, format!("'{}' needs a value", kw.text));
        }
        w
    }

    fn need_block<'n>(&mut self, node: &'n Node) -> Option<&'n Block> {
        if node.block.is_none() {
            let kw = node.keyword();
            self.s
                .error(&kw.span, format!("'{}' needs a '{{' block", kw.text));
        }
        node.block.as_ref()
    }

    fn int<T: Int>(&mut self, w: &Word, min: i64, max: i64, what: &str) -> Option<Spanned<T>> {
        let parsed = w.text.parse::<i64>().ok();
        match parsed {
            Some(v) if v >= min && v <= max => {
                T::try_from(v).ok().map(|t| Spanned::new(t, w.span.clone()))
            }
            Some(_) => {
                self.s.error(
                    &w.span,
                    format!(
                        "{what} '{}' out of range: must be between {min} and {max}",
                        w.text
                    ),
                );
                None
            }
            None => {
                self.s
                    .error(&w.span, format!("{what} '{}' is not a number", w.text));
                None
            }
        }
    }

    /// keepalived's `read_unsigned`: the value of `w` when it is a whole number in
    /// [min, max]; otherwise keepalived's own line as a warning and None (keepalived carries on
    /// without the value, so the caller's default applies).
    fn ka_unsigned(&mut self, w: &Word, min: u32, max: u32) -> Option<u32> {
        self.s.read_unsigned(w, min, max)
    }

    /// keepalived's `read_int`: as [`Self::ka_unsigned`] for signed numbers.
    fn ka_int(&mut self, w: &Word, min: i32, max: i32) -> Option<i32> {
        let t = w.text.trim_start();
        let body = t.strip_prefix(['+', '-']).unwrap_or(t);
        let msg = if !body.chars().all(|c| c.is_ascii_digit()) {
            format!("invalid number '{}'", w.text)
        } else {
            match if body.is_empty() {
                Ok(0)
            } else {
                t.parse::<i64>()
            } {
                Ok(v) => match i32::try_from(v) {
                    Ok(v) if (min..=max).contains(&v) => return Some(v),
                    Ok(_) => format!("number '{}' outside range [{min}, {max}]", w.text),
                    Err(_) => format!("number '{}' outside integer range", w.text),
                },
                Err(_) => format!("number '{}' outside integer range", w.text),
            }
        };
        self.s.warn_as_keepalived(&w.span, msg);
        None
    }

    /// keepalived's `read_decimal_unsigned` with 6 decimals (seconds as TIMER_HZ): the value
    /// when it lies in [min_us, max_us] microseconds, else keepalived's line as a warning.
    fn ka_secs(&mut self, w: &Word, min_us: u64, max_us: u64) -> Option<Secs> {
        let msg = if w.text.trim_start().starts_with('-') {
            format!("negative number '{}'", w.text)
        } else {
            match parse_secs(w.text.trim_start()) {
                Some(s) if (min_us..=max_us).contains(&s.micros) => return Some(s),
                Some(_) => format!(
                    "number '{}' outside range [{}.{:06}, {}.{:06}]",
                    w.text,
                    min_us / 1_000_000,
                    min_us % 1_000_000,
                    max_us / 1_000_000,
                    max_us % 1_000_000
                ),
                None => format!("invalid number '{}'", w.text),
            }
        };
        self.s.warn_as_keepalived(&w.span, msg);
        None
    }

    fn int_arg<T: Int>(&mut self, node: &Node, min: i64, max: i64) -> Option<Spanned<T>> {
        let w = self.arg(node, 1)?;
        let what = node.keyword().text.clone();
        self.int(w, min, max, &what)
    }

    fn secs_arg(&mut self, node: &Node, min_us: u64, max_us: u64) -> Option<Spanned<Secs>> {
        let w = self.arg(node, 1)?;
        let kw = &node.keyword().text;
        match parse_secs(&w.text) {
            Some(s) if s.micros >= min_us && s.micros <= max_us => {
                Some(Spanned::new(s, w.span.clone()))
            }
            Some(_) => {
                self.s.error(
                    &w.span,
                    format!(
                        "{kw} '{}' out of range: must be between {} and {} seconds",
                        w.text,
                        Secs { micros: min_us }.display(),
                        Secs { micros: max_us }.display()
                    ),
                );
                None
            }
            None => {
                self.s.error(
                    &w.span,
                    format!("{kw} '{}' is not a number of seconds", w.text),
                );
                None
            }
        }
    }

    fn str_arg(&mut self, node: &Node) -> Option<Spanned<String>> {
        self.arg(node, 1).map(spanned)
    }

    fn cmd_arg(&mut self, node: &Node) -> Option<Spanned<String>> {
        self.arg(node, 1)?;
        joined(node.args())
    }

    fn flag(&mut self, node: &Node) -> Span {
        node.keyword().span.clone()
    }

    fn ip(&mut self, w: &Word) -> Option<Spanned<IpAddr>> {
        match IpAddr::from_str(&w.text) {
            Ok(a) => Some(Spanned::new(a, w.span.clone())),
            Err(_) => {
                self.s
                    .error(&w.span, format!("invalid IP address '{}'", w.text));
                None
            }
        }
    }

    fn ip_arg(&mut self, node: &Node) -> Option<Spanned<IpAddr>> {
        let w = self.arg(node, 1)?;
        self.ip(w)
    }

    fn port(&mut self, w: &Word) -> Option<Spanned<u16>> {
        self.int(w, 0, 65535, "port")
    }

    fn bool_opt(&mut self, node: &Node) -> Spanned<bool> {
        match node.words.get(1) {
            None => Spanned::new(true, node.keyword().span.clone()),
            Some(w) => match w.text.to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" => Spanned::new(true, w.span.clone()),
                "off" | "false" | "no" => Spanned::new(false, w.span.clone()),
                _ => {
                    self.s.error(
                        &w.span,
                        format!("'{}' is not on/off/true/false/yes/no", w.text),
                    );
                    Spanned::new(true, w.span.clone())
                }
            },
        }
    }

    fn name(&mut self, node: &Node) -> Spanned<String> {
        match node.words.get(1) {
            Some(w) => spanned(w),
            None => {
                let kw = node.keyword();
                self.s
                    .error(&kw.span, format!("'{}' needs a name", kw.text));
                Spanned::new(String::new(), kw.span.clone())
            }
        }
    }

    /// A `keyword NAME { ... }` block parsed by `parse`; `None` (after the error) without a block.
    fn named_block<T>(
        &mut self,
        node: &Node,
        parse: impl FnOnce(&mut Self, Spanned<String>, &Block) -> T,
    ) -> Option<T> {
        let name = self.name(node);
        let b = self.need_block(node)?;
        Some(parse(self, name, b))
    }

    /// A block of bare words (`notification_email { ... }`, `group { ... }`): every word of
    /// every line, in order.
    fn word_block(&mut self, node: &Node, out: &mut Vec<Spanned<String>>) {
        if let Some(b) = self.need_block(node) {
            for line in &b.nodes {
                out.extend(line.words.iter().map(spanned));
            }
        }
    }

    /// The whole file.
    pub fn config(&mut self, nodes: &[Node]) -> Config {
        let mut c = Config::default();
        for node in nodes {
            self.s.part = part_of(node.keyword().text.as_str());
            match node.keyword().text.as_str() {
                "global_defs" => {
                    if let Some(b) = self.need_block(node) {
                        self.global_defs(b, &mut c.global_defs);
                    }
                }
                "vrrp_script" => c
                    .vrrp_scripts
                    .extend(self.named_block(node, Self::vrrp_script).flatten()),
                "vrrp_sync_group" => c
                    .vrrp_sync_groups
                    .extend(self.named_block(node, Self::sync_group)),
                "vrrp_instance" => c
                    .vrrp_instances
                    .extend(self.named_block(node, Self::instance)),
                "virtual_server_group" => c
                    .virtual_server_groups
                    .extend(self.named_block(node, Self::vs_group)),
                "virtual_server" => c.virtual_servers.extend(self.virtual_server(node)),
                k @ ("static_routes" | "static_rules") => {
                    self.routes_or_rules(node, true);
                    let kw = node.keyword();
                    self.s.warn(
                        &kw.span,
                        format!("'{k}' is valid keepalived but not supported by lvsd; ignored"),
                    );
                }
                k if ROOT_OTHER.contains(&k) => {
                    let kw = node.keyword();
                    self.s.warn(
                        &kw.span,
                        format!("'{k}' is valid keepalived but not supported by lvsd; ignored"),
                    );
                }
                _ => self.unknown(node, "the top level", &[ROOT, ROOT_OTHER]),
            }
        }
        self.s.part = Part::File;
        c
    }
}

/// The keepalived process whose parser reads a top-level block.
fn part_of(keyword: &str) -> Part {
    match keyword {
        "global_defs" => Part::Global,
        "virtual_server" | "virtual_server_group" => Part::Check,
        k if k.starts_with("vrrp_") || k.starts_with("static_") => Part::Vrrp,
        _ => Part::File,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_with_fractions() {
        assert_eq!(parse_secs("5"), Some(Secs { micros: 5_000_000 }));
        assert_eq!(parse_secs("0.5"), Some(Secs { micros: 500_000 }));
        assert_eq!(parse_secs(".25"), Some(Secs { micros: 250_000 }));
        assert_eq!(parse_secs("1.000001"), Some(Secs { micros: 1_000_001 }));
        assert_eq!(parse_secs("1.0000001"), None);
        assert_eq!(parse_secs("-1"), None);
        assert_eq!(parse_secs("."), None);
        assert_eq!(parse_secs("abc"), None);
        assert_eq!(Secs { micros: 1_500_000 }.display(), "1.5");
    }

    #[test]
    fn edit_distance() {
        assert_eq!(levenshtein("smtp_alter", "smtp_alert"), 2);
        assert_eq!(
            levenshtein("lvs_sync_daemon_inteface", "lvs_sync_daemon_interface"),
            1
        );
        assert_eq!(levenshtein("", "ab"), 2);
    }
}
