//! A small toolkit for decoding a spanned YAML tree into typed values while
//! collecting every problem instead of stopping at the first.
//!
//! Every reader returns `Option<T>`: `None` means "invalid, and a diagnostic
//! has been recorded". Struct decoders read all their keys first, then build
//! the struct with `?`, so one bad field never hides another.

use std::fmt;

use super::diagnostic::{Diagnostic, Severity};
use super::values::Problem;
use crate::yaml::{Node, Span, Value};

/// A mapping type of the config: its keys (which must equal the properties
/// of its JSON Schema, see the drift tests in `schema.rs`), where it sits and an
/// example for hints.
#[derive(Debug)]
pub(crate) struct Section {
    /// Name of the Rust type, which is also its `$defs` name in the schema.
    pub type_name: &'static str,
    /// Where it sits in the file, like `apps[].health`; empty for the top
    /// level.
    pub place: &'static str,
    pub keys: &'static [&'static str],
    /// How to write it, for "must be a mapping" hints.
    pub example: &'static str,
}

/// Where a value sits in the config, like `apps[1].health.slos[0].for`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Path(String);

impl Path {
    pub fn root() -> Self {
        Self(String::new())
    }

    pub fn key(&self, key: &str) -> Self {
        if self.0.is_empty() {
            Self(key.to_owned())
        } else {
            Self(format!("{}.{key}", self.0))
        }
    }

    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last key of the path (`paths` for `apps[0].paths[2]`).
    pub fn last_key(&self) -> &str {
        let last = self.0.rsplit('.').next().unwrap_or_default();
        last.split('[').next().unwrap_or_default()
    }

    /// The path as the subject of a sentence.
    pub fn subject(&self) -> &str {
        if self.0.is_empty() {
            "the config"
        } else {
            &self.0
        }
    }

    /// "in apps[0]" or "at the top level".
    pub fn inside(&self) -> String {
        if self.0.is_empty() {
            "at the top level".to_owned()
        } else {
            format!("in {}", self.0)
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.subject())
    }
}

/// A closed set of words, like `push | pr | pr-automerge | approve`.
pub(crate) trait Keyword: Copy + 'static {
    /// Every value with its spelling in the file (equal to its serde name;
    /// a unit test checks that against the schema).
    const NAMES: &'static [(&'static str, Self)];
}

/// Collects diagnostics while decoding one file.
pub(crate) struct Decoder<'s> {
    source: &'s str,
    diagnostics: Vec<Diagnostic>,
}

impl<'s> Decoder<'s> {
    pub fn new(source: &'s str) -> Self {
        Self {
            source,
            diagnostics: Vec::new(),
        }
    }

    pub fn report(
        &mut self,
        severity: Severity,
        span: Span,
        at: &Path,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.diagnostics.push(Diagnostic {
            severity,
            line: span.start.line.max(1),
            column: span.start.column.max(1),
            path: at.as_str().to_owned(),
            message: one_line(message.into()),
            hint: hint.map(one_line),
        });
    }

    pub fn error(
        &mut self,
        span: Span,
        at: &Path,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.report(Severity::Error, span, at, message, Some(hint.into()));
    }

    pub fn warning(
        &mut self,
        span: Span,
        at: &Path,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.report(Severity::Warning, span, at, message, Some(hint.into()));
    }

    /// Records a value problem as an error prefixed with the value's path.
    pub fn problem(&mut self, node: &Node, at: &Path, problem: Problem) {
        let message = format!("{at}: {}", problem.message);
        self.report(Severity::Error, node.span, at, message, problem.hint);
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Every diagnostic, in source order.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.diagnostics.sort_by_key(|d| (d.line, d.column));
        self.diagnostics
    }

    /// The source line (1-based), for hints that quote it.
    pub fn source_line(&self, line: usize) -> &'s str {
        self.source
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or_default()
    }

    pub(crate) fn type_error(&mut self, node: &Node, at: &Path, expected: &str, hint: String) {
        let message = format!("{at} must be {expected}, found {}", found(node));
        self.error(node.span, at, message, hint);
    }
}

/// "a string", "a list", … with short scalars quoted.
pub(crate) fn found(node: &Node) -> String {
    match (&node.value, node.kind()) {
        (Value::Scalar(s), kind) if kind != "null" && s.text.chars().count() <= 40 => {
            format!("{kind} `{}`", s.text)
        }
        (_, kind) => kind.to_owned(),
    }
}

