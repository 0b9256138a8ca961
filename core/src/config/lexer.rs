//! keepalived's line reader: comments, quotes, braces on their own, `include` with globs.
//!
//! keepalived (lib/parser.c `read_line`) cuts a line at every `{` and `}` outside quotes so
//! that each brace becomes a line of its own; the parser then sees "keyword line" followed by
//! a "{" line whether the brace was on the same line or the next one. We do the same.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::diagnostic::{Diagnostic, Logged, Part, Severity, Span};

/// Reads config files for the parser (the daemon implements it with std::fs and glob).
pub trait Loader {
    /// The text of the file at `path`.
    fn read(&self, path: &str) -> Result<String, String>;
    /// The files matching a glob `pattern`, sorted; empty when none match.
    fn glob(&self, pattern: &str) -> Result<Vec<String>, String>;
    /// The id `@ID` conditional lines are matched against (keepalived: `-i`, else the short
    /// host name); None keeps only `@^ID` lines.
    fn config_id(&self) -> Option<String> {
        None
    }
    /// The directory keepalived was started in (`/` where systemd starts it): `${_PWD}` is
    /// the directory of the file being read, which keepalived changes into, so a relative
    /// file name is taken from here.
    fn working_dir(&self) -> String {
        "/".to_string()
    }
    /// The seed of `${_RANDOM}` (keepalived seeds from the clock unless given `--random-seed`).
    fn random_seed(&self) -> u64 {
        0
    }
}

/// A loader with no files: `include` in text given to [`parse_str`] finds nothing.
#[derive(Debug, Default)]
pub struct NoFiles;

impl Loader for NoFiles {
    fn read(&self, path: &str) -> Result<String, String> {
        Err(format!("no file system: cannot read {path}"))
    }

    fn glob(&self, _pattern: &str) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }
}

/// How deep includes may nest before we assume a loop.
const MAX_INCLUDE_DEPTH: usize = 16;

/// One word of a line: a keyword, a value or a lone brace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    /// The text, quotes removed.
    pub text: String,
    /// Where it was written.
    pub span: Span,
    /// True when written inside `"..."` (a quoted `{` is not a brace).
    pub quoted: bool,
}

impl Word {
    /// True for an unquoted `{`.
    pub fn is_open(&self) -> bool {
        !self.quoted && self.text == "{"
    }

    /// True for an unquoted `}`.
    pub fn is_close(&self) -> bool {
        !self.quoted && self.text == "}"
    }
}

/// A logical line: the words between two line breaks or braces (never empty).
pub type Line = Vec<Word>;

/// The text of every file read, and the diagnostics raised so far.
#[derive(Debug, Default)]
pub struct Sources {
    files: BTreeMap<String, Vec<String>>,
    /// File names in the order they were first read.
    order: Vec<String>,
    /// `$NAME=value` definitions seen so far (they carry across included files); a
    /// multi-line one holds its lines separated by `\n`.
    defs: BTreeMap<String, String>,
    /// The definitions that are multi-line (keepalived expands them only at a line's end).
    multiline: BTreeSet<String>,
    /// The multi-line definition whose lines are being read.
    collecting: Option<String>,
    /// The id `@ID` lines are matched against (keepalived: `-i`, else the host name).
    pub config_id: Option<String>,
    /// Diagnostics in the order they were raised.
    pub diagnostics: Vec<Diagnostic>,
    /// The part of the file being read or checked now; stamped on each diagnostic.
    pub part: Part,
    /// `${_PWD}`.
    working_dir: String,
    /// `${_RANDOM}`'s generator, seeded from the loader.
    rng: Option<ChaCha8Rng>,
    seed: u64,
}

impl Sources {
    /// Empty sources taking the config id, working directory and random seed from `loader`.
    pub fn for_loader(loader: &dyn Loader) -> Self {
        Sources {
            config_id: loader.config_id(),
            working_dir: loader.working_dir(),
            seed: loader.random_seed(),
            ..Sources::default()
        }
    }

