//! Splicing new scalar text into a YAML source by byte range, and checking
//! that the result means exactly the original plus the intended values.

use std::collections::HashMap;
use std::ops::Range;

use crate::yaml::{self, Node, Span, Style, Value};

use super::ManifestError;

/// A scalar in the source: where it is, how it was written, what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScalarAt {
    pub span: Span,
    pub style: Style,
    pub text: String,
}

impl ScalarAt {
    pub fn of(node: &Node) -> Option<Self> {
        let scalar = node.as_scalar()?;
        Some(Self {
            span: node.span,
            style: scalar.style,
            text: if scalar.is_null() {
                String::new()
            } else {
                scalar.text.clone()
            },
        })
    }
}

/// A mapping a key can be added to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapAt {
    pub span: Span,
    /// Written as `{ … }`: no line can be inserted.
    pub flow: bool,
    /// 1-based column of its keys.
    pub key_column: usize,
    /// Byte just after the last scalar inside the mapping.
    pub last_scalar_end: usize,
}

impl MapAt {
    pub fn of(source: &str, node: &Node) -> Option<Self> {
        let entries = node.as_map()?;
        let first = entries.first()?;
        Some(Self {
            span: node.span,
            flow: value_text_start(source, node.span.start.byte).starts_with('{'),
            key_column: first.key.span.start.column,
            last_scalar_end: last_scalar_end(node),
        })
    }
}

/// The source from `byte` on, past any `&anchor` / `!tag` properties.
fn value_text_start(source: &str, byte: usize) -> &str {
    let mut rest = source.get(byte..).unwrap_or("");
    while rest.starts_with('&') || rest.starts_with('!') {
        let token_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = rest[token_end..].trim_start();
    }
    rest
}

fn last_scalar_end(node: &Node) -> usize {
    match &node.value {
        Value::Scalar(_) => node.span.end.byte,
        Value::Seq(items) => items.last().map_or(node.span.end.byte, last_scalar_end),
        Value::Map(entries) => entries
            .last()
            .map_or(node.span.end.byte, |e| last_scalar_end(&e.value)),
    }
}

/// One intended change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Write {
    /// Give the scalar at `at` the value `new_text`, in its style if possible.
    Replace { at: ScalarAt, new_text: String },
    /// Add `key: value` as the last entry of the block mapping `map`.
    Insert {
        map: MapAt,
        key: String,
        value: String,
        /// Byte where the line goes, and the raw text to put there.
        byte: usize,
        raw: String,
        /// Offset of the key within `raw`.
        key_offset: usize,
    },
}

impl Write {
    pub fn replace(at: &ScalarAt, new_text: String) -> Self {
        Write::Replace {
            at: at.clone(),
            new_text,
        }
    }
}

/// Plans an `Insert` of `key: value` into the block mapping `map`: a new line
/// after the line holding the mapping's last value, indented like its keys,
/// ending like that line does.
pub(crate) fn insertion(
    path: &str,
    source: &str,
    map: &MapAt,
    key: &str,
    value: &str,
) -> Result<Write, ManifestError> {
    let cannot = |what: &str, hint: &str| ManifestError::CannotEdit {
        path: path.to_owned(),
        line: map.span.start.line,
        column: map.span.start.column,
        what: what.to_owned(),
        hint: hint.to_owned(),
    };
    if map.flow {
        return Err(cannot(
            &format!("cannot add `{key}:` to a flow-style mapping (`{{ … }}`)"),
            &format!("rewrite the entry in block style, or add `{key}: {value}` by hand"),
        ));
    }
    let rendered = yaml::render_scalar(value, Style::Plain)
        .or_else(|| yaml::render_scalar(value, Style::DoubleQuoted))
        .ok_or_else(|| cannot("the value cannot be written as YAML", "report this"))?;
    let indent = " ".repeat(map.key_column.saturating_sub(1));
    let line = format!("{indent}{key}: {rendered}");
    let after = source.get(map.last_scalar_end..).unwrap_or("");
    Ok(match after.find('\n') {
        Some(nl) => {
            let eol = if after[..nl].ends_with('\r') {
                "\r\n"
            } else {
                "\n"
            };
            Write::Insert {
                map: map.clone(),
                key: key.to_owned(),
                value: value.to_owned(),
                byte: map.last_scalar_end + nl + 1,
                raw: format!("{line}{eol}"),
                key_offset: indent.len(),
            }
        }
        None => {
            // Last line of a file without a final newline: keep it that way.
            let eol = if source.contains("\r\n") {
                "\r\n"
            } else {
                "\n"
            };
            Write::Insert {
                map: map.clone(),
                key: key.to_owned(),
                value: value.to_owned(),
                byte: source.len(),
                raw: format!("{eol}{line}"),
                key_offset: eol.len() + indent.len(),
            }
        }
    })
}

