//! The block structure, as keepalived 2.2.7's parser (lib/parser.c `process_stream`) finds it.
//!
//! keepalived's parser is keyword-driven: a `{` opens a block only after a keyword that has
//! one — a level of sub-keywords (`install_sublevel`) or a block of values
//! (`alloc_value_block`). After any other keyword, known or not, a `{` is "Unexpected '{' -
//! ignoring", what follows is read at the same level, and the next `}` closes the enclosing
//! block. So the structure depends on the keywords, and on the process reading the file:
//! each keepalived process reads only its own top-level blocks by keyword and skips the
//! others by counting braces. [`build`] gives one process's [`View`]; [`check_braces`] the
//! brace count every process makes as it reads lines.

use super::diagnostic::{Logged, Span};
use super::lexer::{Line, Sources, Word};

/// A statement: its words (keyword first) and the block that followed it, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Keyword and arguments, never empty.
    pub words: Vec<Word>,
    /// The block of a keyword that has one (the `{` may be on the next line).
    pub block: Option<Block>,
}

impl Node {
    /// The keyword word.
    pub fn keyword(&self) -> &Word {
        // `words` is never empty: the lexer emits no empty lines.
        &self.words[0]
    }

    /// The arguments after the keyword.
    pub fn args(&self) -> &[Word] {
        self.words.get(1..).unwrap_or(&[])
    }
}

/// A `{ ... }` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The opening brace (the keyword, where keepalived found none and read on without it).
    pub open: Span,
    /// Its statements.
    pub nodes: Vec<Node>,
    /// The closing brace (none when the file ends inside the block); keepalived logs what it
    /// finds at the end of a block on this line.
    pub close: Option<Span>,
}

/// The keepalived process whose reading of the file a tree is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum View {
    /// The parent: `global_defs` and the global root keywords.
    Parent,
    /// The VRRP child: the `vrrp_*` and `static_*` blocks (and BFD, track_file).
    Vrrp,
    /// The checker child: `virtual_server*` and `SSL` (and BFD, track_file).
    Check,
}

impl View {
    /// The three processes, in the order keepalived -t reports them.
    pub const ALL: [View; 3] = [View::Parent, View::Check, View::Vrrp];
}

/// What keepalived reads after a keyword.
#[derive(Copy, Clone, Debug)]
enum Follow {
    /// Nothing: the keyword has no block.
    Nothing,
    /// `alloc_value_block`: lines of values up to the next `}`; `named` when the keyword's
    /// line carries a name (virtual_server_group), which is no extra parameter.
    Values { named: bool },
    /// A level of keywords (`install_sublevel`); keywords not listed have no block.
    Keywords(&'static [(&'static str, Follow)]),
}

const VALUES: Follow = Follow::Values { named: false };

/// Which process reads a top-level keyword by keyword (the others skip its block).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Owner {
    /// `init_global_keywords`: the parent (the children only on reload).
    Global,
    /// `init_vrrp_keywords`.
    Vrrp,
    /// `init_check_keywords`.
    Check,
    /// `init_bfd_keywords` and `add_track_file_keywords`: both children.
    Children,
}

impl Owner {
    fn reads(self, view: View) -> bool {
        matches!(
            (self, view),
            (Owner::Global, View::Parent)
                | (Owner::Vrrp, View::Vrrp)
                | (Owner::Check, View::Check)
                | (Owner::Children, View::Vrrp | View::Check)
        )
    }
}

/// global_parser.c: only `notification_email` has a block.
const GLOBAL_DEFS: &[(&str, Follow)] = &[("notification_email", VALUES)];

/// vrrp_parser.c, `vrrp_sync_group`.
const SYNC_GROUP: &[(&str, Follow)] = &[
    ("group", VALUES),
    ("track_interface", VALUES),
    ("track_script", VALUES),
    ("track_file", VALUES),
    ("track_process", VALUES),
    ("track_bfd", VALUES),
];