    /// `${_PWD}` while `file` is read: its directory, absolute (keepalived changes into it
    /// and asks `getcwd`).
    fn directory_of(&self, file: &str) -> String {
        let dir = file.rsplit_once('/').map_or("", |(d, _)| d);
        let joined = if file.starts_with('/') {
            dir.to_string()
        } else {
            format!("{}/{dir}", self.working_dir)
        };
        let mut parts: Vec<&str> = Vec::new();
        for p in joined.split('/') {
            match p {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                p => parts.push(p),
            }
        }
        format!("/{}", parts.join("/"))
    }

    /// `${_RANDOM}` / `${_RANDOM MIN [MAX]}` as keepalived's `get_random` computes it: glibc
    /// `random() % (MAX - MIN + 1) + MIN` in unsigned long arithmetic (MIN 0, MAX 32767 by
    /// default), printed in at most as many digits as MAX has.
    fn random(&mut self, params: Option<&str>) -> String {
        let mut words = params.unwrap_or("").split_whitespace();
        let min: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let max: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(32767);
        let seed = self.seed;
        let rng = self
            .rng
            .get_or_insert_with(|| ChaCha8Rng::seed_from_u64(seed));
        // random() gives 31 bits.
        let r = u64::from(rng.next_u32() >> 1);
        let range = max.wrapping_sub(min).wrapping_add(1);
        // keepalived divides by zero there; lvsd takes the whole range.
        let val = if range == 0 { r } else { r % range }.wrapping_add(min) as i64;
        let digits = max.to_string().len();
        val.to_string().chars().take(digits).collect()
    }

    /// Remember a file's text so diagnostics can quote its lines.
    pub fn add(&mut self, name: &str, text: &str) {
        if !self.files.contains_key(name) {
            self.order.push(name.to_string());
        }
        self.files
            .insert(name.to_string(), text.lines().map(str::to_string).collect());
    }

    /// Sort diagnostics by file (in the order files were read), line and column.
    pub fn sort(&mut self) {
        let order = &self.order;
        let rank = |f: &str| order.iter().position(|o| o == f).unwrap_or(usize::MAX);
        // Stable: diagnostics on one token keep the order they were raised in.
        self.diagnostics
            .sort_by_key(|d| (rank(&d.span.file), d.span.line, d.span.col));
    }

    /// Raise a diagnostic at `span`.
    pub fn report(&mut self, severity: Severity, span: &Span, message: String) {
        let source_line = self
            .files
            .get(&span.file)
            .and_then(|lines| lines.get((span.line as usize).saturating_sub(1)))
            .cloned()
            .unwrap_or_default();
        self.diagnostics.push(Diagnostic {
            severity,
            span: span.clone(),
            message,
            source_line,
            part: self.part,
            keepalived: None,
        });
    }

    /// Raise a warning.
    pub fn warn(&mut self, span: &Span, message: impl Into<String>) {
        self.report(Severity::Warning, span, message.into());
    }

    /// Raise a warning that keepalived logs as `logged`.
    pub fn warn_logged(&mut self, span: &Span, message: impl Into<String>, logged: Logged) {
        self.report(Severity::Warning, span, message.into());
        if let Some(d) = self.diagnostics.last_mut() {
            d.keepalived = Some(logged);
        }
    }

    /// keepalived's `read_unsigned` (as -t prints it): the value of `w` when it is a whole
    /// number in [min, max]; otherwise keepalived's line as a warning and None.
    pub fn read_unsigned(&mut self, w: &Word, min: u32, max: u32) -> Option<u32> {
        let t = w.text.trim_start();
        let digits = t.strip_prefix('+').unwrap_or(t);
        let msg = if t.starts_with('-') {
            format!("negative number '{}'", w.text)
        } else if !digits.chars().all(|c| c.is_ascii_digit()) {
            format!("invalid number '{}'", w.text)
        } else {
            // strtoul reads "" as 0.
            match if digits.is_empty() {
                Ok(0)
            } else {
                digits.parse::<u64>()
            } {
                Ok(v) if v > u64::from(u32::MAX) => {
                    format!("number '{}' outside unsigned integer range", w.text)
                }
                Err(_) => format!("number '{}' outside unsigned integer range", w.text),
                Ok(v) => match u32::try_from(v) {
                    Ok(v) if (min..=max).contains(&v) => return Some(v),
                    _ => format!("number '{}' outside range [{min}, {max}]", w.text),
                },
            }
        };
        self.warn_as_keepalived(&w.span, msg);
        None
    }

