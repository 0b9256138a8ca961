//! keepalived.conf: lexer, parser with spans, typed model and diagnostics.
//!
//! The pipeline is `lexer` (lines, comments, quotes, braces, includes) -> `tree` (blocks) ->
//! `parser` (keywords into the typed [`Config`]) -> `validate` (cross-block checks).
//! Files are read through a [`Loader`] so this crate never touches the file system.

pub mod diagnostic;
pub mod files;
pub mod lexer;
pub mod model;
pub mod parser;
pub mod rules;
pub mod tree;
pub mod validate;

pub use diagnostic::{Diagnostic, Severity, Span, Spanned};
pub use files::{FileSet, Recording};
pub use lexer::{Loader, NoFiles};
pub use model::*;

/// The result of parsing: the model (None only when there are errors) and every diagnostic.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    /// The typed config; None when any diagnostic is an error.
    pub config: Option<Config>,
    /// Warnings and errors, sorted by file (in reading order), line and column.
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// True when some diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The lines keepalived 2.2.7 would log about the file: `(line, text)`, line 0 where
    /// keepalived gives none, sorted and without repeats (as
    /// [`diagnostic::read_keepalived_lines`] reads keepalived's own).
    pub fn keepalived_log(&self) -> Vec<(u32, String)> {
        let mut ours: Vec<(u32, String)> = self
            .diagnostics
            .iter()
            .filter_map(|d| match d.keepalived.clone()? {
                diagnostic::Logged::AtLine(text) => Some((d.span.line, text)),
                diagnostic::Logged::Unplaced(text) => Some((0, text)),
            })
            .collect();
        ours.sort();
        ours.dedup();
        ours
    }
}

/// Parse the file at `path` and everything it includes.
pub fn parse(path: &str, loader: &dyn Loader) -> Parsed {
    let mut sources = lexer::Sources::for_loader(loader);
    match loader.read(path) {
        Ok(text) => {
            let lines = lexer::lex_with_includes(path, &text, loader, &mut sources, 0);
            finish(lines, sources)
        }
        Err(e) => {
            let span = Span {
                file: path.to_string(),
                line: 0,
                col: 0,
                len: 1,
            };
            sources.error(&span, format!("cannot read config file: {e}"));
            Parsed {
                config: None,
                diagnostics: sources.diagnostics,
            }
        }
    }
}

/// Parse in-memory text named `name` (`include` finds no files).
pub fn parse_str(name: &str, text: &str) -> Parsed {
    parse_text(name, text, &NoFiles)
}

/// Parse in-memory text named `name`, resolving `include` through `loader`.
pub fn parse_text(name: &str, text: &str, loader: &dyn Loader) -> Parsed {
    let mut sources = lexer::Sources::for_loader(loader);
    let lines = lexer::lex_with_includes(name, text, loader, &mut sources, 0);
    finish(lines, sources)
}

fn finish(lines: Vec<lexer::Line>, mut sources: lexer::Sources) -> Parsed {
    tree::check_braces(&lines, &mut sources);
    // keepalived reads the file once per process, each its own blocks by keyword: the
    // model takes each part from the process that reads it, and a problem every process
    // meets is said once.
    let before = sources.diagnostics.len();
    let mut config = Config::default();
    let mut seen: Vec<(Diagnostic, usize)> = Vec::new();
    for view in tree::View::ALL {
        sources.part = diagnostic::Part::File;
        let nodes = tree::build(lines.clone(), view, &mut sources);
        let c = parser::Builder::new(&mut sources).config(&nodes);
        match view {
            tree::View::Parent => config.global_defs = c.global_defs,
            tree::View::Vrrp => {
                config.vrrp_scripts = c.vrrp_scripts;
                config.vrrp_sync_groups = c.vrrp_sync_groups;
                config.vrrp_instances = c.vrrp_instances;
            }
            tree::View::Check => {
                config.virtual_server_groups = c.virtual_server_groups;
                config.virtual_servers = c.virtual_servers;
            }
        }
        for mut d in sources.diagnostics.split_off(before) {
            let same = |s: &Diagnostic| {
                (&s.severity, &s.span, &s.message, &s.keepalived)
                    == (&d.severity, &d.span, &d.message, &d.keepalived)
            };
            match seen.iter_mut().find(|(s, _)| same(s)) {
                Some((_, n)) => *n += 1,
                None => {
                    if d.part == diagnostic::Part::File {
                        d.part = match view {
                            tree::View::Parent => diagnostic::Part::Global,
                            tree::View::Vrrp => diagnostic::Part::Vrrp,
                            tree::View::Check => diagnostic::Part::Check,
                        };
                    }
                    seen.push((d, 1));
                }
            }
        }
    }
    sources.part = diagnostic::Part::File;
    for (mut d, n) in seen {
        if n == tree::View::ALL.len() {
            d.part = diagnostic::Part::File;
        }
        sources.diagnostics.push(d);
    }
    validate::validate(&config, &mut sources);
    sources.sort();
    let diagnostics = sources.diagnostics;
    let config = if diagnostics.iter().any(Diagnostic::is_error) {
        None
    } else {
        Some(config)
    };
    Parsed {
        config,
        diagnostics,
    }
}

#[cfg(test)]
mod tests;
