//! Readers for scalar values and lists, on [`Decoder`]: each records a
//! diagnostic with a hint and returns `None` when the value does not fit.

use std::time::Duration;

use super::decode::{Decoder, Keyword, Path, did_you_mean, found, quoted};
use super::values::{Percent, Problem, parse_duration, parse_percent};
use crate::yaml::{Node, Style};

/// What a list holds, for hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Items {
    Scalars,
    Mappings,
}

impl Decoder<'_> {
    /// Any non-null scalar, as text.
    pub fn string(&mut self, node: &Node, at: &Path) -> Option<String> {
        match node.as_str() {
            Some(text) => Some(text.to_owned()),
            None => {
                let hint = format!("write a single value, like `{}: some-text`", at.last_key());
                self.type_error(node, at, "a text value", hint);
                None
            }
        }
    }

    /// A string that must pass `check`.
    pub fn checked(
        &mut self,
        node: &Node,
        at: &Path,
        check: fn(&str) -> Result<(), Problem>,
    ) -> Option<String> {
        let text = self.string(node, at)?;
        match check(&text) {
            Ok(()) => Some(text),
            Err(problem) => {
                self.problem(node, at, problem);
                None
            }
        }
    }

    pub fn boolean(&mut self, node: &Node, at: &Path) -> Option<bool> {
        let value = node.as_scalar().and_then(|s| s.as_bool());
        if value.is_none() {
            let key = at.last_key();
            let hint = match unquoted(node).and_then(|s| s.as_bool()) {
                Some(b) => format!("remove the quotes: `{key}: {b}`"),
                None => format!("write `{key}: true` or `{key}: false`"),
            };
            self.type_error(node, at, "true or false", hint);
        }
        value
    }

    pub fn number(&mut self, node: &Node, at: &Path) -> Option<f64> {
        let value = node
            .as_scalar()
            .filter(|s| s.as_bool().is_none() && !s.is_null())
            .and_then(|s| s.as_f64())
            .filter(|v| !v.is_nan());
        if value.is_none() {
            let text = node.as_str().unwrap_or_default();
            let hint = if let Some(n) = unquoted(node).and_then(|s| s.as_f64()) {
                format!("remove the quotes: `{}: {n}`", at.last_key())
            } else if text.trim_end().ends_with('%') {
                "for a change relative to the last-known-good value use `relative_to_baseline: { above: +30% }`".to_owned()
            } else {
                format!(
                    "write a plain number without quotes or units, like `{}: 0.25`",
                    at.last_key()
                )
            };
            self.type_error(node, at, "a number", hint);
        }
        value
    }

    /// A whole number in `min..=max`.
    pub fn integer(&mut self, node: &Node, at: &Path, min: i64, max: i64) -> Option<i64> {
        let value = node
            .as_scalar()
            .filter(|s| s.as_bool().is_none() && !s.is_null())
            .and_then(|s| s.as_i64());
        let key = at.last_key();
        match value {
            None => {
                let hint = match unquoted(node).and_then(|s| s.as_i64()) {
                    Some(n) => format!("remove the quotes: `{key}: {n}`"),
                    None => format!("write a whole number, like `{key}: {}`", min.max(1)),
                };
                self.type_error(node, at, "a whole number", hint);
                None
            }
            Some(v) if v < min => {
                let message = format!("{at} must be at least {min}, found {v}");
                self.error(
                    node.span,
                    at,
                    message,
                    format!("write a number of {min} or more"),
                );
                None
            }
            Some(v) if v > max => {
                let message = format!("{at} must be at most {max}, found {v}");
                self.error(
                    node.span,
                    at,
                    message,
                    format!("write a number up to {max}"),
                );
                None
            }
            Some(v) => Some(v),
        }
    }

    pub fn duration(&mut self, node: &Node, at: &Path) -> Option<Duration> {
        let scalar = node.as_scalar().filter(|s| !s.is_null());
        let is_number = scalar.is_some_and(|s| {
            s.style == Style::Plain && s.as_bool().is_none() && s.as_f64().is_some()
        });
        match scalar {
            Some(s) if is_number => {
                let message = format!("{at} must be a duration, found the number {}", s.text);
                let hint = format!("add a unit: `{}s`, `{}m` or `{}h`", s.text, s.text, s.text);
                self.error(node.span, at, message, hint);
                None
            }
            Some(s) => match parse_duration(&s.text) {
                Ok(d) => Some(d),
                Err(problem) => {
                    self.problem(node, at, problem);
                    None
                }
            },
            None => {
                let hint = format!("write `{}: 5m`", at.last_key());
                self.type_error(node, at, "a duration like `5m`", hint);
                None
            }
        }
    }

    /// A duration that must be longer than zero.
    pub fn positive_duration(&mut self, node: &Node, at: &Path) -> Option<Duration> {
        let d = self.duration(node, at)?;
        if d.is_zero() {
            let message = format!("{at} must be longer than zero");
            self.error(
                node.span,
                at,
                message,
                format!("write a duration like `{}: 5m`", at.last_key()),
            );
            return None;
        }
        Some(d)
    }

    pub fn percent(&mut self, node: &Node, at: &Path) -> Option<Percent> {
        let Some(scalar) = node.as_scalar().filter(|s| !s.is_null()) else {
            self.type_error(
                node,
                at,
                "a percentage like `-3%`",
                "write `-3%` or `+30%`".to_owned(),
            );
            return None;
        };
        match parse_percent(&scalar.text) {
            Ok(p) => Some(p),
            Err(mut problem) => {
                if scalar.style == Style::Plain && scalar.as_f64().is_some() {
                    problem.hint = Some(format!(
                        "write the change in percent with its sign, like `{}%` (here `-3%` means 3% lower)",
                        scalar.text
                    ));
                }
                self.problem(node, at, problem);
                None
            }
        }
    }

    pub fn keyword<K: Keyword>(&mut self, node: &Node, at: &Path) -> Option<K> {
        let text = node.as_str();
        if let Some((_, value)) = K::NAMES.iter().find(|(name, _)| Some(*name) == text) {
            return Some(*value);
        }
        let allowed = K::NAMES
            .iter()
            .map(|(n, _)| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let found = match text {
            Some(t) => format!("`{t}`"),
            None => found(node),
        };
        let message = format!("{at} must be one of {allowed}, found {found}");
        let names: Vec<&str> = K::NAMES.iter().map(|(n, _)| *n).collect();
        let hint = match text.and_then(|t| did_you_mean(t, &names)) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!(
                "write e.g. `{}: {}`",
                at.last_key(),
                names.first().unwrap_or(&"")
            ),
        };
        self.error(node.span, at, message, hint);
        None
    }

    /// A list whose items are decoded by `item`; all items are checked even
    /// when one fails.
    pub fn list<'n, T>(
        &mut self,
        node: &'n Node,
        at: &Path,
        what: &str,
        items: Items,
        mut item: impl FnMut(&mut Self, &'n Node, &Path) -> Option<T>,
    ) -> Option<Vec<T>> {
        let Some(nodes) = node.as_seq() else {
            let key = at.last_key();
            let hint = match (items, node.as_str()) {
                (Items::Scalars, Some(text)) => format!("write `{key}: [{}]`", quoted(text)),
                (Items::Scalars, None) => {
                    format!("write `{key}: [\"…\", \"…\"]`, one item per value")
                }
                (Items::Mappings, _) => {
                    format!("start each item of `{key}` with `- ` on its own line")
                }
            };
            self.type_error(node, at, what, hint);
            return None;
        };
        let mut out = Vec::with_capacity(nodes.len());
        let mut ok = true;
        for (i, n) in nodes.iter().enumerate() {
            match item(self, n, &at.index(i)) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

/// A quoted scalar read as if it were plain, to suggest dropping the quotes.
fn unquoted(node: &Node) -> Option<crate::yaml::Scalar> {
    let s = node.as_scalar()?;
    (s.style != Style::Plain).then(|| crate::yaml::Scalar {
        text: s.text.clone(),
        style: Style::Plain,
        tag: None,
    })
}