    /// Raise a warning in keepalived's own words, on the line keepalived gives.
    pub fn warn_as_keepalived(&mut self, span: &Span, message: impl Into<String>) {
        let message = message.into();
        self.warn_logged(span, message.clone(), Logged::AtLine(message));
    }

    /// Raise a warning in keepalived's own words, which keepalived logs without a position.
    pub fn warn_unplaced_keepalived(&mut self, span: &Span, message: impl Into<String>) {
        let message = message.into();
        self.warn_logged(span, message.clone(), Logged::Unplaced(message));
    }

    /// Raise an error in keepalived's own words, which keepalived logs without a position.
    pub fn error_unplaced_keepalived(&mut self, span: &Span, message: impl Into<String>) {
        let message = message.into();
        self.report(Severity::Error, span, message.clone());
        if let Some(d) = self.diagnostics.last_mut() {
            d.keepalived = Some(Logged::Unplaced(message));
        }
    }

    /// Raise an error.
    pub fn error(&mut self, span: &Span, message: impl Into<String>) {
        self.report(Severity::Error, span, message.into());
    }
}

/// Split one file into logical lines (no include handling).
pub fn lex(file: &str, text: &str, sources: &mut Sources) -> Vec<Line> {
    sources.add(file, text);
    let mut out = Vec::new();
    let mut cur: Line = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line_no = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let raw = raw.trim_end_matches('\r');
        // A multi-line definition's lines are read before anything else sees them.
        if sources.collecting.is_some() {
            collect_definition_line(raw, sources);
            continue;
        }
        // The lines a multi-line definition expands to follow the line that used it, as
        // lines of their own (keepalived's next_ptr), each read as a line again.
        let mut pending: VecDeque<Vec<(char, Orig)>> = VecDeque::new();
        pending.push_back(raw.chars().enumerate().map(|(i, c)| (c, (i, 1))).collect());
        while let Some(line) = pending.pop_front() {
            if sources.collecting.is_some() {
                let text: String = line.iter().map(|x| x.0).collect();
                collect_definition_line(&text, sources);
                continue;
            }
            let Some((chars, orig)) = preprocess(file, line_no, line, sources, &mut pending) else {
                continue;
            };
            let continued = lex_line(file, line_no, &chars, &orig, sources, &mut out, &mut cur);
            if !continued && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    // A definition does not run on past its file.
    sources.collecting = None;
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// keepalived's `decomment`: leading and trailing blanks and an unquoted `#` / `!` comment
/// cut, `\#` / `\!` unescaped, a final `\` kept (with no blank before it).
fn decomment(line: &str) -> String {
    let chars: Vec<char> = line.trim_start_matches(is_blank).chars().collect();
    let mut out = String::new();
    let mut quote = false;
    let mut cont = false;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '"' => {
                quote = !quote;
                out.push(c);
            }
            '\\' => match chars.get(i + 1) {
                None => {
                    cont = true;
                    break;
                }
                Some(&n @ ('#' | '!')) if !quote => {
                    out.push(n);
                    i += 1;
                }
                Some(&n) => {
                    out.push(c);
                    out.push(n);
                    i += 1;
                }
            },
            '#' | '!' if !quote => break,
            _ => out.push(c),
        }
        i += 1;
    }
    let mut out = out.trim_end_matches(is_blank).to_string();
    if cont {
        out.push('\\');
    }
    out
}