/// vrrp_parser.c, `vrrp_instance`.
const INSTANCE: &[(&str, Follow)] = &[
    ("unicast_peer", VALUES),
    ("track_interface", VALUES),
    ("track_script", VALUES),
    ("track_file", VALUES),
    ("track_process", VALUES),
    ("track_bfd", VALUES),
    ("virtual_ipaddress", VALUES),
    ("virtual_ipaddress_excluded", VALUES),
    ("virtual_routes", VALUES),
    ("virtual_rules", VALUES),
    ("authentication", Follow::Keywords(&[])),
];

/// check_http.c: HTTP_GET / SSL_GET and their `url` level.
const HTTP: &[(&str, Follow)] = &[("url", Follow::Keywords(&[]))];

/// check_parser.c's `real_server` level and the checkers check_api.c installs in it.
const REAL_SERVER: &[(&str, Follow)] = &[
    ("HTTP_GET", Follow::Keywords(HTTP)),
    ("SSL_GET", Follow::Keywords(HTTP)),
    ("TCP_CHECK", Follow::Keywords(&[])),
    ("MISC_CHECK", Follow::Keywords(&[])),
    // check_smtp.c keeps the deprecated `host` level (WITH_HOST_ENTRIES).
    (
        "SMTP_CHECK",
        Follow::Keywords(&[("host", Follow::Keywords(&[]))]),
    ),
    ("DNS_CHECK", Follow::Keywords(&[])),
    ("FILE_CHECK", Follow::Keywords(&[])),
    ("PING_CHECK", Follow::Keywords(&[])),
    ("UDP_CHECK", Follow::Keywords(&[])),
    ("BFD_CHECK", Follow::Keywords(&[])),
];

/// check_parser.c, `virtual_server`.
const VIRTUAL_SERVER: &[(&str, Follow)] = &[("real_server", Follow::Keywords(REAL_SERVER))];

/// Every top-level keyword keepalived 2.2.7 installs (include is the line reader's).
const ROOTS: &[(&str, Owner, Follow)] = &[
    ("linkbeat_use_polling", Owner::Global, Follow::Nothing),
    ("net_namespace", Owner::Global, Follow::Nothing),
    ("net_namespace_ipvs", Owner::Global, Follow::Nothing),
    ("namespace_with_ipsets", Owner::Global, Follow::Nothing),
    ("use_pid_dir", Owner::Global, Follow::Nothing),
    ("instance", Owner::Global, Follow::Nothing),
    ("child_wait_time", Owner::Global, Follow::Nothing),
    ("global_defs", Owner::Global, Follow::Keywords(GLOBAL_DEFS)),
    (
        "track_group",
        Owner::Vrrp,
        Follow::Keywords(&[("group", VALUES)]),
    ),
    ("static_ipaddress", Owner::Vrrp, VALUES),
    ("static_routes", Owner::Vrrp, VALUES),
    ("static_rules", Owner::Vrrp, VALUES),
    ("vrrp_sync_group", Owner::Vrrp, Follow::Keywords(SYNC_GROUP)),
    (
        "garp_group",
        Owner::Vrrp,
        Follow::Keywords(&[("interfaces", VALUES)]),
    ),
    ("linkbeat_interfaces", Owner::Vrrp, VALUES),
    ("vrrp_instance", Owner::Vrrp, Follow::Keywords(INSTANCE)),
    ("vrrp_script", Owner::Vrrp, Follow::Keywords(&[])),
    ("vrrp_track_process", Owner::Vrrp, Follow::Keywords(&[])),
    ("interface_up_down_delays", Owner::Vrrp, VALUES),
    ("SSL", Owner::Check, Follow::Keywords(&[])),
    (
        "virtual_server_group",
        Owner::Check,
        Follow::Values { named: true },
    ),
    (
        "virtual_server",
        Owner::Check,
        Follow::Keywords(VIRTUAL_SERVER),
    ),
    ("bfd_instance", Owner::Children, Follow::Keywords(&[])),
    ("track_file", Owner::Children, Follow::Keywords(&[])),
    ("vrrp_track_file", Owner::Children, Follow::Keywords(&[])),
];