/// Messages quote user text, which may hold line breaks; a diagnostic must
/// stay on one line.
fn one_line(text: String) -> String {
    if text.contains(['\n', '\r']) {
        text.replace('\r', "\\r").replace('\n', "\\n")
    } else {
        text
    }
}

/// `text` as a YAML flow scalar for hints: double-quoted, or single-quoted
/// when it contains double quotes.
pub(crate) fn quoted(text: &str) -> String {
    if text.contains('"') && !text.contains('\'') {
        format!("'{text}'")
    } else {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The closest candidate, if close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let norm = |s: &str| s.to_lowercase().replace(['-', '_', ' '], "");
    if let Some(same) = candidates.iter().find(|c| norm(c) == norm(word)) {
        return Some(same);
    }
    candidates
        .iter()
        .map(|c| (c, strsim::jaro_winkler(&word.to_lowercase(), c)))
        .filter(|(_, score)| *score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| *c)
}

/// Reads one mapping: reports unknown and duplicate keys when opened, then
/// hands out values by key. Every key of its [`Section`] must be read once
/// (checked in debug builds), which keeps the decoder and the schema in step.
pub(crate) struct MapReader<'n> {
    node: &'n Node,
    at: Path,
    section: &'static Section,
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
    asked: Vec<&'static str>,
}

impl<'n> MapReader<'n> {
    /// Opens `node` as `section`; `others` are every section, to say where a
    /// misplaced key belongs.
    pub fn open(
        d: &mut Decoder<'_>,
        node: &'n Node,
        at: &Path,
        section: &'static Section,
        others: &'static [&'static Section],
    ) -> Option<Self> {
        let Some(map) = node.as_map() else {
            let hint = if at.as_str().is_empty() {
                "start the file with `version: 1` and list the apps under `apps:`".to_owned()
            } else {
                format!("write it as a mapping, like `{}`", section.example)
            };
            d.type_error(node, at, "a mapping", hint);
            return None;
        };
        let mut entries: Vec<(&'n str, &'n Node, &'n Node)> = Vec::new();
        let mut merged: Vec<(&'n str, &'n Node, &'n Node)> = Vec::new();
        for entry in map {
            let Some(key) = entry.key.as_str() else {
                let message = format!("{at} has a key that is {}, not a name", found(&entry.key));
                d.error(
                    entry.key.span,
                    at,
                    message,
                    "write keys as plain words, like `paths:`",
                );
                continue;
            };
            if key == "<<" {
                merge_into(d, &entry.value, at, &mut merged);
                continue;
            }
            if let Some((_, first, _)) = entries.iter().find(|(k, _, _)| *k == key) {
                let message = format!(
                    "duplicate key `{key}` {} (first on line {})",
                    at.inside(),
                    first.span.start.line
                );
                d.error(
                    entry.key.span,
                    at,
                    message,
                    "remove one of them; YAML would keep only one",
                );
                continue;
            }
            entries.push((key, &entry.key, &entry.value));
        }
        for (key, key_node, value) in merged {
            if !entries.iter().any(|(k, _, _)| *k == key) {
                entries.push((key, key_node, value));
            }
        }
        for (key, key_node, _) in &entries {
            if section.keys.contains(key) || (at.as_str().is_empty() && key.starts_with("x-")) {
                continue;
            }
            let message = format!("unknown key `{key}` {}", at.inside());
            d.error(
                key_node.span,
                at,
                message,
                unknown_key_hint(key, section, others),
            );
        }
        Some(Self {
            node,
            at: at.clone(),
            section,
            entries,
            asked: Vec::new(),
        })
    }

    pub fn span(&self) -> Span {
        self.node.span
    }

    /// The value of `key`, if present and not null. Does not count as
    /// reading it.
    pub fn peek(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
            .filter(|v| !v.is_null())
    }

    fn take(&mut self, key: &'static str) -> Option<(&'n Node, &'n Node)> {
        debug_assert!(
            self.section.keys.contains(&key),
            "{} reads `{key}`, which is not in its key list",
            self.section.type_name
        );
        self.asked.push(key);
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, k, v)| (*k, *v))
    }

    /// A key that must be present and non-null. `example` is what to add
    /// when it is missing.
    pub fn required<'s, T>(
        &mut self,
        d: &mut Decoder<'s>,
        key: &'static str,
        example: &str,
        f: impl FnOnce(&mut Decoder<'s>, &'n Node, &Path) -> Option<T>,
    ) -> Option<T> {
        let at = self.at.key(key);
        match self.take(key) {
            None => {
                let message = format!("{} is missing `{key}`", self.at.subject());
                d.error(self.node.span, &at, message, format!("add `{example}`"));
                None
            }
            Some((key_node, value)) if value.is_null() => {
                let hint = empty_value_hint(d, key_node, key, example);
                d.error(key_node.span, &at, format!("{at} is empty"), hint);
                None
            }
            Some((_, value)) => f(d, value, &at),
        }
    }

    /// A key that may be absent (or null): `Some(None)`.
    pub fn optional<'s, T>(
        &mut self,
        d: &mut Decoder<'s>,
        key: &'static str,
        f: impl FnOnce(&mut Decoder<'s>, &'n Node, &Path) -> Option<T>,
    ) -> Option<Option<T>> {
        let at = self.at.key(key);
        match self.take(key) {
            Some((_, value)) if !value.is_null() => f(d, value, &at).map(Some),
            _ => Some(None),
        }
    }

    /// A key with a default for when it is absent (or null).
    pub fn or_default<'s, T>(
        &mut self,
        d: &mut Decoder<'s>,
        key: &'static str,
        default: impl FnOnce() -> T,
        f: impl FnOnce(&mut Decoder<'s>, &'n Node, &Path) -> Option<T>,
    ) -> Option<T> {
        Some(self.optional(d, key, f)?.unwrap_or_else(default))
    }

    /// Ends reading. In debug builds, checks that every key of the section
    /// was read.
    pub fn finish(self) {
        debug_assert!(
            self.section.keys.iter().all(|k| self.asked.contains(k)),
            "{} does not read all of {:?}",
            self.section.type_name,
            self.section.keys
        );
    }
}