/// One line read while a multi-line definition is open (keepalived's read_line with
/// `multiline_param_def`): an empty line ends it; a line ending in `\` adds a line and
/// continues it; any other line adds a last line and ends it. A comment-only line ends it
/// too: keepalived's children read the copy of the file the parent wrote, comments cut, where
/// such a line is empty (the parent, reading the file itself, skips it; lvsd reads as the
/// children, which run the config).
fn collect_definition_line(raw: &str, sources: &mut Sources) {
    let Some(name) = sources.collecting.clone() else {
        return;
    };
    let line = decomment(raw);
    let (add, more) = match line.strip_suffix('\\') {
        _ if line.is_empty() => (None, false),
        Some(body) => {
            let body = body.trim_end_matches(is_blank);
            (Some(format!("{body}\n")).filter(|_| !body.is_empty()), true)
        }
        None => (Some(line), false),
    };
    let value = sources.defs.entry(name.clone()).or_default();
    if let Some(add) = add {
        value.push_str(&add);
    }
    if !more {
        sources.collecting = None;
        if value.is_empty() {
            sources.multiline.remove(&name);
        }
    }
}

/// Where a character of a preprocessed line came from: (source char index, source length).
/// A character produced by `$NAME` expansion maps to the whole `$NAME` reference.
type Orig = (usize, usize);

/// keepalived's line preprocessing (`read_line`): `@ID` / `@^ID` conditional lines,
/// `$NAME=value` definitions and `$NAME` / `${NAME}` substitution, repeated while a
/// substitution leaves a line that is conditional or defines (keepalived's recheck loop).
/// None when the line is dropped.
fn preprocess(
    file: &str,
    line_no: u32,
    mut line: Vec<(char, Orig)>,
    sources: &mut Sources,
    pending: &mut VecDeque<Vec<(char, Orig)>>,
) -> Option<(Vec<char>, Vec<Orig>)> {
    loop {
        let blanks = line.iter().take_while(|(c, _)| is_blank(*c)).count();
        line.drain(..blanks);
        if line.first().map(|x| x.0) == Some('@') {
            line = conditional(line, sources.config_id.as_deref())?;
        }
        let body: Vec<char> = line.iter().map(|x| x.0).collect();
        if body.first() == Some(&'$') {
            if let Some((name, value)) = definition(&body) {
                // check_definition: a value ending in `\` goes on over the next lines, its
                // first line (blanks before the `\` cut) ending where the `\` was.
                match value.strip_suffix('\\') {
                    Some(first) => {
                        let first = first.trim_end_matches(is_blank);
                        let value = if first.is_empty() {
                            String::new()
                        } else {
                            format!("{first}\n")
                        };
                        sources.defs.insert(name.clone(), value);
                        sources.multiline.insert(name.clone());
                        sources.collecting = Some(name);
                    }
                    None => {
                        sources.multiline.remove(&name);
                        sources.defs.insert(name, value);
                    }
                }
                return None;
            }
        }
        if !substitute(&mut line, file, line_no, sources, pending) {
            break;
        }
    }
    Some(line.into_iter().unzip())
}

/// `@ID rest` / `@^ID rest`: `rest` when the config id matches (does not match, with `^`),
/// else None (the line is dropped, as is one with nothing after the id).
fn conditional(line: Vec<(char, Orig)>, config_id: Option<&str>) -> Option<Vec<(char, Orig)>> {
    let negate = line.get(1).map(|x| x.0) == Some('^');
    let id_start = if negate { 2 } else { 1 };
    let id_len = line
        .get(id_start..)?
        .iter()
        .take_while(|(c, _)| !is_blank(*c))
        .count();
    let rest = id_start + id_len;
    line.get(rest)?;
    let id: String = line.get(id_start..rest)?.iter().map(|x| x.0).collect();
    if (config_id == Some(id.as_str())) == negate {
        return None;
    }
    Some(line.into_iter().skip(rest).collect())
}

/// keepalived's `MAXBUF`: a line may not grow past it by substitution.
const MAX_LINE: usize = 1024;
/// Substitutions in one line before lvsd gives up (keepalived loops for ever on `$A=$A`).
const MAX_SUBSTITUTIONS: usize = 1024;