fn follow(level: &[(&str, Follow)], keyword: &str) -> Follow {
    level
        .iter()
        .find(|(k, _)| *k == keyword)
        .map_or(Follow::Nothing, |(_, f)| *f)
}

/// keepalived's brace count over every line (`read_line`'s `block_depth`, the same in each
/// process): a `}` with no `{` open is "Extra '}' found"; `{`s left open at the end are
/// "There are N missing '}'s or extra '{'s", reported at the first of them.
pub fn check_braces(lines: &[Line], sources: &mut Sources) {
    let mut open: Vec<&Span> = Vec::new();
    for w in lines.iter().filter_map(|l| l.first()) {
        if w.is_open() {
            open.push(&w.span);
        } else if w.is_close() && open.pop().is_none() {
            sources.warn_logged(
                &w.span,
                "extra '}' found (keepalived reads it as a keyword)",
                Logged::AtLine("Extra '}' found".to_string()),
            );
        }
    }
    if let Some(first) = open.first() {
        let n = open.len();
        sources.warn_logged(
            first,
            format!("{n} '{{' never closed by a '}}'"),
            Logged::Unplaced(format!("There are {n} missing '}}'s or extra '{{'s")),
        );
    }
}

/// The statement tree as `view`'s process reads it: its own top-level blocks by keyword,
/// the other processes' blocks left out (skipped by counting braces, as keepalived skips an
/// inactive keyword's block).
pub fn build(lines: Vec<Line>, view: View, sources: &mut Sources) -> Vec<Node> {
    let mut r = Reader {
        it: lines.into_iter().peekable(),
        view,
        s: sources,
        named: std::collections::BTreeSet::new(),
    };
    let (nodes, _) = r.level(None);
    nodes
}

struct Reader<'s> {
    it: std::iter::Peekable<std::vec::IntoIter<Line>>,
    view: View,
    s: &'s mut Sources,
    /// (keyword, name) of the named top-level blocks read so far.
    named: std::collections::BTreeSet<(String, String)>,
}

