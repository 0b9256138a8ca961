//! Source positions and the diagnostics that point at them.

use std::fmt;

/// Where a token sits: file, 1-based line, 1-based column (in characters), length in characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// File name as given to the parser (or as an include expanded it).
    pub file: String,
    /// Line, from 1.
    pub line: u32,
    /// Column of the token's first character, from 1.
    pub col: u32,
    /// Token length in characters (at least 1 for the caret).
    pub len: u32,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

// `--json` shows a span as the compact `FILE:LINE:COL` an editor understands.
impl serde::Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A value with the span of the token it was read from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Spanned<T> {
    /// The typed value.
    pub value: T,
    /// Where it was written.
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Pair a value with its span.
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

/// How bad a diagnostic is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Severity {
    /// The config is still usable (keepalived would carry on).
    Warning,
    /// The config is not usable as written.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// The part of the file a diagnostic is about, by the keepalived process that reads it:
/// keepalived parses the file once per process, and each process logs the problems it
/// finds in its own blocks, plus the file-level ones (braces, includes, unknown top-level
/// keywords) that every process meets.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Outside any block: every process.
    #[default]
    File,
    /// `global_defs`: the parent process.
    Global,
    /// `vrrp_*` blocks and the checks across them: the VRRP child.
    Vrrp,
    /// `virtual_server*` blocks and their checkers: the checker child.
    Check,
}

/// The line keepalived 2.2.7 logs for the same problem, without its position prefix.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Logged {
    /// Logged as `(FILE: Line N) TEXT` (the parent: `(Line N) TEXT`).
    AtLine(String),
    /// Logged without a position (the checks keepalived makes after reading the file).
    Unplaced(String),
}

/// One message about the config, pointing at a token.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Warning or error.
    pub severity: Severity,
    /// The token the message is about.
    pub span: Span,
    /// What is wrong, in one line.
    pub message: String,
    /// The source line holding the token (without its line break), for the caret display.
    pub source_line: String,
    /// Which keepalived process meets it.
    pub part: Part,
    /// What keepalived logs for it; None where keepalived says nothing (lvsd's own advice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalived: Option<Logged>,
}

impl Diagnostic {
    /// `FILE:LINE:COL: warning|error: message`, then the source line and carets under the token.
    pub fn render(&self) -> String {
        let mut out = format!("{}: {}: {}\n", self.span, self.severity, self.message);
        if self.span.line == 0 {
            // Not about a line (e.g. the file could not be read): nothing to point at.
            return out;
        }
        let line = self.source_line.trim_end_matches(['\r', '\n']);
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
        out.push_str("    ");
        let mut chars = line.chars();
        // Keep tabs so the caret lines up with the token whatever the tab width; wide
        // (CJK) characters take two columns in a terminal.
        for c in chars
            .by_ref()
            .take(self.span.col.saturating_sub(1) as usize)
        {
            if c == '\t' {
                out.push('\t');
            } else {
                out.push_str(&" ".repeat(char_width(c)));
            }
        }
        let width: usize = chars.take(self.span.len as usize).map(char_width).sum();
        out.push_str(&"^".repeat(width.max(1)));
        out.push('\n');
        out
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// keepalived's report lines (`(FILE: Line N) TEXT`, `(Line N) TEXT`, `TEXT`, as
/// `keepalived -t` prints them or its log carries them) that `keep` accepts, read back as
/// `(line, text)`: line 0 where keepalived gives none; sorted and without repeats (keepalived
/// reports once per process). The form of [`crate::config::Parsed::keepalived_log`].
pub fn read_keepalived_lines(output: &str, keep: impl Fn(&str) -> bool) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = output
        .lines()
        .filter(|l| !l.starts_with("exit status:") && keep(l))
        .map(|l| {
            let placed = l
                .strip_prefix('(')
                .and_then(|r| r.split_once("Line "))
                .and_then(|(_, r)| r.split_once(") "))
                .and_then(|(n, text)| Some((n.parse().ok()?, text.to_string())));
            placed.unwrap_or((0, l.to_string()))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Terminal columns a character takes: 2 for East Asian wide/fullwidth ones, else 1.
fn char_width(c: char) -> usize {
    let wide = matches!(u32::from(c),
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6 | 0x1F300..=0x1F64F | 0x1F900..=0x1F9FF | 0x20000..=0x3FFFD);
    if wide {
        2
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_puts_carets_under_the_token() {
        let d = Diagnostic {
            severity: Severity::Error,
            span: Span {
                file: "k.conf".into(),
                line: 3,
                col: 14,
                len: 3,
            },
            message: "priority 300 out of range".into(),
            source_line: "\tpriority    300 # high".into(),
            part: Part::Vrrp,
            keepalived: None,
        };
        assert_eq!(
            d.render(),
            "k.conf:3:14: error: priority 300 out of range\n    \tpriority    300 # high\n    \t            ^^^\n"
        );
    }

    #[test]
    fn wide_characters_take_two_columns() {
        let d = Diagnostic {
            severity: Severity::Warning,
            span: Span {
                file: "k".into(),
                line: 1,
                col: 4,
                len: 2,
            },
            message: "m".into(),
            source_line: "认证 致）".into(),
            part: Part::File,
            keepalived: None,
        };
        assert_eq!(
            d.render(),
            "k:1:4: warning: m\n    认证 致）\n         ^^^^\n"
        );
        let d = Diagnostic {
            span: Span {
                file: "k".into(),
                line: 0,
                col: 0,
                len: 1,
            },
            ..d
        };
        assert_eq!(d.render(), "k:0:0: warning: m\n");
    }
}