/// keepalived's `replace_param`: every `$NAME` / `${NAME}` reference replaced by its value,
/// the value itself scanned again (definitions may use definitions); false when nothing was
/// replaced. A character of a value maps back to the whole reference it replaced.
fn substitute(
    line: &mut Vec<(char, Orig)>,
    file: &str,
    line_no: u32,
    sources: &mut Sources,
    pending: &mut VecDeque<Vec<(char, Orig)>>,
) -> bool {
    let mut found = false;
    let mut at = 0;
    let mut done = 0;
    while at < line.len() {
        if line[at].0 != '$' {
            at += 1;
            continue;
        }
        let after: Vec<char> = line[at + 1..].iter().map(|x| x.0).collect();
        let Some((value, used)) = reference(&after, file, sources) else {
            at += 1;
            continue;
        };
        // A multi-line value: its first line replaces the reference, the others follow
        // (before what an enclosing expansion still has to give: keepalived's stack).
        let (value, rest) = match value.split_once('\n') {
            Some((first, rest)) => (first.to_string(), Some(rest.to_string())),
            None => (value, None),
        };
        let start = line[at].1 .0;
        let end = line[at..=at + used]
            .iter()
            .map(|x| x.1 .0 + x.1 .1)
            .max()
            .unwrap_or(start + 1);
        let new_len = line.len() - (used + 1) + value.chars().count();
        done += 1;
        if new_len >= MAX_LINE || done > MAX_SUBSTITUTIONS {
            let span = Span {
                file: file.to_string(),
                line: line_no,
                col: u32::try_from(start + 1).unwrap_or(u32::MAX),
                len: u32::try_from(end - start).unwrap_or(u32::MAX),
            };
            let text: String = line.iter().map(|x| x.0).collect();
            sources.warn_logged(
                &span,
                "parameter substitution would make the line too long (a definition that uses itself?); line left as it is",
                Logged::Unplaced(format!(
                    "Parameter substitution on line '{text}' would exceed maximum line length"
                )),
            );
            return found;
        }
        found = true;
        let orig = (start, end - start);
        if let Some(rest) = rest {
            for l in rest.split('\n').rev() {
                pending.push_front(l.chars().map(|c| (c, orig)).collect());
            }
        }
        let tilde = value.trim_start_matches(is_blank).starts_with('~');
        line.splice(at..=at + used, value.chars().map(|c| (c, orig)));
        if tilde {
            break;
        }
    }
    found
}

/// `$NAME = value` (comment stripped, trimmed), as keepalived's `check_definition` reads it.
fn definition(body: &[char]) -> Option<(String, String)> {
    let first = *body.get(1)?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    let name_len = body
        .get(1..)?
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
        .count();
    let name: String = body.get(1..1 + name_len)?.iter().collect();
    let rest = body.get(1 + name_len..)?;
    let blanks = rest.iter().take_while(|&&c| is_blank(c)).count();
    if rest.get(blanks) != Some(&'=') {
        return None;
    }
    let mut value = String::new();
    let mut quoted = false;
    for &c in rest.get(blanks + 1..)? {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted && (c == '#' || c == '!') {
            break;
        }
        value.push(c);
    }
    Some((name, value.trim_matches(is_blank).to_string()))
}