impl Reader<'_> {
    /// One level of keywords up to its `}` (`level` None: the top, which `}` does not end);
    /// the `}` that ended it.
    fn level(&mut self, level: Option<&[(&str, Follow)]>) -> (Vec<Node>, Option<Span>) {
        let mut nodes = Vec::new();
        while let Some(line) = self.it.next() {
            let Some(first) = line.first() else { continue };
            if first.is_open() {
                let span = first.span.clone();
                self.unexpected_open(&span);
                continue;
            }
            let follow = match level {
                Some(level) => {
                    if first.is_close() {
                        return (nodes, Some(first.span.clone()));
                    }
                    let f = follow(level, &first.text);
                    if first.text == "real_server"
                        && matches!(f, Follow::Keywords(_))
                        && self.refused(&line)
                    {
                        self.skip_block();
                        continue;
                    }
                    f
                }
                None => match ROOTS.iter().find(|(k, ..)| *k == first.text) {
                    Some((_, owner, _)) if !owner.reads(self.view) => {
                        self.skip_block();
                        continue;
                    }
                    Some(_) if self.refused(&line) => {
                        self.skip_block();
                        continue;
                    }
                    Some((_, _, f)) => *f,
                    // An unknown keyword (a `}` too): the parser's to report.
                    None => Follow::Nothing,
                },
            };
            let block = match follow {
                Follow::Nothing => None,
                Follow::Values { named } => Some(self.values(&line, named)),
                Follow::Keywords(sub) => {
                    let open = self.open(&line, true);
                    let (sub_nodes, close) = self.level(Some(sub));
                    Some(Block {
                        open,
                        nodes: sub_nodes,
                        close,
                    })
                }
            };
            nodes.push(Node { words: line, block });
        }
        (nodes, None)
    }

    /// Whether the handler of a top-level block refuses it, which then skips the block by
    /// counting braces (`skip_block`): a vrrp_instance or vrrp_sync_group with no name, or
    /// with the name of one read before (vrrp_parser.c).
    fn refused(&mut self, line: &Line) -> bool {
        let kw = &line[0];
        if kw.text == "virtual_server" || kw.text == "real_server" {
            return self.bad_server(line);
        }
        let (no_name, again) = match kw.text.as_str() {
            "vrrp_instance" => ("vrrp_instance must have a name", "vrrp instance"),
            "vrrp_sync_group" => (
                "vrrp_sync_group must have a name - skipping",
                "vrrp sync group",
            ),
            _ => return false,
        };
        let logged = match line.get(1).filter(|_| line.len() == 2) {
            None => no_name.to_string(),
            Some(name) if !self.named.insert((kw.text.clone(), name.text.clone())) => {
                format!("{again} {} already defined", name.text)
            }
            Some(_) => return false,
        };
        self.refuse(&kw.span, logged);
        true
    }

    /// check_data.c alloc_vs / alloc_rs: a server whose address or port keepalived's
    /// `inet_stosockaddr` cannot read (a port of zeros is none; `-range` or `/mask` after the
    /// address is not looked at), or a fwmark outside 32 bits, is refused.
    fn bad_server(&mut self, line: &Line) -> bool {
        let (Some(first), second) = (line.get(1), line.get(2)) else {
            return false;
        };
        let vs = line[0].text == "virtual_server";
        if vs && first.text == "group" {
            return false;
        }
        if vs && first.text == "fwmark" {
            let Some(mark) = second else { return false };
            if self.s.read_unsigned(mark, 0, u32::MAX).is_some() {
                return false;
            }
            let logged = format!(
                "virtual server fwmark '{}' must be in [0, {}] - ignoring",
                mark.text,
                u32::MAX
            );
            self.refuse(&mark.span, logged);
            return true;
        }
        let port = second.filter(|p| !p.text.chars().all(|c| c == '0'));
        let port_ok = port.is_none_or(|p| self.s.read_unsigned(p, 1, 65535).is_some());
        let cut = first
            .text
            .find('-')
            .or_else(|| first.text.find('/'))
            .unwrap_or(first.text.len());
        let ip = &first.text[..cut];
        let addr_ok = if ip.contains(':') {
            ip.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            ip.parse::<std::net::Ipv4Addr>().is_ok()
        };
        if port_ok && addr_ok {
            return false;
        }
        let logged = match (vs, port) {
            (true, Some(p)) => format!(
                "Invalid virtual server IP address/port {}/{} - skipping",
                first.text, p.text
            ),
            (true, None) => format!(
                "Invalid virtual server IP address {} - skipping",
                first.text
            ),
            (false, _) => format!(
                "Invalid real server ip address/port {}/{} - skipping",
                first.text,
                second.map_or("(null)", |w| w.text.as_str())
            ),
        };
        self.refuse(&first.span, logged);
        true
    }

    fn refuse(&mut self, span: &Span, logged: String) {
        self.s.warn_logged(
            span,
            format!("{logged}; keepalived skips this block"),
            Logged::AtLine(logged),
        );
    }

    fn unexpected_open(&mut self, span: &Span) {
        self.s.warn_logged(
            span,
            "unexpected '{': what comes before it takes no block; ignored (what follows is read at this level, and the next '}' closes the enclosing block)",
            Logged::AtLine("Unexpected '{' - ignoring".to_string()),
        );
    }

    /// The `{` after a keyword with a block: consumed and returned; when the next line is
    /// something else, keepalived reads on as if it had been there (a level of keywords
    /// logs "Missing '{'", a block of values only an info line -t does not print).
    fn open(&mut self, line: &Line, keywords: bool) -> Span {
        let kw = &line[0];
        match self.it.peek().and_then(|l| l.first()) {
            Some(w) if w.is_open() => {
                let span = w.span.clone();
                self.it.next();
                span
            }
            Some(w) => {
                let span = w.span.clone();
                if keywords {
                    self.s.warn_logged(
                        &span,
                        format!(
                            "missing '{{' after '{}'; keepalived reads this line as the block's first",
                            kw.text
                        ),
                        Logged::AtLine(
                            "Missing '{' at beginning of configuration block".to_string(),
                        ),
                    );
                } else {
                    self.s.warn(
                        &span,
                        format!(
                            "missing '{{' after '{}'; keepalived reads this line as the block's first",
                            kw.text
                        ),
                    );
                }
                kw.span.clone()
            }
            None => kw.span.clone(),
        }
    }

    /// `alloc_value_block`: the lines up to the next `}`, as values (a `{` among them too).
    fn values(&mut self, line: &Line, named: bool) -> Block {
        let first_extra = if named { 2 } else { 1 };
        match line.get(first_extra) {
            // vsg_handler hands alloc_value_block a copy of the line whose first word is
            // missing, which keepalived's parser takes as a fatal missing parameter.
            Some(extra) if named => {
                self.s
                    .error(&extra.span, format!("'{}' takes a name only", line[0].text));
                if let Some(d) = self.s.diagnostics.last_mut() {
                    d.keepalived = Some(Logged::AtLine(
                        "*** Configuration line starting `***MISSING ***` is missing a parameter at word position 1".to_string(),
                    ));
                }
            }
            Some(extra) => self.s.warn_logged(
                &extra.span,
                format!("'{}' takes no parameters here; ignored", line[0].text),
                Logged::AtLine(format!(
                    "Block {} has extra parameters {} ...",
                    line[0].text, extra.text
                )),
            ),
            None => {}
        }
        let open = self.open(line, false);
        let mut nodes = Vec::new();
        let mut close = None;
        for l in self.it.by_ref() {
            match l.first() {
                Some(w) if w.is_close() => {
                    close = Some(w.span.clone());
                    break;
                }
                Some(_) => nodes.push(Node {
                    words: l,
                    block: None,
                }),
                None => {}
            }
        }
        Block { open, nodes, close }
    }

    /// Another process's top-level block: skipped whole when a `{` follows, counting braces
    /// (keepalived's `skip_sublevel`); nothing is skipped when none does.
    fn skip_block(&mut self) {
        if !self
            .it
            .peek()
            .and_then(|l| l.first())
            .is_some_and(Word::is_open)
        {
            return;
        }
        let mut depth = 0usize;
        for l in self.it.by_ref() {
            match l.first() {
                Some(w) if w.is_open() => depth += 1,
                Some(w) if w.is_close() => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::lex;
    use super::*;

    fn tree(text: &str, view: View) -> (Vec<Node>, Sources) {
        let mut s = Sources::default();
        let lines = lex("f", text, &mut s);
        check_braces(&lines, &mut s);
        let t = build(lines, view, &mut s);
        (t, s)
    }

    fn keywords(nodes: &[Node]) -> Vec<&str> {
        nodes.iter().map(|n| n.keyword().text.as_str()).collect()
    }

    fn logged(s: &Sources) -> Vec<(u32, String)> {
        let mut out: Vec<(u32, String)> = s
            .diagnostics
            .iter()
            .filter_map(|d| match d.keepalived.clone()? {
                Logged::AtLine(t) => Some((d.span.line, t)),
                Logged::Unplaced(t) => Some((0, t)),
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn brace_on_next_line_opens_the_block() {
        let (t, s) = tree(
            "vrrp_instance A\n{\n state MASTER\n authentication\n {\n  auth_type PASS\n }\n}\n",
            View::Vrrp,
        );
        assert!(s.diagnostics.is_empty());
        assert_eq!(keywords(&t), vec!["vrrp_instance"]);
        let a = t[0].block.as_ref().map(|b| keywords(&b.nodes));
        assert_eq!(a, Some(vec!["state", "authentication"]));
    }

    #[test]
    fn a_brace_after_a_keyword_without_block_is_ignored_and_the_next_close_ends_the_block() {
        let (t, s) = tree(
            "vrrp_instance A {\n nopreempt {priority 150}\n advert_int 2\n}\n",
            View::Vrrp,
        );
        assert_eq!(keywords(&t), vec!["vrrp_instance", "advert_int", "}"]);
        let a = t[0].block.as_ref().map(|b| keywords(&b.nodes));
        assert_eq!(a, Some(vec!["nopreempt", "priority"]));
        assert_eq!(
            logged(&s),
            vec![(2, "Unexpected '{' - ignoring".to_string())]
        );
    }

    #[test]
    fn other_processes_blocks_are_skipped_by_counting_braces() {
        let text = "vrrp_instance A {\n nopreempt {priority 150}\n}\nvirtual_server 1.2.3.4 80 {\n ha_suspend {lb_algo rr}\n}\nbogus\n";
        let (t, s) = tree(text, View::Parent);
        assert_eq!(keywords(&t), vec!["bogus"]);
        assert!(s.diagnostics.is_empty());
        let (t, _) = tree(text, View::Check);
        // The checker reads its own block by keyword: the `}` after `rr` closes it.
        assert_eq!(keywords(&t), vec!["virtual_server", "}", "bogus"]);
        let vs = t[0].block.as_ref().map(|b| keywords(&b.nodes));
        assert_eq!(vs, Some(vec!["ha_suspend", "lb_algo"]));
    }

    #[test]
    fn values_run_to_the_next_close() {
        let (t, s) = tree(
            "vrrp_instance A {\n virtual_ipaddress {\n  10.0.0.1\n  {\n  10.0.0.2\n }\n priority 1\n}\n",
            View::Vrrp,
        );
        assert_eq!(keywords(&t), vec!["vrrp_instance"]);
        let b = t[0].block.as_ref().map(|b| keywords(&b.nodes));
        assert_eq!(b, Some(vec!["virtual_ipaddress", "priority"]));
        let vips = t[0].block.as_ref().and_then(|b| b.nodes[0].block.as_ref());
        assert_eq!(
            vips.map(|v| keywords(&v.nodes)),
            Some(vec!["10.0.0.1", "{", "10.0.0.2"])
        );
        // The brace count is keepalived's too: one `{` left open.
        assert_eq!(
            logged(&s),
            vec![(0, "There are 1 missing '}'s or extra '{'s".to_string())]
        );
    }

    #[test]
    fn a_missing_open_brace_reads_on_in_the_block() {
        let (t, s) = tree(
            "vrrp_instance A {\n authentication\n  auth_type PASS\n }\n priority 130\n}\n",
            View::Vrrp,
        );
        let b = t[0].block.as_ref().map(|b| keywords(&b.nodes));
        assert_eq!(b, Some(vec!["authentication", "priority"]));
        assert_eq!(
            logged(&s),
            vec![
                (
                    3,
                    "Missing '{' at beginning of configuration block".to_string()
                ),
                (6, "Extra '}' found".to_string()),
            ]
        );
    }

    #[test]
    fn refused_blocks_are_skipped_by_counting_braces() {
        let text = "vrrp_instance A {\n priority 1\n}\nvrrp_instance A {\n nopreempt {priority 2}\n}\nvrrp_instance {\n x\n}\nvrrp_sync_group G {\n}\nvrrp_sync_group G {\n}\n";
        let (t, s) = tree(text, View::Vrrp);
        assert_eq!(keywords(&t), vec!["vrrp_instance", "vrrp_sync_group"]);
        assert_eq!(
            logged(&s),
            vec![
                (4, "vrrp instance A already defined".to_string()),
                (7, "vrrp_instance must have a name".to_string()),
                (12, "vrrp sync group G already defined".to_string()),
            ]
        );
    }

    #[test]
    fn extra_close_brace() {
        let (t, s) = tree("global_defs {\n}\n}\n", View::Parent);
        assert_eq!(keywords(&t), vec!["global_defs", "}"]);
        assert_eq!(logged(&s), vec![(3, "Extra '}' found".to_string())]);
        assert!(!s.diagnostics[0].is_error());
    }

    #[test]
    fn deep_nesting_is_bounded() {
        // No keyword of keepalived's nests without bound: the depth is the keyword table's.
        let text = "virtual_server 1.2.3.4 80 {\n real_server 1.2.3.5 80 {\n".repeat(2000);
        let (t, _) = tree(&text, View::Check);
        assert_eq!(t.len(), 1);
    }
}
