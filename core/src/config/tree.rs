//! The untyped block structure: statements, each with an optional `{ ... }` block.

use super::diagnostic::Span;
use super::lexer::{Line, Sources, Word};

/// Blocks nested deeper than this are not config (and would only exhaust the stack).
const MAX_DEPTH: usize = 64;

/// A statement: its words (keyword first) and the block that followed it, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Keyword and arguments, never empty.
    pub words: Vec<Word>,
    /// The `{ ... }` block after the statement (the `{` may be on the next line).
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
    /// The opening brace.
    pub open: Span,
    /// Its statements.
    pub nodes: Vec<Node>,
    /// The closing brace (none when the file ends inside the block); keepalived logs what it
    /// finds at the end of a block on this line.
    pub close: Option<Span>,
}

/// Build the statement tree, reporting unbalanced braces.
pub fn build(lines: Vec<Line>, sources: &mut Sources) -> Vec<Node> {
    let mut it = lines.into_iter().peekable();
    let mut top = Vec::new();
    loop {
        let (nodes, end) = block(&mut it, 0, sources);
        top.extend(nodes);
        match end {
            End::Eof => break,
            End::Close(span) => sources.error(&span, "extra '}' found"),
        }
    }
    top
}

enum End {
    Eof,
    Close(Span),
}

type Lines = std::iter::Peekable<std::vec::IntoIter<Line>>;

fn block(it: &mut Lines, depth: usize, sources: &mut Sources) -> (Vec<Node>, End) {
    let mut nodes = Vec::new();
    while let Some(line) = it.next() {
        let Some(first) = line.first() else { continue };
        if first.is_close() {
            return (nodes, End::Close(first.span.clone()));
        }
        if first.is_open() {
            // keepalived ignores the brace and reads on at this level, which silently
            // re-nests the rest of the file; we skip the stray block instead.
            sources.error(&first.span, "unexpected '{' (no keyword before it)");
            let open = first.span.clone();
            let (_, end) = sub_block(it, depth, open, sources);
            if let Some(end) = end {
                return (nodes, end);
            }
            continue;
        }
        let block = if it.peek().and_then(|l| l.first()).is_some_and(Word::is_open) {
            let open = it.next().and_then(|l| l.into_iter().next()).map(|w| w.span);
            match open {
                Some(open) => {
                    let (b, end) = sub_block(it, depth, open, sources);
                    if let Some(end) = end {
                        nodes.push(Node {
                            words: line,
                            block: Some(b),
                        });
                        return (nodes, end);
                    }
                    Some(b)
                }
                None => None,
            }
        } else {
            None
        };
        nodes.push(Node { words: line, block });
    }
    (nodes, End::Eof)
}

/// Read the block after `open`; returns the block and, when the file ended inside it,
/// the end to hand up (so every enclosing block is reported once).
fn sub_block(
    it: &mut Lines,
    depth: usize,
    open: Span,
    sources: &mut Sources,
) -> (Block, Option<End>) {
    if depth + 1 > MAX_DEPTH {
        sources.error(&open, format!("blocks nested more than {MAX_DEPTH} deep"));
        skip_to_close(it);
        return (
            Block {
                open,
                nodes: Vec::new(),
                close: None,
            },
            None,
        );
    }
    let (nodes, end) = block(it, depth + 1, sources);
    match end {
        End::Close(close) => (
            Block {
                open,
                nodes,
                close: Some(close),
            },
            None,
        ),
        End::Eof => {
            sources.error(&open, "missing '}': this block is never closed");
            (
                Block {
                    open,
                    nodes,
                    close: None,
                },
                Some(End::Eof),
            )
        }
    }
}

fn skip_to_close(it: &mut Lines) {
    let mut level = 1usize;
    for line in it.by_ref() {
        for w in &line {
            if w.is_open() {
                level += 1;
            } else if w.is_close() {
                level -= 1;
                if level == 0 {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::lex;
    use super::*;

    fn tree(text: &str) -> (Vec<Node>, Sources) {
        let mut s = Sources::default();
        let lines = lex("f", text, &mut s);
        let t = build(lines, &mut s);
        (t, s)
    }

    #[test]
    fn brace_on_next_line_opens_the_block() {
        let (t, s) = tree("a {\n b\n c\n {\n  d\n }\n}\n");
        assert!(s.diagnostics.is_empty());
        assert_eq!(t.len(), 1);
        let a = t[0].block.as_ref().map(|b| b.nodes.len());
        assert_eq!(a, Some(2));
        let c = &t[0].block.as_ref().map(|b| b.nodes[1].clone());
        assert_eq!(c.as_ref().map(|c| c.keyword().text.as_str()), Some("c"));
        assert!(c.as_ref().is_some_and(|c| c.block.is_some()));
    }

    #[test]
    fn extra_close_brace() {
        let (_, s) = tree("a {\n}\n}\n");
        assert_eq!(s.diagnostics.len(), 1);
        assert_eq!(
            s.diagnostics[0].render(),
            "f:3:1: error: extra '}' found\n    }\n    ^\n"
        );
    }

    #[test]
    fn missing_close_brace_points_at_the_open_one() {
        let (t, s) = tree("a {\n  b {\n    c\n");
        assert_eq!(t.len(), 1);
        let r: Vec<String> = s.diagnostics.iter().map(|d| d.render()).collect();
        assert_eq!(
            r,
            vec![
                "f:2:5: error: missing '}': this block is never closed\n      b {\n        ^\n"
                    .to_string(),
                "f:1:3: error: missing '}': this block is never closed\n    a {\n      ^\n"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let text = "a {\n".repeat(200);
        let (_, s) = tree(&text);
        assert!(s
            .diagnostics
            .iter()
            .any(|d| d.message.contains("nested more than")));
    }
}