/// The value of a reference at the start of `after` (the text after `$`), and how many
/// characters the reference takes, as keepalived's `find_definition` reads it: `NAME`
/// followed by a blank, `,`, `)` or the line's end, or `{NAME}`; `${_RANDOM MIN MAX}` takes
/// numbers. A definition of the file's own replaces a built-in of the same name.
fn reference(after: &[char], file: &str, sources: &mut Sources) -> Option<(String, usize)> {
    let braced = after.first() == Some(&'{');
    let from = usize::from(braced);
    let first = *after.get(from)?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    let len = after[from..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
        .count();
    let name: String = after[from..from + len].iter().collect();
    let mut end = from + len;
    let mut params = None;
    if braced {
        let tail = after[end..]
            .iter()
            .take_while(|c| **c == ' ' || c.is_ascii_digit())
            .count();
        let words: String = after[end..end + tail].iter().collect();
        if !words.trim().is_empty() {
            // Numbers may not be followed by a space before the brace.
            if words.ends_with(' ') {
                return None;
            }
            params = Some(words);
        }
        end += tail;
        if after.get(end) != Some(&'}') {
            return None;
        }
        end += 1;
    } else if !matches!(after.get(end), None | Some(' ' | '\t' | ',' | ')')) {
        return None;
    }
    // find_definition: a multi-line definition only where the reference ends the line
    // (keepalived's line is cut of comments and trailing blanks by then).
    if sources.multiline.contains(&name) {
        let rest: String = after[end..].iter().collect();
        if !decomment(&rest).is_empty() {
            return None;
        }
    }
    let value = match (sources.defs.get(&name), name.as_str()) {
        (Some(v), "_RANDOM") => v.clone(),
        (Some(_), _) if params.is_some() => return None,
        (Some(v), _) => v.clone(),
        (None, "_RANDOM") => sources.random(params.as_deref()),
        (None, _) if params.is_some() => return None,
        (None, "_PWD") => sources.directory_of(file),
        (None, "_INSTANCE") => sources.config_id.clone().unwrap_or_default(),
        (None, "_HASH") => "#".to_string(),
        (None, "_BANG") => "!".to_string(),
        (None, _) => return None,
    };
    Some((value, end))
}

/// keepalived splits words on ASCII blanks only; other Unicode spaces stay inside words.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\u{b}' | '\u{c}')
}

/// Lex one physical line into `cur`/`out`; true when it ends with a `\` continuation
/// (keepalived then reads the next line as part of this one).
fn lex_line(
    file: &str,
    line_no: u32,
    chars: &[char],
    orig: &[Orig],
    sources: &mut Sources,
    out: &mut Vec<Line>,
    cur: &mut Line,
) -> bool {
    // Characters `[at, at + len)` of the (preprocessed) line, mapped back to source columns.
    let span_at = |at: usize, len: usize| {
        let start = orig.get(at).map_or(at, |o| o.0);
        let end = (at..at + len.max(1))
            .filter_map(|k| orig.get(k))
            .map(|o| o.0 + o.1)
            .max()
            .unwrap_or(start + 1);
        Span {
            file: file.to_string(),
            line: line_no,
            col: u32::try_from(start + 1).unwrap_or(u32::MAX),
            len: u32::try_from(end.saturating_sub(start).max(1)).unwrap_or(u32::MAX),
        }
    };
    let mut i = 0;
    let mut continued = false;
    while let Some(&c) = chars.get(i) {
        if is_blank(c) {
            i += 1;
        } else if c == '#' || c == '!' {
            break;
        } else if c == '{' || c == '}' {
            if !cur.is_empty() {
                out.push(std::mem::take(cur));
            }
            out.push(vec![Word {
                text: c.to_string(),
                span: span_at(i, 1),
                quoted: false,
            }]);
            i += 1;
        } else if c == '"' {
            let start = i;
            let body_start = i + 1;
            let mut j = body_start;
            while chars.get(j).is_some_and(|&ch| ch != '"') {
                j += 1;
            }
            if j >= chars.len() {
                sources.error(&span_at(start, chars.len() - start), "unterminated quote");
                break;
            }
            let text: String = chars
                .get(body_start..j)
                .map(|s| s.iter().collect())
                .unwrap_or_default();
            cur.push(Word {
                text,
                span: span_at(start, j + 1 - start),
                quoted: true,
            });
            i = j + 1;
        } else {
            let start = i;
            let mut text = String::new();
            while let Some(&ch) = chars.get(i) {
                if is_blank(ch) || matches!(ch, '"' | '{' | '}' | '#' | '!') {
                    break;
                }
                if ch == '\\' {
                    match chars.get(i + 1) {
                        // `\#` and `\!` are the literal characters, not a comment.
                        Some(&next @ ('#' | '!')) => text.push(next),
                        Some(&next) => {
                            text.push(ch);
                            text.push(next);
                        }
                        None => {
                            continued = true;
                            i += 1;
                            break;
                        }
                    }
                    i += 2;
                    continue;
                }
                text.push(ch);
                i += 1;
            }
            if !text.is_empty() {
                let len = if continued { i - 1 - start } else { i - start };
                cur.push(Word {
                    text,
                    span: span_at(start, len),
                    quoted: false,
                });
            }
        }
    }
    continued
}