/// Adds the entries of a `<<` merge value (a mapping or a list of them).
fn merge_into<'n>(
    d: &mut Decoder<'_>,
    value: &'n Node,
    at: &Path,
    merged: &mut Vec<(&'n str, &'n Node, &'n Node)>,
) {
    let sources: Vec<&'n Node> = match &value.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![value],
    };
    for source in sources {
        let Some(map) = source.as_map() else {
            let message = format!(
                "{} merges (`<<`) {}, not a mapping",
                at.subject(),
                found(source)
            );
            d.error(
                source.span,
                at,
                message,
                "merge an anchored mapping: `<<: *defaults`",
            );
            continue;
        };
        for entry in map {
            if let Some(key) = entry.key.as_str()
                && !merged.iter().any(|(k, _, _)| *k == key)
            {
                merged.push((key, &entry.key, &entry.value));
            }
        }
    }
}

fn unknown_key_hint(key: &str, section: &Section, others: &[&Section]) -> String {
    if let Some(close) = did_you_mean(key, section.keys) {
        return format!("did you mean `{close}`?");
    }
    // A key of an enclosing, nested or sibling section (within an app) was
    // probably put in the wrong place: `policy` at the top level instead of
    // in an app, `timeout` in `policy` instead of `wait`.
    let here = section.place;
    let parent = |place: &str| place.rsplit_once('.').map(|(p, _)| p.to_owned());
    let related = |place: &str| {
        place != here
            && (here.is_empty()
                || place.is_empty()
                || place.starts_with(&format!("{here}."))
                || here.starts_with(&format!("{place}."))
                || (parent(here).is_some() && parent(here) == parent(place)))
    };
    let places: Vec<String> = others
        .iter()
        .filter(|s| related(s.place) && s.keys.contains(&key))
        .map(|s| {
            if s.place.is_empty() {
                "the top level".to_owned()
            } else {
                format!("`{}`", s.place)
            }
        })
        .collect();
    if !places.is_empty() {
        return format!("`{key}` belongs in {}; move it there", places.join(" or "));
    }
    format!("allowed keys here: {}", section.keys.join(", "))
}

/// A hint for `key:` with no value, spotting an unquoted `#…` (a comment).
fn empty_value_hint(d: &Decoder<'_>, key_node: &Node, key: &str, example: &str) -> String {
    let line = d.source_line(key_node.span.start.line);
    let after_key = line
        .find(&format!("{key}:"))
        .map(|i| line[i + key.len() + 1..].trim_start());
    match after_key {
        Some(rest) if rest.starts_with('#') => format!(
            "an unquoted `#` starts a YAML comment; quote the value: `{key}: \"{}\"`",
            rest.trim_end()
        ),
        _ => format!("give it a value, like `{example}`"),
    }
}
