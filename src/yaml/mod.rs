//! A spanned YAML tree shared by `config` (errors need line and column) and
//! `manifest` (pinning rewrites one scalar's exact bytes and must know where
//! they are).
//!
//! Built from `saphyr-parser` events. Every node knows its byte range in the
//! source, its 1-based line and column, and for scalars the quoting style, so
//! a caller can splice a new scalar into the original text without touching
//! any other byte. Aliases are resolved to a copy of the anchored node that
//! keeps the anchor's span (editing it edits the anchor, which is what YAML
//! means).
//!
//! Every YAML source here comes from the infra repo, so it is untrusted:
//! copying anchors is what lets a few hundred bytes expand to gigabytes (a
//! "billion laughs" alias bomb). [`Limits`] bounds the alias uses, the nodes
//! and scalar bytes of the expanded tree, and the nesting depth; an alias is
//! charged the whole size of its anchor *before* the copy is made.

use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span as RawSpan};

mod limits;
mod render;
mod tree;

pub use limits::Limits;
pub use render::render_scalar;
pub use tree::{Entry, Node, Pos, Scalar, Span, Style, Value};

use limits::{BOMB_HINT, Weight, charge, limit_error};

/// A syntax error in a YAML source, or a source refused by [`Limits`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub kind: ErrorKind,
}

/// Why a source was not parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not valid YAML.
    Syntax,
    /// Valid YAML, but it would expand past a [`Limits`] bound (an alias
    /// bomb, or a document too deep or too large to handle safely).
    Limit,
}

/// Parses every document of a YAML stream within [`Limits::DEFAULT`]. An
/// empty stream yields no documents.
pub fn parse_documents(source: &str) -> Result<Vec<Node>, SyntaxError> {
    parse_documents_with(source, &Limits::DEFAULT)
}

/// Like [`parse_documents`], with other bounds.
pub fn parse_documents_with(source: &str, limits: &Limits) -> Result<Vec<Node>, SyntaxError> {
    let offsets = CharOffsets::new(source);
    let mut builder = Builder {
        source,
        offsets: &offsets,
        stack: Vec::new(),
        anchors: HashMap::new(),
        documents: Vec::new(),
        limits: *limits,
        spent: Weight::default(),
        aliases: 0,
    };
    for event in Parser::new_from_str(source) {
        let (event, span) = event.map_err(|e| SyntaxError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_owned(),
            kind: ErrorKind::Syntax,
        })?;
        builder.on_event(event, span)?;
    }
    Ok(builder.documents)
}

/// Parses a stream expected to hold one document; an empty stream is a null
/// document.
pub fn parse_single(source: &str) -> Result<Node, SyntaxError> {
    let mut docs = parse_documents(source)?;
    match docs.len() {
        0 => Ok(Node {
            value: Value::Scalar(Scalar {
                text: String::new(),
                style: Style::Plain,
                tag: None,
            }),
            span: Span::default(),
        }),
        1 => Ok(docs.remove(0)),
        _ => {
            let second = &docs[1];
            Err(SyntaxError {
                line: second.span.start.line,
                column: second.span.start.column,
                message: "expected one YAML document, found several (remove the `---` separators)"
                    .to_owned(),
                kind: ErrorKind::Syntax,
            })
        }
    }
}

/// Maps saphyr's character indexes to byte offsets. ASCII sources (the usual
/// case) need no table.
struct CharOffsets {
    table: Option<Vec<usize>>,
    len: usize,
}

impl CharOffsets {
    fn new(source: &str) -> Self {
        let table = (!source.is_ascii()).then(|| {
            let mut t: Vec<usize> = source.char_indices().map(|(b, _)| b).collect();
            t.push(source.len());
            t
        });
        Self {
            table,
            len: source.len(),
        }
    }

    fn pos(&self, m: &Marker) -> Pos {
        let byte = match &self.table {
            Some(t) => t.get(m.index()).copied().unwrap_or(self.len),
            None => m.index().min(self.len),
        };
        Pos {
            byte,
            line: m.line(),
            column: m.col() + 1,
        }
    }
}

/// Moves a scalar's start past its `&anchor` and `!tag` properties so the
/// span covers only the value text.
fn skip_properties(source: &str, mut pos: Pos) -> Pos {
    loop {
        let rest = &source[pos.byte..];
        if !(rest.starts_with('&') || rest.starts_with('!')) {
            return pos;
        }
        for c in rest.chars() {
            if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
                break;
            }
            pos = advance(pos, c);
        }
        for c in source[pos.byte..].chars() {
            if !(c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                break;
            }
            pos = advance(pos, c);
        }
    }
}

/// The position just after the closing quote of the quoted scalar that
/// starts at `start`, or `None` when `start` is not on a quote.
fn quoted_end(source: &str, start: Pos) -> Option<Pos> {
    let rest = source.get(start.byte..)?;
    let mut chars = rest.chars();
    let quote = chars.next().filter(|c| *c == '\'' || *c == '"')?;
    let mut pos = advance(start, quote);
    let mut chars = chars.peekable();
    while let Some(c) = chars.next() {
        pos = advance(pos, c);
        if quote == '"' && c == '\\' {
            // An escape: the next character is part of it.
            if let Some(escaped) = chars.next() {
                pos = advance(pos, escaped);
            }
        } else if c == quote {
            if quote == '\'' && chars.peek() == Some(&'\'') {
                // `''` is an escaped single quote.
                chars.next();
                pos = advance(pos, '\'');
            } else {
                return Some(pos);
            }
        }
    }
    None
}