/// Lex `text` (named `name`), replacing each `include PATTERN` line with the matching files.
pub fn lex_with_includes(
    name: &str,
    text: &str,
    loader: &dyn Loader,
    sources: &mut Sources,
    depth: usize,
) -> Vec<Line> {
    let mut out = Vec::new();
    for line in lex(name, text, sources) {
        let Some(first) = line.first() else { continue };
        if first.quoted || first.text != "include" {
            out.push(line);
            continue;
        }
        let Some(pattern) = line.get(1) else {
            sources.error(&first.span, "include needs a file name or glob pattern");
            continue;
        };
        if let Some(extra) = line.get(2) {
            sources.warn(
                &extra.span,
                format!("extra parameter '{}' after include ignored", extra.text),
            );
        }
        if depth >= MAX_INCLUDE_DEPTH {
            sources.error(
                &pattern.span,
                format!("include nested more than {MAX_INCLUDE_DEPTH} deep (include loop?)"),
            );
            continue;
        }
        let full = resolve(name, &pattern.text);
        let files = match loader.glob(&full) {
            Ok(files) => files,
            Err(e) => {
                sources.error(&pattern.span, format!("include '{}': {e}", pattern.text));
                continue;
            }
        };
        if files.is_empty() {
            // keepalived 2.2: "Config files missing '...'".
            sources.error(
                &pattern.span,
                format!("config files missing '{}'", pattern.text),
            );
            continue;
        }
        for file in files {
            match loader.read(&file) {
                Ok(text) => out.extend(lex_with_includes(&file, &text, loader, sources, depth + 1)),
                Err(e) => sources.error(
                    &pattern.span,
                    format!("cannot read included file '{file}': {e}"),
                ),
            }
        }
    }
    out
}

