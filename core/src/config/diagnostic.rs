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
}

impl Diagnostic {
    /// `FILE:LINE:COL: warning|error: message`, then the source line and carets under the token.
    pub fn render(&self) -> String {
        let mut out = format!("{}: {}: {}\n", self.span, self.severity, self.message);
        let line = self.source_line.trim_end_matches(['\r', '\n']);
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
        out.push_str("    ");
        // Keep tabs so the caret lines up with the token whatever the tab width.
        for c in line.chars().take(self.span.col.saturating_sub(1) as usize) {
            out.push(if c == '\t' { '\t' } else { ' ' });
        }
        for _ in 0..self.span.len.max(1) {
            out.push('^');
        }
        out.push('\n');
        out
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
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
        };
        assert_eq!(
            d.render(),
            "k.conf:3:14: error: priority 300 out of range\n    \tpriority    300 # high\n    \t            ^^^\n"
        );
    }
}