fn advance(pos: Pos, c: char) -> Pos {
    if c == '\n' {
        Pos {
            byte: pos.byte + 1,
            line: pos.line + 1,
            column: 1,
        }
    } else {
        Pos {
            byte: pos.byte + c.len_utf8(),
            line: pos.line,
            column: pos.column + 1,
        }
    }
}

enum Frame {
    Seq {
        start: Pos,
        anchor: usize,
        items: Vec<Node>,
        /// What the stream had spent before this collection began.
        spent_before: Weight,
    },
    Map {
        start: Pos,
        anchor: usize,
        entries: Vec<Entry>,
        pending_key: Option<Node>,
        spent_before: Weight,
    },
}

struct Anchored {
    node: Node,
    weight: Weight,
}

struct Builder<'a> {
    source: &'a str,
    offsets: &'a CharOffsets,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    documents: Vec<Node>,
    limits: Limits,
    spent: Weight,
    aliases: usize,
}

impl Builder<'_> {
    fn on_event(&mut self, event: Event<'_>, raw: RawSpan) -> Result<(), SyntaxError> {
        let start = self.offsets.pos(&raw.start);
        let end = self.offsets.pos(&raw.end);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let start = if anchor != 0 || tag.is_some() {
                    skip_properties(self.source, start)
                } else {
                    start
                };
                // saphyr ends a quoted scalar's span after the whitespace
                // and comment that follow it; end it at the closing quote.
                let end = match style {
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                        quoted_end(self.source, start).unwrap_or(end)
                    }
                    _ => end,
                };
                let before = self.spent;
                charge(
                    &mut self.spent,
                    &self.limits,
                    Weight {
                        nodes: 1,
                        bytes: text.len(),
                    },
                    start,
                    false,
                )?;
                let node = Node {
                    value: Value::Scalar(Scalar {
                        text: text.into_owned(),
                        style: match style {
                            ScalarStyle::Plain => Style::Plain,
                            ScalarStyle::SingleQuoted => Style::SingleQuoted,
                            ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                            ScalarStyle::Literal => Style::Literal,
                            ScalarStyle::Folded => Style::Folded,
                        },
                        tag: tag.map(|t| format!("{}{}", t.handle, t.suffix)),
                    }),
                    span: Span { start, end },
                };
                self.remember(anchor, &node, self.spent.since(before));
                self.push(node);
            }
            Event::Alias(id) => {
                let Some(anchored) = self.anchors.get(&id) else {
                    return Err(SyntaxError {
                        line: start.line,
                        column: start.column,
                        message: "alias refers to an unknown anchor".to_owned(),
                        kind: ErrorKind::Syntax,
                    });
                };
                self.aliases += 1;
                if self.aliases > self.limits.max_aliases {
                    return Err(limit_error(
                        start,
                        format!(
                            "more than {} aliases — {BOMB_HINT}",
                            self.limits.max_aliases
                        ),
                    ));
                }
                // Charged before the copy: a refused alias allocates nothing.
                charge(&mut self.spent, &self.limits, anchored.weight, start, true)?;
                let node = anchored.node.clone();
                self.push(node);
            }
            Event::SequenceStart(anchor, _) => {
                let spent_before = self.open(start)?;
                self.stack.push(Frame::Seq {
                    start,
                    anchor,
                    items: Vec::new(),
                    spent_before,
                });
            }
            Event::MappingStart(anchor, _) => {
                let spent_before = self.open(start)?;
                self.stack.push(Frame::Map {
                    start,
                    anchor,
                    entries: Vec::new(),
                    pending_key: None,
                    spent_before,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor, spent_before) = match self.stack.pop() {
                    Some(Frame::Seq {
                        start: s,
                        anchor,
                        items,
                        spent_before,
                    }) => (
                        Node {
                            value: Value::Seq(items),
                            span: Span { start: s, end },
                        },
                        anchor,
                        spent_before,
                    ),
                    Some(Frame::Map {
                        start: s,
                        anchor,
                        entries,
                        spent_before,
                        ..
                    }) => (
                        Node {
                            value: Value::Map(entries),
                            span: Span { start: s, end },
                        },
                        anchor,
                        spent_before,
                    ),
                    None => {
                        return Err(SyntaxError {
                            line: start.line,
                            column: start.column,
                            message: "unbalanced collection end".to_owned(),
                            kind: ErrorKind::Syntax,
                        });
                    }
                };
                self.remember(anchor, &node, self.spent.since(spent_before));
                self.push(node);
            }
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd
            | Event::Nothing => {}
        }
        Ok(())
    }

    fn remember(&mut self, anchor: usize, node: &Node, weight: Weight) {
        // saphyr numbers anchors from 1; 0 means "no anchor".
        if anchor != 0 {
            // This copy is as large as the subtree just charged, so it at
            // most doubles what the limits allow.
            self.anchors.insert(
                anchor,
                Anchored {
                    node: node.clone(),
                    weight,
                },
            );
        }
    }

    /// Starts a list or mapping at `at`: refuses it when nested deeper than
    /// the limit, then charges its own node. Returns what the stream had
    /// spent before it, so its end can weigh the whole subtree for an anchor.
    fn open(&mut self, at: Pos) -> Result<Weight, SyntaxError> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(limit_error(
                at,
                format!(
                    "lists and mappings are nested more than {} levels deep — flatten the document",
                    self.limits.max_depth
                ),
            ));
        }
        let spent_before = self.spent;
        charge(
            &mut self.spent,
            &self.limits,
            Weight { nodes: 1, bytes: 0 },
            at,
            false,
        )?;
        Ok(spent_before)
    }

    fn push(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => entries.push(Entry { key, value: node }),
            },
        }
    }
}

#[cfg(test)]
mod tests;