/// A relative include pattern is relative to the directory of the including file.
fn resolve(including: &str, pattern: &str) -> String {
    if pattern.starts_with('/') {
        return pattern.to_string();
    }
    match including.rsplit_once('/') {
        Some((dir, _)) if !dir.is_empty() => format!("{dir}/{pattern}"),
        Some(_) => format!("/{pattern}"),
        None => pattern.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[Line]) -> Vec<Vec<&str>> {
        lines
            .iter()
            .map(|l| l.iter().map(|w| w.text.as_str()).collect())
            .collect()
    }

    #[test]
    fn comments_quotes_and_braces() {
        let mut s = Sources::default();
        let lines = lex(
            "f",
            "a b # c d\n! whole line\nvs 1.2.3.4 80{x \"q { r\" }\n  }\nscript \"/bin/echo hi\" ! t\n",
            &mut s,
        );
        assert_eq!(
            texts(&lines),
            vec![
                vec!["a", "b"],
                vec!["vs", "1.2.3.4", "80"],
                vec!["{"],
                vec!["x", "q { r"],
                vec!["}"],
                vec!["}"],
                vec!["script", "/bin/echo hi"],
            ]
        );
        assert!(s.diagnostics.is_empty());
        let x = &lines[3][0];
        assert_eq!((x.span.line, x.span.col, x.span.len), (3, 15, 1));
        let q = &lines[3][1];
        assert_eq!((q.span.col, q.span.len, q.quoted), (17, 7, true));
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        let mut s = Sources::default();
        let lines = lex("f", "script \"abc\n", &mut s);
        assert_eq!(texts(&lines), vec![vec!["script"]]);
        assert_eq!(s.diagnostics.len(), 1);
        assert_eq!(
            s.diagnostics[0].render(),
            "f:1:8: error: unterminated quote\n    script \"abc\n           ^^^^\n"
        );
    }

    #[test]
    fn continuation_and_escapes() {
        let mut s = Sources::default();
        let lines = lex(
            "f",
            "notify_master /bin/a \\\n   arg\\#1 x\\y \\\n\nb c\\\n",
            &mut s,
        );
        assert_eq!(
            texts(&lines),
            vec![
                vec!["notify_master", "/bin/a", "arg#1", "x\\y"],
                vec!["b", "c"]
            ]
        );
        assert_eq!((lines[0][2].span.line, lines[0][2].span.col), (2, 4));
        assert_eq!(lines[1][1].span.len, 1);
    }

    #[test]
    fn definitions_and_conditionals() {
        let mut s = Sources {
            config_id: Some("lb1".into()),
            ..Sources::default()
        };
        let text = "$VIP = 10.0.0.1 # the address\n$PORT=80\nvs $VIP ${PORT}x $NOPE $\n@lb1 priority 200\n@lb2 priority 100\n@^lb2 state BACKUP\n@lb1\n";
        let lines = lex("f", text, &mut s);
        assert_eq!(
            texts(&lines),
            vec![
                vec!["vs", "10.0.0.1", "80x", "$NOPE", "$"],
                vec!["priority", "200"],
                vec!["state", "BACKUP"],
            ]
        );
        // Expanded words point at the reference that produced them.
        let w = &lines[0];
        assert_eq!((w[1].span.col, w[1].span.len), (4, 4));
        assert_eq!((w[2].span.col, w[2].span.len), (9, 8));
        assert_eq!((w[3].span.col, w[3].span.len), (18, 5));
        assert_eq!((lines[1][0].span.col, lines[1][1].span.col), (6, 15));
        assert!(s.diagnostics.is_empty());
    }

    #[test]
    fn multi_line_definitions() {
        let mut s = Sources::default();
        let text = "$ML=a 1 \\\n  b 2 \\\n  \\\n c 3\nx $ML\n$ML y\n$E=\\\n d 4 \\\n# cut here\n e 5\nz\n$ML # fine\n";
        let lines = lex("f", text, &mut s);
        assert_eq!(
            texts(&lines),
            vec![
                // The first line replaces the reference, the others follow it.
                vec!["x", "a", "1"],
                vec!["b", "2"],
                vec!["c", "3"],
                // Not at the line's end: no expansion.
                vec!["$ML", "y"],
                // A comment-only line ends a definition (keepalived's children's reading).
                vec!["e", "5"],
                vec!["z"],
                vec!["a", "1"],
                vec!["b", "2"],
                vec!["c", "3"],
            ]
        );
        // The lines a definition gives point at the reference.
        assert_eq!((lines[1][0].span.line, lines[1][0].span.col), (5, 3));
        assert!(s.diagnostics.is_empty());
    }

    #[test]
    fn unicode_spaces_stay_inside_words() {
        let mut s = Sources::default();
        let lines = lex("f", "a\u{a0}b\u{2003} c\n", &mut s);
        assert_eq!(texts(&lines), vec![vec!["a\u{a0}b\u{2003}", "c"]]);
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let mut s = Sources::default();
        let lines = lex("f", "é x\n", &mut s);
        assert_eq!(lines[0][1].span.col, 3);
    }

    #[test]
    fn resolve_is_relative_to_the_including_file() {
        assert_eq!(
            resolve("/etc/k/keepalived.conf", "conf.d/*.conf"),
            "/etc/k/conf.d/*.conf"
        );
        assert_eq!(resolve("keepalived.conf", "a.conf"), "a.conf");
        assert_eq!(resolve("/k.conf", "a.conf"), "/a.conf");
        assert_eq!(resolve("x/k.conf", "/abs/a.conf"), "/abs/a.conf");
    }
}
