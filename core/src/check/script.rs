//! A configured script command line and the argv keepalived runs it with.
//!
//! keepalived 2.2.7 stores every script (`notify_up`, `notify_down`, `quorum_up`,
//! `quorum_down`, `misc_path`) as the words of its command line (`lib/notify.c`
//! `notify_script_init` → `set_script_params_array`, which splits with `lib/parser.c`
//! `alloc_strvec_quoted_escaped`); the checker notifies add no parameters (`extra_params` 0
//! in `check_parser.c` `set_check_notify_script`), so the argv is exactly those words.

/// A script as configured and the argv keepalived executes for it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Script {
    /// The command line as configured (quotes and escapes as written).
    pub command: String,
    /// `args[0..]`: what `execve` gets (keepalived runs `args[0]` directly when it is an
    /// executable file, else the words re-quoted through `system()`).
    pub argv: Vec<String>,
}

/// Why a command line could not be split.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// A quote is not closed.
    #[error("String '{command}': missing terminating {quote}")]
    UnmatchedQuote {
        /// The command line.
        command: String,
        /// The open quote.
        quote: char,
    },
    /// A `\` ends the line.
    #[error("Missing escape char at end: '{0}'")]
    TrailingEscape(String),
    /// Nothing but white space.
    #[error("Unable to parse script '{0}' - ignoring")]
    Empty(String),
}

impl Script {
    /// Split `command` as keepalived does; `Err` where keepalived ignores the script.
    pub fn parse(command: &str) -> Result<Script, ScriptError> {
        let argv = split_words(command)?;
        if argv.is_empty() {
            return Err(ScriptError::Empty(command.to_string()));
        }
        Ok(Script {
            command: command.to_string(),
            argv,
        })
    }

    /// `args[0]`, the program (keepalived's MISC_CHECK log lines name it).
    pub fn program(&self) -> &str {
        self.argv.first().map_or("", String::as_str)
    }
}

/// keepalived's `WHITE_SPACE`.
fn is_white(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

/// `alloc_strvec_quoted_escaped`: words separated by white space; `'…'` and `"…"` quote
/// (the quotes are dropped); `\` escapes the next character, with C's `\a \b \f \n \r \t \v`,
/// `\E` (ESC), `\xHH…`, `\cX` (control X) and up to three octal digits.
fn split_words(src: &str) -> Result<Vec<String>, ScriptError> {
    let b = src.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && is_white(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let mut word: Vec<u8> = Vec::new();
        let mut quote: Option<u8> = None;
        while let Some(&c) = b.get(i) {
            if c == b'\\' {
                i += 1;
                let Some(&e) = b.get(i) else {
                    return Err(ScriptError::TrailingEscape(src.to_string()));
                };
                let (ch, next) = unescape(b, i, e);
                word.push(ch);
                i = next;
                continue;
            }
            match quote {
                Some(q) if c == q => {
                    quote = None;
                    i += 1;
                }
                Some(_) => {
                    word.push(c);
                    i += 1;
                }
                None if c == b'"' || c == b'\'' => {
                    quote = Some(c);
                    i += 1;
                }
                None if is_white(c) => break,
                None => {
                    word.push(c);
                    i += 1;
                }
            }
        }
        if let Some(q) = quote {
            return Err(ScriptError::UnmatchedQuote {
                command: src.to_string(),
                quote: char::from(q),
            });
        }
        words.push(String::from_utf8_lossy(&word).into_owned());
    }
    Ok(words)
}

/// One escape sequence starting at `b[i] == e` (just after the `\`): the byte and where the
/// text continues.
fn unescape(b: &[u8], i: usize, e: u8) -> (u8, usize) {
    let at = |k: usize| b.get(k).copied();
    if e == b'x' && at(i + 1).is_some_and(|c| c.is_ascii_hexdigit()) {
        let mut v: u8 = 0;
        let mut k = i + 1;
        while let Some(c) = at(k).filter(u8::is_ascii_hexdigit) {
            // keepalived shifts a `char`: only the last two digits survive.
            v = (v << 4) | hex_val(c);
            k += 1;
        }
        return (v, k);
    }
    if e == b'c' {
        if let Some(c) = at(i + 1) {
            return (c & 0x1f, i + 2);
        }
    }
    if (b'0'..=b'7').contains(&e) {
        let mut v = e - b'0';
        let mut k = i + 1;
        for _ in 0..2 {
            match at(k).filter(|c| (b'0'..=b'7').contains(c)) {
                Some(c) => {
                    v = (v << 3).wrapping_add(c - b'0');
                    k += 1;
                }
                None => break,
            }
        }
        return (v, k);
    }
    let ch = match e {
        b'a' => 0x07,
        b'b' => 0x08,
        b'E' => 0x1b,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 0x0b,
        other => other,
    };
    (ch, i + 1)
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        Script::parse(s).unwrap().argv
    }

    #[test]
    fn words_quotes_and_escapes_as_keepalived_splits_them() {
        assert_eq!(argv("note.sh up116"), ["note.sh", "up116"]);
        assert_eq!(argv("  /bin/x   a\tb "), ["/bin/x", "a", "b"]);
        assert_eq!(argv("/bin/x 'a b' \"c d\""), ["/bin/x", "a b", "c d"]);
        assert_eq!(argv("/bin/x a'b c'd"), ["/bin/x", "ab cd"]);
        assert_eq!(
            argv(r"/bin/x a\ b \n \x41 \101 \cA \'"),
            ["/bin/x", "a b", "\n", "A", "A", "\u{1}", "'"]
        );
        assert_eq!(argv(r#"/bin/x "a \" b""#), ["/bin/x", "a \" b"]);
        assert_eq!(Script::parse("/bin/x y").unwrap().program(), "/bin/x");
    }

    #[test]
    fn malformed_lines_are_refused() {
        assert_eq!(
            Script::parse("/bin/x 'a").unwrap_err().to_string(),
            "String '/bin/x 'a': missing terminating '"
        );
        assert!(matches!(
            Script::parse("/bin/x \\"),
            Err(ScriptError::TrailingEscape(_))
        ));
        assert!(matches!(Script::parse("  "), Err(ScriptError::Empty(_))));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = Script::parse(&s);
        }

        #[test]
        fn plain_words_split_on_white_space(words in proptest::collection::vec("[a-z0-9/._-]{1,8}", 1..5)) {
            let line = words.join(" ");
            proptest::prop_assert_eq!(argv(&line), words);
        }
    }
}