/// The writes of one file, deduplicated (an alias and its anchor are one
/// scalar).
#[derive(Debug, Default)]
pub(crate) struct Plan {
    writes: Vec<Write>,
}

impl Plan {
    /// Adds a write and returns its index (an equal write is reused).
    pub fn push(&mut self, write: Write) -> usize {
        if let Some(i) = self.writes.iter().position(|w| *w == write) {
            return i;
        }
        self.writes.push(write);
        self.writes.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

pub(crate) struct Applied {
    pub content: String,
    /// For each write of the plan, the 1-based line of its value in
    /// `content`.
    pub lines: Vec<usize>,
}

struct Splice {
    range: Range<usize>,
    raw: String,
    /// Offset within `raw` of the line to report.
    report_offset: usize,
    write: usize,
}

/// Applies `plan` to `source` and verifies the result against `old_docs`
/// (the parse of `source`).
pub(crate) fn apply(
    path: &str,
    source: &str,
    old_docs: &[Node],
    plan: &Plan,
) -> Result<Applied, ManifestError> {
    let mut splices = Vec::with_capacity(plan.writes.len());
    for (i, write) in plan.writes.iter().enumerate() {
        splices.push(splice_for(path, source, write, i)?);
    }
    splices.sort_by_key(|s| (s.range.start, s.range.end));
    for pair in splices.windows(2) {
        if pair[0].range.end > pair[1].range.start
            || (pair[0].range == pair[1].range && pair[0].raw != pair[1].raw)
        {
            return Err(ManifestError::Verification {
                path: path.to_owned(),
                detail: format!(
                    "two edits overlap at bytes {:?} and {:?}",
                    pair[0].range, pair[1].range
                ),
            });
        }
    }
    // Splice from the end so earlier byte ranges stay valid.
    let mut content = source.to_owned();
    for s in splices.iter().rev() {
        content.replace_range(s.range.clone(), &s.raw);
    }
    let mut lines = vec![0; plan.writes.len()];
    let mut shift: isize = 0;
    for s in &splices {
        let new_start = s.range.start.saturating_add_signed(shift);
        let at = new_start + s.report_offset;
        lines[s.write] = 1 + content.as_bytes()[..at.min(content.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        shift += s.raw.len() as isize - s.range.len() as isize;
    }
    verify(path, old_docs, &content, plan)?;
    Ok(Applied { content, lines })
}

fn splice_for(
    path: &str,
    source: &str,
    write: &Write,
    index: usize,
) -> Result<Splice, ManifestError> {
    match write {
        Write::Insert {
            byte,
            raw,
            key_offset,
            ..
        } => Ok(Splice {
            range: *byte..*byte,
            raw: raw.clone(),
            report_offset: *key_offset,
            write: index,
        }),
        Write::Replace { at, new_text } => {
            let cannot = |what: String, hint: &str| ManifestError::CannotEdit {
                path: path.to_owned(),
                line: at.span.start.line,
                column: at.span.start.column,
                what,
                hint: hint.to_owned(),
            };
            let rendered = match at.style {
                Style::Literal | Style::Folded => {
                    return Err(cannot(
                        format!("the value `{}` is a {} block scalar", at.text, at.style),
                        "write it on one line (plain or quoted) so it can be pinned",
                    ));
                }
                style => yaml::render_scalar(new_text, style)
                    .or_else(|| yaml::render_scalar(new_text, Style::DoubleQuoted))
                    .map(|r| r.into_owned())
                    .ok_or_else(|| {
                        cannot(
                            format!("`{new_text}` cannot be written as YAML"),
                            "report this",
                        )
                    })?,
            };
            let range = at.span.bytes();
            // Guard against a span that does not cover exactly the scalar
            // (it would swallow or leave neighbouring bytes).
            let old_raw = source.get(range.clone()).unwrap_or("");
            let exact = match at.style {
                Style::Plain => old_raw == at.text || (old_raw.is_empty() && at.text.is_empty()),
                Style::SingleQuoted => {
                    old_raw.len() >= 2 && old_raw.starts_with('\'') && old_raw.ends_with('\'')
                }
                _ => old_raw.len() >= 2 && old_raw.starts_with('"') && old_raw.ends_with('"'),
            };
            if !exact {
                return Err(cannot(
                    format!("cannot find the exact text of `{}` in the file", at.text),
                    "write the value on one line, plain or quoted, and retry",
                ));
            }
            if range.is_empty() {
                // An empty (null) value: saphyr places it on the `:` of its
                // key. Write ` value` after the colon.
                if source.as_bytes().get(range.start) != Some(&b':') {
                    return Err(cannot(
                        "cannot locate the empty value to fill in".to_owned(),
                        "write a placeholder value (e.g. `\"\"`) and retry",
                    ));
                }
                let after = range.start + 1;
                return Ok(Splice {
                    range: after..after,
                    raw: format!(" {rendered}"),
                    report_offset: 1,
                    write: index,
                });
            }
            Ok(Splice {
                range,
                raw: rendered,
                report_offset: 0,
                write: index,
            })
        }
    }
}

/// Parses `new_source` and checks it equals `old_docs` except for exactly
/// the planned values.
pub(crate) fn verify(
    path: &str,
    old_docs: &[Node],
    new_source: &str,
    plan: &Plan,
) -> Result<(), ManifestError> {
    let fail = |detail: String| ManifestError::Verification {
        path: path.to_owned(),
        detail,
    };
    let new_docs =
        yaml::parse_documents(new_source).map_err(|e| fail(format!("result is not YAML: {e}")))?;
    if new_docs.len() != old_docs.len() {
        return Err(fail(format!(
            "{} documents became {}",
            old_docs.len(),
            new_docs.len()
        )));
    }
    let mut expect = Expected::default();
    for (i, write) in plan.writes.iter().enumerate() {
        match write {
            Write::Replace { at, new_text } => {
                expect
                    .scalars
                    .insert(at.span.start.byte, (new_text.as_str(), i));
            }
            Write::Insert {
                map, key, value, ..
            } => {
                expect
                    .inserts
                    .insert(map.span.start.byte, (key.as_str(), value.as_str(), i));
            }
        }
    }
    let mut hit = vec![false; plan.writes.len()];
    for (old, new) in old_docs.iter().zip(&new_docs) {
        same(old, new, &expect, &mut hit).map_err(fail)?;
    }
    if let Some(i) = hit.iter().position(|h| !h) {
        return Err(fail(format!("planned edit {i} did not take effect")));
    }
    Ok(())
}

#[derive(Default)]
struct Expected<'a> {
    /// Old scalar start byte → (new text, write index).
    scalars: HashMap<usize, (&'a str, usize)>,
    /// Old mapping start byte → (key, value, write index) appended to it.
    inserts: HashMap<usize, (&'a str, &'a str, usize)>,
}

fn same(old: &Node, new: &Node, expect: &Expected, hit: &mut [bool]) -> Result<(), String> {
    let at = |n: &Node| format!("line {}", n.span.start.line);
    match (&old.value, &new.value) {
        (Value::Scalar(o), Value::Scalar(n)) => {
            if o.tag != n.tag {
                return Err(format!("a tag changed at {}", at(new)));
            }
            match expect.scalars.get(&old.span.start.byte) {
                Some((text, i)) => {
                    if n.text != *text {
                        return Err(format!("{} reads `{}`, expected `{text}`", at(new), n.text));
                    }
                    hit[*i] = true;
                }
                None => {
                    if o.text != n.text || o.style != n.style {
                        return Err(format!("an unrelated value changed at {}", at(new)));
                    }
                }
            }
            Ok(())
        }
        (Value::Seq(o), Value::Seq(n)) => {
            if o.len() != n.len() {
                return Err(format!("a list changed length at {}", at(new)));
            }
            o.iter()
                .zip(n)
                .try_for_each(|(o, n)| same(o, n, expect, hit))
        }
        (Value::Map(o), Value::Map(n)) => {
            let mut n = n.as_slice();
            if let Some((key, value, i)) = expect.inserts.get(&old.span.start.byte) {
                let Some((last, rest)) = n.split_last() else {
                    return Err(format!("a mapping lost its entries at {}", at(new)));
                };
                if last.key.as_str() != Some(key) || last.value.as_str() != Some(value) {
                    return Err(format!("`{key}: {value}` not added at {}", at(new)));
                }
                hit[*i] = true;
                n = rest;
            }
            if o.len() != n.len() {
                return Err(format!("a mapping changed size at {}", at(new)));
            }
            o.iter().zip(n).try_for_each(|(o, n)| {
                same(&o.key, &n.key, expect, hit)?;
                same(&o.value, &n.value, expect, hit)
            })
        }
        _ => Err(format!("a value changed type at {}", at(new))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(s: &str) -> Vec<Node> {
        yaml::parse_documents(s).unwrap()
    }

    #[test]
    fn verify_rejects_any_other_change() {
        let old = "a: x\nb: [1, 2]\nc: {d: e}\n";
        let plan = Plan::default();
        assert!(
            verify(
                "f.yaml",
                &docs(old),
                "a: x # comment\nb: [1, 2]\nc: {d: e}\n",
                &plan
            )
            .is_ok()
        );
        for new in [
            "a: y\nb: [1, 2]\nc: {d: e}\n",
            "a: 'x'\nb: [1, 2]\nc: {d: e}\n",
            "a: x\nb: [1, 2, 3]\nc: {d: e}\n",
            "a: x\nb: [1, 2]\nc: {d: e, f: g}\n",
            "a: x\nb: [1, 2]\nc: {d: e}\n---\n",
            "a: !!str x\nb: [1, 2]\nc: {d: e}\n",
            "a: [x]\nb: [1, 2]\nc: {d: e}\n",
            "a: x\nb: [1, 2\n",
        ] {
            let err = verify("f.yaml", &docs(old), new, &plan).unwrap_err();
            assert!(matches!(err, ManifestError::Verification { .. }), "{new:?}");
        }
    }

    #[test]
    fn a_planned_edit_must_land_exactly() {
        let old = "a: x\nb: y\n";
        let d = docs(old);
        let at = ScalarAt::of(d[0].get("a").unwrap()).unwrap();
        let mut plan = Plan::default();
        plan.push(Write::replace(&at, "z".to_owned()));
        assert!(verify("f.yaml", &d, "a: z\nb: y\n", &plan).is_ok());
        assert!(verify("f.yaml", &d, "a: x\nb: z\n", &plan).is_err());
        assert!(verify("f.yaml", &d, "a: w\nb: y\n", &plan).is_err());
        // A span that does not cover exactly the scalar is refused.
        let mut wrong = at.clone();
        wrong.span.end.byte += 2;
        let mut bad = Plan::default();
        bad.push(Write::replace(&wrong, "z".to_owned()));
        assert!(matches!(
            apply("f.yaml", old, &d, &bad),
            Err(ManifestError::CannotEdit { .. })
        ));
    }
}
